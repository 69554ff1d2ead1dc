//! Android: the Gmail managed configuration in an AMAPI `applications[]` entry, checked
//! against Gmail's published restriction keys; IMAP/POP accounts reported, not dropped.

use mdm_mail::model::Platform;
use mdm_mail::profile::{RenderError, RenderOptions, SkipReason, render};
use serde_json::Value;

use super::{alice_all, alice_email, alice_exchange, alice_pop, definitions, render_ok};

/// Gmail's managed-configuration keys and their AMAPI JSON types (Google's "Set up Gmail
/// with managed configurations" help page); the first three are required.
const GMAIL_KEYS: [(&str, &str); 10] = [
    ("email_address", "string"),
    ("exchange_host", "string"),
    ("exchange_username", "string"),
    ("exchange_ssl_required", "bool"),
    ("exchange_trust_all_certificates", "bool"),
    ("exchange_login_certificate_alias", "string"),
    ("exchange_device_id", "string"),
    ("default_signature", "string"),
    ("default_exchange_sync_window", "integer"),
    ("allow_unmanaged_accounts", "bool"),
];

const INSTALL_TYPES: [&str; 4] = [
    "FORCE_INSTALLED",
    "PREINSTALLED",
    "AVAILABLE",
    "REQUIRED_FOR_SETUP",
];

fn conformance_problems(body: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let policy: Value = serde_json::from_slice(body).expect("the body is JSON");
    let applications = policy["applications"].as_array().expect("applications[]");
    for app in applications {
        if app["packageName"] != "com.google.android.gm" {
            problems.push(format!("packageName {}", app["packageName"]));
        }
        if !INSTALL_TYPES.iter().any(|t| app["installType"] == *t) {
            problems.push(format!("installType {}", app["installType"]));
        }
        let config = app["managedConfiguration"]
            .as_object()
            .expect("managedConfiguration");
        for (key, value) in config {
            match GMAIL_KEYS.iter().find(|(k, _)| k == key) {
                None => problems.push(format!("{key} is not a Gmail key")),
                Some((_, ty)) => {
                    let ok = match *ty {
                        "string" => value.is_string(),
                        "bool" => value.is_boolean(),
                        _ => value.as_u64().is_some_and(|n| n <= 5),
                    };
                    if !ok {
                        problems.push(format!("{key}: {value} is not a {ty}"));
                    }
                }
            }
        }
        for (required, _) in &GMAIL_KEYS[..3] {
            if !config.contains_key(*required) {
                problems.push(format!("{required} is missing"));
            }
        }
    }
    problems
}

#[test]
fn the_exchange_account_becomes_a_gmail_managed_configuration() {
    let rendered = render_ok(&[alice_exchange()], Platform::Android);
    assert_eq!(rendered.content_type, "application/json");
    assert!(conformance_problems(&rendered.body).is_empty());
    let policy: Value = serde_json::from_slice(&rendered.body).unwrap();
    let config = &policy["applications"][0]["managedConfiguration"];
    assert_eq!(config["email_address"], "alice@example.com");
    assert_eq!(config["exchange_host"], "mail.example.com");
    assert_eq!(config["exchange_username"], "CORP\\alice");
    assert_eq!(config["exchange_ssl_required"], true);
    assert_eq!(config["default_exchange_sync_window"], 4);
    assert!(
        !String::from_utf8_lossy(&rendered.body).contains("ex-secret"),
        "Gmail takes no password"
    );
}

#[test]
fn email_accounts_are_reported_as_unsupported_not_dropped() {
    let rendered = render_ok(&alice_all(), Platform::Android);
    assert!(conformance_problems(&rendered.body).is_empty());
    assert_eq!(rendered.accounts.len(), 1);
    assert_eq!(rendered.skipped.len(), 3);
    let reasons: Vec<(&str, &SkipReason)> = rendered
        .skipped
        .iter()
        .map(|s| (s.address.as_str(), &s.reason))
        .collect();
    assert!(matches!(
        reasons[0],
        ("alice@example.com", SkipReason::Unsupported { .. })
    ));
    assert!(
        rendered.skipped[0]
            .to_string()
            .contains("IMAP/POP accounts are not supported on Android"),
        "{}",
        rendered.skipped[0]
    );
    assert!(
        rendered
            .skipped
            .iter()
            .any(|s| s.to_string().contains("holds one Exchange account")),
        "{:?}",
        rendered.skipped
    );
}

#[test]
fn a_user_with_only_email_accounts_gets_an_error_saying_why() {
    let err = render(
        "alice@example.com",
        &[alice_email(), alice_pop()],
        Platform::Android,
        &definitions(),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::NothingToRender { .. }));
    let message = err.to_string();
    assert!(message.starts_with("no android profile for alice@example.com: alice@example.com (email): IMAP/POP accounts are not supported"), "{message}");
    assert!(
        message.contains("alice@pop.example.net (email)"),
        "{message}"
    );
}
