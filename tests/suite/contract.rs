//! The OpenAPI document is the contract: schemathesis generates requests from it against the
//! real `serve`, started as a newcomer would (an empty folder, users and devices loaded, a
//! token with every scope), and fails on any 5xx, any status, content type, header or body
//! the document does not describe, and any request the document forbids that is accepted.
//! Runs when `MDM_MAIL_TEST_SCHEMATHESIS` names the schemathesis program (CI installs it);
//! with the variable set, a missing program fails the test rather than skipping it.

use std::process::Command;

use crate::server::Server;
use crate::support::{TestDb, fixture, stdout};

const SCHEMATHESIS_ENV: &str = "MDM_MAIL_TEST_SCHEMATHESIS";

/// The checks that hold whatever the store holds. Left out: that every schema-valid request
/// succeeds (an account for a user the store does not have is valid JSON and a 422 by
/// design) and the checks that need users of several tenants.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_headers_conformance,response_schema_conformance,negative_data_rejection";

#[tokio::test]
async fn schemathesis_finds_nothing_the_openapi_document_does_not_describe() {
    let Ok(program) = std::env::var(SCHEMATHESIS_ENV) else {
        eprintln!("{SCHEMATHESIS_ENV} is not set: the OpenAPI contract test is skipped");
        return;
    };
    let db = TestDb::sqlite().await;
    let profiles = fixture("profiles");
    let env = [
        ("MDM_MAIL_PROFILES", profiles.to_str().unwrap()),
        ("MDM_MAIL_SECRET_KEY", crate::import::KEY),
    ];
    let run = |args: &[&str]| {
        let mut all = vec![("MDM_MAIL_DATABASE_URL", db.url.as_str())];
        all.extend_from_slice(&env);
        crate::support::mdm_mail_in(db.dir.path(), &all, args)
    };
    for (what, file) in [("users", "users.csv"), ("devices", "devices.csv")] {
        let file = fixture(file);
        assert!(
            run(&[what, "import", file.to_str().unwrap()])
                .status
                .success()
        );
    }
    let token = stdout(&run(&[
        "token",
        "create",
        "contract",
        "--scope",
        "read,write,secrets",
    ]))
    .trim()
    .to_owned();
    let drop = db.dir.path().join("drop");
    let mut serve_env = env.to_vec();
    serve_env.push(("MDM_MAIL_PUSH_DIRECTORY", drop.to_str().unwrap()));
    let server = Server::start_with(&db, &serve_env, &[]);

    let output = Command::new(&program)
        .args([
            "run",
            &format!("{}/api/openapi.json", server.base),
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            CHECKS,
            "--max-time",
            "90",
            // One worker: with two threads, CPython before 3.11.8 (Debian's has 3.11.2) can
            // raise "AST constructor recursion depth mismatch" inside hypothesis while it
            // describes a lambda (python/cpython#106905), failing the run on no fault of ours.
            "--workers",
            "1",
            "--seed",
            "7",
            "--no-color",
        ])
        .current_dir(db.dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{SCHEMATHESIS_ENV}={program} cannot be run: {e}"));
    server.terminate();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
