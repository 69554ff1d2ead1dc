//! The export: the import format exactly, passwords never exported, formula cells
//! neutralised, and export → import changing nothing, in every encoding and delimiter, on
//! SQLite and PostgreSQL; pages of any size; the device mappings report against the real
//! renderers; the `export` command of the real binary.

mod roundtrip;

use std::sync::Arc;

use mdm_mail::csv::Delimiter;
use mdm_mail::export::{ExportOptions, Exporter, OutputEncoding};
use mdm_mail::import::{self, ImportOptions, ImportResult, Mode};
use mdm_mail::model::{AccountKind, Platform};
use mdm_mail::profile::{Definitions, Profiles, RenderOptions};
use mdm_mail::secrets::KeySource;
use mdm_mail::store::{AccountSnapshots, Store, UserRange};

use crate::import::KEY;
use crate::support::{TestDb, fixture, stderr, stdout, store_test};

/// Every delimiter and encoding the export offers.
pub const DELIMITERS: [Delimiter; 3] = [Delimiter::COMMA, Delimiter::SEMICOLON, Delimiter::TAB];
/// Every encoding the export offers.
pub const ENCODINGS: [OutputEncoding; 3] = [
    OutputEncoding::Utf8,
    OutputEncoding::Utf8Bom,
    OutputEncoding::Utf16,
];

/// Every password in the fixtures.
const PASSWORDS: [&str; 7] = [
    "Secret-Bob-In",
    "Secret-Bob-Out",
    "Secret-Alice-In",
    "Secret-Alice-Out2",
    "Sécret-Zoë",
    "Sécret-EAS-Zoë",
    "Secret-EAS-Alice",
];

fn export_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("export/{name}"))).unwrap()
}

/// Imports `bytes` as `kind`, committed, everything detected.
pub async fn import(store: &Store, bytes: Vec<u8>, kind: AccountKind) -> ImportResult {
    import::run(
        store,
        &KeySource::Env(KEY.to_owned()),
        std::io::Cursor::new(bytes),
        &ImportOptions::new(kind),
        Mode::Commit {
            actor: "test",
            source: "export.csv",
            expected: None,
        },
        None,
    )
    .await
    .unwrap()
}

/// The store of `tests/fixtures/export`: four users, six Email and three Exchange accounts
/// with passwords, formula-like values, quotes, delimiters and non-ASCII text.
async fn fixture_store(db: &TestDb) -> Store {
    let store = db.open().await;
    let users = export_fixture("users.csv");
    import::directory::load_users(&store, std::io::Cursor::new(users), "test", "users.csv")
        .await
        .unwrap();
    for (file, kind, rows) in [
        ("email.csv", AccountKind::Email, 6),
        ("exchange.csv", AccountKind::Exchange, 3),
    ] {
        let result = import(&store, export_fixture(file), kind).await;
        assert_eq!(result.counts.added, rows, "{file}: {:?}", result.lines);
    }
    store
}

/// The whole export, chunk by chunk, and how many chunks there were.
pub async fn export_all(
    store: &Store,
    kind: AccountKind,
    options: ExportOptions,
) -> (Vec<u8>, usize) {
    let mut exporter = Exporter::accounts(store, kind, options).await.unwrap();
    let mut bytes = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = exporter.next_chunk().await.unwrap() {
        bytes.extend(chunk);
        chunks += 1;
    }
    assert!(exporter.next_chunk().await.unwrap().is_none());
    (bytes, chunks)
}

/// Everything stored about every user's accounts, sealed passwords included.
pub async fn stored_state(store: &Store) -> String {
    let mut state = String::new();
    let mut after = None;
    loop {
        let page = store
            .users_with_accounts_page(after.as_deref(), 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return state;
        };
        after = Some(last.0.email_norm.clone());
        state.push_str(&format!("{page:?}\n"));
    }
}

/// The text of an export in any offered encoding.
pub fn text(bytes: &[u8], encoding: OutputEncoding) -> String {
    match encoding {
        OutputEncoding::Utf8 => String::from_utf8(bytes.to_vec()).unwrap(),
        OutputEncoding::Utf8Bom => {
            let rest = bytes.strip_prefix(b"\xEF\xBB\xBF").expect("a UTF-8 BOM");
            String::from_utf8(rest.to_vec()).unwrap()
        }
        OutputEncoding::Utf16 => {
            let rest = bytes.strip_prefix(b"\xFF\xFE").expect("a UTF-16LE BOM");
            let units: Vec<u16> = rest
                .chunks(2)
                .map(|p| u16::from_le_bytes([p[0], p[1]]))
                .collect();
            String::from_utf16(&units).unwrap()
        }
    }
}

store_test! {
    async fn accounts_export_in_the_import_format_sorted_by_user_then_address(db: TestDb) {
        let store = fixture_store(&db).await;
        for (kind, expected) in [
            (AccountKind::Email, "email-expected.csv"),
            (AccountKind::Exchange, "exchange-expected.csv"),
        ] {
            let (bytes, _) = export_all(&store, kind, ExportOptions::default()).await;
            assert_eq!(
                String::from_utf8(bytes).unwrap(),
                String::from_utf8(export_fixture(expected)).unwrap(),
                "{kind}"
            );
        }
    }
}

store_test! {
    async fn export_then_import_changes_nothing_in_every_delimiter_and_encoding(db: TestDb) {
        let store = fixture_store(&db).await;
        let before = stored_state(&store).await;
        for kind in [AccountKind::Email, AccountKind::Exchange] {
            for delimiter in DELIMITERS {
                for encoding in ENCODINGS {
                    let options = ExportOptions { delimiter, encoding, ..ExportOptions::default() };
                    let (bytes, _) = export_all(&store, kind, options).await;
                    let result = import(&store, bytes, kind).await;
                    let rows = if kind == AccountKind::Email { 6 } else { 3 };
                    assert_eq!(
                        (result.counts.rows, result.counts.unchanged),
                        (rows, rows),
                        "{kind} {delimiter:?} {encoding:?}: {:?}",
                        result.lines
                    );
                    assert_eq!(result.delimiter, delimiter, "{kind} {encoding:?}");
                    assert!(result.header);
                    assert_eq!(stored_state(&store).await, before, "{kind} {delimiter:?} {encoding:?}");
                }
            }
        }
    }
}

store_test! {
    async fn no_stored_password_appears_in_any_export(db: TestDb) {
        let store = fixture_store(&db).await;
        for kind in [AccountKind::Email, AccountKind::Exchange] {
            for delimiter in DELIMITERS {
                for encoding in ENCODINGS {
                    let options = ExportOptions { delimiter, encoding, ..ExportOptions::default() };
                    let (bytes, _) = export_all(&store, kind, options).await;
                    let text = text(&bytes, encoding);
                    for password in PASSWORDS {
                        assert!(!text.contains(password), "{kind} {encoding:?}: {password}");
                    }
                    let (header, rows) = text.split_once("\r\n").unwrap();
                    assert!(header.ends_with("_password"), "{header}");
                    for row in rows.lines() {
                        assert!(
                            row.ends_with(char::from(delimiter.0)),
                            "the last cell, a password, is blank: {row:?}"
                        );
                    }
                }
            }
        }
        let output = db.run(&["export", "--type", "mappings", "--profiles", &fixture("profiles").display().to_string()]);
        assert!(output.status.success(), "{}", stderr(&output));
        for password in PASSWORDS {
            assert!(!stdout(&output).contains(password), "mappings: {password}");
        }
    }
}

store_test! {
    async fn every_reader_of_an_export_sees_the_store_as_it_was_when_the_export_began(db: TestDb) {
        let store = db.open().await;
        let users = "email\nalice@example.com\nbob@example.com\n";
        import::directory::load_users(&store, std::io::Cursor::new(users), "test", "users.csv")
            .await
            .unwrap();
        let alice = "alice@example.com,Alice,alice@mail.example.com,alice,pw,alice,\n";
        import(&store, alice.as_bytes().to_vec(), AccountKind::Email).await;

        let snapshots = store.begin_account_export(2).await.unwrap();
        let bob = "bob@example.com,Bob,bob@mail.example.com,bob,pw,bob,\n";
        import(&store, bob.as_bytes().to_vec(), AccountKind::Email).await;

        let mut pages = Vec::new();
        match snapshots {
            AccountSnapshots::Ranges(readers) => {
                assert_eq!(readers.len(), 2);
                for mut reader in readers {
                    let everyone = UserRange { after: String::new(), through: None };
                    pages.push(reader.export_range(AccountKind::Email, everyone).await.unwrap());
                    reader.rollback().await.unwrap();
                }
            }
            AccountSnapshots::Cursor(mut reader) => {
                pages.push(reader.export_cursor_page(AccountKind::Email, true, 10).await.unwrap());
                reader.rollback().await.unwrap();
            }
        }
        for page in pages {
            let rows = page.rows().unwrap();
            let users: Vec<&str> = rows.iter().map(|r| r.user_email.as_str()).collect();
            assert_eq!(users, ["alice@example.com"], "Bob's account came after the export began");
        }
    }
}

store_test! {
    async fn exports_of_many_pages_hold_every_account_once_in_order(db: TestDb) {
        // 11,003 users with one to three accounts each: pages of 5,000 users (SQLite, read
        // by readers side by side) or of 5,000 accounts (PostgreSQL's cursor).
        let store = db.open().await;
        let users = 11_003;
        let mut users_csv = String::from("email,display_name\n");
        let mut accounts_csv = String::new();
        let mut expected = Vec::new();
        for u in 0..users {
            let email = format!("User{u:05}@Example.com");
            users_csv.push_str(&format!("{email},User {u}\n"));
            for a in [2, 0, 1].into_iter().filter(|a| *a <= u % 3) {
                let address = format!("box{a}.{u}@mail.example.com");
                accounts_csv.push_str(&format!("{email},User {u},{address},u{u},pw{u}-{a},u{u},\n"));
                expected.push(format!("{email},User {u},{address},u{u},,u{u},"));
            }
        }
        expected.sort_by_key(|row| row.to_lowercase());
        import::directory::load_users(&store, std::io::Cursor::new(users_csv), "test", "users.csv")
            .await
            .unwrap();
        let result = import(&store, accounts_csv.into_bytes(), AccountKind::Email).await;
        assert_eq!(result.counts.added, expected.len() as u64);

        let (bytes, chunks) = export_all(&store, AccountKind::Email, ExportOptions::default()).await;
        assert!(chunks >= 3, "{chunks} pages");
        let text = String::from_utf8(bytes).unwrap();
        let rows: Vec<&str> = text.split("\r\n").skip(1).filter(|r| !r.is_empty()).collect();
        assert_eq!(rows, expected);
    }
}

store_test! {
    async fn an_empty_store_exports_the_header_alone(db: TestDb) {
        let store = db.open().await;
        for (kind, header) in [
            (AccountKind::Email, "user_email,display_name,email_address,incoming_username,incoming_password,outgoing_username,outgoing_password\r\n"),
            (AccountKind::Exchange, "user_email,exchange_email,exchange_username,exchange_domain,exchange_password\r\n"),
        ] {
            let (bytes, chunks) = export_all(&store, kind, ExportOptions::default()).await;
            assert_eq!((String::from_utf8(bytes).unwrap().as_str(), chunks), (header, 1));
        }
    }
}

fn profiles() -> Profiles {
    Profiles {
        definitions: Definitions::load(&fixture("profiles")).unwrap(),
        signer: None,
        secrets: KeySource::Env(KEY.to_owned()),
    }
}

store_test! {
    async fn mappings_name_the_identifiers_each_device_gets_from_the_renderer(db: TestDb) {
        let store = fixture_store(&db).await;
        let devices = export_fixture("devices.csv");
        import::directory::load_devices(&store, std::io::Cursor::new(devices), "test", "devices.csv")
            .await
            .unwrap();
        let profiles = Arc::new(profiles());
        let mut exporter = Exporter::mappings(&store, Arc::clone(&profiles), ExportOptions::default())
            .await
            .unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = exporter.next_chunk().await.unwrap() {
            bytes.extend(chunk);
        }
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["user_email", "device_id", "platform", "enrollment_id", "profile_identifier", "account_type", "account_address", "account_uuid", "note"]
        );
        let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let rows: Vec<Vec<&str>> = records.iter().map(|r| r.iter().collect()).collect();

        // Every rendered account of every device, as the renderer itself identifies it.
        let mut expected = Vec::new();
        for (user, device, platform) in [
            ("alice@example.com", "ANDROID-A", Platform::Android),
            ("alice@example.com", "IPHONE-A", Platform::Ios),
            ("alice@example.com", "MAC-A", Platform::Macos),
            ("Bob@Example.com", "WIN-B", Platform::Windows),
            ("+plus@example.com", "IPAD-P", Platform::Ipados),
        ] {
            let rendered = profiles
                .for_user(&store, user, platform, &RenderOptions::default())
                .await
                .unwrap();
            for account in &rendered.accounts {
                expected.push((
                    device.to_owned(),
                    rendered.identifier.clone(),
                    account.address.clone(),
                    account.uuid.to_string(),
                ));
            }
        }
        let mut listed: Vec<(String, String, String, String)> = rows
            .iter()
            .filter(|r| !r[7].is_empty())
            .map(|r| {
                (
                    r[1].to_owned(),
                    r[4].to_owned(),
                    r[6].trim_start_matches('\'').to_owned(),
                    r[7].to_owned(),
                )
            })
            .collect();
        expected.sort();
        listed.sort();
        assert_eq!(listed, expected);

        // Android takes one Exchange account and no Email account: the rest are listed
        // with the reason; a user without devices has each account listed as such.
        let notes: Vec<(&str, &str, &str)> = rows
            .iter()
            .filter(|r| !r[8].is_empty())
            .map(|r| (r[0], r[1], r[6]))
            .collect();
        assert!(notes.contains(&("alice@example.com", "ANDROID-A", "alice@example.com")));
        assert!(notes.contains(&("Zoë.Ångström@example.com", "", "zoë@exämple.fi")));
        assert!(rows.iter().any(|r| r[0] == "Zoë.Ångström@example.com" && r[8] == "no enrolled device"));
        // Users come in address order, devices in device-id order within a user.
        let users: Vec<&str> = rows.iter().map(|r| r[0]).collect();
        let mut in_order = users.clone();
        in_order.sort_by_key(|u| u.trim_start_matches('\'').to_lowercase());
        assert_eq!(users, in_order);
    }
}

store_test! {
    async fn the_export_command_writes_the_file_or_standard_output(db: TestDb) {
        let _store = fixture_store(&db).await;
        let out = db.dir.path().join("exchange.csv");
        let output = db.run(&["export", "--type", "exchange", "--out", &out.display().to_string()]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(std::fs::read(&out).unwrap(), export_fixture("exchange-expected.csv"));
        assert!(stderr(&output).contains("3 exchange row(s) exported"), "{}", stderr(&output));

        let output = db.run(&["export", "--type", "email", "--delimiter", "semicolon", "--encoding", "utf-16"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let text = text(&output.stdout, OutputEncoding::Utf16);
        assert!(text.starts_with("user_email;display_name;email_address;"), "{text}");
        assert!(text.contains("Zoë.Ångström@example.com;Zoë Ångström 中文;zoë@exämple.fi;zoë;;zoë;\r\n"), "{text}");

        // The file the command wrote imports back with every line unchanged.
        let output = db.run(&["import", &out.display().to_string(), "--type", "exchange", "--json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stdout(&output).contains("\"rows\":3,\"added\":0,\"updated\":0,\"unchanged\":3"), "{}", stdout(&output));
    }
}

#[tokio::test]
async fn bad_export_options_are_usage_errors_naming_the_option() {
    let db = TestDb::sqlite().await;
    for (args, needle) in [
        (
            vec!["export", "--type", "email", "--delimiter", "pipe"],
            "unknown export delimiter \"pipe\"",
        ),
        (
            vec!["export", "--type", "email", "--encoding", "latin1"],
            "unknown export encoding \"latin1\"",
        ),
        (
            vec!["export", "--type", "contacts"],
            "unknown export type \"contacts\"",
        ),
    ] {
        let output = db.run(&args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains(needle), "{}", stderr(&output));
    }
}

store_test! {
    async fn a_failed_export_leaves_the_target_file_as_it_was(db: TestDb) {
        let _store = fixture_store(&db).await;
        let out = db.dir.path().join("email.csv");
        std::fs::write(&out, "the previous export\n").unwrap();
        // The export starts (the file is being written) and then the store fails.
        db.execute("DROP TABLE email_accounts", "DROP TABLE email_accounts").await;
        let output = db.run(&["export", "--type", "email", "--out", &out.display().to_string()]);
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(stderr(&output).contains("nothing was exported"), "{}", stderr(&output));
        assert!(stderr(&output).contains("email_accounts"), "{}", stderr(&output));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "the previous export\n");
        let leftovers: Vec<_> = std::fs::read_dir(db.dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[tokio::test]
async fn an_exporter_runs_in_a_task_of_its_own_as_a_streamed_response_needs() {
    let db = TestDb::sqlite().await;
    let store = fixture_store(&db).await;
    let profiles = Arc::new(profiles());
    let task = tokio::spawn(async move {
        let mut bytes = Vec::new();
        let mut exporter = Exporter::mappings(&store, profiles, ExportOptions::default())
            .await
            .unwrap();
        while let Some(chunk) = exporter.next_chunk().await.unwrap() {
            bytes.extend(chunk);
        }
        let mut exporter =
            Exporter::accounts(&store, AccountKind::Exchange, ExportOptions::default())
                .await
                .unwrap();
        while let Some(chunk) = exporter.next_chunk().await.unwrap() {
            bytes.extend(chunk);
        }
        bytes
    });
    let text = String::from_utf8(task.await.unwrap()).unwrap();
    assert!(text.starts_with("user_email,device_id,"), "{text}");
    assert!(
        text.ends_with("Zoë.Ångström@example.com,zoë@corp.example.com,CORP\\zoë,CORP,\r\n"),
        "{text}"
    );
}
