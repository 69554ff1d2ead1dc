//! `mdm-mail serve`: the real binary on a real port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::support::{TestDb, binary, stdout, store_test};

/// A running `mdm-mail serve` and the address it listens on.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    fn start(db: &TestDb, extra: &[&str]) -> Server {
        Server::start_with(db, &[("MDM_MAIL_SECRET_KEY", crate::import::KEY)], extra)
    }

    /// Starts `serve` on `db` with `env` and nothing else of `MDM_MAIL_*` set.
    pub fn start_with(db: &TestDb, env: &[(&str, &str)], extra: &[&str]) -> Server {
        let mut command = Command::new(binary());
        for (key, _) in std::env::vars() {
            if key.starts_with("MDM_MAIL_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .current_dir(db.dir.path())
            .env("MDM_MAIL_DATABASE_URL", &db.url)
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mdm-mail serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.strip_prefix("mdm-mail listening on ")
                    .map(str::to_owned)
            })
            .expect("the server announces its address");
        Server { child, base }
    }

    /// Stops it with SIGTERM and waits.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

store_test! {
    async fn healthz_reports_the_store_and_sigterm_stops_cleanly(db: TestDb) {
        let server = Server::start(&db, &["--demo"]);

        let response = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
        assert_eq!(response.status(), 200);
        let health: serde_json::Value = response.json().await.unwrap();
        assert_eq!(health["status"], "ok");
        assert_eq!(health["store"]["schema_version"], 8);
        let expected_backend = if db.url.starts_with("postgres") { "postgres" } else { "sqlite" };
        assert_eq!(health["store"]["backend"], expected_backend);

        assert!(server.terminate().success(), "a clean shutdown exits 0");
    }
}

store_test! {
    async fn demo_loads_sample_users_and_devices_into_an_empty_store_only(db: TestDb) {
        Server::start(&db, &["--demo"]).terminate();
        let users = stdout(&db.run(&["users", "list", "--json"]));
        let users: serde_json::Value = serde_json::from_str(&users).unwrap();
        assert_eq!(users.as_array().unwrap().len(), 6);
        let devices: serde_json::Value =
            serde_json::from_slice(&db.run(&["devices", "list", "--json"]).stdout).unwrap();
        let platforms: std::collections::BTreeSet<&str> =
            devices.as_array().unwrap().iter().map(|d| d["platform"].as_str().unwrap()).collect();
        assert_eq!(platforms.len(), 5, "every platform is represented: {platforms:?}");
        let accounts: u64 = users.as_array().unwrap().iter().map(|u| u["accounts"].as_u64().unwrap()).sum();
        assert_eq!(accounts, 6, "Email and Exchange accounts, some with passwords");

        // A second start leaves the store as it is.
        Server::start(&db, &["--demo"]).terminate();
        let again: serde_json::Value =
            serde_json::from_slice(&db.run(&["users", "list", "--json"]).stdout).unwrap();
        assert_eq!(again.as_array().unwrap().len(), 6);
    }
}
