//! Desired state against decided state: for every device, the profile its user's accounts
//! and the definitions call for on its platform, compared with what the last reconcile
//! queued for it; exactly the differences become jobs.
//!
//! A device whose sources (user, stored accounts with their password MACs, definitions,
//! signing identity, platform and channel) hash to the fingerprint stored at the last
//! reconcile cannot need anything new, so it is skipped without decrypting or rendering:
//! that is what keeps a reconcile that finds nothing to do cheap.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::PushError;
use crate::accounts::{UserAccounts, open_user};
use crate::crypto::to_hex;
use crate::model::{Account, Platform};
use crate::profile::{
    Profiles, RenderError, RenderOptions, Rendered, RenderedAccount, SyncMlCommand, render,
};
use crate::store::{NewJob, PushSource, Store, TargetDevice, TargetWrite};

/// Users read per page.
const PAGE: i64 = 5000;

/// Install or remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `InstallProfile`, or the SyncML that adds or replaces accounts.
    Install,
    /// `RemoveProfile`, or the SyncML that deletes accounts.
    Remove,
}

impl JobKind {
    /// The name stored in `push_jobs.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Install => "install",
            JobKind::Remove => "remove",
        }
    }
}

/// One job a reconcile queued (or, dry, would queue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedJob {
    /// The MDM's device id.
    pub device: String,
    /// Its platform.
    pub platform: Platform,
    /// Install or remove.
    pub kind: JobKind,
    /// The profile's identifier.
    pub identifier: String,
}

/// A device that gets no profile, or not all of one, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceStatus {
    /// The MDM's device id.
    pub device: String,
    /// Its platform.
    pub platform: Platform,
    /// Why.
    pub message: String,
}

/// What a reconcile found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Devices looked at.
    pub devices: u64,
    /// Devices whose sources had not changed since the last reconcile.
    pub unchanged: u64,
    /// Devices re-rendered whose profile came out the same.
    pub rendered_same: u64,
    /// Devices given their profile, new or changed, by an install alone.
    pub installs: u64,
    /// Devices whose profile is removed, with nothing installed instead.
    pub removals: u64,
    /// Devices whose profile is removed and installed anew, one removal and one install: a
    /// Windows device whose set of accounts changed (its accounts are deleted and the new set
    /// added, unchanged ones included), or a profile whose identifier changed. No account
    /// is taken away by a replacement that the device does not get back.
    pub replacements: u64,
    /// Removals not queued because the device was never sent that profile (its install,
    /// still queued or failed, was dropped instead). A dry run cannot tell, and counts
    /// them as removals (or replacements).
    pub removals_not_needed: u64,
    /// The batch the jobs were queued in, to follow them apart from the rest of the queue
    /// ([`super::batch_status`]); `None` when nothing was queued.
    pub batch: Option<uuid::Uuid>,
    /// The jobs, in device order.
    pub jobs: Vec<PlannedJob>,
    /// Devices with something to tell the admin.
    pub statuses: Vec<DeviceStatus>,
}

/// Reconciles every device; with `dry_run`, only reports what it would queue.
pub async fn reconcile(
    store: &Store,
    profiles: &Profiles,
    dry_run: bool,
) -> Result<ReconcileReport, PushError> {
    let sources = sources_fingerprint(profiles);
    // Looked up now, not when the process started: the key a first import creates serves
    // the reconcile that follows it.
    let keys = profiles
        .keys(store)
        .await
        .map_err(|e| format!("cannot open the stored passwords: {e}"));
    let mut report = ReconcileReport {
        dry_run,
        ..ReconcileReport::default()
    };
    let batch = uuid::Uuid::new_v4();
    let mut after = 0;
    loop {
        let page = store.push_sources_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.user.id;
        let mut targets = Vec::new();
        let mut jobs = Vec::new();
        // This page's jobs are planned in step with the report's: job i is report.jobs[first + i].
        let first = report.jobs.len();
        let mut changed = Vec::new();
        for source in page {
            let fingerprints: Vec<String> = source
                .devices
                .iter()
                .map(|d| fingerprint(&sources, &source, d))
                .collect();
            report.devices += source.devices.len() as u64;
            let unchanged = source
                .devices
                .iter()
                .zip(&fingerprints)
                .filter(|(d, f)| d.fingerprint.as_ref() == Some(*f))
                .count();
            report.unchanged += unchanged as u64;
            if unchanged < source.devices.len() {
                changed.push((source, fingerprints));
            }
        }
        let ids: Vec<i64> = changed.iter().map(|(s, _)| s.user.id).collect();
        let mut sealed: HashMap<i64, _> = store
            .users_with_accounts_by_id(&ids)
            .await?
            .into_iter()
            .map(|(user, accounts)| (user.id, (user, accounts)))
            .collect();
        for (source, fingerprints) in &changed {
            let opened = match (sealed.remove(&source.user.id), &keys) {
                (Some(_), Err(e)) => Err(e.clone()),
                (Some((user, accounts)), Ok(keys)) => open_user(keys, user, accounts)
                    .map_err(|e| format!("cannot open the stored passwords: {e}")),
                (None, _) => Err("the user was removed during the reconcile".to_owned()),
            };
            decide_user(
                profiles,
                source,
                fingerprints,
                &opened,
                &mut report,
                &mut targets,
                &mut jobs,
            )?;
        }
        if !dry_run {
            for i in store
                .write_reconcile(&targets, &jobs, batch)
                .await?
                .into_iter()
                .rev()
            {
                // The removal half of a replacement left out leaves a plain install.
                let replaced = report.jobs.get(first + i + 1).is_some_and(|next| {
                    next.kind == JobKind::Install && next.device == report.jobs[first + i].device
                });
                report.jobs.remove(first + i);
                if replaced {
                    report.replacements -= 1;
                    report.installs += 1;
                } else {
                    report.removals -= 1;
                }
                report.removals_not_needed += 1;
            }
        }
    }
    if !dry_run && !report.jobs.is_empty() {
        report.batch = Some(batch);
    }
    Ok(report)
}

/// A hash of what every profile depends on besides the user: the definitions and the
/// signing identity.
fn sources_fingerprint(profiles: &Profiles) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"mdm-mail push sources v1\0");
    // Debug output lists every field of every definition; it is only ever compared with
    // itself from the same build.
    hash.update(format!("{:?}", profiles.definitions).as_bytes());
    hash.update([0]);
    if let Some(signer) = &profiles.signer {
        hash.update(signer.certificate_der());
    }
    hash.finalize().into()
}

/// The hash a device's profile content is known by: the unsigned document, and the signing
/// certificate when there is one (a signature differs on every signing, so the signed bytes
/// cannot be the measure).
pub fn content_hash(profiles: &Profiles, platform: Platform, unsigned: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(platform.as_str().as_bytes());
    hash.update([0]);
    if let (Some(signer), true) = (&profiles.signer, is_apple(platform)) {
        hash.update(signer.certificate_der());
    }
    hash.update([0]);
    hash.update(unsigned);
    to_hex(&hash.finalize())
}

/// Whether `platform` takes Apple configuration profiles.
pub fn is_apple(platform: Platform) -> bool {
    matches!(platform, Platform::Ios | Platform::Ipados | Platform::Macos)
}

/// What a macOS device without a user channel is told.
pub const NO_USER_CHANNEL: &str = "macOS mail profiles are installed through the user channel, \
     and this device has no user_channel_id (NanoMDM's UDID:UserID); add it to the devices file";

fn fingerprint(sources: &[u8; 32], source: &PushSource, device: &TargetDevice) -> String {
    let mut hash = Sha256::new();
    let mut field = |bytes: &[u8]| {
        hash.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        hash.update(bytes);
    };
    field(sources);
    field(device.platform.as_bytes());
    field(device.user_channel_id.as_deref().unwrap_or("").as_bytes());
    field(source.user.email.as_bytes());
    field(source.user.display_name.as_bytes());
    for a in &source.accounts {
        let s = &a.sealed;
        field(s.kind.as_bytes());
        field(s.address.as_bytes());
        field(s.display_name.as_deref().unwrap_or("\u{0}none").as_bytes());
        field(s.username.as_bytes());
        field(s.domain.as_deref().unwrap_or("\u{0}none").as_bytes());
        field(
            s.outgoing_username
                .as_deref()
                .unwrap_or("\u{0}none")
                .as_bytes(),
        );
        field(a.password_mac.as_deref().unwrap_or(b"\0none"));
        field(a.outgoing_password_mac.as_deref().unwrap_or(b"\0none"));
    }
    to_hex(&hash.finalize())
}

/// The profile a device should hold, as decided: `None` identifier for none.
struct Desired {
    identifier: Option<String>,
    content_hash: Option<String>,
    accounts: Vec<RenderedAccount>,
    status: Option<String>,
}

fn decide_user(
    profiles: &Profiles,
    source: &PushSource,
    fingerprints: &[String],
    opened: &Result<UserAccounts, String>,
    report: &mut ReconcileReport,
    targets: &mut Vec<TargetWrite>,
    jobs: &mut Vec<NewJob>,
) -> Result<(), PushError> {
    let mut renders: HashMap<Platform, Result<Rendered, RenderError>> = HashMap::new();
    for (device, fingerprint) in source.devices.iter().zip(fingerprints) {
        if device.fingerprint.as_ref() == Some(fingerprint) {
            continue;
        }
        let platform: Platform = device
            .platform
            .parse()
            .map_err(|e: crate::model::UnknownPlatform| PushError::Data(e.to_string()))?;
        let desired = match &opened {
            Err(e) => keep(device, e.clone()),
            Ok(_) if platform == Platform::Macos && device.user_channel_id.is_none() => {
                keep(device, NO_USER_CHANNEL.to_owned())
            }
            Ok((user, accounts)) => {
                let rendered = renders
                    .entry(platform)
                    .or_insert_with(|| render_for(profiles, &user.email, accounts, platform));
                desired_of(profiles, platform, device, rendered)
            }
        };
        if let Some(status) = &desired.status {
            report.statuses.push(DeviceStatus {
                device: device.device_id.clone(),
                platform,
                message: status.clone(),
            });
        }
        plan_jobs(platform, device, &desired, report, jobs);
        targets.push(TargetWrite {
            device_id: device.id,
            // A decision made without the user's accounts is no decision: recorded under no
            // fingerprint, the device is looked at again by the next reconcile.
            fingerprint: if opened.is_ok() {
                fingerprint.clone()
            } else {
                UNDECIDED.to_owned()
            },
            identifier: desired.identifier,
            content_hash: desired.content_hash,
            accounts: serde_json::to_string(&desired.accounts).unwrap_or_else(|_| "[]".into()),
            status: desired.status,
        });
    }
    Ok(())
}

/// Renders `accounts` as a device of `platform` would receive them, unsigned; Windows
/// renders as a first install, so that the content does not depend on the device's history.
pub fn render_for(
    profiles: &Profiles,
    user_email: &str,
    accounts: &[Account],
    platform: Platform,
) -> Result<Rendered, RenderError> {
    let options = RenderOptions {
        syncml_command: SyncMlCommand::Add,
        ..RenderOptions::default()
    };
    render(
        user_email,
        accounts,
        platform,
        &profiles.definitions,
        &options,
    )
}

/// The fingerprint of a device whose accounts could not be read: it matches no sources.
const UNDECIDED: &str = "";

/// Leaves the device's decided profile as it was, with a status saying why.
fn keep(device: &TargetDevice, status: String) -> Desired {
    Desired {
        identifier: device.identifier.clone(),
        content_hash: device.content_hash.clone(),
        accounts: stored_accounts(device.accounts.as_deref()),
        status: Some(status),
    }
}

fn desired_of(
    profiles: &Profiles,
    platform: Platform,
    device: &TargetDevice,
    rendered: &Result<Rendered, RenderError>,
) -> Desired {
    match rendered {
        Ok(r) => Desired {
            identifier: Some(r.identifier.clone()),
            content_hash: Some(content_hash(profiles, platform, &r.body)),
            accounts: r.accounts.clone(),
            status: (!r.skipped.is_empty()).then(|| {
                let left_out: Vec<String> = r.skipped.iter().map(ToString::to_string).collect();
                format!("left out: {}", left_out.join("; "))
            }),
        },
        Err(RenderError::NoAccounts { .. }) => Desired {
            identifier: None,
            content_hash: None,
            accounts: Vec::new(),
            status: None,
        },
        Err(e @ RenderError::NothingToRender { .. }) => Desired {
            identifier: None,
            content_hash: None,
            accounts: Vec::new(),
            status: Some(e.to_string()),
        },
        Err(e) => keep(device, e.to_string()),
    }
}

fn stored_accounts(json: Option<&str>) -> Vec<RenderedAccount> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

fn plan_jobs(
    platform: Platform,
    device: &TargetDevice,
    desired: &Desired,
    report: &mut ReconcileReport,
    jobs: &mut Vec<NewJob>,
) {
    let before = device.identifier.as_deref();
    let now = desired.identifier.as_deref();
    if before == now && device.content_hash == desired.content_hash {
        report.rendered_same += 1;
        return;
    }
    let previous = stored_accounts(device.accounts.as_deref());
    let planned = report.jobs.len();
    let mut push = |kind: JobKind, identifier: &str, accounts: &[RenderedAccount], replace| {
        report.jobs.push(PlannedJob {
            device: device.device_id.clone(),
            platform,
            kind,
            identifier: identifier.to_owned(),
        });
        jobs.push(NewJob {
            device_id: device.id,
            identifier: identifier.to_owned(),
            kind: kind.as_str(),
            content_hash: match kind {
                JobKind::Install => desired.content_hash.clone(),
                JobKind::Remove => None,
            },
            accounts: serde_json::to_string(accounts).unwrap_or_else(|_| "[]".into()),
            windows_replace: replace,
        });
    };
    let Some(now) = now else {
        if let Some(before) = before {
            push(JobKind::Remove, before, &previous, false);
            report.removals += 1;
        }
        return;
    };
    let mut replace = false;
    match before {
        Some(before) if before != now => push(JobKind::Remove, before, &previous, false),
        Some(before) if platform == Platform::Windows && !previous.is_empty() => {
            // Windows adds an account node once and replaces its settings afterwards; when
            // the set of accounts changes, the old ones go and the new set is added.
            let uuids = |a: &[RenderedAccount]| a.iter().map(|a| a.uuid).collect::<BTreeSet<_>>();
            if uuids(&previous) == uuids(&desired.accounts) {
                replace = true;
            } else {
                push(JobKind::Remove, before, &previous, false);
            }
        }
        _ => {}
    }
    push(JobKind::Install, now, &desired.accounts, replace);
    if report.jobs.len() - planned == 2 {
        report.replacements += 1;
    } else {
        report.installs += 1;
    }
}
