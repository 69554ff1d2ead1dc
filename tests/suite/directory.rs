//! Loading the MDM's users and devices (`users import`, `devices import`) into the store.

use std::fs::File;

use mdm_mail::import::directory::{self, LineError, LoadError};

use crate::support::{TestDb, fixture, store_test};

async fn load_users_file(db: &TestDb, name: &str) -> directory::LoadReport {
    let store = db.open().await;
    directory::load_users(&store, File::open(fixture(name)).unwrap(), "test", name)
        .await
        .unwrap()
}

store_test! {
    async fn loading_the_same_users_file_twice_changes_nothing(db: TestDb) {
        let first = load_users_file(&db, "users.csv").await;
        assert_eq!((first.rows, first.added, first.updated), (3, 3, 0));
        let stamp = db.scalar_i64("SELECT MAX(updated_at) FROM users").await;

        let second = load_users_file(&db, "users.csv").await;
        assert_eq!((second.added, second.updated, second.unchanged), (0, 0, 3));
        assert_eq!(db.scalar_i64("SELECT MAX(updated_at) FROM users").await, stamp);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 3);
    }
}

store_test! {
    async fn user_emails_are_one_user_whatever_their_case(db: TestDb) {
        let store = db.open().await;
        let load = |text: &'static str| directory::load_users(&store, text.as_bytes(), "test", "inline");
        load("email,display_name\nAlice@Example.com,Alice\n").await.unwrap();
        let report = load("email\nalice@EXAMPLE.com\n").await.unwrap();

        assert_eq!((report.added, report.updated), (0, 1), "the address case changed");
        let users = store.list_users(None, 10).await.unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].email, "alice@EXAMPLE.com");
        assert_eq!(users[0].display_name, "Alice", "a missing name keeps the stored one");
    }
}

store_test! {
    async fn bad_user_rows_are_reported_by_line_and_the_rest_load(db: TestDb) {
        let report = load_users_file(&db, "users-with-errors.csv").await;

        assert_eq!(report.added, 2);
        assert_eq!(report.ignored_columns, vec!["Notes"]);
        assert_eq!(
            report.rejected,
            vec![
                LineError {
                    line: 3,
                    field: Some("email"),
                    message: "\"not-an-address\" is not an email address (no @)".into(),
                },
                LineError {
                    line: 5,
                    field: Some("email"),
                    message: "repeats line 2".into(),
                },
            ]
        );
    }
}

store_test! {
    async fn a_file_that_cannot_be_decoded_writes_nothing(db: TestDb) {
        // Enough valid rows that some are written before the bad bytes are reached, past the
        // part of the file encoding detection looks at.
        let mut bytes = b"email\n".to_vec();
        let mut n = 0;
        while bytes.len() < 300 * 1024 {
            bytes.extend(format!("user{n}@example.com\n").as_bytes());
            n += 1;
        }
        bytes.extend(b"caf\xE9@example.com\n");
        let store = db.open().await;

        let err = directory::load_users(&store, std::io::Cursor::new(bytes), "test", "bad")
            .await
            .unwrap_err();

        assert!(matches!(err, LoadError::Read(_)), "{err}");
        assert!(err.to_string().starts_with(&format!("line {}:", n + 2)), "{err}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM audit_log").await, 0);
    }
}

store_test! {
    async fn a_users_file_must_start_with_a_header(db: TestDb) {
        let store = db.open().await;
        let err = directory::load_users(&store, &b"alice@example.com,Alice\n"[..], "test", "x")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: expected a header row naming the columns (email, display_name)"
        );
    }
}

store_test! {
    async fn excel_unicode_text_loads(db: TestDb) {
        let text = "email\tdisplay_name\r\ndmitri@example.com\tDmitri Dvořák\r\n";
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let store = db.open().await;

        let report = directory::load_users(&store, std::io::Cursor::new(bytes), "test", "x")
            .await
            .unwrap();

        assert_eq!(report.added, 1);
        let users = store.list_users(None, 10).await.unwrap();
        assert_eq!(
            (users[0].email.as_str(), users[0].display_name.as_str()),
            ("dmitri@example.com", "Dmitri Dvořák")
        );
    }
}

store_test! {
    async fn devices_attach_to_users_and_update_by_device_id(db: TestDb) {
        load_users_file(&db, "users.csv").await;
        let store = db.open().await;
        let load = |text: &'static str| directory::load_devices(&store, text.as_bytes(), "test", "inline");
        let report = directory::load_devices(
            &store,
            File::open(fixture("devices.csv")).unwrap(),
            "test",
            "devices.csv",
        )
        .await
        .unwrap();
        assert_eq!((report.added, report.rejected.len()), (3, 0));

        // The iPhone moves to Bob; the Mac is unchanged.
        let report = load(
            "user_email,device_id,platform,enrollment_id,user_channel_id\n\
             BOB@example.com,IPHONE-A,ios,IPHONE-A,\n\
             alice@example.com,MAC-A,macos,MAC-A,MAC-A:501\n",
        )
        .await
        .unwrap();
        assert_eq!((report.updated, report.unchanged), (1, 1));

        let devices = store.list_devices(None, 10).await.unwrap();
        let iphone = devices.iter().find(|d| d.device_id == "IPHONE-A").unwrap();
        assert_eq!(iphone.user_email, "bob@example.com");
        let mac = devices.iter().find(|d| d.device_id == "MAC-A").unwrap();
        assert_eq!(mac.user_channel_id.as_deref(), Some("MAC-A:501"));
    }
}

store_test! {
    async fn device_rows_naming_unknown_users_or_platforms_are_rejected(db: TestDb) {
        load_users_file(&db, "users.csv").await;
        let store = db.open().await;
        let report = directory::load_devices(
            &store,
            &b"user_email,device_id,platform,enrollment_id\n\
               nobody@example.com,D1,ios,D1\n\
               alice@example.com,D2,blackberry,D2\n\
               alice@example.com,D3,android,\n\
               alice@example.com,D4,android,D4\n"[..],
            "test",
            "inline",
        )
        .await
        .unwrap();

        let rejected: Vec<(u64, Option<&str>)> =
            report.rejected.iter().map(|e| (e.line, e.field)).collect();
        assert_eq!(
            rejected,
            vec![(2, Some("user_email")), (3, Some("platform")), (4, Some("enrollment_id"))]
        );
        assert_eq!(report.added, 1);
    }
}
