//! The `mdm-mail` binary's users and devices commands, run as an admin runs them.

use crate::support::{fixture, mdm_mail_in, stderr, stdout, store_test};

store_test! {
    async fn users_and_devices_import_then_list(db: TestDb) {
        let users = fixture("users.csv");
        let output = db.run(&["users", "import", users.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert!(stdout(&output).ends_with("3 rows: 3 added, 0 updated, 0 unchanged, 0 rejected\n"));

        let devices = fixture("devices.csv");
        let output = db.run(&["devices", "import", devices.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

        let listing = stdout(&db.run(&["users", "list"]));
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("EMAIL"));
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["alice@example.com", "Alice", "Adams", "2", "0"]
        );

        let json: serde_json::Value =
            serde_json::from_slice(&db.run(&["devices", "list", "--json"]).stdout).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 3);
        assert_eq!(json[1]["device_id"], "MAC-A");
        assert_eq!(json[1]["user_channel_id"], "MAC-A:501");
    }
}

store_test! {
    async fn users_and_devices_remove_one_and_say_when_there_is_none(db: TestDb) {
        for (what, file) in [("users", "users.csv"), ("devices", "devices.csv")] {
            assert!(db.run(&[what, "import", fixture(file).to_str().unwrap()]).status.success());
        }
        let device = db.run(&["devices", "remove", "MAC-A"]);
        assert!(device.status.success(), "{}", stderr(&device));
        assert_eq!(stdout(&device), "removed device MAC-A\n");
        let user = db.run(&["users", "remove", "BOB@example.com"]);
        assert!(user.status.success(), "{}", stderr(&user));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 2);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM devices").await, 1, "Alice's iPhone is left");
        assert_eq!(
            db.scalar_i64("SELECT COUNT(*) FROM audit_log WHERE action IN ('user.remove', 'device.remove')").await,
            2
        );

        let missing = db.run(&["devices", "remove", "MAC-A"]);
        assert_eq!(missing.status.code(), Some(1));
        assert_eq!(stderr(&missing), "mdm-mail: there is no device \"MAC-A\"; nothing removed\n");
        let missing = db.run(&["users", "remove", "bob@example.com"]);
        assert_eq!(missing.status.code(), Some(1));
        assert!(stderr(&missing).contains("there is no user bob@example.com"), "{}", stderr(&missing));
    }
}

store_test! {
    async fn rejected_rows_are_printed_with_file_and_line_and_exit_3(db: TestDb) {
        let file = fixture("users-with-errors.csv");
        let output = db.run(&["users", "import", file.to_str().unwrap()]);

        assert_eq!(output.status.code(), Some(3));
        let errors = stderr(&output);
        assert!(
            errors.contains("users-with-errors.csv:3: email: \"not-an-address\" is not an email address (no @)"),
            "{errors}"
        );
        assert!(errors.contains("ignoring columns \"Notes\""), "{errors}");
    }
}

store_test! {
    async fn json_reports_are_machine_readable(db: TestDb) {
        let file = fixture("users-with-errors.csv");
        let output = db.run(&["users", "import", file.to_str().unwrap(), "--json"]);

        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["added"], 2);
        assert_eq!(report["rejected"][0]["line"], 3);
        assert_eq!(report["delimiter"], ";");
        assert_eq!(report["encoding"], "utf-8");
    }
}

#[test]
fn the_default_store_is_mdm_mail_db_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let users = fixture("users.csv");

    let output = mdm_mail_in(
        dir.path(),
        &[],
        &["users", "import", users.to_str().unwrap()],
    );

    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(dir.path().join("mdm-mail.db").is_file());
    let listing = stdout(&mdm_mail_in(dir.path(), &[], &["users", "list"]));
    assert!(listing.contains("chloe@example.com"), "{listing}");
}

#[test]
fn a_missing_file_fails_with_status_1_and_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let output = mdm_mail_in(dir.path(), &[], &["users", "import", "nope.csv"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot open nope.csv"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_usage_error_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = mdm_mail_in(dir.path(), &[], &["users", "frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
}
