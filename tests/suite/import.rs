//! The account import: every outcome, every encoding and delimiter, headers, line numbers,
//! blank passwords, strict and dry runs, all through the library on SQLite and PostgreSQL.

use mdm_mail::csv::{Delimiter, DelimiterChoice, Encoding, EncodingChoice};
use mdm_mail::import::{self, ImportError, ImportOptions, ImportResult, LineReport, Mode};
use mdm_mail::model::{AccountDetails, AccountKind, Outcome};
use mdm_mail::secrets::KeySource;
use mdm_mail::store::Store;

use crate::support::{TestDb, fixture, store_test};

/// The key every test seals passwords with.
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn keys() -> KeySource {
    KeySource::Env(KEY.to_owned())
}

/// A store with the users of `tests/fixtures/users.csv` (alice, bob, chloe).
pub async fn store_with_users(db: &TestDb) -> Store {
    let store = db.open().await;
    let users = std::fs::File::open(fixture("users.csv")).unwrap();
    mdm_mail::import::directory::load_users(&store, users, "test", "users.csv")
        .await
        .unwrap();
    store
}

pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(&format!("import/{name}"))).unwrap()
}

async fn run(
    store: &Store,
    bytes: Vec<u8>,
    options: &ImportOptions,
    mode: Mode<'_>,
) -> Result<ImportResult, ImportError> {
    import::run(
        store,
        &keys(),
        std::io::Cursor::new(bytes),
        options,
        mode,
        None,
    )
    .await
}

const COMMIT: Mode<'static> = Mode::Commit {
    actor: "test",
    source: "test.csv",
    expected: None,
};

async fn commit(store: &Store, bytes: Vec<u8>, kind: AccountKind) -> ImportResult {
    run(store, bytes, &ImportOptions::new(kind), COMMIT)
        .await
        .unwrap()
}

fn outcomes(result: &ImportResult) -> Vec<(u64, Outcome)> {
    result.lines.iter().map(|l| (l.line, l.outcome)).collect()
}

store_test! {
    async fn every_line_gets_one_outcome_with_its_line_number(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = commit(&store, read_fixture("email.csv"), AccountKind::Email).await;

        assert_eq!(
            (result.counts.rows, result.counts.added, result.counts.discarded),
            (5, 2, 1)
        );
        assert_eq!((result.counts.rejected, result.counts.duplicates), (1, 1));
        assert_eq!(
            result.lines,
            vec![
                LineReport {
                    line: 3,
                    outcome: Outcome::Discarded,
                    field: None,
                    message: "no user with email nobody@example.com".into(),
                },
                LineReport {
                    line: 4,
                    outcome: Outcome::Rejected,
                    field: Some("email_address"),
                    message: "\"bob.example.com\" is not an email address (no @)".into(),
                },
                LineReport {
                    line: 5,
                    outcome: Outcome::Duplicate,
                    field: None,
                    message: "same user, type and address as line 2".into(),
                },
            ]
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 2);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM users").await, 3, "never creates users");
    }
}

store_test! {
    async fn a_second_run_of_the_same_file_changes_nothing(db: TestDb) {
        let store = store_with_users(&db).await;
        commit(&store, read_fixture("email.csv"), AccountKind::Email).await;
        let stamp = db.scalar_i64("SELECT MAX(updated_at) FROM email_accounts").await;

        let again = commit(&store, read_fixture("email.csv"), AccountKind::Email).await;

        assert_eq!((again.counts.added, again.counts.updated, again.counts.unchanged), (0, 0, 2));
        assert_eq!(db.scalar_i64("SELECT MAX(updated_at) FROM email_accounts").await, stamp);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 2, "both runs recorded");
    }
}

store_test! {
    async fn changed_fields_update_the_account_and_are_named(db: TestDb) {
        let store = store_with_users(&db).await;
        commit(&store, read_fixture("email.csv"), AccountKind::Email).await;
        let changed = "alice@example.com,Alice A.,ALICE@mail.example.com,alice,imap-secret-2,alice,\n";
        let mut sink = Recorder::default();
        let result = import::run(
            &store,
            &keys(),
            std::io::Cursor::new(changed.as_bytes().to_vec()),
            &ImportOptions::new(AccountKind::Email),
            COMMIT,
            Some(&mut sink),
        )
        .await
        .unwrap();

        assert_eq!(result.counts.updated, 1);
        assert_eq!(
            sink.0,
            vec![(
                1,
                Outcome::Updated,
                "changed email_address, display_name, incoming_password".to_owned()
            )]
        );
    }
}

store_test! {
    async fn a_blank_password_keeps_the_stored_one(db: TestDb) {
        let store = store_with_users(&db).await;
        commit(&store, read_fixture("email.csv"), AccountKind::Email).await;
        let blank = "alice@example.com,Alice Adams,alice@mail.example.com,alice,,alice,\n";

        let result = commit(&store, blank.as_bytes().to_vec(), AccountKind::Email).await;

        assert_eq!(result.counts.unchanged, 1);
        let keys = keys().read().unwrap().unwrap();
        let (_, accounts) = mdm_mail::accounts::of_user(&store, &keys, "alice@example.com")
            .await
            .unwrap();
        let AccountDetails::Email { incoming_password, outgoing_password, .. } = &accounts[0].details
        else {
            panic!("an Email account")
        };
        assert_eq!(incoming_password.as_ref().unwrap().expose(), "imap-secret-1");
        assert_eq!(outgoing_password.as_ref().unwrap().expose(), "smtp-secret-1");
    }
}

store_test! {
    async fn exchange_rows_import_with_domains_and_user_names_checked(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = commit(&store, read_fixture("exchange.csv"), AccountKind::Exchange).await;

        assert!(result.header);
        assert_eq!(result.counts.added, 2);
        assert_eq!(
            outcomes(&result),
            vec![(4, Outcome::Rejected)],
            "{:?}",
            result.lines
        );
        assert_eq!(result.lines[0].field, Some("exchange_username"));
        let keys = keys().read().unwrap().unwrap();
        let (_, accounts) = mdm_mail::accounts::of_user(&store, &keys, "chloe@example.com")
            .await
            .unwrap();
        assert_eq!(
            accounts[0].details,
            AccountDetails::Exchange {
                username: "CORP\\chloe".into(),
                domain: None,
                password: None,
            }
        );
    }
}

store_test! {
    async fn header_columns_match_by_label_in_any_order_and_extras_are_reported(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = commit(&store, read_fixture("email-labels.csv"), AccountKind::Email).await;

        assert!(result.header);
        assert_eq!(result.delimiter, Delimiter::SEMICOLON);
        assert_eq!(result.counts.added, 2, "{:?}", result.lines);
        let ignored: Vec<_> = result.columns.iter().filter(|c| c.column.is_none()).collect();
        assert_eq!(ignored.len(), 1);
        assert_eq!(ignored[0].header.as_deref(), Some("Notes"));
        let keys = keys().read().unwrap().unwrap();
        let (_, accounts) = mdm_mail::accounts::of_user(&store, &keys, "chloe@example.com")
            .await
            .unwrap();
        let AccountDetails::Email { display_name, .. } = &accounts[0].details else {
            panic!("an Email account")
        };
        assert_eq!(display_name, "Chen; Chloé");
    }
}

store_test! {
    async fn a_header_missing_a_required_column_is_refused_before_any_row(db: TestDb) {
        let store = store_with_users(&db).await;
        let err = run(
            &store,
            read_fixture("missing-column.csv"),
            &ImportOptions::new(AccountKind::Email),
            COMMIT,
        )
        .await
        .unwrap_err();

        assert_eq!(
            err.to_string(),
            "line 1: the header has no email_address, outgoing_username columns (expected \
             user_email, display_name, email_address, incoming_username, incoming_password, \
             outgoing_username, outgoing_password)"
        );
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
    }
}

store_test! {
    async fn a_quoted_line_break_moves_the_line_numbers_after_it(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = commit(&store, read_fixture("quoted-newline.csv"), AccountKind::Email).await;
        assert_eq!(outcomes(&result), vec![(1, Outcome::Rejected), (3, Outcome::Rejected)]);
        assert_eq!(result.lines[0].field, Some("display_name"), "no line breaks in names");
        assert_eq!(result.lines[1].field, Some("email_address"));
    }
}

/// The email fixture's rows, encoded as a spreadsheet would save them.
fn encoded(text: &str, encoding: &str) -> Vec<u8> {
    let utf16 = |little: bool| {
        let mut out = if little {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for unit in text.encode_utf16() {
            out.extend(if little {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        out
    };
    match encoding {
        "utf-8" => text.as_bytes().to_vec(),
        "utf-8-bom" => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
        "utf-16le" => utf16(true),
        "utf-16be" => utf16(false),
        "windows-1252" => encoding_rs::WINDOWS_1252.encode(text).0.into_owned(),
        other => panic!("{other}"),
    }
}

store_test! {
    async fn every_encoding_and_delimiter_imports_the_same_accounts(db: TestDb) {
        let store = store_with_users(&db).await;
        let rows = [
            ["alice@example.com", "Ålice Ädams", "alice@mail.example.com", "alice", "pässword", "alice", ""],
            ["chloe@example.com", "Chloé, \"Chen\"", "chloe@mail.example.com", "chloe", "", "chloe", ""],
        ];
        let cases = [
            ("utf-8", ',', Encoding::Utf8),
            ("utf-8-bom", ';', Encoding::Utf8),
            ("utf-16le", '\t', Encoding::Utf16Le),
            ("utf-16be", '|', Encoding::Utf16Be),
            ("windows-1252", ';', Encoding::Windows1252),
        ];
        let mut first: Option<Vec<_>> = None;
        for (encoding, delimiter, expected) in cases {
            let mut writer = csv::WriterBuilder::new()
                .delimiter(delimiter as u8)
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            for row in &rows {
                writer.write_record(row).unwrap();
            }
            let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let result = commit(&store, encoded(&text, encoding), AccountKind::Email).await;

            assert_eq!(result.encoding, expected, "{encoding}");
            assert_eq!(result.delimiter, Delimiter(delimiter as u8), "{encoding}");
            assert!(result.lines.is_empty(), "{encoding}: {:?}", result.lines);
            let keys = keys().read().unwrap().unwrap();
            let mut accounts = Vec::new();
            for user in ["alice@example.com", "chloe@example.com"] {
                accounts.extend(mdm_mail::accounts::of_user(&store, &keys, user).await.unwrap().1);
            }
            match &first {
                None => {
                    assert_eq!(result.counts.added, 2);
                    first = Some(accounts);
                }
                Some(first) => {
                    assert_eq!(result.counts.unchanged, 2, "{encoding} reads the same values");
                    assert_eq!(first, &accounts);
                }
            }
        }
    }
}

store_test! {
    async fn a_forced_delimiter_or_a_sep_line_overrides_detection(db: TestDb) {
        let store = store_with_users(&db).await;
        let text = "sep=|\nalice@example.com|Adams, Alice; A.|alice@mail.example.com|alice||alice|\n";
        let result = commit(&store, text.as_bytes().to_vec(), AccountKind::Email).await;
        assert_eq!(result.delimiter, Delimiter::PIPE);
        assert_eq!(result.counts.added, 1, "{:?}", result.lines);

        let options = ImportOptions {
            delimiter: DelimiterChoice::Fixed(Delimiter::SEMICOLON),
            ..ImportOptions::new(AccountKind::Email)
        };
        let text = "bob@example.com;Bob;bob@mail.example.com;bob;;bob;\n";
        let result = run(&store, text.as_bytes().to_vec(), &options, Mode::Preview).await.unwrap();
        assert_eq!((result.delimiter, result.counts.added), (Delimiter::SEMICOLON, 1));
    }
}

store_test! {
    async fn a_forced_encoding_that_does_not_fit_says_where(db: TestDb) {
        let store = store_with_users(&db).await;
        let options = ImportOptions {
            encoding: EncodingChoice::Utf8,
            ..ImportOptions::new(AccountKind::Email)
        };
        let bytes = encoded(
            "alice@example.com,Alice,alice@mail.example.com,alice,,alice,\nbob@example.com,Bób,b@mail.example.com,bob,,bob,\n",
            "windows-1252",
        );
        let err = run(&store, bytes, &options, COMMIT).await.unwrap_err();
        assert!(err.to_string().starts_with("line 2: the bytes at offset"), "{err}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
    }
}

store_test! {
    async fn strict_imports_write_nothing_when_a_line_is_rejected(db: TestDb) {
        let store = store_with_users(&db).await;
        let options = ImportOptions {
            strict: true,
            ..ImportOptions::new(AccountKind::Email)
        };
        let err = run(&store, read_fixture("email.csv"), &options, COMMIT).await.unwrap_err();

        let result = err.result().expect("the lines are still reported");
        assert_eq!((result.counts.added, result.counts.rejected), (2, 1));
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM import_lines").await, 0);
    }
}

store_test! {
    async fn a_preview_decides_like_a_commit_and_writes_nothing(db: TestDb) {
        let store = store_with_users(&db).await;
        let options = ImportOptions::new(AccountKind::Email);
        let preview = run(&store, read_fixture("email.csv"), &options, Mode::Preview).await.unwrap();

        assert!(preview.dry_run);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);

        let committed = run(
            &store,
            read_fixture("email.csv"),
            &options,
            Mode::Commit { actor: "test", source: "email.csv", expected: Some(&preview.fingerprint) },
        )
        .await
        .unwrap();
        assert_eq!(committed.counts, preview.counts);
        assert_eq!(committed.lines, preview.lines);
    }
}

store_test! {
    async fn a_commit_refuses_when_the_store_changed_since_the_preview(db: TestDb) {
        let store = store_with_users(&db).await;
        let options = ImportOptions::new(AccountKind::Email);
        let preview = run(&store, read_fixture("email.csv"), &options, Mode::Preview).await.unwrap();
        commit(&store, read_fixture("email.csv"), AccountKind::Email).await;

        let err = run(
            &store,
            read_fixture("email.csv"),
            &options,
            Mode::Commit { actor: "test", source: "email.csv", expected: Some(&preview.fingerprint) },
        )
        .await
        .unwrap_err();

        assert!(matches!(err, ImportError::Changed(_)), "{err}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 1);
    }
}

store_test! {
    async fn the_file_digest_is_the_sha256_of_every_byte_read(db: TestDb) {
        use sha2::{Digest, Sha256};
        let store = store_with_users(&db).await;
        // Many times the reader's 64 KiB buffer, ending without a line break.
        let mut file = crate::hardening::nobody_lines(5_000).into_bytes();
        file.pop();
        let expected = mdm_mail::crypto::to_hex(&Sha256::digest(&file));
        let options = ImportOptions::new(AccountKind::Email);
        let result = run(&store, file, &options, Mode::Preview).await.unwrap();
        assert_eq!(result.counts.rows, 5_000);
        assert_eq!(result.file_sha256, expected);
    }
}

store_test! {
    async fn each_import_is_recorded_with_its_lines(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = commit(&store, read_fixture("email.csv"), AccountKind::Email).await;
        let id = result.id.unwrap();

        let record = store.import(id).await.unwrap().unwrap();
        assert_eq!((record.rows, record.added, record.rejected), (5, 2, 1));
        assert_eq!(record.file_sha256, result.file_sha256);
        assert_eq!(record.actor, "test");
        let not_applied = store.import_lines(id, 0, 100, None).await.unwrap();
        assert_eq!(not_applied.iter().map(|l| l.line).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(not_applied[1].field.as_deref(), Some("email_address"));
        let runs = store.import_results(id, 0, 100).await.unwrap();
        let mut csv = Vec::new();
        import::report::write_runs(&mut csv, true, runs.iter().map(|(_, run)| run.as_slice())).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(csv.lines().count(), 6, "a header and one row per line:\n{csv}");
        assert!(csv.starts_with("line,user_email,account_address,outcome,message\n1,alice@example.com,"));
        assert!(csv.contains("\n4,bob@example.com,bob.example.com,rejected,\"email_address: "));
    }
}

store_test! {
    async fn the_sample_shows_the_first_rows_with_passwords_masked(db: TestDb) {
        let store = store_with_users(&db).await;
        let result = run(
            &store,
            read_fixture("email.csv"),
            &ImportOptions::new(AccountKind::Email),
            Mode::Preview,
        )
        .await
        .unwrap();
        let first = &result.sample[0];
        assert_eq!(first.line, 1);
        assert_eq!(first.cells[4], import::MASK);
        assert_eq!(first.cells[6], import::MASK);
        assert_eq!(first.cells[3], "alice");
        assert_eq!(result.sample[1].cells[4], "", "a blank password stays blank");
    }
}

store_test! {
    async fn a_storage_error_half_way_leaves_the_store_as_it_was(db: TestDb) {
        let store = store_with_users(&db).await;
        db.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON email_accounts \
             WHEN NEW.address = 'boom@mail.example.com' BEGIN SELECT RAISE(ABORT, 'boom'); END",
            "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN \
             IF NEW.address = 'boom@mail.example.com' THEN RAISE EXCEPTION 'boom'; END IF; \
             RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER boom BEFORE INSERT ON email_accounts FOR EACH ROW EXECUTE FUNCTION boom()",
        )
        .await;
        // Past the first batches, so some rows are written before the failing one.
        let mut text = String::new();
        for i in 0..1_200 {
            let user = ["alice", "bob", "chloe"][i % 3];
            let address = if i == 1_100 { "boom".to_owned() } else { format!("box{i}") };
            text.push_str(&format!("{user}@example.com,N{i},{address}@mail.example.com,l{i},p{i},l{i},\n"));
        }

        let err = commit_err(&store, text.clone().into_bytes()).await;

        assert!(matches!(err, ImportError::Store(_)), "{err}");
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM email_accounts").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM imports").await, 0);
        assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM import_results").await, 0);
        db.execute("DROP TRIGGER boom", "DROP TRIGGER boom ON email_accounts").await;
        let again = commit(&store, text.into_bytes(), AccountKind::Email).await;
        assert_eq!(again.counts.added, 1_200);
    }
}

async fn commit_err(store: &Store, bytes: Vec<u8>) -> ImportError {
    run(
        store,
        bytes,
        &ImportOptions::new(AccountKind::Email),
        COMMIT,
    )
    .await
    .unwrap_err()
}

/// Collects every line's outcome.
#[derive(Default)]
struct Recorder(Vec<(u64, Outcome, String)>);

impl import::LineSink for Recorder {
    fn line(&mut self, line: &import::LineResult<'_>) -> std::io::Result<()> {
        self.0
            .push((line.line, line.outcome, line.message.to_owned()));
        Ok(())
    }
}
