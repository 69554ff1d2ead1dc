//! Snapshots of each platform × account type. Identifiers are derived, not random, so the
//! snapshots are fixed; a change in them is a change devices will see.

use mdm_mail::model::{Account, Platform};
use mdm_mail::profile::windows::{self, SyncHeader, SyncMlCommand, SyncMlForm};
use mdm_mail::profile::{RenderOptions, render};

use super::{alice_email, alice_exchange, definitions, render_ok, render_with, text};

fn snapshot(platform: Platform, kind: &str, accounts: &[Account]) {
    let name = format!("{platform}_{kind}");
    match render(
        &accounts[0].user_email,
        accounts,
        platform,
        &definitions(),
        &RenderOptions::default(),
    ) {
        Ok(rendered) => insta::assert_snapshot!(name, text(&rendered)),
        Err(e) => insta::assert_snapshot!(name, format!("error: {e}")),
    }
}

#[test]
fn each_platform_and_account_type_renders_as_recorded() {
    for platform in Platform::ALL {
        snapshot(platform, "email", &[alice_email()]);
        snapshot(platform, "exchange", &[alice_exchange()]);
    }
}

#[test]
fn windows_message_update_and_removal_render_as_recorded() {
    let message = RenderOptions {
        syncml: SyncMlForm::Message(SyncHeader {
            session_id: "1".into(),
            msg_id: 1,
            target: "urn:uuid:00000000-0000-4000-8000-000000000001".into(),
            source: "https://mdm.example.com/ManagementServer/MDM.svc".into(),
        }),
        ..RenderOptions::default()
    };
    let rendered = render_with(&[alice_email()], Platform::Windows, &message);
    insta::assert_snapshot!("windows_email_message", text(&rendered));

    let update = RenderOptions {
        syncml_command: SyncMlCommand::Replace,
        ..RenderOptions::default()
    };
    let rendered = render_with(&[alice_exchange()], Platform::Windows, &update);
    insta::assert_snapshot!("windows_exchange_replace", text(&rendered));

    let both = render_ok(&[alice_email(), alice_exchange()], Platform::Windows);
    let removal = windows::removal(&both.accounts, &SyncMlForm::Fragment).unwrap();
    insta::assert_snapshot!("windows_removal", String::from_utf8(removal).unwrap());
}
