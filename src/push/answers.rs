//! Devices that do not answer. NanoMDM stores a command and pushes; the device carries it
//! out at its next check-in, and its answer reaches mdm-mail only through NanoMDM's webhook,
//! which NanoMDM posts once and never again (a failed delivery is only logged). NanoMDM
//! offers no way to ask for a command's state afterwards, and refuses a command sent again
//! under the same CommandUUID ("command already exists"). So a job sent through NanoMDM
//! (with the webhook configured, so that answers can come) waits `answer_overdue` for its
//! answer, and then:
//!
//! - it is **overdue**: `push status` lists it, and the device is **nudged**, an APNs push
//!   alone (NanoMDM's `/v1/push/{id}`), after which a device that is on checks in and carries
//!   out the command it already has. Nothing new is queued, so nothing runs twice. Nudges
//!   come after 1, 3 and 7 waits (each gap twice the one before): a device that is off keeps
//!   only the last push anyway, and a push that was lost is soon made good.
//! - three nudges later without an answer (15 waits, 15 hours by default), an install is
//!   **sent once more, under a new CommandUUID**. Nudges cannot recover an answer that was
//!   lost (the device answered while mdm-mail was down, or the webhook failed): the command
//!   is done, not queued, and only a new command brings a new answer. Installing the same
//!   profile again replaces it in place (the same PayloadIdentifier and UUIDs), so it does
//!   no harm; a device that was only switched off, and still has the first command, carries
//!   out both, and the second answer counts (the first is for a command no job has any
//!   more). Removals are not sent again: removing a profile that is already gone may be
//!   answered with an error, which would turn a lost success into a failure.
//! - the command sent again is nudged the same way, and then nothing more is done: the job
//!   stays listed as overdue until its device answers or a newer change replaces it. A job
//!   that a newer job for the same device and profile replaced is left alone at once.
//!
//! MicroMDM's answers do not reach mdm-mail (its webhook is not signed, and only signed
//! events are taken), and the webhook and the folder have no answers: jobs sent through
//! them end at `sent` and are never overdue.

use super::PushSettings;
use super::transport::Transport;
use crate::store::{DueReminder, Reminder};

/// Nudges per command before an install is sent again, or nothing more is done.
pub const NUDGES: i64 = 3;

/// The last error of a job sent again for want of an answer.
pub const SENT_AGAIN: &str = "sent again under a new command: the device never answered the \
     first, though nudged (its answer may have been lost)";

/// When the answer to a command `transport` took at `now` is overdue (unix ms), or `None`
/// when no answer will come.
pub fn answer_due(transport: &Transport, settings: &PushSettings, now: i64) -> Option<i64> {
    let answers =
        matches!(transport, Transport::NanoMdm(_)) && settings.nanomdm_webhook_key.is_some();
    answers.then(|| now.saturating_add(millis(settings)))
}

/// What to do at `now` about `due`, a job whose reminder fell due.
pub fn decide(due: &DueReminder, now: i64, settings: &PushSettings) -> Reminder {
    if due.superseded {
        return Reminder::Stop;
    }
    let may_send_again = due.kind == "install" && !due.resent;
    if due.nudges < NUDGES {
        let this = due.nudges + 1;
        let gap = millis(settings).saturating_mul(1 << this.min(30));
        Reminder::Nudge {
            next: (this < NUDGES || may_send_again).then(|| now.saturating_add(gap)),
        }
    } else if may_send_again {
        Reminder::SendAgain
    } else {
        Reminder::Stop
    }
}

fn millis(settings: &PushSettings) -> i64 {
    i64::try_from(settings.answer_overdue.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn due(kind: &str, nudges: i64, resent: bool) -> DueReminder {
        DueReminder {
            id: 1,
            device_id: 1,
            kind: kind.to_owned(),
            nudges,
            resent,
            superseded: false,
        }
    }

    #[test]
    fn an_install_is_nudged_after_1_3_and_7_waits_then_sent_again_once() {
        let settings = PushSettings {
            answer_overdue: Duration::from_millis(10),
            ..PushSettings::default()
        };
        let nudge = |next| Reminder::Nudge { next };
        assert_eq!(
            decide(&due("install", 0, false), 10, &settings),
            nudge(Some(30))
        );
        assert_eq!(
            decide(&due("install", 1, false), 30, &settings),
            nudge(Some(70))
        );
        assert_eq!(
            decide(&due("install", 2, false), 70, &settings),
            nudge(Some(150))
        );
        assert_eq!(
            decide(&due("install", 3, false), 150, &settings),
            Reminder::SendAgain
        );
        assert_eq!(decide(&due("install", 2, true), 70, &settings), nudge(None));
        assert_eq!(
            decide(&due("install", 3, true), 150, &settings),
            Reminder::Stop
        );
    }

    #[test]
    fn a_removal_is_only_nudged_and_a_superseded_job_left_alone() {
        let settings = PushSettings::default();
        assert_eq!(
            decide(&due("remove", 2, false), 0, &settings),
            Reminder::Nudge { next: None }
        );
        assert_eq!(
            decide(&due("remove", 3, false), 0, &settings),
            Reminder::Stop
        );
        let superseded = DueReminder {
            superseded: true,
            ..due("install", 0, false)
        };
        assert_eq!(decide(&superseded, 0, &settings), Reminder::Stop);
    }
}
