//! Stable identity: the same data renders to the same bytes, identifiers depend on who and
//! what an account is rather than on its settings, and the profile identifier depends on
//! the user alone.

use mdm_mail::model::{Account, AccountDetails, Platform, Secret};
use mdm_mail::profile::{RenderError, RenderOptions, SkipReason, profile_identifier, render};

use super::{alice_all, alice_email, alice_exchange, definitions, render_ok};

#[test]
fn rendering_twice_gives_identical_bytes_on_every_platform() {
    for platform in Platform::ALL {
        let first = render_ok(&alice_all(), platform);
        let second = render_ok(&alice_all(), platform);
        assert_eq!(first, second, "{platform}");
    }
}

#[test]
fn the_order_accounts_arrive_in_does_not_matter() {
    let mut reversed = alice_all();
    reversed.reverse();
    for platform in Platform::ALL {
        assert_eq!(
            render_ok(&alice_all(), platform),
            render_ok(&reversed, platform),
            "{platform}"
        );
    }
}

#[test]
fn the_profile_identifier_depends_on_the_user_alone() {
    let all = render_ok(&alice_all(), Platform::Ios);
    let one = render_ok(&[alice_exchange()], Platform::Ios);
    let shouting = {
        let mut a = alice_email();
        a.user_email = "ALICE@Example.com".into();
        a
    };
    let case = render(
        "ALICE@Example.com",
        &[shouting],
        Platform::Ios,
        &definitions(),
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(all.identifier, one.identifier);
    assert_eq!(all.identifier, case.identifier);
    assert_eq!(
        all.identifier,
        profile_identifier("com.example.mail", "alice@example.com")
    );
    for platform in Platform::ALL {
        assert_eq!(render_ok(&alice_all(), platform).identifier, all.identifier);
    }
}

#[test]
fn changed_settings_keep_the_account_identity_so_devices_update_in_place() {
    let before = render_ok(&[alice_email()], Platform::Ios);
    let mut changed = alice_email();
    changed.user_display_name = "Alice Adams-Baker".into();
    if let AccountDetails::Email {
        incoming_password,
        display_name,
        ..
    } = &mut changed.details
    {
        *incoming_password = Some(Secret::new("rotated"));
        *display_name = "Alice Adams-Baker".into();
    }
    let after = render_ok(&[changed], Platform::Ios);
    assert_ne!(before.body, after.body);
    assert_eq!(before.identifier, after.identifier);
    assert_eq!(before.accounts, after.accounts, "same account UUIDs");
}

#[test]
fn different_accounts_and_users_get_different_identities() {
    let alice = render_ok(&alice_all(), Platform::Windows);
    let mut uuids: Vec<_> = alice.accounts.iter().map(|a| a.uuid).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), 4);
    let bob: Vec<Account> = alice_all()
        .into_iter()
        .map(|mut a| {
            a.user_email = "bob@example.com".into();
            a
        })
        .collect();
    let bob = render_ok(&bob, Platform::Windows);
    assert_ne!(alice.identifier, bob.identifier);
    for (a, b) in alice.accounts.iter().zip(&bob.accounts) {
        assert_ne!(a.uuid, b.uuid);
    }
}

#[test]
fn a_user_without_accounts_gets_an_error_not_an_empty_profile() {
    let err = render(
        "alice@example.com",
        &[],
        Platform::Ios,
        &definitions(),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "alice@example.com has no mail accounts, so there is no profile to render"
    );
}

#[test]
fn accounts_no_definition_applies_to_are_skipped_with_the_reason() {
    let only_email = tempfile::tempdir().unwrap();
    std::fs::copy(
        super::fixture_dir("profiles/email.toml"),
        only_email.path().join("email.toml"),
    )
    .unwrap();
    let defs = mdm_mail::profile::Definitions::load(only_email.path()).unwrap();
    let rendered = render(
        "alice@example.com",
        &[alice_email(), alice_exchange()],
        Platform::Ios,
        &defs,
        &RenderOptions::default(),
    )
    .unwrap();
    assert_eq!(rendered.accounts.len(), 1);
    assert_eq!(rendered.skipped.len(), 1);
    assert_eq!(rendered.skipped[0].reason, SkipReason::NoDefinition);
    let err = render(
        "alice@example.com",
        &[alice_exchange()],
        Platform::Ios,
        &defs,
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::NothingToRender { .. }));
    assert!(
        err.to_string().contains("no profile definition applies"),
        "{err}"
    );
}

#[test]
fn accounts_of_another_user_or_twice_the_same_are_refused() {
    let mut bobs = alice_email();
    bobs.user_email = "bob@example.com".into();
    let err = render(
        "alice@example.com",
        &[alice_exchange(), bobs],
        Platform::Ios,
        &definitions(),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "account alice@example.com belongs to bob@example.com, not to alice@example.com"
    );
    let mut twin = alice_email();
    twin.address = "Alice@Example.com".into();
    let err = render(
        "alice@example.com",
        &[alice_email(), twin],
        Platform::Ios,
        &definitions(),
        &RenderOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RenderError::DuplicateAccount { .. }), "{err}");
}
