//! `mdm-mail import` as an admin or a script runs it: the JSON summary's exact shape, exit
//! statuses, results files, dry runs and strict runs that write nothing, passwords that never
//! reach any output, and an import killed half-way that leaves no trace.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{TestDb, fixture, stderr, stdout, store_test};

fn with_users(db: &TestDb) {
    let output = db.run(&["users", "import", fixture("users.csv").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

fn email_fixture() -> String {
    fixture("import/email.csv").display().to_string()
}

store_test! {
    async fn the_json_summary_has_exactly_the_documented_shape(db: TestDb) {
        with_users(&db);
        let output = db.run(&["import", &email_fixture(), "--type", "email", "--json"]);

        assert_eq!(output.status.code(), Some(3), "rejected and duplicate lines: {}", stderr(&output));
        assert_eq!(
            stdout(&output),
            concat!(
                r#"{"type":"email","rows":5,"added":2,"updated":0,"unchanged":0,"discarded":1,"#,
                r#""rejected":1,"duplicates":1,"encoding":"utf-8","delimiter":",","header":false,"#,
                r#""dry_run":false,"lines":["#,
                r#"{"line":3,"outcome":"discarded","message":"no user with email nobody@example.com"},"#,
                r#"{"line":4,"outcome":"rejected","field":"email_address","#,
                r#""message":"\"bob.example.com\" is not an email address (no @)"},"#,
                r#"{"line":5,"outcome":"duplicate","message":"same user, type and address as line 2"}],"#,
                r#""more_lines":0}"#,
                "\n"
            )
        );
    }
}

store_test! {
    async fn exit_status_is_0_when_every_line_is_applied_or_discarded(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("clean.csv");
        std::fs::write(
            &file,
            "alice@example.com,Alice,alice@mail.example.com,alice,,alice,\n\
             nobody@example.com,Nobody,n@mail.example.com,n,,n,\n",
        )
        .unwrap();
        let output = db.run(&["import", file.to_str().unwrap(), "--type", "email"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stdout(&output).contains("1 added"), "{}", stdout(&output));
        assert!(stderr(&output).contains("clean.csv:2: discarded: no user with email nobody@example.com"));
    }
}

store_test! {
    async fn a_strict_import_with_a_bad_line_fails_with_status_1_and_writes_nothing(db: TestDb) {
        with_users(&db);
        let output = db.run(&["import", &email_fixture(), "--type", "email", "--strict"]);

        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("strict import: 1 line(s) rejected and 1 duplicate; nothing was written"), "{}", stderr(&output));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
    }
}

store_test! {
    async fn a_dry_run_reports_what_would_happen_and_writes_nothing(db: TestDb) {
        with_users(&db);
        let output = db.run(&["import", &email_fixture(), "--type", "email", "--dry-run", "--json"]);

        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!((summary["added"].as_u64(), summary["dry_run"].as_bool()), (Some(2), Some(true)));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action = 'accounts.import'").await, 0);
    }
}

#[test]
fn a_dry_run_on_a_fresh_store_does_not_even_create_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| crate::support::mdm_mail_in(dir.path(), &[], args);
    run(&["users", "import", fixture("users.csv").to_str().unwrap()]);

    let output = run(&["import", &email_fixture(), "--type", "email", "--dry-run"]);

    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!dir.path().join("mdm-mail.key").exists());
    let output = run(&["import", &email_fixture(), "--type", "email"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        dir.path().join("mdm-mail.key").exists(),
        "a commit creates it beside the database"
    );
}

store_test! {
    async fn the_results_file_has_one_row_per_input_line(db: TestDb) {
        with_users(&db);
        let results = db.dir.path().join("results.csv");
        db.run(&["import", &email_fixture(), "--type", "email", "--results", results.to_str().unwrap()]);

        let text = std::fs::read_to_string(&results).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["line", "user_email", "account_address", "outcome", "message"]
        );
        let rows: Vec<(String, String)> = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                (r[0].to_owned(), r[3].to_owned())
            })
            .collect();
        assert_eq!(
            rows,
            [("1", "added"), ("2", "added"), ("3", "discarded"), ("4", "rejected"), ("5", "duplicate")]
                .map(|(l, o)| (l.to_owned(), o.to_owned()))
        );
        assert!(!db.dir.path().join("results.csv.partial").exists());
    }
}

store_test! {
    async fn standard_input_imports_with_forced_options(db: TestDb) {
        with_users(&db);
        let mut child = Command::new(crate::support::binary())
            .current_dir(db.dir.path())
            .env("MDM_MAIL_DATABASE_URL", &db.url)
            .env("MDM_MAIL_SECRET_KEY", crate::import::KEY)
            .args(["import", "-", "--type", "exchange", "--delimiter", "semicolon", "--header", "no", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"alice@example.com;alice@corp.example.com;alice;CORP;pw\n")
            .unwrap();
        let output = child.wait_with_output().unwrap();

        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!((summary["added"].as_u64(), summary["delimiter"].as_str()), (Some(1), Some(";")));
    }
}

store_test! {
    async fn usage_errors_exit_2(db: TestDb) {
        let missing_type = db.run(&["import", &email_fixture()]);
        assert_eq!(missing_type.status.code(), Some(2));
        let bad_delimiter = db.run(&["import", &email_fixture(), "--type", "email", "--delimiter", "colon"]);
        assert_eq!(bad_delimiter.status.code(), Some(2));
        assert!(stderr(&bad_delimiter).contains("expected auto, comma, semicolon, tab or pipe"));
    }
}

store_test! {
    async fn an_unreadable_file_exits_1_and_says_where(db: TestDb) {
        with_users(&db);
        let file = db.dir.path().join("bad.csv");
        std::fs::write(&file, b"alice@example.com,Al\xE9,a@mail.example.com,a,,a,\n").unwrap();
        let output = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--encoding", "utf-8"]);

        assert_eq!(output.status.code(), Some(1));
        assert!(stderr(&output).contains("bad.csv: nothing was imported: line 1: the bytes at offset 20 are not valid utf-8"), "{}", stderr(&output));
    }
}

store_test! {
    async fn passwords_never_reach_any_output_log_or_the_database_file(db: TestDb) {
        with_users(&db);
        let secrets = ["Imap-Secret-9f3k", "Smtp-Secret-2b7q", "Eas-Secret-5z1m"];
        let email = db.dir.path().join("email.csv");
        std::fs::write(
            &email,
            format!(
                "alice@example.com,Alice,alice@mail.example.com,alice,{},alice,{}\n\
                 bob@example.com,Bob,not-an-address,bob,{},bob,\n",
                secrets[0], secrets[1], secrets[0]
            ),
        )
        .unwrap();
        let exchange = db.dir.path().join("exchange.csv");
        std::fs::write(&exchange, format!("nobody@example.com,n@corp.example.com,n,,{}\n", secrets[2])).unwrap();
        let results = db.dir.path().join("results.csv");
        // Split on the wrong delimiter, a line's first cell is the whole line.
        let semicolons = db.dir.path().join("semicolons.csv");
        std::fs::write(
            &semicolons,
            format!(
                "alice@example.com;Alice;alice@mail.example.com;alice;{};alice;{}\n\
                 bob@example.com;Bob;bob@mail.example.com;bob;{};bob;\n",
                secrets[0], secrets[1], secrets[0]
            ),
        )
        .unwrap();
        let misplit = db.dir.path().join("misplit-results.csv");

        let mut outputs = Vec::new();
        for args in [
            vec!["import", email.to_str().unwrap(), "--type", "email", "--results", results.to_str().unwrap()],
            vec!["import", email.to_str().unwrap(), "--type", "email", "--json"],
            vec!["import", email.to_str().unwrap(), "--type", "email", "--dry-run", "--json"],
            vec!["import", exchange.to_str().unwrap(), "--type", "exchange", "--json"],
            vec!["import", semicolons.to_str().unwrap(), "--type", "email", "--delimiter", "comma",
                 "--json", "--results", misplit.to_str().unwrap()],
            vec!["users", "list", "--json"],
        ] {
            let output = crate::support::mdm_mail_in(
                db.dir.path(),
                &[
                    ("MDM_MAIL_DATABASE_URL", db.url.as_str()),
                    ("MDM_MAIL_SECRET_KEY", crate::import::KEY),
                    ("MDM_MAIL_LOG", "trace"),
                ],
                &args,
            );
            assert!(
                matches!(output.status.code(), Some(0 | 3)),
                "{args:?}: {}",
                stderr(&output)
            );
            outputs.push(stdout(&output));
            outputs.push(stderr(&output));
        }
        outputs.push(std::fs::read_to_string(&results).unwrap());
        let misplit = std::fs::read_to_string(&misplit).unwrap();
        assert!(misplit.contains("expected 7 columns, found 1"), "{misplit}");
        outputs.push(misplit);
        assert!(outputs.iter().any(|o| o.contains("sqlx::query")), "every statement was logged");
        for secret in secrets {
            for output in &outputs {
                assert!(!output.contains(secret), "{secret} leaked into:\n{output}");
            }
        }
        if let Some(path) = mdm_mail::store::sqlite_path(&db.url) {
            let mut bytes = std::fs::read(&path).unwrap();
            let wal = path.with_extension("db-wal");
            bytes.extend(std::fs::read(wal).unwrap_or_default());
            for secret in secrets {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} is stored in clear"
                );
            }
        }
    }
}

fn lines(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            let user = ["alice", "bob", "chloe"][i % 3];
            format!(
                "{user}@example.com,Name {i},box{i}@mail.example.com,login{i},pw{i},login{i},\n"
            )
        })
        .collect()
}

store_test! {
    async fn an_import_killed_half_way_leaves_no_trace_and_can_simply_run_again(db: TestDb) {
        with_users(&db);
        // The file arrives on standard input and the end never comes, so the import is
        // certainly mid-way, thousands of lines written inside its transaction, when killed.
        let mut child = Command::new(crate::support::binary())
            .current_dir(db.dir.path())
            .env("MDM_MAIL_DATABASE_URL", &db.url)
            .env("MDM_MAIL_SECRET_KEY", crate::import::KEY)
            .args(["import", "-", "--type", "email"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(lines(0..20_000).as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0, "nothing shows before the commit");
        Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap();
        assert!(!child.wait().unwrap().success());
        drop(stdin);

        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
        let file = db.dir.path().join("all.csv");
        std::fs::write(&file, lines(0..20_000)).unwrap();
        let again = db.run(&["import", file.to_str().unwrap(), "--type", "email", "--json"]);
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 20_000);
    }
}
