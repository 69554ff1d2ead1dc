//! Loading `profiles/*.toml`: what is accepted, what is refused and how it is reported, and
//! which definition an account gets.

use std::path::Path;

use mdm_mail::model::AccountKind;
use mdm_mail::profile::{DefinitionError, Definitions};

use super::{
    alice_email, alice_exchange, alice_oauth, alice_pop, definitions, shipped_definitions,
};

const EMAIL: &str = r#"
name = "Mail"
identifier_prefix = "com.example.mail"
account_type = "email"
[incoming]
protocol = "imap"
host = "imap.example.com"
tls = true
[outgoing]
host = "smtp.example.com"
tls = true
"#;

const EXCHANGE: &str = r#"
name = "Exchange"
identifier_prefix = "com.example.mail"
account_type = "exchange"
[exchange]
host = "mail.example.com"
tls = true
"#;

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn messages(err: &DefinitionError, dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    err.problems()
        .iter()
        .map(|e| e.to_string().replace(&prefix, ""))
        .collect()
}

#[test]
fn shipped_examples_load_and_cover_both_account_types() {
    let shipped = shipped_definitions();
    let kinds: Vec<AccountKind> = shipped.iter().map(|d| d.account_type()).collect();
    assert_eq!(kinds, [AccountKind::Email, AccountKind::Exchange]);
    assert_eq!(shipped.identifier_prefix(), "com.example.mail");
    assert!(shipped.for_account(&alice_email()).is_some());
    assert!(shipped.for_account(&alice_exchange()).is_some());
}

#[test]
fn the_domain_specific_definition_wins_over_the_catch_all() {
    let defs = definitions();
    assert_eq!(defs.for_account(&alice_email()).unwrap().id(), "email");
    assert_eq!(defs.for_account(&alice_pop()).unwrap().id(), "email-pop");
    let mut shouting = alice_pop();
    shouting.address = "ALICE@POP.Example.NET".into();
    assert_eq!(defs.for_account(&shouting).unwrap().id(), "email-pop");
    assert_eq!(
        defs.for_account(&alice_exchange()).unwrap().id(),
        "exchange"
    );
    assert_eq!(
        defs.for_account(&alice_oauth()).unwrap().id(),
        "exchange-oauth"
    );
}

#[test]
fn an_account_type_without_a_definition_gets_none() {
    let dir = folder(&[("email.toml", EMAIL)]);
    let defs = Definitions::load(dir.path()).unwrap();
    assert!(defs.for_account(&alice_exchange()).is_none());
}

#[test]
fn a_domain_limited_definition_does_not_catch_other_domains() {
    let limited = format!("domains = [\"example.org\"]\n{EMAIL}");
    let dir = folder(&[("email.toml", &limited)]);
    let defs = Definitions::load(dir.path()).unwrap();
    assert!(defs.for_account(&alice_email()).is_none());
}

#[test]
fn a_folder_without_definitions_says_what_to_add() {
    let dir = folder(&[("README.md", "not a definition"), (".hidden.toml", EMAIL)]);
    let err = Definitions::load(dir.path()).unwrap_err();
    assert!(matches!(err, DefinitionError::Empty { .. }), "{err}");
    assert!(err.to_string().contains("add one *.toml file"), "{err}");
}

#[test]
fn a_missing_folder_is_named() {
    let err = Definitions::load(Path::new("/nonexistent/profiles")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read profile definitions from /nonexistent/profiles:"),
        "{err}"
    );
}

#[test]
fn every_broken_file_is_reported_with_file_key_and_reason() {
    let unknown_variable = EMAIL.replace("name = \"Mail\"", "name = \"Mail of {{first_name}}\"");
    let unknown_key = EXCHANGE.replace("tls = true", "tls = true\nport = 443");
    let dir = folder(&[
        ("a.toml", &unknown_variable),
        ("b.toml", &unknown_key),
        ("c.toml", "name = ["),
    ]);
    let err = Definitions::load(dir.path()).unwrap_err();
    let messages = messages(&err, dir.path());
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(
        messages[0],
        "a.toml: key name: unknown variable {{first_name}} (known: {{display_name}}, \
         {{user_email}}, {{email_address}})"
    );
    assert!(
        messages[1].starts_with("b.toml:8: key exchange.port: unknown field `port`"),
        "{}",
        messages[1]
    );
    assert!(messages[2].starts_with("c.toml:1: "), "{}", messages[2]);
}

#[test]
fn definitions_must_share_the_identifier_prefix() {
    let other = EXCHANGE.replace("com.example.mail", "org.example.mail");
    let dir = folder(&[("email.toml", EMAIL), ("exchange.toml", &other)]);
    let err = Definitions::load(dir.path()).unwrap_err();
    let messages = messages(&err, dir.path());
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].starts_with(
            "exchange.toml: key identifier_prefix: \"org.example.mail\" differs from \
             \"com.example.mail\" in "
        ),
        "{}",
        messages[0]
    );
}

#[test]
fn two_definitions_claiming_the_same_accounts_are_ambiguous() {
    let a = format!("domains = [\"example.com\", \"example.org\"]\n{EMAIL}");
    let b = format!("domains = [\"EXAMPLE.org\"]\n{EMAIL}");
    let dir = folder(&[
        ("a.toml", &a),
        ("b.toml", &b),
        ("c.toml", EMAIL),
        ("d.toml", EMAIL),
    ]);
    let err = Definitions::load(dir.path()).unwrap_err();
    let messages = messages(&err, dir.path());
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("b.toml: key domains: "),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].ends_with("a.toml already applies to email accounts in example.org; which one should win is ambiguous"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].starts_with("d.toml: key account_type: "),
        "{}",
        messages[1]
    );
    assert!(
        messages[1].contains("email accounts of any domain"),
        "{}",
        messages[1]
    );
}
