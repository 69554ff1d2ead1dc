//! Push against NanoMDM as it really answers (see `mdm`): one job is one command across
//! every attempt, a command NanoMDM stored is sent whatever became of its APNs push, an
//! enrollment NanoMDM does not know fails at once, no device answer is lost while other
//! requests are still out, what a device holds is what it acknowledged last, and a command
//! left unanswered is overdue, its device nudged, and an install sent again once.

use std::sync::Arc;
use std::time::Duration;

use mdm_mail::model::AccountKind;
use mdm_mail::model::Secret;
use mdm_mail::profile::profile_identifier;
use mdm_mail::push::events::{self, Receipt};
use mdm_mail::push::{PushSettings, Pusher, Status};
use mdm_mail::store::Store;

use super::mdm::{Command, FakeMdm, Reply, device_answer, sign};
use super::{import_accounts, jobs_in, profile_dict, profiles, settings, world};
use crate::support::{TestDb, store_test};

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

/// Settings under which device answers come (NanoMDM's webhook is configured) and are
/// overdue after `wait`.
fn answering(db: &TestDb, mdm: &FakeMdm, wait: Duration) -> PushSettings {
    PushSettings {
        nanomdm_webhook_key: Some(Secret::new(KEY)),
        answer_overdue: wait,
        ..settings(db, mdm)
    }
}

async fn status(store: &Store) -> Status {
    mdm_mail::push::status(store, None, 10).await.unwrap()
}

/// The devices listed as overdue, sorted (jobs sent at once may be listed in any order).
fn overdue_devices(status: &Status) -> Vec<&str> {
    let mut devices: Vec<&str> = status
        .overdue
        .iter()
        .map(|j| j.device_id.as_str())
        .collect();
    devices.sort_unstable();
    devices
}

/// How many times `/v1/push` was asked to push to `enrollment_id`.
fn nudges_of(mdm: &FakeMdm, enrollment_id: &str) -> usize {
    mdm.pushed()
        .iter()
        .filter(|id| *id == enrollment_id)
        .count()
}

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

store_test! {
    async fn a_command_left_unanswered_is_overdue_its_device_nudged_and_acknowledged_once_it_answers(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), answering(&db, &mdm, Duration::from_secs(1)));
        pusher.after_change().await.unwrap();
        let sent = pusher.run().await.unwrap();
        assert_eq!((sent.sent, sent.nudged), (3, 0), "{sent:?}");
        let fresh = status(&store).await;
        assert_eq!((fresh.jobs.overdue, fresh.overdue.len()), (0, 0), "not overdue yet: {fresh:?}");

        // The worker inside serve reminds on its own.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = pusher.spawn_worker(stopped).unwrap();
        let started = std::time::Instant::now();
        while mdm.pushed().len() < 2 {
            assert!(started.elapsed() < Duration::from_secs(10), "never nudged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(true).unwrap();
        worker.await.unwrap();
        let mut pushed = mdm.pushed();
        pushed.sort();
        assert_eq!(pushed, ["IPHONE-A", "MAC-A:501"], "each on the channel its command went to");
        assert_eq!(mdm.accepted().len(), 2, "a nudge queues no second command");

        let overdue = status(&store).await;
        assert_eq!(overdue.jobs.overdue, 2, "{overdue:?}");
        assert_eq!(overdue_devices(&overdue), ["IPHONE-A", "MAC-A"], "the folder's Windows job awaits nothing");
        assert!(overdue.overdue.iter().all(|j| j.nudges == 1 && j.kind == "install" && !j.resent), "{overdue:?}");
        assert!(overdue.overdue.iter().all(|j| j.waiting_seconds >= 0), "{overdue:?}");
        let mac = overdue.devices.iter().find(|d| d.device_id == "MAC-A").unwrap();
        assert_eq!((mac.sent, mac.overdue), (1, 1), "{mac:?}");

        let soon = pusher.run().await.unwrap();
        assert_eq!(soon.nudged, 0, "not nudged again before its time: {soon:?}");

        let iphone = stored_for(&mdm, "IPHONE-A");
        assert_eq!(answer(&store, &iphone, "Acknowledged", None).await, APPLIED);
        let answered = status(&store).await;
        assert_eq!((answered.jobs.acknowledged, answered.jobs.overdue), (1, 1), "{answered:?}");
        assert_eq!(overdue_devices(&answered), ["MAC-A"]);
        assert_eq!(mdm.accepted().len(), 2, "no command was enqueued twice");
    }
}

store_test! {
    async fn an_install_never_answered_is_sent_again_once_under_a_new_command_then_only_listed(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), answering(&db, &mdm, Duration::from_millis(40)));
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        let first = stored_for(&mdm, "IPHONE-A");

        // push run reminds each time it runs; run it until nothing more is planned.
        let started = std::time::Instant::now();
        let mut sent_again = 0;
        loop {
            sent_again += pusher.run().await.unwrap().sent_again;
            let planned = db.scalar_i64("SELECT COUNT(*) FROM push_jobs WHERE remind_at IS NOT NULL OR state = 'queued'").await;
            if planned == 0 && sent_again == 2 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "reminders never ended ({sent_again} sent again)");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(pusher.run().await.unwrap().nudged, 0, "nothing more once done");
        }

        let commands: Vec<Command> = mdm.accepted().into_iter().filter(|c| c.enrollment_id == "IPHONE-A").collect();
        assert_eq!(commands.len(), 2, "sent again once: {commands:?}");
        assert_ne!(commands[0].command_uuid, commands[1].command_uuid);
        assert!(commands.iter().all(|c| c.request_type == "InstallProfile"));
        let identifier = |c: &Command| profile_dict(c.payload.as_deref().unwrap()).get("PayloadIdentifier").cloned();
        assert_eq!(identifier(&commands[0]), identifier(&commands[1]), "the same profile, replaced in place");
        assert_eq!(nudges_of(&mdm, "IPHONE-A"), 6, "three nudges per command");

        let listed = status(&store).await;
        let iphone = listed.overdue.iter().find(|j| j.device_id == "IPHONE-A").unwrap();
        assert!(iphone.resent && iphone.nudges == 3, "{iphone:?}");

        // The first command's answer was lost; the one to the command sent again counts.
        let lost = answer(&store, &first, "Acknowledged", None).await;
        assert_eq!(lost, Receipt { matched: false, changed: false });
        assert_eq!(answer(&store, &commands[1], "Acknowledged", None).await, APPLIED);
        assert_eq!(jobs_in(&db, "acknowledged").await, 1);
    }
}

store_test! {
    async fn a_nudge_nanomdm_cannot_push_is_kept_as_a_note_in_push_status(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), answering(&db, &mdm, Duration::from_millis(100)));
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        mdm.remove_push_certificate();
        mdm.unenroll("MAC-A:501");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(pusher.run().await.unwrap().nudged, 2);
        let iphone = note_of(&store, "IPHONE-A").await;
        assert!(iphone.contains("push to wake it failed") && iphone.contains("retrieving push cert"), "{iphone}");
        let mac = note_of(&store, "MAC-A").await;
        assert!(mac.contains("MAC-A:501") && mac.contains("push data missing for id"), "{mac}");
        assert!(!mac.contains('{'), "a sentence: {mac}");
    }
}

store_test! {
    async fn jobs_sent_where_no_answer_can_come_are_never_overdue(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        // NanoMDM without its webhook key: mdm-mail hears no answers, nor does it from the
        // folder the Windows profile goes to.
        let quick = PushSettings { answer_overdue: Duration::from_millis(1), ..settings(&db, &mdm) };
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), quick);
        pusher.after_change().await.unwrap();
        assert_eq!(pusher.run().await.unwrap().sent, 3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pusher.run().await.unwrap().nudged, 0);
        let quiet = status(&store).await;
        assert_eq!((quiet.jobs.sent, quiet.jobs.overdue, quiet.overdue.len()), (3, 0, 0), "{quiet:?}");
        assert!(mdm.pushed().is_empty());
    }
}
