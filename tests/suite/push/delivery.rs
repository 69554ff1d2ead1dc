//! What devices receive: installs after an import, nothing when nothing changed, only the
//! changed user's devices after a change, removals when accounts go away, files in the
//! folder transport's folder whatever the device id.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use mdm_mail::model::AccountKind;
use mdm_mail::profile::files::safe_name;
use mdm_mail::profile::profile_identifier;
use mdm_mail::push::JobKind;

use super::mdm::FakeMdm;
use super::{EMAIL, import_accounts, jobs_in, load_devices, profile_dict, strings, world};
use crate::support::{entries_under, store_test};

store_test! {
    async fn an_import_installs_each_users_profile_on_each_of_their_devices(db: TestDb) {
        let mdm = FakeMdm::start();
        let (_store, pusher) = world(&db, &mdm).await;
        let report = pusher.after_change().await.unwrap();
        assert_eq!((report.installs, report.removals), (3, 0), "{report:?}");
        let drained = pusher.run().await.unwrap();
        assert_eq!(drained.sent, 3);

        let mut accepted = mdm.accepted();
        accepted.sort_by(|a, b| a.enrollment_id.cmp(&b.enrollment_id));
        let targets: Vec<&str> = accepted.iter().map(|c| c.enrollment_id.as_str()).collect();
        // The Mac gets its mail profile on the user channel, the iPhone on the device channel.
        assert_eq!(targets, ["IPHONE-A", "MAC-A:501"]);
        let alice = profile_identifier("com.example.mail", "alice@example.com");
        for command in &accepted {
            assert_eq!(command.request_type, "InstallProfile");
            let profile = profile_dict(command.payload.as_deref().unwrap());
            assert_eq!(profile["PayloadIdentifier"].as_string(), Some(alice.as_str()));
            let values = strings(&plist::Value::Dictionary(profile));
            assert!(values.iter().any(|v| v == "alice@mail.example.com"));
            assert!(values.iter().any(|v| v == "imap-secret-1"));
            assert!(!values.iter().any(|v| v.contains("bob")), "only alice's accounts");
        }
        // Bob's Windows PC gets its SyncML through the folder transport.
        let bob = profile_identifier("com.example.mail", "bob@example.com");
        let dropped = std::fs::read_to_string(db.dir.path().join(format!("drop/WIN-B/{bob}.xml"))).unwrap();
        assert!(dropped.contains("<Atomic>") && dropped.contains("bob@mail.example.com"));
        assert_eq!(jobs_in(&db, "sent").await, 3);
    }
}

store_test! {
    async fn an_unchanged_reimport_sends_nothing(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        import_accounts(&store, AccountKind::Email, EMAIL).await;
        let again = pusher.after_change().await.unwrap();
        assert_eq!((again.installs, again.removals, again.unchanged), (0, 0, 3), "{again:?}");
        assert_eq!(pusher.run().await.unwrap().sent, 0);
        assert_eq!(mdm.requests(), 2);
    }
}

store_test! {
    async fn a_changed_password_reinstalls_on_that_users_devices_only(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        import_accounts(
            &store,
            AccountKind::Email,
            "alice@example.com,Alice Adams,alice@mail.example.com,alice,imap-secret-2,alice,smtp-secret-1\n",
        )
        .await;
        let report = pusher.after_change().await.unwrap();
        let mut devices: Vec<&str> = report.jobs.iter().map(|j| j.device.as_str()).collect();
        devices.sort_unstable();
        assert_eq!(devices, ["IPHONE-A", "MAC-A"], "{report:?}");
        assert!(report.jobs.iter().all(|j| j.kind == JobKind::Install));
        pusher.run().await.unwrap();
        let accepted = mdm.accepted();
        assert_eq!(accepted.len(), 4);
        for command in &accepted[2..] {
            let values = strings(&plist::Value::Dictionary(profile_dict(command.payload.as_deref().unwrap())));
            assert!(values.iter().any(|v| v == "imap-secret-2"));
        }
    }
}

store_test! {
    async fn a_deleted_account_removes_the_profile_by_identifier(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        let deleted = mdm_mail::accounts::delete(&store, "test", "ALICE@example.com", AccountKind::Email, "alice@mail.example.com")
            .await
            .unwrap();
        assert!(deleted);
        let report = pusher.after_change().await.unwrap();
        assert_eq!((report.installs, report.removals), (0, 2), "{report:?}");
        pusher.run().await.unwrap();
        let alice = profile_identifier("com.example.mail", "alice@example.com");
        let removals: Vec<_> = mdm.accepted().into_iter().skip(2).collect();
        assert_eq!(removals.len(), 2);
        for command in removals {
            assert_eq!(command.request_type, "RemoveProfile");
            assert_eq!(command.identifier.as_deref(), Some(alice.as_str()));
        }
        // Nothing more to do afterwards.
        let again = pusher.after_change().await.unwrap();
        assert_eq!(again.installs + again.removals, 0);
    }
}

store_test! {
    async fn an_account_removed_before_its_profile_went_out_sends_nothing(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        let queued = pusher.after_change().await.unwrap();
        assert_eq!(queued.installs, 3, "{queued:?}");
        let removed = mdm_mail::accounts::delete(&store, "test", "alice@example.com", AccountKind::Email, "alice@mail.example.com")
            .await
            .unwrap();
        assert!(removed);

        let dry = pusher.sync(true).await.unwrap();
        assert_eq!(dry.removals, 2, "a dry run cannot tell: {dry:?}");
        let report = pusher.after_change().await.unwrap();
        assert_eq!((report.installs, report.removals, report.removals_not_needed), (0, 0, 2), "{report:?}");
        assert!(report.jobs.is_empty(), "{report:?}");
        pusher.run().await.unwrap();
        let sent: Vec<String> = mdm.accepted().into_iter().map(|c| c.enrollment_id).collect();
        assert!(sent.is_empty(), "nothing for Alice's devices, Bob's PC goes elsewhere: {sent:?}");
        assert_eq!(jobs_in(&db, "queued").await + jobs_in(&db, "failed").await, 0);
    }
}

store_test! {
    async fn devices_that_cannot_take_the_profile_get_a_status_not_a_command(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        load_devices(
            &store,
            "user_email,device_id,platform,enrollment_id,user_channel_id\n\
             alice@example.com,MAC-NO-USER,macos,MAC-NO-USER,\n\
             alice@example.com,PIXEL-A,android,PIXEL-A,\n",
        )
        .await;
        let report = pusher.after_change().await.unwrap();
        let devices: Vec<&str> = report.jobs.iter().map(|j| j.device.as_str()).collect();
        assert!(!devices.contains(&"MAC-NO-USER") && !devices.contains(&"PIXEL-A"), "{devices:?}");
        let status = |device: &str| {
            report.statuses.iter().find(|s| s.device == device).map(|s| s.message.clone()).unwrap_or_default()
        };
        assert!(status("MAC-NO-USER").contains("user_channel_id"), "{report:?}");
        assert!(status("PIXEL-A").contains("android"), "{report:?}");
        let listed = mdm_mail::push::status(&store, None, 100).await.unwrap();
        let mac = listed.devices.iter().find(|d| d.device_id == "MAC-NO-USER").unwrap();
        assert!(mac.status.as_deref().unwrap().contains("user channel"));
    }
}

store_test! {
    async fn micromdm_receives_json_commands_with_the_profile_in_base64(db: TestDb) {
        let mdm = FakeMdm::start();
        let store = crate::import::store_with_users(&db).await;
        load_devices(&store, &std::fs::read_to_string(crate::support::fixture("devices.csv")).unwrap()).await;
        import_accounts(&store, AccountKind::Email, EMAIL).await;
        let mut settings = crate::push::settings(&db, &mdm);
        settings.micromdm = settings.nanomdm.take();
        let pusher = mdm_mail::push::Pusher::new(store.clone(), std::sync::Arc::new(crate::push::profiles()), settings);
        pusher.after_change().await.unwrap();
        assert_eq!(pusher.run().await.unwrap().sent, 3);
        let accepted = mdm.accepted();
        assert_eq!(accepted.len(), 2);
        let alice = profile_identifier("com.example.mail", "alice@example.com");
        for command in accepted {
            assert_eq!(command.request_type, "InstallProfile");
            let profile = profile_dict(command.payload.as_deref().unwrap());
            assert_eq!(profile["PayloadIdentifier"].as_string(), Some(alice.as_str()));
        }
    }
}

store_test! {
    async fn windows_profiles_update_in_place_and_rebuild_when_accounts_change(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        pusher.run().await.unwrap();
        let bob = profile_identifier("com.example.mail", "bob@example.com");
        let file = db.dir.path().join(format!("drop/WIN-B/{bob}.xml"));
        assert!(std::fs::read_to_string(&file).unwrap().contains("<Add>"));

        // A changed password: the same account node, its settings replaced.
        import_accounts(&store, AccountKind::Email, "bob@example.com,\"Baker, Bob\",bob@mail.example.com,bob,new-secret,bob,\n").await;
        let report = pusher.after_change().await.unwrap();
        assert_eq!((report.installs, report.removals), (1, 0), "{report:?}");
        pusher.run().await.unwrap();
        let updated = std::fs::read_to_string(&file).unwrap();
        assert!(updated.contains("<Replace>") && !updated.contains("<Add>"), "{updated}");
        assert!(updated.contains("new-secret"));

        // A second account: the old nodes are deleted and the new set added.
        import_accounts(&store, AccountKind::Email, "bob@example.com,Bob,bob@other.example.com,bob2,,bob2,\n").await;
        let report = pusher.after_change().await.unwrap();
        let kinds: Vec<JobKind> = report.jobs.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [JobKind::Remove, JobKind::Install], "{report:?}");
        assert_eq!((report.installs, report.removals, report.replacements), (0, 0, 1), "a replacement, not a removal: {report:?}");
        pusher.run().await.unwrap();
        let removal = std::fs::read_to_string(db.dir.path().join(format!("drop/WIN-B/{bob}.remove.xml"))).unwrap();
        assert!(removal.contains("<Delete>"), "{removal}");
        let rebuilt = std::fs::read_to_string(&file).unwrap();
        assert!(rebuilt.contains("<Add>") && rebuilt.contains("bob@other.example.com"), "{rebuilt}");
    }
}

store_test! {
    async fn each_device_gets_a_folder_of_its_own_inside_the_drop_folder_whatever_its_id(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        // Device ids are free text. Before ids went through `safe_name` these climbed out of
        // the folder, wrote into the folder itself (`..`), or shared one folder (`+` and `_`).
        let long = "W".repeat(300);
        let ids = ["../WIN-UP", "/abs/WIN-ABS", ".WIN-HIDDEN", "..", "a/./b", "WIN+1", "WIN_1", &long];
        let mut devices = String::from("user_email,device_id,platform,enrollment_id\n");
        for id in ids {
            devices.push_str(&format!("bob@example.com,{id},windows,{id}\n"));
        }
        load_devices(&store, &devices).await;
        // The SQLite store's own files come and go as it pleases; nothing else may appear.
        let written = || -> BTreeSet<_> {
            entries_under(db.dir.path())
                .into_iter()
                .filter(|path| !path.file_name().unwrap().to_string_lossy().starts_with("test.db"))
                .collect()
        };
        let before = written();
        pusher.after_change().await.unwrap();
        assert_eq!(pusher.run().await.unwrap().sent, 3 + ids.len() as u64);

        let bob = profile_identifier("com.example.mail", "bob@example.com");
        let drop = db.dir.path().join("drop");
        let mut expected = BTreeSet::from([drop.clone()]);
        for id in ["WIN-B"].into_iter().chain(ids) {
            let folder = drop.join(safe_name(id));
            let file = folder.join(format!("{bob}.xml"));
            let content = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert!(content.contains("bob@mail.example.com"), "{id}: {content}");
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{id}");
            expected.extend([folder, file]);
        }
        assert_eq!(expected.len(), 2 * (1 + ids.len()) + 1, "one folder per device");
        let new: BTreeSet<_> = written().difference(&before).cloned().collect();
        assert_eq!(new, expected);
        assert!(!std::path::Path::new("/abs/WIN-ABS").exists());
    }
}

store_test! {
    async fn the_webhook_transport_posts_signed_json(db: TestDb) {
        use base64::Engine;
        let mdm = FakeMdm::start();
        let (store, _) = world(&db, &mdm).await;
        let mut settings = crate::push::settings(&db, &mdm);
        settings.directory = None;
        settings.webhook = Some(mdm_mail::push::settings::WebhookEndpoint {
            url: format!("{}/hook", mdm.url),
            secret: mdm_mail::model::Secret::new("hook-secret"),
        });
        let pusher = mdm_mail::push::Pusher::new(store, std::sync::Arc::new(crate::push::profiles()), settings);
        pusher.after_change().await.unwrap();
        assert_eq!(pusher.run().await.unwrap().sent, 3);
        let hooks = mdm.hooks();
        assert_eq!(hooks.len(), 1, "only the Windows PC goes to the webhook");
        let (signature, body) = &hooks[0];
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"hook-secret").unwrap();
        mac.update(body);
        let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(signature.as_deref(), Some(format!("sha256={expected}").as_str()));
        let event: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(event["device"], "WIN-B");
        assert_eq!(event["platform"], "windows");
        assert_eq!(event["kind"], "install");
        assert_eq!(event["identifier"], profile_identifier("com.example.mail", "bob@example.com"));
        let content = base64::engine::general_purpose::STANDARD.decode(event["content"].as_str().unwrap()).unwrap();
        assert!(String::from_utf8(content).unwrap().contains("bob@mail.example.com"));
    }
}

store_test! {
    async fn a_windows_rebuild_whose_first_install_never_went_out_is_a_plain_install(db: TestDb) {
        let mdm = FakeMdm::start();
        let (store, pusher) = world(&db, &mdm).await;
        pusher.after_change().await.unwrap();
        import_accounts(&store, AccountKind::Email, "bob@example.com,Bob,bob@other.example.com,bob2,,bob2,\n").await;
        let report = pusher.after_change().await.unwrap();
        assert_eq!(
            (report.installs, report.removals, report.replacements, report.removals_not_needed),
            (1, 0, 0, 1),
            "{report:?}"
        );
        let kinds: Vec<JobKind> = report.jobs.iter().map(|j| j.kind).collect();
        assert_eq!(kinds, [JobKind::Install], "{report:?}");
    }
}
