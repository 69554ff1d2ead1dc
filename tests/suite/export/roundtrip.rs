//! The round trip as a property: whatever accounts a store holds (formula-like values,
//! quotes, delimiters, non-ASCII names, with and without passwords), exporting them in any
//! offered delimiter and encoding, or as an `.xlsx` workbook, and importing that file reports
//! every line unchanged and changes nothing, stored passwords included. On SQLite and on
//! PostgreSQL.

use std::collections::BTreeMap;

use mdm_mail::csv::{Delimiter, neutralize};
use mdm_mail::export::{ExportFormat, ExportOptions, OutputEncoding};
use mdm_mail::model::{AccountKind, normalize_email};
use proptest::prelude::*;

use super::{DELIMITERS, ENCODINGS, export_all, import, stored_state};
use crate::support::TestDb;

/// A store's content, as the files that load it.
#[derive(Debug, Clone)]
struct Content {
    users: Vec<[String; 2]>,
    email: Vec<[String; 7]>,
    exchange: Vec<[String; 5]>,
}

/// Free text: names and user names. Formula triggers, quotes, delimiters, non-ASCII.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,;|\"'=+@\\-àéßÅжλ中文🙂]{1,10}"
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("a name is not blank", |s| !s.is_empty())
}

/// An Exchange logon name: no characters Active Directory refuses, no `\` or `@` forms.
fn logon() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9'_éж\\-]{1,8}"
}

fn address() -> impl Strategy<Value = String> {
    (
        "[a-zA-Z0-9=+'!#éж\\-]{1,6}",
        prop::sample::select(vec!["example.com", "Mail.Example.org", "exämple.fi"]),
    )
        .prop_map(|(local, domain)| format!("{local}@{domain}"))
}

fn password() -> impl Strategy<Value = String> {
    prop_oneof!["", "[a-zA-Z0-9!=+\\-é]{1,8}"]
}

fn content() -> impl Strategy<Value = Content> {
    let users = prop::collection::vec((address(), name()), 1..4);
    let email = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            (name(), address(), name(), password(), name(), password()),
        ),
        0..6,
    );
    let exchange = prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            (
                address(),
                logon(),
                prop::sample::select(vec!["", "CORP", "corp.example.com"]),
                password(),
            ),
        ),
        0..4,
    );
    (users, email, exchange).prop_map(|(users, email, exchange)| {
        // A number after the local part keeps the generated users distinct.
        let users: Vec<[String; 2]> = users
            .into_iter()
            .enumerate()
            .map(|(i, (address, name))| [address.replacen('@', &format!("{i}@"), 1), name])
            .collect();
        let mut seen = BTreeMap::new();
        let email = email
            .into_iter()
            .filter_map(
                |(user, (display, address, incoming, pw_in, outgoing, pw_out))| {
                    let user = &users[user.index(users.len())][0];
                    let key = (normalize_email(user), normalize_email(&address), "email");
                    seen.insert(key, ()).is_none().then(|| {
                        [
                            user.clone(),
                            display,
                            address,
                            incoming,
                            pw_in,
                            outgoing,
                            pw_out,
                        ]
                    })
                },
            )
            .collect();
        let exchange = exchange
            .into_iter()
            .filter_map(|(user, (address, logon, domain, pw))| {
                let user = &users[user.index(users.len())][0];
                let key = (normalize_email(user), normalize_email(&address), "exchange");
                seen.insert(key, ())
                    .is_none()
                    .then(|| [user.clone(), address, logon, domain.to_owned(), pw])
            })
            .collect();
        Content {
            users,
            email,
            exchange,
        }
    })
}

/// A CSV file of `rows` as an admin would write it, formula-like cells protected.
fn csv_file<const N: usize>(header: &str, rows: &[[String; N]]) -> Vec<u8> {
    let mut writer = ::csv::Writer::from_writer(format!("{header}\n").into_bytes());
    for row in rows {
        writer
            .write_record(row.iter().map(|c| neutralize(c).into_owned()))
            .unwrap();
    }
    writer.into_inner().unwrap()
}

async fn round_trip(db: TestDb, content: Content, delimiter: Delimiter, encoding: OutputEncoding) {
    let store = db.open().await;
    let users = csv_file("email,display_name", &content.users);
    mdm_mail::import::directory::load_users(&store, std::io::Cursor::new(users), "test", "u.csv")
        .await
        .unwrap();
    let files = [
        (
            AccountKind::Email,
            csv_file(
                "user_email,display_name,email_address,incoming_username,incoming_password,\
                 outgoing_username,outgoing_password",
                &content.email,
            ),
            content.email.len() as u64,
        ),
        (
            AccountKind::Exchange,
            csv_file(
                "user_email,exchange_email,exchange_username,exchange_domain,exchange_password",
                &content.exchange,
            ),
            content.exchange.len() as u64,
        ),
    ];
    for (kind, file, rows) in &files {
        if *rows > 0 {
            let loaded = import(&store, file.clone(), *kind).await;
            assert_eq!(loaded.counts.added, *rows, "{kind}: {:?}", loaded.lines);
        }
    }
    let before = stored_state(&store).await;
    let csv = ExportOptions {
        delimiter,
        encoding,
        ..ExportOptions::default()
    };
    let xlsx = ExportOptions {
        format: ExportFormat::Xlsx,
        ..ExportOptions::default()
    };
    for (kind, _, rows) in files {
        for options in [csv, xlsx] {
            let (bytes, _) = export_all(&store, kind, options).await;
            if rows == 0 {
                continue;
            }
            let again = import(&store, bytes, kind).await;
            assert_eq!(
                (again.counts.rows, again.counts.unchanged),
                (rows, rows),
                "{kind} as {:?}: {:?}",
                options.format,
                again.lines
            );
        }
    }
    assert_eq!(stored_state(&store).await, before);
    store.close().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_sqlite_store_round_trips_through_its_export(
        content in content(),
        delimiter in prop::sample::select(DELIMITERS.to_vec()),
        encoding in prop::sample::select(ENCODINGS.to_vec()),
    ) {
        runtime().block_on(async {
            round_trip(TestDb::sqlite().await, content, delimiter, encoding).await;
        });
    }

    #[test]
    fn any_postgres_store_round_trips_through_its_export(
        content in content(),
        delimiter in prop::sample::select(DELIMITERS.to_vec()),
        encoding in prop::sample::select(ENCODINGS.to_vec()),
    ) {
        runtime().block_on(async {
            if let Some(db) = TestDb::postgres().await {
                round_trip(db, content, delimiter, encoding).await;
            }
        });
    }
}
