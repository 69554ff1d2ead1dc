//! `mdm-mail push`: reconcile by hand, drain the queue, show its state; and the push that
//! follows an import or a devices load.

use std::process::ExitCode;

use crate::config::Settings;
use crate::push::{Pusher, ReconcileReport};
use crate::store::Store;

/// Devices listed by `push status`.
const STATUS_DEVICES: i64 = 1000;

/// The `push` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PushCommand {
    /// Compare what each device should hold with what it was sent, and queue the difference.
    Sync {
        /// Show the plan and queue nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Send every job that is due, wait for retries, and exit.
    Run {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Jobs per state and per device.
    Status {
        /// Only the jobs one change queued: the batch its `push:` line names.
        #[arg(long, value_name = "BATCH")]
        batch: Option<uuid::Uuid>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Put every failed job back in the queue.
    Retry,
}

/// Runs a `push` subcommand.
pub async fn run(
    store: &Store,
    settings: &Settings,
    command: PushCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        PushCommand::Sync { dry_run, json } => {
            let report = Pusher::from_settings(store, settings)?
                .sync(dry_run)
                .await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_plan(&report);
            }
        }
        PushCommand::Run { json } => {
            let report = Pusher::from_settings(store, settings)?.run().await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                let mut line = format!(
                    "push: {} sent, {} failed, {} {}, {} waiting for a transport",
                    report.sent,
                    report.failed,
                    report.retried,
                    if report.retried == 1 {
                        "retry"
                    } else {
                        "retries"
                    },
                    report.waiting
                );
                if report.nudged + report.sent_again > 0 {
                    line.push_str(&format!(
                        "; answers overdue: {} device{} nudged, {} sent again",
                        report.nudged,
                        if report.nudged == 1 { "" } else { "s" },
                        report.sent_again
                    ));
                }
                println!("{line}");
            }
        }
        PushCommand::Status { batch, json } => {
            let status = match batch {
                Some(batch) => {
                    crate::push::batch_status(store, batch, None, STATUS_DEVICES).await?
                }
                None => crate::push::status(store, None, STATUS_DEVICES).await?,
            };
            if json {
                println!("{}", serde_json::to_string(&status)?);
            } else {
                let j = &status.jobs;
                println!(
                    "jobs: {} queued, {} sending, {} sent{}, {} acknowledged, {} failed",
                    j.queued,
                    j.sending,
                    j.sent,
                    of_them_overdue(j.overdue),
                    j.acknowledged,
                    j.failed
                );
                print_overdue(&status);
                for d in &status.devices {
                    let note = d.note();
                    println!(
                        "{} ({}): {} queued, {} sending, {} sent{}, {} acknowledged, {} failed  {note}",
                        d.device_id,
                        d.platform,
                        d.queued,
                        d.sending,
                        d.sent,
                        of_them_overdue(d.overdue),
                        d.acknowledged,
                        d.failed
                    );
                }
            }
        }
        PushCommand::Retry => {
            let n = crate::push::retry_failed(store).await?;
            println!("push: {n} failed jobs queued again");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reconciles after a change made from the command line and says what was queued. A
/// failure here is reported but does not undo or fail the change itself, which is
/// committed: `push sync` can be run again.
pub async fn after_change(store: &Store, settings: &Settings) {
    if !store.has_devices().await.unwrap_or(true) {
        return;
    }
    let result = match Pusher::from_settings(store, settings) {
        Ok(pusher) => pusher.after_change().await.map_err(anyhow::Error::from),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(report) => eprintln!("push: {}", queued(&report)),
        Err(e) => eprintln!(
            "push: nothing was queued: {}; run `mdm-mail push sync` once fixed",
            super::explain(&e)
        ),
    }
}

/// What a reconcile queued, or why it queued nothing: so that a change which sends nothing
/// (a removal where the device was never sent the profile, devices that cannot take it)
/// is never silent.
fn queued(report: &ReconcileReport) -> String {
    if let (false, Some(batch)) = (report.jobs.is_empty(), report.batch) {
        return format!(
            "{} queued (the serve worker or `mdm-mail push run` sends them; `mdm-mail push \
             status --batch {batch}` follows them)",
            changes(report)
        );
    }
    let s = |n: usize| if n == 1 { "" } else { "s" };
    if report.removals_not_needed > 0 {
        let n = usize::try_from(report.removals_not_needed).unwrap_or(usize::MAX);
        return format!(
            "nothing was queued: {n} removal{} not needed, the device{} never sent the \
             profile (its install was dropped instead)",
            s(n),
            if n == 1 { " was" } else { "s were" }
        );
    }
    match report.statuses.first() {
        Some(first) => format!(
            "nothing was queued: {} device{} cannot take the profile ({}: {}); see \
             `mdm-mail push status`",
            report.statuses.len(),
            s(report.statuses.len()),
            first.device,
            first.message
        ),
        None => "nothing was queued: every device already has what it should hold".to_owned(),
    }
}

/// The installs, removals and replacements of `report` that are not none, for people: "1
/// install and 2 replacements".
fn changes(report: &ReconcileReport) -> String {
    let parts: Vec<String> = [
        (report.installs, "install"),
        (report.removals, "removal"),
        (report.replacements, "replacement"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
    .collect();
    match parts.as_slice() {
        [] => "nothing".to_owned(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// " (N with the answer overdue)" after a count of sent jobs, or nothing.
fn of_them_overdue(overdue: i64) -> String {
    match overdue {
        0 => String::new(),
        n => format!(" ({n} with the answer overdue)"),
    }
}

/// The sent jobs whose device has not answered in time, with how long each has waited.
fn print_overdue(status: &crate::push::Status) {
    if status.overdue.is_empty() {
        return;
    }
    println!("answers overdue (sent, no answer from the device):");
    for job in &status.overdue {
        println!(
            "  {} ({}): {} {}, {}",
            job.device_id,
            job.platform,
            job.kind,
            job.identifier,
            crate::push::overdue_note(job)
        );
    }
    let more = status.overdue_not_listed();
    if more > 0 {
        println!("  … and {more} more");
    }
}

fn print_plan(report: &ReconcileReport) {
    for job in &report.jobs {
        println!(
            "{} {} ({}) {}",
            job.kind.as_str(),
            job.device,
            job.platform,
            job.identifier
        );
    }
    for status in &report.statuses {
        eprintln!(
            "{} ({}): {}",
            status.device, status.platform, status.message
        );
    }
    let not_needed = match report.removals_not_needed {
        0 => String::new(),
        n => format!(" ({n} more not needed: never sent)"),
    };
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    println!(
        "push{}: {}, {}, {}{not_needed}, {}, {} unchanged",
        if report.dry_run { " (dry run)" } else { "" },
        plural(report.devices, "device", "devices"),
        plural(report.installs, "install", "installs"),
        plural(report.removals, "removal", "removals"),
        plural(report.replacements, "replacement", "replacements"),
        report.unchanged + report.rendered_same
    );
}
