//! What a user's page says of each device's push state, in words: the profile the device
//! holds (and whether the device acknowledged it), what is queued for it, and its last error.

use crate::model::when;
use crate::store::{DevicePush, RecentJob};

/// A device's push state as a user's page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// The profile the device holds, or why it holds none.
    pub holds: String,
    /// What is queued or on its way to it.
    pub queue: String,
    /// The newest job's error or note, if it has one.
    pub error: String,
}

/// Describes `push`.
pub fn describe(push: &DevicePush) -> Described {
    Described {
        holds: holds(push),
        queue: queue(&push.jobs),
        error: error(&push.jobs),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn holds(push: &DevicePush) -> String {
    let wanted = push.target.as_ref().and_then(|t| t.identifier.as_deref());
    let wanted_hash = push.target.as_ref().and_then(|t| t.content_hash.as_deref());
    let status = push.target.as_ref().and_then(|t| t.status.as_deref());
    let current = push
        .delivered
        .iter()
        .find(|d| Some(d.identifier.as_str()) == wanted);
    let mut text = match (current, &push.target) {
        (Some(held), _) => {
            let version = if Some(held.content_hash.as_str()) == wanted_hash {
                "The current profile"
            } else {
                "An earlier version of the profile"
            };
            match held.acknowledged_at {
                Some(at) => format!("{version}, installed (acknowledged {})", when(at)),
                None => format!(
                    "{version}, sent {}; not acknowledged yet",
                    when(held.sent_at)
                ),
            }
        }
        (None, None) => "Nothing yet: push has not looked at this device".to_owned(),
        // Reconciling says why, in a sentence of its own.
        (None, Some(target)) if target.identifier.is_none() => match status {
            Some(why) => sentence(why),
            None => "No profile: the user has no mail accounts".to_owned(),
        },
        (None, Some(_)) if push.delivered.is_empty() => "None yet".to_owned(),
        (None, Some(_)) => "Not the current profile yet".to_owned(),
    };
    // Accounts left out of a profile the device does get.
    if let (Some(status), Some(_)) = (status, wanted) {
        text.push_str(&format!(" ({status})"));
    }
    let others = push
        .delivered
        .iter()
        .filter(|d| Some(d.identifier.as_str()) != wanted)
        .count();
    if others > 0 {
        text.push_str(&format!(
            "; also {} no longer wanted",
            plural(others, "profile", "profiles")
        ));
    }
    text
}

/// `text` with its first letter in capitals.
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn kind(job: &RecentJob) -> &str {
    match job.kind.as_str() {
        "install" => "Profile install",
        "remove" => "Profile removal",
        other => other,
    }
}

fn queue(jobs: &[RecentJob]) -> String {
    let open: Vec<&RecentJob> = jobs
        .iter()
        .filter(|j| matches!(j.state.as_str(), "queued" | "sending" | "sent"))
        .collect();
    let Some(job) = open.first() else {
        return match jobs.first() {
            Some(job) if job.state == "failed" => format!(
                "{} failed after {}: Retry failed jobs on the Push jobs page",
                kind(job),
                plural(
                    usize::try_from(job.attempts).unwrap_or(0),
                    "attempt",
                    "attempts"
                )
            ),
            _ => "Nothing queued".to_owned(),
        };
    };
    let mut text = match job.state.as_str() {
        "queued" if job.attempts > 0 => format!(
            "{} queued: try {} at {}",
            kind(job),
            job.attempts + 1,
            when(job.next_attempt_at)
        ),
        "queued" => format!("{} queued", kind(job)),
        "sending" => format!("{} being sent", kind(job)),
        _ => format!(
            "{} sent {}; waiting for the device",
            kind(job),
            when(job.updated_at)
        ),
    };
    if open.len() > 1 {
        text.push_str(&format!(" (and {} more)", open.len() - 1));
    }
    text
}

fn error(jobs: &[RecentJob]) -> String {
    match jobs.first() {
        Some(job) if job.state != "acknowledged" => job
            .last_error
            .as_deref()
            .map(|e| format!("{e} ({})", when(job.updated_at)))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Delivered, PushTarget};

    const T: i64 = 1_790_000_000_000;

    fn job(kind: &str, state: &str, attempts: i64, error: Option<&str>) -> RecentJob {
        RecentJob {
            kind: kind.to_owned(),
            state: state.to_owned(),
            attempts,
            next_attempt_at: T,
            last_error: error.map(str::to_owned),
            updated_at: T,
        }
    }

    fn device(target: Option<(&str, &str)>, delivered: &[(&str, &str, Option<i64>)]) -> DevicePush {
        DevicePush {
            device_id: "D".to_owned(),
            target: target.map(|(identifier, hash)| PushTarget {
                identifier: Some(identifier.to_owned()),
                content_hash: Some(hash.to_owned()),
                status: None,
            }),
            delivered: delivered
                .iter()
                .map(|(identifier, hash, acknowledged_at)| Delivered {
                    identifier: (*identifier).to_owned(),
                    content_hash: (*hash).to_owned(),
                    sent_at: T,
                    acknowledged_at: *acknowledged_at,
                })
                .collect(),
            jobs: Vec::new(),
        }
    }

    #[test]
    fn a_device_holds_the_current_an_earlier_or_no_version_of_its_profile() {
        let acknowledged = device(Some(("p", "h2")), &[("p", "h2", Some(T))]);
        assert_eq!(
            holds(&acknowledged),
            "The current profile, installed (acknowledged 2026-09-21T14:13:20Z)"
        );
        let earlier = device(Some(("p", "h2")), &[("p", "h1", Some(T))]);
        assert!(holds(&earlier).starts_with("An earlier version of the profile, installed"));
        let sent = device(Some(("p", "h2")), &[("p", "h2", None)]);
        assert_eq!(
            holds(&sent),
            "The current profile, sent 2026-09-21T14:13:20Z; not acknowledged yet"
        );
        assert_eq!(holds(&device(Some(("p", "h2")), &[])), "None yet");
        let old = device(Some(("p", "h2")), &[("old", "h0", Some(T))]);
        assert_eq!(
            holds(&old),
            "Not the current profile yet; also 1 profile no longer wanted"
        );
        assert_eq!(
            holds(&device(None, &[])),
            "Nothing yet: push has not looked at this device"
        );
        let mut none = device(None, &[]);
        none.target = Some(PushTarget {
            identifier: None,
            content_hash: None,
            status: Some(
                "no android profile for a@example.com: IMAP/POP accounts are not supported"
                    .to_owned(),
            ),
        });
        assert_eq!(
            holds(&none),
            "No android profile for a@example.com: IMAP/POP accounts are not supported"
        );
        none.target.as_mut().unwrap().status = None;
        assert_eq!(holds(&none), "No profile: the user has no mail accounts");
    }

    #[test]
    fn the_queue_names_the_newest_open_job_else_a_failure_else_nothing() {
        assert_eq!(queue(&[]), "Nothing queued");
        assert_eq!(
            queue(&[job("install", "acknowledged", 1, None)]),
            "Nothing queued"
        );
        assert_eq!(
            queue(&[job("install", "queued", 0, None)]),
            "Profile install queued"
        );
        assert_eq!(
            queue(&[
                job("remove", "queued", 2, Some("timed out")),
                job("install", "sent", 1, None)
            ]),
            "Profile removal queued: try 3 at 2026-09-21T14:13:20Z (and 1 more)"
        );
        assert_eq!(
            queue(&[job("install", "failed", 1, Some("gone"))]),
            "Profile install failed after 1 attempt: Retry failed jobs on the Push jobs page"
        );
        assert_eq!(
            error(&[job("install", "failed", 1, Some("gone"))]),
            "gone (2026-09-21T14:13:20Z)"
        );
        assert_eq!(
            error(&[job("install", "acknowledged", 1, Some("note"))]),
            ""
        );
    }
}
