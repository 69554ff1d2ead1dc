//! The queue under failure: retries on 5xx and timeouts, immediate failure on 4xx, two
//! workers sharing one queue. The MDM's acknowledgements are in `webhook`.

use std::sync::Arc;
use std::time::Duration;

use mdm_mail::push::{Pusher, Worker};

use super::mdm::{FakeMdm, Reply};
use super::{fleet, import_accounts, jobs_in, profile_dict, profiles, settings, strings, world};
use crate::support::store_test;

store_test! {
    async fn a_500_is_retried_and_the_profile_delivered_once(db: TestDb) {
        let mdm = FakeMdm::start();
        let (_store, pusher) = world(&db, &mdm).await;
        mdm.script(&[Reply::Status(500)]);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.retried, report.failed), (3, 1, 0), "{report:?}");
        assert_eq!(mdm.requests(), 3, "two devices, one of them twice");
        let mut targets: Vec<String> = mdm.accepted().into_iter().map(|c| c.enrollment_id).collect();
        targets.sort();
        assert_eq!(targets, ["IPHONE-A", "MAC-A:501"], "each delivered exactly once");
        assert_eq!(db.scalar_i64("SELECT MAX(attempts) FROM push_jobs").await, 2);
    }
}

store_test! {
    async fn a_server_that_hangs_times_out_and_is_retried(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut settings = settings(&db, &mdm);
        settings.timeout = Duration::from_millis(300);
        let pusher = Pusher::new(store, Arc::new(profiles()), settings);
        mdm.script(&[Reply::Hang]);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.retried), (3, 1), "{report:?}");
        assert_eq!(mdm.accepted().len(), 2);
    }
}

store_test! {
    async fn a_4xx_fails_at_once_with_the_reason_and_can_be_retried(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut wrong = settings(&db, &mdm);
        if let Some(endpoint) = wrong.nanomdm.as_mut() {
            endpoint.api_key = mdm_mail::model::Secret::new("wrong key");
        }
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), wrong);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.failed, report.retried), (1, 2, 0), "{report:?}");
        let status = mdm_mail::push::status(&store, None, 10).await.unwrap();
        assert_eq!(status.jobs.failed, 2);
        let iphone = status.devices.iter().find(|d| d.device_id == "IPHONE-A").unwrap();
        assert!(iphone.last_error.as_deref().unwrap().contains("401"), "{iphone:?}");

        assert_eq!(mdm_mail::push::retry_failed(&store).await.unwrap(), 2);
        let fixed = Pusher::new(store, Arc::new(profiles()), settings(&db, &mdm));
        assert_eq!(fixed.run().await.unwrap().sent, 2);
        assert_eq!(jobs_in(&db, "sent").await, 3);
    }
}

store_test! {
    async fn jobs_without_a_transport_stay_queued_with_a_status(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut apple_only = settings(&db, &mdm);
        apple_only.directory = None;
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), apple_only);
        pusher.after_change().await.unwrap();
        let report = pusher.run().await.unwrap();
        assert_eq!((report.sent, report.waiting), (2, 1), "{report:?}");
        assert_eq!(jobs_in(&db, "queued").await, 1);
        let status = mdm_mail::push::status(&store, None, 10).await.unwrap();
        let pc = status.devices.iter().find(|d| d.device_id == "WIN-B").unwrap();
        assert!(pc.last_error.as_deref().unwrap().contains("no transport for windows"), "{pc:?}");
    }
}

store_test! {
    async fn a_job_waiting_for_a_transport_goes_out_at_once_through_a_worker_that_has_one(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut apple_only = settings(&db, &mdm);
        apple_only.directory = None;
        let without = Pusher::new(store.clone(), Arc::new(profiles()), apple_only);
        without.after_change().await.unwrap();
        assert_eq!(without.run().await.unwrap().waiting, 1);
        let again = without.run().await.unwrap();
        assert_eq!((again.sent, again.waiting), (0, 1), "still waiting, and said so: {again:?}");

        let with = Pusher::new(store.clone(), Arc::new(profiles()), settings(&db, &mdm));
        let started = std::time::Instant::now();
        let report = with.run().await.unwrap();
        assert_eq!((report.sent, report.waiting), (1, 0), "{report:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "not put off: {:?}", started.elapsed());
        assert_eq!(jobs_in(&db, "queued").await, 0);
        let files = crate::support::entries_under(&db.dir.path().join("drop"));
        assert!(files.iter().any(|f| f.to_string_lossy().contains("WIN-B")), "{files:?}");
    }
}

store_test! {
    async fn two_workers_never_send_the_same_job(db: TestDb) {
        let mdm = FakeMdm::start();
        mdm.delay(Duration::from_millis(2));
        let store = db.open().await;
        fleet(&store, 120).await;
        let pusher = Pusher::new(store.clone(), Arc::new(profiles()), settings(&db, &mdm));
        assert_eq!(pusher.after_change().await.unwrap().installs, 120);
        let one: Worker = pusher.worker().unwrap();
        let two: Worker = pusher.worker().unwrap();
        let (a, b) = tokio::join!(one.drain(), two.drain());
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.sent + b.sent, 120, "{a:?} {b:?}");
        let mut targets: Vec<String> = mdm.accepted().into_iter().map(|c| c.enrollment_id).collect();
        targets.sort();
        let before = targets.len();
        targets.dedup();
        assert_eq!((before, targets.len()), (120, 120), "no enrollment received a job twice");
    }
}

store_test! {
    async fn a_newer_decision_replaces_a_failed_job_so_retry_never_sends_a_stale_profile(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut wrong = settings(&db, &mdm);
        if let Some(endpoint) = wrong.nanomdm.as_mut() {
            endpoint.api_key = mdm_mail::model::Secret::new("wrong key");
        }
        let failing = Pusher::new(store.clone(), Arc::new(profiles()), wrong);
        failing.after_change().await.unwrap();
        failing.run().await.unwrap();
        assert_eq!(jobs_in(&db, "failed").await, 2, "Alice's iPhone and Mac");

        // Alice's password changes while those installs sit failed.
        import_accounts(
            &store,
            mdm_mail::model::AccountKind::Email,
            "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-secret-2,alice,smtp-secret-1\n",
        )
        .await;
        let fixed = Pusher::new(store.clone(), Arc::new(profiles()), settings(&db, &mdm));
        assert_eq!(fixed.after_change().await.unwrap().installs, 2);
        assert_eq!(jobs_in(&db, "failed").await, 0, "superseded by the new installs");
        assert_eq!(mdm_mail::push::retry_failed(&store).await.unwrap(), 0);
        assert_eq!(fixed.run().await.unwrap().sent, 2);
        for command in mdm.accepted() {
            let values = strings(&plist::Value::Dictionary(profile_dict(
                command.payload.as_deref().unwrap(),
            )));
            assert!(values.iter().any(|v| v == "imap-secret-2"), "{values:?}");
            assert!(!values.iter().any(|v| v == "imap-secret-1"), "{values:?}");
        }
    }
}
