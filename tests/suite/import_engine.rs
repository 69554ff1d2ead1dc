//! How an import decides and writes, whatever the route it takes: a file large against the
//! store is decided against an index of the whole store, a small one by looking its users
//! up, and both must reach the same outcomes; and a store whose passwords were sealed and
//! MACed by the previous format still imports, compares and opens.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use mdm_mail::crypto::{PasswordColumn, account_aad};
use mdm_mail::import::{self, ImportOptions, ImportResult, LineResult, LineSink, Mode};
use mdm_mail::model::{AccountDetails, AccountKind, Outcome};
use mdm_mail::secrets::KeySource;
use mdm_mail::store::Store;

use crate::import::{KEY, store_with_users};
use crate::support::{TestDb, store_test};

/// Every line's outcome and message, as a results file has them.
#[derive(Default)]
struct Lines(Vec<(u64, Outcome, String)>);

impl LineSink for Lines {
    fn line(&mut self, line: &LineResult<'_>) -> std::io::Result<()> {
        self.0
            .push((line.line, line.outcome, line.message.to_owned()));
        Ok(())
    }
}

/// Imports `text` with `size_hint` as the file's size: a large one makes the import index
/// the store, a tiny one makes it look each batch of users up.
async fn import(
    store: &Store,
    text: &str,
    size_hint: u64,
    mode: Mode<'_>,
) -> (ImportResult, Vec<(u64, Outcome, String)>) {
    let options = ImportOptions {
        size_hint: Some(size_hint),
        ..ImportOptions::new(AccountKind::Email)
    };
    let mut lines = Lines::default();
    let result = import::run(
        store,
        &KeySource::Env(KEY.to_owned()),
        std::io::Cursor::new(text.as_bytes().to_vec()),
        &options,
        mode,
        Some(&mut lines),
    )
    .await
    .unwrap();
    (result, lines.0)
}

const COMMIT: Mode<'static> = Mode::Commit {
    actor: "test",
    source: "test.csv",
    expected: None,
};
/// A size no file of these tests has: the store is indexed.
const LARGE: u64 = 1 << 40;
/// A size that makes the store look larger than the file: its users are looked up.
const SMALL: u64 = 1;

const STORED: &str = "\
alice@example.com,Alice,alice@example.com,alice,in-1,alice,out-1
alice@example.com,Alice,alice.work@example.com,alice,in-2,alice,out-2
bob@example.com,Bob,bob@example.com,bob,in-3,bob,out-3
chloe@example.com,Chloe,chloe@example.com,chloe,in-4,chloe,out-4
bob@example.com,Bob,bob.home@example.com,bob,in-6,bob,out-6
";

/// Every outcome, and every way a stored account can differ from its line.
const CHANGES: &str = "\
alice@example.com,Alice,alice@example.com,alice,in-1,alice,out-1
ALICE@example.com,Alice,alice.work@example.com,alice,in-2,alice,out-2b
bob@example.com,Robert,bob@example.com,bob,in-3,bob,out-3
chloe@example.com,Chloe,Chloe@example.com,chloe,,chloe,
alice@example.com,Alice,alice.new@example.com,alice,in-5,alice,out-5
nobody@example.com,No One,nobody@example.com,nobody,pw,nobody,pw
bob@example.com,Bob,not-an-address,bob,pw,bob,pw
alice@example.com,Alice,alice@example.com,alice,in-1,alice,out-1
bob@example.com,Bob,bob.home@example.com,bob,in-6x,bob,out-6x
";

store_test! {
    async fn an_indexed_store_and_looked_up_users_give_the_same_outcomes(db: TestDb) {
        let store = store_with_users(&db).await;
        import(&store, STORED, LARGE, COMMIT).await;

        let (indexed, indexed_lines) = import(&store, CHANGES, LARGE, Mode::Preview).await;
        let (looked_up, looked_up_lines) = import(&store, CHANGES, SMALL, Mode::Preview).await;

        let expected = vec![
            (1, Outcome::Unchanged, String::new()),
            (2, Outcome::Updated, "changed outgoing_password".to_owned()),
            (3, Outcome::Updated, "changed display_name".to_owned()),
            (4, Outcome::Updated, "changed email_address".to_owned()),
            (5, Outcome::Added, String::new()),
            (6, Outcome::Discarded, "no user with email nobody@example.com".to_owned()),
            (7, Outcome::Rejected, "\"not-an-address\" is not an email address (no @)".to_owned()),
            (8, Outcome::Duplicate, "same user, type and address as line 1".to_owned()),
            (9, Outcome::Updated, "changed incoming_password, outgoing_password".to_owned()),
        ];
        assert_eq!(indexed_lines, expected);
        assert_eq!(looked_up_lines, expected);
        assert_eq!(indexed.fingerprint, looked_up.fingerprint);
        assert_eq!(indexed.counts, looked_up.counts);

        // Committed either way, the store ends the same, and a second run changes nothing.
        let (committed, _) = import(&store, CHANGES, SMALL, COMMIT).await;
        assert_eq!(committed.fingerprint, indexed.fingerprint);
        let (again, _) = import(&store, CHANGES, LARGE, Mode::Preview).await;
        assert_eq!((again.counts.unchanged, again.counts.updated), (6, 0));
    }
}

store_test! {
    async fn a_store_read_in_parts_side_by_side_is_indexed_whole(db: TestDb) {
        // Enough accounts that every part of the scan holds some, and every seventh changed
        // since, so that a part read twice or not at all shows in the outcomes.
        let store = store_with_users(&db).await;
        let file: String = (0..3_000)
            .map(|i| format!("alice@example.com,Alice,a{i}@example.com,alice,pw-{i},alice,out\n"))
            .collect();
        let gaps: String = (0..3_000)
            .step_by(7)
            .map(|i| format!("alice@example.com,Alice,a{i}@example.com,alice,pw-{i}b,alice,out\n"))
            .collect();
        import(&store, &file, LARGE, COMMIT).await;
        import(&store, &gaps, LARGE, COMMIT).await;

        let (again, lines) = import(&store, &file, LARGE, Mode::Preview).await;

        assert_eq!((again.counts.updated, again.counts.added), (429, 0));
        assert_eq!(again.counts.unchanged, 3_000 - 429);
        let updated: Vec<u64> = lines
            .iter()
            .filter(|(_, outcome, _)| *outcome == Outcome::Updated)
            .map(|(line, _, _)| *line)
            .collect();
        assert_eq!(updated, (1..=3_000).step_by(7).collect::<Vec<u64>>());
    }
}

store_test! {
    async fn a_store_sealed_in_the_previous_format_still_imports_compares_and_opens(db: TestDb) {
        let store = store_with_users(&db).await;
        import(&store, STORED, LARGE, COMMIT).await;
        store_in_previous_format(&db, "alice@example.com", "alice@example.com", "in-1", "out-1")
            .await;

        // Compared by MAC of the older kind, through either route, the account is unchanged.
        for size in [LARGE, SMALL] {
            let (_, lines) = import(&store, STORED, size, Mode::Preview).await;
            assert_eq!(lines[0], (1, Outcome::Unchanged, String::new()), "size hint {size}");
        }
        // Its passwords still open for the profile.
        let keys = mdm_mail::secrets::for_reading(&store, &KeySource::Env(KEY.to_owned()))
            .await
            .unwrap();
        let (_, accounts) = mdm_mail::accounts::of_user(&store, &keys, "alice@example.com")
            .await
            .unwrap();
        let account = accounts
            .iter()
            .find(|a| a.address == "alice@example.com")
            .unwrap();
        let AccountDetails::Email { incoming_password, outgoing_password, .. } = &account.details
        else {
            panic!("an Email account: {account:?}")
        };
        let opened = |p: &Option<mdm_mail::model::Secret>| p.as_ref().unwrap().expose().to_owned();
        assert_eq!((opened(incoming_password), opened(outgoing_password)), ("in-1".into(), "out-1".into()));

        // A changed password is told apart from the old MAC, and stored in the new format.
        let changed = STORED.replace("alice,out-1", "alice,out-1b");
        let (_, lines) = import(&store, &changed, LARGE, COMMIT).await;
        assert_eq!(lines[0], (1, Outcome::Updated, "changed outgoing_password".to_owned()));
        assert_eq!(
            db.scalar_i64(
                "SELECT CAST(length(outgoing_password_mac) AS BIGINT) FROM email_accounts \
                 WHERE address_norm = 'alice@example.com'"
            )
            .await,
            17
        );
    }
}

/// Rewrites one account's passwords as the previous release stored them: XChaCha20-Poly1305
/// under the first derived key, with version byte 1, and 16-byte HMAC-SHA256 MACs.
async fn store_in_previous_format(
    db: &TestDb,
    user: &str,
    address: &str,
    password: &str,
    outgoing: &str,
) {
    use base64::Engine;
    let master: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap()
        .try_into()
        .unwrap();
    let derive = |label: &[u8]| -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&master).unwrap();
        mac.update(label);
        mac.finalize().into_bytes().into()
    };
    let cipher = XChaCha20Poly1305::new(&derive(b"mdm-mail v1 password encryption").into());
    let mac_key = derive(b"mdm-mail v1 password mac");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let mut sets = Vec::new();
    for (column, secret, name) in [
        (PasswordColumn::Primary, password, "password"),
        (PasswordColumn::Outgoing, outgoing, "outgoing_password"),
    ] {
        let aad = account_aad(AccountKind::Email, user, address, column);
        let nonce = XNonce::from([7; 24]);
        let mut sealed = vec![1u8];
        sealed.extend_from_slice(&nonce);
        sealed.extend(
            cipher
                .encrypt(
                    &nonce,
                    Payload {
                        msg: secret.as_bytes(),
                        aad: &aad,
                    },
                )
                .unwrap(),
        );
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key).unwrap();
        mac.update(&aad);
        mac.update(&[0]);
        mac.update(secret.as_bytes());
        let mac = &mac.finalize().into_bytes()[..16];
        sets.push((name, hex(&sealed), hex(mac)));
    }
    let assignments = |blob: &dyn Fn(&str) -> String| {
        sets.iter()
            .map(|(name, sealed, mac)| {
                format!("{name} = {}, {name}_mac = {}", blob(sealed), blob(mac))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let filter = format!("WHERE address_norm = '{address}'");
    db.execute(
        &format!(
            "UPDATE email_accounts SET {} {filter}",
            assignments(&|h| format!("X'{h}'"))
        ),
        &format!(
            "UPDATE email_accounts SET {} {filter}",
            assignments(&|h| format!("'\\x{h}'::bytea"))
        ),
    )
    .await;
}
