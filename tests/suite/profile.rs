//! Profile definitions and the accounts the tests render.

mod definitions;

use std::path::PathBuf;

use mdm_mail::model::{Account, AccountDetails, Secret};
use mdm_mail::profile::Definitions;

/// The definitions the tests render with (`tests/fixtures/profiles`): IMAP with every key,
/// POP for `pop.example.net`, Exchange, and Exchange with OAuth for `oauth.example.org`.
pub fn definitions() -> Definitions {
    Definitions::load(&fixture_dir("profiles")).expect("fixture definitions load")
}

/// The examples shipped in `profiles/`.
pub fn shipped_definitions() -> Definitions {
    Definitions::load(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("profiles"))
        .expect("shipped definitions load")
}

/// A folder under `tests/fixtures`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Alice's IMAP account, with separate outgoing credentials and both passwords stored.
pub fn alice_email() -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: "Alice Adams".into(),
        address: "alice@example.com".into(),
        details: AccountDetails::Email {
            display_name: "Alice Adams".into(),
            incoming_username: "alice".into(),
            incoming_password: Some(Secret::new("in-secret")),
            outgoing_username: "alice-smtp".into(),
            outgoing_password: Some(Secret::new("out-secret")),
        },
    }
}

/// Alice's POP account (matched by domain), no passwords stored.
pub fn alice_pop() -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: "Alice Adams".into(),
        address: "alice@pop.example.net".into(),
        details: AccountDetails::Email {
            display_name: String::new(),
            incoming_username: "alice.pop".into(),
            incoming_password: None,
            outgoing_username: "alice.pop".into(),
            outgoing_password: None,
        },
    }
}

/// Alice's Exchange account, with a domain and a password.
pub fn alice_exchange() -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: "Alice Adams".into(),
        address: "alice@example.com".into(),
        details: AccountDetails::Exchange {
            username: "alice".into(),
            domain: Some("CORP".into()),
            password: Some(Secret::new("ex-secret")),
        },
    }
}

/// Alice's OAuth Exchange account (matched by domain); its password must never be sent to
/// Apple devices.
pub fn alice_oauth() -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: "Alice Adams".into(),
        address: "alice@oauth.example.org".into(),
        details: AccountDetails::Exchange {
            username: "alice@oauth.example.org".into(),
            domain: None,
            password: Some(Secret::new("never-sent")),
        },
    }
}
