//! Push against NanoMDM as it really answers (see `mdm`): one job is one command across
//! every attempt, a command NanoMDM stored is sent whatever became of its APNs push, an
//! enrollment NanoMDM does not know fails at once, no device answer is lost while other
//! requests are still out, and what a device holds is what it acknowledged last.

use std::sync::Arc;
use std::time::Duration;

use mdm_mail::model::AccountKind;
use mdm_mail::profile::profile_identifier;
use mdm_mail::push::Pusher;
use mdm_mail::push::events::{self, Receipt};
use mdm_mail::store::Store;

use super::mdm::{Command, FakeMdm, Reply, device_answer, sign};
use super::{import_accounts, jobs_in, profiles, settings, world};
use crate::support::store_test;

/// The webhook key the device answers are signed with.
const KEY: &str = "hook-key";

/// Delivers the device's answer to `command` as NanoMDM's webhook does.
async fn answer(store: &Store, command: &Command, status: &str, error: Option<&str>) -> Receipt {
    let body = device_answer(command, status, error);
    events::receive(store, KEY.as_bytes(), &body, Some(&sign(KEY, &body)))
        .await
        .unwrap()
        .unwrap()
}

/// The command NanoMDM stored last for `enrollment_id`.
fn stored_for(mdm: &FakeMdm, enrollment_id: &str) -> Command {
    mdm.accepted()
        .into_iter()
        .rev()
        .find(|c| c.enrollment_id == enrollment_id)
        .unwrap_or_else(|| panic!("nothing stored for {enrollment_id}"))
}

/// The latest error or note shown for `device` in `push status`.
async fn note_of(store: &Store, device: &str) -> String {
    let status = mdm_mail::push::status(store, None, 10).await.unwrap();
    status
        .devices
        .into_iter()
        .find(|d| d.device_id == device)
        .and_then(|d| d.last_error)
        .unwrap_or_default()
}

const APPLIED: Receipt = Receipt {
    matched: true,
    changed: true,
};

store_test! {
    async fn a_command_nanomdm_stored_but_could_not_push_is_sent_once_with_the_push_error_as_a_note(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        mdm.script(&[Reply::PushFails, Reply::PushFails]);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.retried, report.failed), (3, 0, 0), "{report:?}");
        assert_eq!(mdm.requests(), 2, "never enqueued again");
        let note = note_of(&store, "IPHONE-A").await;
        assert!(note.contains("APNs push failed") && note.contains("retrieving push cert"), "{note}");
        assert!(!note.contains('{') && !note.contains("\\n"), "a sentence, not JSON: {note}");
        for enrollment in ["IPHONE-A", "MAC-A:501"] {
            let command = stored_for(&mdm, enrollment);
            assert_eq!(answer(&store, &command, "Acknowledged", None).await, APPLIED);
        }
        assert_eq!(jobs_in(&db, "acknowledged").await, 2);
    }
}

store_test! {
    async fn a_retry_after_a_timeout_repeats_the_command_uuid_and_already_exists_counts_as_stored(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut settings = settings(&db, &mdm);
        settings.timeout = Duration::from_millis(300);
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), settings);
        mdm.script(&[Reply::StoreThenHang]);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.retried, report.failed), (3, 1, 0), "{report:?}");
        assert_eq!(mdm.requests(), 3, "one device asked twice");
        let stored = mdm.accepted();
        assert_eq!(stored.len(), 2, "one command per job: {stored:?}");
        for command in &stored {
            assert_eq!(answer(&store, command, "Acknowledged", None).await, APPLIED);
        }
        assert_eq!(jobs_in(&db, "acknowledged").await, 2);
    }
}

store_test! {
    async fn an_enrollment_nanomdm_does_not_know_fails_at_once_naming_it(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        mdm.unenroll("IPHONE-A");
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.retried, report.failed), (2, 0, 1), "{report:?}");
        assert_eq!(mdm.requests(), 2, "not asked again");
        let error = note_of(&store, "IPHONE-A").await;
        assert!(error.contains("IPHONE-A") && error.contains("not enrolled in NanoMDM"), "{error}");
        assert!(!error.contains('{'), "{error}");
        assert_eq!(jobs_in(&db, "failed").await, 1);
    }
}

store_test! {
    async fn a_device_answer_while_another_request_is_still_out_is_applied(db: TestDb) {
        let mdm = Arc::new(FakeMdm::start());
        let (store, pusher) = world(&db, &mdm).await;
        // Both Apple commands are stored; the Mac's answer is held back while both devices
        // answer, so neither job can have been recorded with the whole batch.
        mdm.hold("MAC-A:501");
        pusher.after_change().await.unwrap();
        let run = tokio::spawn({
            let pusher = pusher.clone();
            async move { pusher.run().await.unwrap() }
        });
        while mdm.accepted().len() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let iphone = stored_for(&mdm, "IPHONE-A");
        assert_eq!(answer(&store, &iphone, "Acknowledged", None).await, APPLIED);
        let mac = stored_for(&mdm, "MAC-A:501");
        let refused = answer(&store, &mac, "Error", Some("The profile is not signed.")).await;
        assert_eq!(refused, APPLIED);
        mdm.release();
        let report = run.await.unwrap();
        assert_eq!(report.sent, 3, "{report:?}");
        assert_eq!(jobs_in(&db, "acknowledged").await, 1);
        assert_eq!(jobs_in(&db, "failed").await, 1, "the Mac's refusal stays");
        assert!(note_of(&store, "MAC-A").await.contains("The profile is not signed."));
        let replay = answer(&store, &iphone, "Acknowledged", None).await;
        assert_eq!(replay, Receipt { matched: true, changed: false });
    }
}

store_test! {
    async fn a_refused_update_keeps_the_acknowledged_profile_so_a_removal_still_goes_out(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        for enrollment in ["IPHONE-A", "MAC-A:501"] {
            let command = stored_for(&mdm, enrollment);
            assert_eq!(answer(&store, &command, "Acknowledged", None).await, APPLIED);
        }
        import_accounts(
            &store,
            AccountKind::Email,
            "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-secret-2,alice,smtp-secret-1\n",
        )
        .await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        for enrollment in ["IPHONE-A", "MAC-A:501"] {
            let update = stored_for(&mdm, enrollment);
            let refused = answer(&store, &update, "Error", Some("The profile is not signed.")).await;
            assert_eq!(refused, APPLIED);
        }
        let deleted = mdm_mail::accounts::delete(&store, "test", "alice@example.com", AccountKind::Email, "alice@mail.example.com")
            .await
            .unwrap();
        assert!(deleted);
        let report = pusher.after_change().await.unwrap();
        assert_eq!((report.removals, report.removals_not_needed), (2, 0), "{report:?}");
        pusher.run().await.unwrap();
        let alice = profile_identifier("com.example.mail", "alice@example.com");
        for enrollment in ["IPHONE-A", "MAC-A:501"] {
            let removal = stored_for(&mdm, enrollment);
            assert_eq!(removal.request_type, "RemoveProfile");
            assert_eq!(removal.identifier.as_deref(), Some(alice.as_str()));
        }
    }
}
