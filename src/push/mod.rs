//! Profile push: every enrolled device of every user ends up holding the profile its user's
//! accounts call for, and nothing is sent twice that has not changed.
//!
//! [`reconcile`] compares what each device should hold with what was last decided for it
//! and queues exactly the differences (installs, removals) as jobs in the database. The
//! [`worker`] drains that queue through a [`transport`] with bounded concurrency, retries
//! and leases that survive crashes. [`Pusher`] is the one handle the CLI and the HTTP layer
//! use: [`Pusher::after_change`] after anything that may change profiles (an import, new
//! devices, start-up), [`status`] and [`retry_failed`] for the admin.

pub mod answers;
pub mod events;
pub mod reconcile;
pub mod settings;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use reconcile::{JobKind, ReconcileReport, reconcile};
pub use settings::{PushEnv, PushFile, PushSettings};
pub use worker::{DrainReport, Worker};

use crate::config::{ConfigError, Settings};
use crate::profile::Profiles;
use crate::store::{DeviceJobs, OverdueJob, StateCounts, Store, StoreError, now_ms};

/// Why push could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] transport::ClientError),
    /// Stored data is not what push expects.
    #[error("push: {0}")]
    Data(String),
}

/// The push handle: reconciles, and wakes the worker of this process when there is work.
#[derive(Clone)]
pub struct Pusher {
    store: Store,
    profiles: Arc<Profiles>,
    settings: Arc<PushSettings>,
    wake: Arc<Notify>,
}

impl Pusher {
    /// A handle over `store` rendering with `profiles`.
    pub fn new(store: Store, profiles: Arc<Profiles>, settings: PushSettings) -> Pusher {
        Pusher {
            store,
            profiles,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
        }
    }

    /// The handle `settings` configure: their definitions, signing identity, key and
    /// transports.
    pub fn from_settings(store: &Store, settings: &Settings) -> Result<Pusher, ConfigError> {
        Ok(Pusher::new(
            store.clone(),
            Arc::new(settings.profiles()?),
            settings.push.clone(),
        ))
    }

    /// Reconciles after something changed (accounts imported, devices added, definitions
    /// edited) and wakes the worker. The one call every trigger makes.
    pub async fn after_change(&self) -> Result<ReconcileReport, PushError> {
        let report = reconcile(&self.store, &self.profiles, false).await?;
        if !report.jobs.is_empty() {
            self.wake.notify_one();
        }
        Ok(report)
    }

    /// Reconciles; with `dry_run`, only reports the plan.
    pub async fn sync(&self, dry_run: bool) -> Result<ReconcileReport, PushError> {
        if dry_run {
            reconcile(&self.store, &self.profiles, true).await
        } else {
            self.after_change().await
        }
    }

    /// Puts every failed job back in the queue and wakes the worker; returns how many.
    pub async fn retry_failed(&self) -> Result<u64, PushError> {
        let requeued = retry_failed(&self.store).await?;
        if requeued > 0 {
            self.wake.notify_one();
        }
        Ok(requeued)
    }

    /// A worker over the same store and settings.
    pub fn worker(&self) -> Result<Worker, PushError> {
        Worker::new(
            self.store.clone(),
            Arc::clone(&self.profiles),
            Arc::clone(&self.settings),
        )
    }

    /// Sends everything due, then returns (`mdm-mail push run`).
    pub async fn run(&self) -> Result<DrainReport, PushError> {
        self.worker()?.drain().await
    }

    /// Starts the worker in the background until `shutdown` turns true.
    pub fn spawn_worker(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Result<tokio::task::JoinHandle<()>, PushError> {
        let worker = self.worker()?;
        let wake = Arc::clone(&self.wake);
        Ok(tokio::spawn(worker.serve(wake, shutdown)))
    }
}

/// Overdue jobs listed by [`status`]; `jobs.overdue` counts them all.
pub const OVERDUE_LISTED: i64 = 100;

/// The queue as the admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// Jobs per state.
    pub jobs: StateCounts,
    /// Per device, jobs per state and the latest error or status.
    pub devices: Vec<DeviceJobs>,
    /// The first [`OVERDUE_LISTED`] sent jobs whose device's answer is overdue, the longest
    /// waiting first.
    pub overdue: Vec<OverdueJob>,
}

impl Status {
    /// Overdue jobs not in [`Status::overdue`], past the first [`OVERDUE_LISTED`].
    pub fn overdue_not_listed(&self) -> i64 {
        (self.jobs.overdue - self.overdue.len() as i64).max(0)
    }
}

/// How long an overdue job's device has been silent and what was done about it, as the CLI
/// and the wizard say it: "waiting 3 h 5 min, nudged 2 times, sent again under a new
/// command".
pub fn overdue_note(job: &OverdueJob) -> String {
    let mut what = vec![format!("waiting {}", waited(job.waiting_seconds))];
    if job.nudges > 0 {
        what.push(format!(
            "nudged {} time{}",
            job.nudges,
            if job.nudges == 1 { "" } else { "s" }
        ));
    }
    if job.resent {
        what.push("sent again under a new command".to_owned());
    }
    what.join(", ")
}

/// `seconds` for people: "45 s", "12 min", "3 h 5 min", "2 d 4 h".
fn waited(seconds: i64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds / 3600 % 24, seconds / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{} s", seconds.max(0)),
        (0, 0, m) => format!("{m} min"),
        (0, h, 0) => format!("{h} h"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, 0, _) => format!("{d} d"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// Jobs per state, and per device (a page of `limit` devices after device id `after`).
pub async fn status(store: &Store, after: Option<&str>, limit: i64) -> Result<Status, PushError> {
    status_of(store, None, after, limit).await
}

/// [`status`] of the jobs one change queued, its report's `batch`: what an import's push
/// card follows. A job that a later change replaced counts in that change's batch.
pub async fn batch_status(
    store: &Store,
    batch: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Status, PushError> {
    status_of(store, Some(batch), after, limit).await
}

async fn status_of(
    store: &Store,
    batch: Option<Uuid>,
    after: Option<&str>,
    limit: i64,
) -> Result<Status, PushError> {
    Ok(Status {
        jobs: store.push_state_counts(batch).await?,
        devices: store.push_device_jobs(after, limit, batch).await?,
        overdue: store
            .push_overdue_jobs(batch, now_ms(), OVERDUE_LISTED)
            .await?,
    })
}

/// Puts every failed job back in the queue; returns how many.
pub async fn retry_failed(store: &Store) -> Result<u64, PushError> {
    Ok(store.retry_failed_push_jobs().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_reads_in_the_two_largest_units() {
        assert_eq!(waited(45), "45 s");
        assert_eq!(waited(12 * 60 + 5), "12 min");
        assert_eq!(waited(3 * 3600), "3 h");
        assert_eq!(waited(3 * 3600 + 5 * 60), "3 h 5 min");
        assert_eq!(waited(2 * 86_400 + 4 * 3600 + 59), "2 d 4 h");
        assert_eq!(waited(86_400), "1 d");
    }

    #[test]
    fn an_overdue_note_says_what_was_done_about_the_silence() {
        let job = |nudges, resent| OverdueJob {
            device_id: "IPHONE-A".to_owned(),
            platform: "ios".to_owned(),
            kind: "install".to_owned(),
            identifier: "com.example.mail".to_owned(),
            sent_at: 0,
            waiting_seconds: 3 * 3600 + 5 * 60,
            nudges,
            resent,
        };
        assert_eq!(overdue_note(&job(0, false)), "waiting 3 h 5 min");
        assert_eq!(
            overdue_note(&job(1, false)),
            "waiting 3 h 5 min, nudged 1 time"
        );
        assert_eq!(
            overdue_note(&job(3, true)),
            "waiting 3 h 5 min, nudged 3 times, sent again under a new command"
        );
    }
}
