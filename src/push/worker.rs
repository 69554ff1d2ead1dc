//! The worker: claims due jobs in batches, renders and sends them with bounded concurrency,
//! and records how each attempt ended. Transport errors, timeouts and 5xx are retried with
//! exponential backoff and jitter up to the attempt limit; 4xx fail at once with the reason.
//! A job stays leased to its worker while it is sent; if the worker dies, the lease runs out
//! and another worker (or the same one restarted) sends it again: at-least-once, under the
//! job's one command UUID, so the MDM sees a repeat of the same command (NanoMDM refuses it
//! as "command already exists", which counts as stored), never a second one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::answers;
use super::reconcile::{JobKind, content_hash, is_apple, render_for};
use super::transport::{Delivery, SendError, Transport, Transports};
use super::{PushError, PushSettings};
use crate::accounts::{self, UserAccounts};
use crate::model::Platform;
use crate::profile::{
    Profiles, RenderOptions, RenderedAccount, SyncMlCommand, SyncMlForm, render, windows,
};
use crate::store::{ClaimedJob, DueReminder, JobDevice, JobResult, Store, now_ms};

/// How long an idle worker inside `serve` sleeps before looking at the queue again (it is
/// woken at once when this process queues jobs), and how often it looks for devices whose
/// answer is overdue.
const IDLE_POLL: Duration = Duration::from_secs(2);
/// Overdue jobs taken at once, and enrollments nudged in one request to NanoMDM.
const REMIND_BATCH: i64 = 100;

/// What a drain did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DrainReport {
    /// Jobs handed to a transport.
    pub sent: u64,
    /// Attempts that will be retried.
    pub retried: u64,
    /// Jobs that failed for good.
    pub failed: u64,
    /// Jobs waiting for a transport: found so in this batch, or, at the end of a drain, left
    /// so in the queue.
    pub waiting: u64,
    /// Sent jobs whose device was nudged, its answer being overdue.
    pub nudged: u64,
    /// Sent jobs queued again under a new command, their answer never having come.
    pub sent_again: u64,
}

/// A queue worker.
pub struct Worker {
    store: Store,
    profiles: Arc<Profiles>,
    settings: Arc<PushSettings>,
    transports: Transports,
    id: String,
}

impl Worker {
    /// A worker with a fresh id.
    pub fn new(
        store: Store,
        profiles: Arc<Profiles>,
        settings: Arc<PushSettings>,
    ) -> Result<Worker, PushError> {
        let transports = Transports::new(&settings)?;
        Ok(Worker {
            store,
            profiles,
            settings,
            transports,
            id: Uuid::new_v4().to_string(),
        })
    }

    /// Claims one batch and sends it; returns what happened (all zero: nothing was due).
    pub async fn run_batch(&self) -> Result<DrainReport, PushError> {
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let batch = i64::try_from(self.settings.concurrency * 16).unwrap_or(128);
        let sendable: Vec<&str> = Platform::ALL
            .into_iter()
            .filter(|p| self.transports.for_platform(*p).is_some())
            .map(Platform::as_str)
            .collect();
        let claimed = self
            .store
            .claim_push_jobs(&self.id, now_ms().saturating_add(lease), batch, &sendable)
            .await?;
        if claimed.is_empty() {
            return Ok(DrainReport::default());
        }
        let devices = self
            .devices_by_id(claimed.iter().map(|j| j.device_id).collect())
            .await?;
        let mut user_ids: Vec<i64> = claimed
            .iter()
            .filter(|j| j.kind == JobKind::Install.as_str())
            .filter_map(|j| devices.get(&j.device_id).map(|d| d.user_id))
            .collect();
        user_ids.sort_unstable();
        user_ids.dedup();
        let keys = self
            .profiles
            .keys(&self.store)
            .await
            .map_err(|e| format!("cannot open the stored passwords: {e}"));
        let users: HashMap<i64, Result<UserAccounts, String>> = self
            .store
            .users_with_accounts_by_id(&user_ids)
            .await?
            .into_iter()
            .map(|(user, sealed)| {
                let id = user.id;
                let opened = keys.clone().and_then(|keys| {
                    accounts::open_user(&keys, user, sealed)
                        .map_err(|e| format!("cannot open the stored passwords: {e}"))
                });
                (id, opened)
            })
            .collect();
        let queue = Arc::new(Mutex::new(VecDeque::from(claimed)));
        let devices = Arc::new(devices);
        let users = Arc::new(users);
        let lanes = self.settings.concurrency.max(1);
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..lanes {
            let queue = Arc::clone(&queue);
            let devices = Arc::clone(&devices);
            let done = done.clone();
            let lane = Lane {
                users: Arc::clone(&users),
                profiles: Arc::clone(&self.profiles),
                settings: Arc::clone(&self.settings),
                transports: self.transports.clone(),
            };
            set.spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(job) = next else {
                        break;
                    };
                    let result = lane.attempt(&job, devices.get(&job.device_id)).await;
                    if done.send((job, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done);
        // Each outcome is recorded as soon as its request returns, not after the batch: a
        // device answers a second or so after NanoMDM pushes, and the rest of a batch may
        // still be out then. Outcomes that arrive while one is being written are written
        // together next, so a busy batch still costs few transactions.
        let mut report = DrainReport::default();
        let mut results = Vec::new();
        while let Some(first) = finished.recv().await {
            results.push(first);
            while let Ok(more) = finished.try_recv() {
                results.push(more);
            }
            for (_, result) in &results {
                match result {
                    JobResult::Sent { .. } => report.sent += 1,
                    JobResult::Retry { .. } => report.retried += 1,
                    JobResult::Failed { .. } => report.failed += 1,
                    JobResult::Deferred { .. } => report.waiting += 1,
                }
            }
            self.store.finish_push_jobs(&self.id, &results).await?;
            results.clear();
        }
        while let Some(joined) = set.join_next().await {
            joined.map_err(|e| PushError::Data(format!("a push lane failed: {e}")))?;
        }
        Ok(report)
    }

    /// Sends everything due, jobs that were waiting for a transport this worker has among
    /// them, waits for jobs being retried or held by a lapsed lease, and returns once nothing
    /// is left but jobs waiting for a transport, saying how many.
    pub async fn drain(&self) -> Result<DrainReport, PushError> {
        let mut total = self.remind().await?;
        loop {
            let done = self.run_batch().await?;
            total.sent += done.sent;
            total.retried += done.retried;
            total.failed += done.failed;
            if done != DrainReport::default() {
                continue;
            }
            let pending = self.store.push_pending().await?;
            if pending.due == 0 && pending.in_flight == 0 {
                total.waiting = pending.waiting.unsigned_abs();
                return Ok(total);
            }
            let wait = pending
                .next_due_at
                .map_or(100, |at| (at - now_ms()).clamp(10, 1000));
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
    }

    /// Runs until `shutdown` turns true: sends what is due, reminds about overdue answers
    /// every poll interval, then sleeps until `wake` is notified or the poll interval passes.
    /// Store errors are logged and retried.
    pub async fn serve(self, wake: Arc<Notify>, mut shutdown: watch::Receiver<bool>) {
        let mut reminded: Option<std::time::Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let mut idle = match self.run_batch().await {
                Ok(done) => done == DrainReport::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "push worker: cannot work the queue");
                    true
                }
            };
            if reminded.is_none_or(|at| at.elapsed() >= IDLE_POLL) {
                reminded = Some(std::time::Instant::now());
                match self.remind().await {
                    Ok(done) => idle &= done.sent_again == 0,
                    Err(e) => tracing::warn!(error = %e, "push worker: cannot remind devices"),
                }
            }
            if idle {
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(IDLE_POLL) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

impl Worker {
    /// Does what is due about sent jobs whose device has not answered in time (see
    /// [`answers`]): nudges their devices, queues installs again that never got an answer.
    /// Returns how many of each.
    pub async fn remind(&self) -> Result<DrainReport, PushError> {
        let mut done = DrainReport::default();
        loop {
            let now = now_ms();
            let taken = self
                .store
                .take_push_reminders(now, REMIND_BATCH, answers::SENT_AGAIN, |due| {
                    answers::decide(due, now, &self.settings)
                })
                .await?;
            done.sent_again += taken.sent_again;
            done.nudged += taken.nudge.len() as u64;
            self.nudge(&taken.nudge).await?;
            if i64::try_from(taken.taken).unwrap_or(i64::MAX) < REMIND_BATCH {
                return Ok(done);
            }
        }
    }

    /// Asks the MDM to push to the devices of `jobs`, each on the channel its command went
    /// to, and keeps a note on the jobs whose push failed.
    /// The devices of `ids` (store ids), by id.
    async fn devices_by_id(&self, ids: Vec<i64>) -> Result<HashMap<i64, JobDevice>, PushError> {
        Ok(self
            .store
            .job_devices(&ids)
            .await?
            .into_iter()
            .map(|d| (d.id, d))
            .collect())
    }

    async fn nudge(&self, jobs: &[DueReminder]) -> Result<(), PushError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let devices = self
            .devices_by_id(jobs.iter().map(|j| j.device_id).collect())
            .await?;
        let mut notes = Vec::new();
        // Every Apple platform takes the one Apple transport: one NanoMDM to ask.
        let mut nanomdm = None;
        let mut to_push: Vec<(String, i64)> = Vec::new();
        for job in jobs {
            let target = devices.get(&job.device_id).and_then(|device| {
                let platform: Platform = device.platform.parse().ok()?;
                let enrollment = if platform == Platform::Macos {
                    device.user_channel_id.clone()?
                } else {
                    device.enrollment_id.clone()
                };
                Some((platform, enrollment))
            });
            let transport = target.and_then(|(platform, enrollment)| {
                match self.transports.for_platform(platform) {
                    Some(Transport::NanoMdm(n)) => Some((n, enrollment)),
                    _ => None,
                }
            });
            match transport {
                Some((n, enrollment)) => {
                    nanomdm = Some(n);
                    to_push.push((enrollment, job.id));
                }
                None => notes.push((
                    job.id,
                    "no answer from the device yet, and no NanoMDM is configured here to \
                     nudge it"
                        .to_owned(),
                )),
            }
        }
        if let Some(nanomdm) = nanomdm {
            let batch = usize::try_from(REMIND_BATCH).unwrap_or(100);
            for chunk in to_push.chunks(batch) {
                let mut ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
                ids.sort();
                ids.dedup();
                let failed: HashMap<String, String> = nanomdm
                    .nudge(&ids)
                    .await
                    .into_iter()
                    .filter_map(|(id, pushed)| pushed.err().map(|e| (id, e)))
                    .collect();
                for (enrollment, job) in chunk {
                    if let Some(error) = failed.get(enrollment) {
                        notes.push((
                            *job,
                            super::transport::sentence(&format!(
                                "no answer from the device yet, and the push to wake it \
                                 failed: {error}"
                            )),
                        ));
                    }
                }
            }
        }
        if !notes.is_empty() {
            self.store.note_push_jobs(&notes).await?;
        }
        Ok(())
    }
}

/// What one concurrent sender needs.
struct Lane {
    users: Arc<HashMap<i64, Result<UserAccounts, String>>>,
    profiles: Arc<Profiles>,
    settings: Arc<PushSettings>,
    transports: Transports,
}

impl Lane {
    async fn attempt(&self, job: &ClaimedJob, device: Option<&JobDevice>) -> JobResult {
        let Some(device) = device else {
            return JobResult::Failed {
                error: "the device is no longer stored".into(),
            };
        };
        let platform: Platform = match device.platform.parse() {
            Ok(p) => p,
            Err(e) => {
                return JobResult::Failed {
                    error: format!("{e}"),
                };
            }
        };
        let Some(transport) = self.transports.for_platform(platform) else {
            return JobResult::Deferred {
                reason: Transports::missing(platform),
            };
        };
        let delivery = match self.prepare(job, device, platform).await {
            Ok(d) => d,
            Err(error) => return JobResult::Failed { error },
        };
        let hash = delivery.1;
        match transport.send(&delivery.0).await {
            Ok(accepted) => JobResult::Sent {
                command_uuid: accepted.command_uuid,
                content_hash: hash,
                note: accepted.note,
                answer_due: answers::answer_due(transport, &self.settings, now_ms()),
            },
            Err(SendError::Fatal(error)) => JobResult::Failed { error },
            Err(SendError::Retry(error)) => self.retry(job, error),
        }
    }

    /// A retry after the backoff for this attempt, or failure once attempts run out.
    fn retry(&self, job: &ClaimedJob, error: String) -> JobResult {
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        if attempts >= self.settings.max_attempts {
            return JobResult::Failed {
                error: super::transport::sentence(&format!(
                    "gave up after {attempts} attempts: {error}"
                )),
            };
        }
        let delay = backoff(
            self.settings.retry_base,
            self.settings.retry_max,
            attempts,
            rand_unit(),
        );
        JobResult::Retry {
            at: now_ms() + millis(delay),
            error,
        }
    }

    /// The command to send, and for installs the hash of what it installs.
    async fn prepare(
        &self,
        job: &ClaimedJob,
        device: &JobDevice,
        platform: Platform,
    ) -> Result<(Delivery, Option<String>), String> {
        let enrollment_id = if platform == Platform::Macos {
            device
                .user_channel_id
                .clone()
                .ok_or_else(|| super::reconcile::NO_USER_CHANNEL.to_owned())?
        } else {
            device.enrollment_id.clone()
        };
        let kind = if job.kind == JobKind::Remove.as_str() {
            JobKind::Remove
        } else {
            JobKind::Install
        };
        let mut delivery = Delivery {
            device: device.device_id.clone(),
            enrollment_id,
            platform,
            kind,
            identifier: job.profile_identifier.clone(),
            command_uuid: job.command_uuid,
            content: None,
            content_type: "",
            extension: "",
        };
        if kind == JobKind::Remove {
            if platform == Platform::Windows {
                let accounts: Vec<RenderedAccount> =
                    serde_json::from_str(&job.accounts).unwrap_or_default();
                let body = windows::removal(&accounts, &SyncMlForm::Fragment)
                    .map_err(|e| e.to_string())?;
                delivery.content = Some(body);
                delivery.content_type = windows::CONTENT_TYPE_FRAGMENT;
                delivery.extension = windows::EXTENSION;
            }
            return Ok((delivery, None));
        }
        let (user, accounts) = match self.users.get(&device.user_id) {
            Some(Ok(found)) => found,
            Some(Err(e)) => return Err(e.clone()),
            None => {
                return Err(format!("no user with email {}", device.user_email));
            }
        };
        // The hash is of the profile as reconciling renders it (a Windows first install),
        // whatever form this device is sent.
        let reference = render_for(&self.profiles, &user.email, accounts, platform)
            .map_err(|e| format!("nothing to install any more: {e}"))?;
        let hash = content_hash(&self.profiles, platform, &reference.body);
        let mut rendered = if platform == Platform::Windows && job.windows_replace {
            let options = RenderOptions {
                syncml_command: SyncMlCommand::Replace,
                ..RenderOptions::default()
            };
            render(
                &user.email,
                accounts,
                platform,
                &self.profiles.definitions,
                &options,
            )
            .map_err(|e| e.to_string())?
        } else {
            reference
        };
        if is_apple(platform) {
            self.profiles
                .sign(platform, &RenderOptions::default(), &mut rendered)
                .map_err(|e| format!("cannot sign the profile: {e}"))?;
        }
        delivery.content = Some(rendered.body);
        delivery.content_type = rendered.content_type;
        delivery.extension = rendered.extension;
        Ok((delivery, Some(hash)))
    }
}

/// The wait before retry number `attempt` (1 = after the first failure): `base` doubled per
/// attempt, capped at `max`, then scaled by `jitter` ∈ [0, 1) into its upper half so that
/// jobs failed together do not all come back at once.
pub fn backoff(base: Duration, max: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base.saturating_mul(2_u32.saturating_pow(attempt.saturating_sub(1)));
    let capped = doubled.min(max);
    capped.mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0)
}

fn rand_unit() -> f64 {
    use rand::RngExt;
    rand::rng().random::<f64>()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitters_within_its_upper_half() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        assert_eq!(backoff(base, max, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(base, max, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(base, max, 3, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(base, max, 10, 1.0), max);
        assert_eq!(backoff(base, max, 60, 1.0), max);
    }
}
