//! Hostile values: names and passwords full of markup, quotes, separators and non-ASCII
//! text come out of every format exactly as stored, read back by a real parser.

use mdm_mail::model::{Account, AccountDetails, Platform, Secret};
use mdm_mail::profile::{RenderError, RenderOptions, SkipReason, render};
use plist::Value;
use proptest::prelude::*;

use super::xml;
use super::{APPLE, definitions, render_ok};

const NAME: &str = "Adams, Alice \"Al\" <&>";
const PASSWORD: &str = "p\"ss,word<&>";

fn hostile_email(name: &str, password: &str) -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: name.into(),
        address: "alice@example.com".into(),
        details: AccountDetails::Email {
            display_name: name.into(),
            incoming_username: format!("in {name}"),
            incoming_password: Some(Secret::new(password)),
            outgoing_username: format!("out {name}"),
            outgoing_password: Some(Secret::new(format!("{password}!"))),
        },
    }
}

fn hostile_exchange(name: &str, password: &str) -> Account {
    Account {
        user_email: "alice@example.com".into(),
        user_display_name: name.into(),
        address: "alice@example.com".into(),
        details: AccountDetails::Exchange {
            username: format!("u{name}"),
            domain: (!name.contains(['\\', '@'])).then(|| "CORP".into()),
            password: Some(Secret::new(password)),
        },
    }
}

/// The Exchange user name devices get for `hostile_exchange(name, …)`.
fn qualified(name: &str) -> String {
    if name.contains(['\\', '@']) {
        format!("u{name}")
    } else {
        format!("CORP\\u{name}")
    }
}

/// What one Apple payload carried, read back.
struct Carried {
    /// Sender name (mail) or user name (Exchange).
    name: Option<String>,
    /// Incoming or only password.
    password: Option<String>,
    outgoing_password: Option<String>,
    description: Option<String>,
}

fn apple_values(body: &[u8]) -> Vec<Carried> {
    let profile = Value::from_reader_xml(body).expect("the plist parses");
    let get =
        |d: &plist::Dictionary, k: &str| d.get(k).and_then(Value::as_string).map(str::to_owned);
    profile
        .as_dictionary()
        .and_then(|d| d.get("PayloadContent"))
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|p| {
            let p = p.as_dictionary().unwrap();
            Carried {
                name: get(p, "EmailAccountName").or_else(|| get(p, "UserName")),
                password: get(p, "IncomingPassword").or_else(|| get(p, "Password")),
                outgoing_password: get(p, "OutgoingPassword"),
                description: get(p, "PayloadDescription"),
            }
        })
        .collect()
}

fn windows_data(body: &[u8], leaf: &str) -> Option<String> {
    fn walk(e: &xml::Element, leaf: &str) -> Option<String> {
        if e.name == "Item"
            && e.text_at("Target/LocURI")
                .is_some_and(|u| u.ends_with(leaf))
        {
            return e.child("Data").map(|d| d.text.clone());
        }
        e.children.iter().find_map(|c| walk(c, leaf))
    }
    xml::parse(body).iter().find_map(|e| walk(e, leaf))
}

#[test]
fn hostile_display_names_and_passwords_come_out_exact_on_apple() {
    for platform in APPLE {
        let body = render_ok(&[hostile_email(NAME, PASSWORD)], platform).body;
        let values = apple_values(&body);
        assert_eq!(values[0].name.as_deref(), Some(NAME));
        assert_eq!(values[0].password.as_deref(), Some(PASSWORD));
        assert_eq!(values[0].outgoing_password, Some(format!("{PASSWORD}!")));
        assert_eq!(
            values[0].description,
            Some(format!("Mail of {NAME} <alice@example.com>"))
        );
        let body = render_ok(&[hostile_exchange(NAME, PASSWORD)], platform).body;
        let values = apple_values(&body);
        assert_eq!(values[0].name, Some(format!("CORP\\u{NAME}")));
        assert_eq!(values[0].password.as_deref(), Some(PASSWORD));
    }
}

#[test]
fn hostile_display_names_and_passwords_come_out_exact_on_windows() {
    let body = render_ok(&[hostile_email(NAME, PASSWORD)], Platform::Windows).body;
    assert_eq!(windows_data(&body, "/NAME").as_deref(), Some(NAME));
    assert_eq!(
        windows_data(&body, "/AUTHSECRET").as_deref(),
        Some(PASSWORD)
    );
    assert_eq!(windows_data(&body, "/AUTHNAME"), Some(format!("in {NAME}")));
    assert_eq!(
        windows_data(&body, "/SMTPALTPASSWORD"),
        Some(format!("{PASSWORD}!"))
    );
    let body = render_ok(&[hostile_exchange(NAME, PASSWORD)], Platform::Windows).body;
    assert_eq!(windows_data(&body, "/Password").as_deref(), Some(PASSWORD));
    assert_eq!(windows_data(&body, "/UserName"), Some(format!("u{NAME}")));
}

#[test]
fn hostile_user_names_come_out_exact_on_android() {
    let body = render_ok(&[hostile_exchange(NAME, PASSWORD)], Platform::Android).body;
    let policy: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        policy["applications"][0]["managedConfiguration"]["exchange_username"],
        format!("CORP\\u{NAME}")
    );
}

#[test]
fn values_are_never_read_as_templates_or_markup() {
    let sneaky = "{{user_email}}</string><key>OAuth</key><true/>]]>&amp;";
    for platform in APPLE {
        let body = render_ok(&[hostile_email(sneaky, sneaky)], platform).body;
        let values = apple_values(&body);
        assert_eq!(values[0].name.as_deref(), Some(sneaky));
        assert_eq!(values[0].password.as_deref(), Some(sneaky));
    }
    let body = render_ok(&[hostile_email(sneaky, sneaky)], Platform::Windows).body;
    assert_eq!(windows_data(&body, "/AUTHSECRET").as_deref(), Some(sneaky));
}

#[test]
fn whitespace_line_breaks_and_non_ascii_survive() {
    for value in [
        " lead and trail ",
        "tab\there",
        "two\nlines",
        "cr\r\nlf",
        "Zoë 李 😀 \u{202E}",
    ] {
        for platform in APPLE {
            let body = render_ok(&[hostile_email(value, value)], platform).body;
            assert_eq!(
                apple_values(&body)[0].password.as_deref(),
                Some(value),
                "{value:?} on {platform}"
            );
        }
        let body = render_ok(&[hostile_email(value, value)], Platform::Windows).body;
        assert_eq!(
            windows_data(&body, "/AUTHSECRET").as_deref(),
            Some(value),
            "{value:?}"
        );
    }
}

#[test]
fn characters_xml_cannot_carry_skip_the_account_with_the_reason() {
    let bell = hostile_email("ok", "bell\u{7}");
    for platform in [Platform::Ios, Platform::Macos, Platform::Windows] {
        let err = render(
            "alice@example.com",
            std::slice::from_ref(&bell),
            platform,
            &definitions(),
            &RenderOptions::default(),
        )
        .unwrap_err();
        let RenderError::NothingToRender { skipped, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            skipped[0].reason,
            SkipReason::Unrepresentable {
                field: "incoming password"
            }
        );
        assert!(
            !err.to_string().contains("bell"),
            "the password stays out of messages"
        );
    }
    // JSON carries anything: Android renders the Exchange account regardless.
    let exchange = hostile_exchange("\u{1}", "x");
    assert_eq!(render_ok(&[exchange], Platform::Android).accounts.len(), 1);
}

fn xml_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        any::<char>().prop_filter("XML 1.0 characters", |&c| {
            matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
        }),
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_name_and_password_round_trip_through_every_format(name in xml_text(), password in xml_text()) {
        let email = hostile_email(&name, &password);
        let body = render_ok(std::slice::from_ref(&email), Platform::Ios).body;
        let values = apple_values(&body);
        let expected_name = if name.trim().is_empty() { None } else { Some(name.clone()) };
        prop_assert_eq!(values[0].name.clone().filter(|n| !n.trim().is_empty()), expected_name);
        prop_assert_eq!(values[0].password.as_deref(), Some(password.as_str()));

        let body = render_ok(std::slice::from_ref(&email), Platform::Windows).body;
        prop_assert_eq!(windows_data(&body, "/AUTHSECRET"), Some(password.clone()));
        prop_assert_eq!(windows_data(&body, "/AUTHNAME"), Some(format!("in {name}")));

        let body = render_ok(&[hostile_exchange(&name, &password)], Platform::Android).body;
        let policy: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let expected = qualified(&name);
        prop_assert_eq!(
            policy["applications"][0]["managedConfiguration"]["exchange_username"].as_str(),
            Some(expected.as_str())
        );
    }
}
