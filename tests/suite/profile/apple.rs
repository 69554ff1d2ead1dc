//! Apple profiles against Apple's device-management schema (tests/fixtures/specs/apple):
//! every rendered profile is parsed back and each key checked for presence, type, allowed
//! values, format and support on the target OS; then the behaviours the schema leaves to us.

use std::collections::BTreeMap;

use mdm_mail::model::Platform;
use mdm_mail::profile::RenderOptions;
use plist::{Dictionary, Value};
use serde::Deserialize;

use super::{
    APPLE, alice_all, alice_email, alice_exchange, alice_oauth, alice_pop, fixture_dir, render_ok,
    render_with, without_passwords,
};

/// One YAML schema file.
#[derive(Debug, Deserialize)]
struct Schema {
    payload: SchemaPayload,
    payloadkeys: Vec<SchemaKey>,
}

#[derive(Debug, Deserialize)]
struct SchemaPayload {
    payloadtype: String,
    #[serde(rename = "supportedOS", default)]
    supported_os: BTreeMap<String, OsSupport>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct OsSupport {
    introduced: Option<String>,
    deprecated: Option<String>,
    devicechannel: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct SchemaKey {
    key: String,
    #[serde(rename = "type")]
    ty: String,
    presence: Option<String>,
    rangelist: Option<Vec<Scalar>>,
    #[serde(rename = "supportedOS", default)]
    supported_os: BTreeMap<String, OsSupport>,
    format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Str(String),
}

fn schema(name: &str) -> Schema {
    let path = fixture_dir("specs/apple").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The schema's name for the OS a platform runs.
fn os(platform: Platform) -> &'static str {
    match platform {
        Platform::Macos => "macOS",
        _ => "iOS",
    }
}

struct Checker {
    os: &'static str,
    problems: Vec<String>,
}

impl Checker {
    /// Checks `dict` against `keys` of a payload whose own support is `payload`.
    fn dictionary(
        &mut self,
        at: &str,
        dict: &Dictionary,
        keys: &[&SchemaKey],
        payload: &SchemaPayload,
    ) {
        for (name, value) in dict {
            let Some(key) = keys.iter().find(|k| &k.key == name) else {
                self.problems
                    .push(format!("{at}: {name} is not in the schema"));
                continue;
            };
            self.value(&format!("{at}.{name}"), value, key);
            // A key inherits the payload's support, overridden by its own (schema.md).
            let inherited = payload
                .supported_os
                .get(self.os)
                .cloned()
                .unwrap_or_default();
            let own = key.supported_os.get(self.os);
            let introduced = own
                .and_then(|o| o.introduced.clone())
                .or(inherited.introduced);
            if introduced.as_deref() == Some("n/a") || introduced.is_none() {
                self.problems
                    .push(format!("{at}.{name} is not supported on {}", self.os));
            }
            if own.and_then(|o| o.deprecated.as_ref()).is_some() {
                self.problems
                    .push(format!("{at}.{name} is deprecated on {}", self.os));
            }
        }
        for key in keys {
            if key.presence.as_deref() == Some("required") && !dict.contains_key(&key.key) {
                self.problems
                    .push(format!("{at}: required key {} is missing", key.key));
            }
        }
    }

    fn value(&mut self, at: &str, value: &Value, key: &SchemaKey) {
        let type_ok = match key.ty.as_str() {
            "<string>" => value.as_string().is_some(),
            "<integer>" => value.as_signed_integer().is_some(),
            "<boolean>" => value.as_boolean().is_some(),
            "<array>" => value.as_array().is_some(),
            "<dictionary>" => value.as_dictionary().is_some(),
            "<data>" => value.as_data().is_some(),
            "<real>" => value.as_real().is_some(),
            "<date>" => value.as_date().is_some(),
            other => panic!("{at}: schema type {other} not handled"),
        };
        if !type_ok {
            self.problems
                .push(format!("{at}: {value:?} is not of type {}", key.ty));
            return;
        }
        if let Some(allowed) = &key.rangelist {
            let scalar = match value {
                Value::String(s) => Scalar::Str(s.clone()),
                Value::Integer(i) => Scalar::Int(i.as_signed().unwrap_or(i64::MAX)),
                Value::Boolean(b) => Scalar::Bool(*b),
                _ => return,
            };
            if !allowed.contains(&scalar) {
                self.problems
                    .push(format!("{at}: {scalar:?} is not one of {allowed:?}"));
            }
        }
        if let (Some(format), Some(text)) = (&key.format, value.as_string()) {
            let re = regex::Regex::new(format).unwrap();
            if !re.is_match(text) {
                self.problems
                    .push(format!("{at}: {text:?} does not match {format}"));
            }
        }
    }
}

/// Checks a rendered profile against the schema files, returning every problem.
fn conformance_problems(body: &[u8], platform: Platform) -> Vec<String> {
    let top = schema("TopLevel");
    let common = schema("CommonPayloadKeys");
    let payloads: Vec<Schema> = [
        "com.apple.mail.managed",
        "com.apple.eas.account",
        "com.apple.ews.account",
    ]
    .into_iter()
    .map(schema)
    .collect();
    let mut checker = Checker {
        os: os(platform),
        problems: Vec::new(),
    };
    let profile = Value::from_reader_xml(body).expect("the profile is an XML plist");
    let dict = profile
        .as_dictionary()
        .expect("the profile is a dictionary");
    let top_keys: Vec<&SchemaKey> = top.payloadkeys.iter().collect();
    checker.dictionary("profile", dict, &top_keys, &top.payload);
    let content = dict
        .get("PayloadContent")
        .and_then(Value::as_array)
        .expect("PayloadContent is an array");
    let mut identifiers = Vec::new();
    for (i, item) in content.iter().enumerate() {
        let at = format!("PayloadContent[{i}]");
        let payload = item.as_dictionary().expect("payloads are dictionaries");
        let payload_type = payload
            .get("PayloadType")
            .and_then(Value::as_string)
            .expect("PayloadType");
        let Some(schema) = payloads
            .iter()
            .find(|s| s.payload.payloadtype == payload_type)
        else {
            checker
                .problems
                .push(format!("{at}: unexpected payload type {payload_type}"));
            continue;
        };
        let support = schema
            .payload
            .supported_os
            .get(checker.os)
            .cloned()
            .unwrap_or_default();
        if support.introduced.as_deref() == Some("n/a") {
            checker.problems.push(format!(
                "{at}: {payload_type} is not supported on {}",
                checker.os
            ));
        }
        // Payloads that may not go to the device channel need a user-scoped profile.
        if platform == Platform::Macos
            && support.devicechannel == Some(false)
            && dict.get("PayloadScope").and_then(Value::as_string) != Some("User")
        {
            checker.problems.push(format!(
                "{at}: {payload_type} is user-channel only on macOS, but the profile is not \
                 PayloadScope User"
            ));
        }
        let keys: Vec<&SchemaKey> = common
            .payloadkeys
            .iter()
            .chain(&schema.payloadkeys)
            .collect();
        checker.dictionary(&at, payload, &keys, &schema.payload);
        identifiers.push(payload.get("PayloadIdentifier").cloned());
    }
    let mut unique = identifiers.clone();
    unique.sort_by_key(|v| format!("{v:?}"));
    unique.dedup();
    if unique.len() != identifiers.len() {
        checker
            .problems
            .push("payload identifiers repeat within the profile".into());
    }
    checker.problems
}

fn profile(body: &[u8]) -> Dictionary {
    Value::from_reader_xml(body)
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn payloads(body: &[u8]) -> Vec<Dictionary> {
    profile(body)
        .get("PayloadContent")
        .and_then(Value::as_array)
        .unwrap()
        .iter()
        .map(|p| p.as_dictionary().unwrap().clone())
        .collect()
}

fn string<'a>(dict: &'a Dictionary, key: &str) -> Option<&'a str> {
    dict.get(key).and_then(Value::as_string)
}

#[test]
fn every_apple_profile_conforms_to_the_schema() {
    let variants = [
        ("with passwords", alice_all(), RenderOptions::default()),
        (
            "without passwords",
            without_passwords(alice_all()),
            RenderOptions::default(),
        ),
        (
            "redacted preview",
            alice_all(),
            RenderOptions {
                redact_secrets: true,
                ..RenderOptions::default()
            },
        ),
        (
            "one email account",
            vec![alice_pop()],
            RenderOptions::default(),
        ),
        (
            "one exchange account",
            vec![alice_exchange()],
            RenderOptions::default(),
        ),
    ];
    for platform in APPLE {
        for (name, accounts, options) in &variants {
            let rendered = render_with(accounts, platform, options);
            assert_eq!(rendered.accounts.len(), accounts.len(), "{platform} {name}");
            let problems = conformance_problems(&rendered.body, platform);
            assert!(
                problems.is_empty(),
                "{platform} {name}:\n{}",
                problems.join("\n")
            );
        }
    }
}

#[test]
fn the_checker_catches_what_the_schema_forbids() {
    // A profile that breaks the rules in the ways the renderer must not.
    let broken = br#"<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadContent</key><array><dict>
  <key>PayloadType</key><string>com.apple.eas.account</string>
  <key>PayloadVersion</key><integer>1</integer>
  <key>PayloadIdentifier</key><string>x.y</string>
  <key>PayloadUUID</key><string>A</string>
  <key>MailNumberOfPastDaysToSync</key><integer>5</integer>
  <key>SSL</key><string>yes</string>
  <key>Port</key><integer>443</integer>
</dict></array>
<key>PayloadIdentifier</key><string>x</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>2</integer>
</dict></plist>"#;
    let problems = conformance_problems(broken, Platform::Macos);
    for expected in [
        "profile: required key PayloadUUID is missing",
        "profile.PayloadVersion: Int(2) is not one of [Int(1)]",
        "PayloadContent[0]: com.apple.eas.account is not supported on macOS",
        "PayloadContent[0].MailNumberOfPastDaysToSync: Int(5) is not one of",
        "PayloadContent[0].SSL: String(\"yes\") is not of type <boolean>",
        "PayloadContent[0]: Port is not in the schema",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(expected)),
            "missing {expected:?} in {problems:#?}"
        );
    }
}

#[test]
fn ios_gets_activesync_and_macos_gets_exchange_web_services_in_the_user_scope() {
    let accounts = vec![alice_exchange()];
    for platform in [Platform::Ios, Platform::Ipados] {
        let body = render_ok(&accounts, platform).body;
        assert_eq!(
            string(&payloads(&body)[0], "PayloadType"),
            Some("com.apple.eas.account")
        );
        assert_eq!(string(&profile(&body), "PayloadScope"), None);
    }
    let body = render_ok(&accounts, Platform::Macos).body;
    let ews = &payloads(&body)[0];
    assert_eq!(string(ews, "PayloadType"), Some("com.apple.ews.account"));
    assert_eq!(string(ews, "Path"), Some("/EWS/Exchange.asmx"));
    assert_eq!(
        ews.get("Port").and_then(Value::as_signed_integer),
        Some(443)
    );
    assert_eq!(string(&profile(&body), "PayloadScope"), Some("User"));
    let mail = render_ok(&[alice_email()], Platform::Macos).body;
    assert_eq!(string(&profile(&mail), "PayloadScope"), Some("User"));
}

#[test]
fn stored_passwords_are_sent_separately_and_missing_ones_left_for_the_device() {
    for platform in APPLE {
        let body = render_ok(&[alice_email(), alice_pop()], platform).body;
        let all = payloads(&body);
        let imap = all
            .iter()
            .find(|p| string(p, "EmailAddress") == Some("alice@example.com"))
            .unwrap();
        assert_eq!(string(imap, "IncomingPassword"), Some("in-secret"));
        assert_eq!(string(imap, "OutgoingPassword"), Some("out-secret"));
        assert_eq!(string(imap, "IncomingMailServerUsername"), Some("alice"));
        assert_eq!(
            string(imap, "OutgoingMailServerUsername"),
            Some("alice-smtp")
        );
        let pop = all
            .iter()
            .find(|p| string(p, "EmailAddress") == Some("alice@pop.example.net"))
            .unwrap();
        assert_eq!(string(pop, "IncomingPassword"), None);
        assert_eq!(string(pop, "OutgoingPassword"), None);
        assert_eq!(string(pop, "IncomingMailServerUsername"), Some("alice.pop"));
        for payload in &all {
            assert!(!payload.contains_key("OutgoingPasswordSameAsIncomingPassword"));
            assert!(payload.contains_key("IncomingMailServerUseSSL"));
            assert!(payload.contains_key("OutgoingMailServerUseSSL"));
        }
    }
}

#[test]
fn exchange_gets_the_domain_in_the_user_name_and_oauth_gets_no_password() {
    let body = render_ok(&[alice_exchange(), alice_oauth()], Platform::Ios).body;
    let all = payloads(&body);
    let exchange = all
        .iter()
        .find(|p| string(p, "Host") == Some("mail.example.com"))
        .unwrap();
    assert_eq!(string(exchange, "UserName"), Some("CORP\\alice"));
    assert_eq!(string(exchange, "Password"), Some("ex-secret"));
    assert_eq!(
        exchange
            .get("MailNumberOfPastDaysToSync")
            .and_then(Value::as_signed_integer),
        Some(14)
    );
    assert_eq!(
        exchange.get("EnableNotes").and_then(Value::as_boolean),
        Some(false)
    );
    let oauth = all
        .iter()
        .find(|p| string(p, "Host") == Some("outlook.example.org"))
        .unwrap();
    assert_eq!(oauth.get("OAuth").and_then(Value::as_boolean), Some(true));
    assert_eq!(string(oauth, "Password"), None);
    assert_eq!(string(oauth, "UserName"), Some("alice@oauth.example.org"));
    assert!(!String::from_utf8_lossy(&body).contains("never-sent"));
}

#[test]
fn previews_show_where_passwords_go_without_showing_them() {
    let options = RenderOptions {
        redact_secrets: true,
        ..RenderOptions::default()
    };
    let body = render_with(&alice_all(), Platform::Ios, &options).body;
    let text = String::from_utf8(body.clone()).unwrap();
    for secret in ["in-secret", "out-secret", "ex-secret", "never-sent"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    let imap = &payloads(&body)[0];
    assert_eq!(string(imap, "IncomingPassword"), Some("********"));
}

#[test]
fn payload_identifiers_sit_under_the_profile_identifier() {
    let rendered = render_ok(&alice_all(), Platform::Ios);
    let top = profile(&rendered.body);
    assert_eq!(
        string(&top, "PayloadIdentifier"),
        Some(rendered.identifier.as_str())
    );
    for (payload, account) in payloads(&rendered.body).iter().zip(&rendered.accounts) {
        let expected = format!("{}.{}", rendered.identifier, account.uuid);
        assert_eq!(
            string(payload, "PayloadIdentifier"),
            Some(expected.as_str())
        );
        let uuid = account.uuid.hyphenated().to_string().to_uppercase();
        assert_eq!(string(payload, "PayloadUUID"), Some(uuid.as_str()));
    }
}
