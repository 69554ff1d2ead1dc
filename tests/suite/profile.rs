//! Profile rendering and signing: conformance of every platform × account type against the
//! Apple schema and the Windows DDF files, snapshots, determinism, hostile values, and
//! signatures checked by `openssl cms -verify` and in Rust.

mod android;
mod apple;
mod cli;
mod definitions;
mod determinism;
mod escaping;
mod signing;
mod snapshots;
mod windows;
mod xml;

use std::path::PathBuf;

use mdm_mail::model::{Account, AccountDetails, Platform, Secret};
use mdm_mail::profile::{Definitions, RenderOptions, Rendered, render};

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

/// The Apple platforms.
pub const APPLE: [Platform; 3] = [Platform::Ios, Platform::Ipados, Platform::Macos];

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

/// Every kind of account Alice can have.
pub fn alice_all() -> Vec<Account> {
    vec![alice_email(), alice_pop(), alice_exchange(), alice_oauth()]
}

/// `accounts` with every password removed.
pub fn without_passwords(mut accounts: Vec<Account>) -> Vec<Account> {
    for account in &mut accounts {
        match &mut account.details {
            AccountDetails::Email {
                incoming_password,
                outgoing_password,
                ..
            } => {
                *incoming_password = None;
                *outgoing_password = None;
            }
            AccountDetails::Exchange { password, .. } => *password = None,
        }
    }
    accounts
}

/// Renders with the fixture definitions and default options, or fails the test.
pub fn render_ok(accounts: &[Account], platform: Platform) -> Rendered {
    render_with(accounts, platform, &RenderOptions::default())
}

/// Renders with the fixture definitions, or fails the test.
pub fn render_with(accounts: &[Account], platform: Platform, options: &RenderOptions) -> Rendered {
    let user = &accounts[0].user_email;
    render(user, accounts, platform, &definitions(), options)
        .unwrap_or_else(|e| panic!("{platform} profile renders: {e}"))
}

/// The body as text.
pub fn text(rendered: &Rendered) -> &str {
    std::str::from_utf8(&rendered.body).expect("profiles are UTF-8")
}
