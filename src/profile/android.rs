//! Android: the Gmail app's managed configuration (`com.google.android.gm`), as an entry of
//! an Android Management API policy's `applications[]`. The body is a policy fragment,
//! `{"applications": [entry]}`, which is itself the body of a policy `PATCH` with
//! `updateMask=applications`; for `modifyPolicyApplications`, take `applications[0]`.
//!
//! Gmail's managed configuration sets up one Exchange account and nothing else: IMAP/POP
//! accounts and further Exchange accounts are reported as skipped. It has no documented
//! password key, so the user types the password on the device.

use std::borrow::Cow;

use serde::Serialize;

use super::definition::sync_window;
use super::{Entry, Plan, RenderError, Settings, qualified_username};
use crate::model::Platform;

/// MIME type of the policy fragment.
pub const CONTENT_TYPE: &str = "application/json";
/// File name extension of the policy fragment.
pub const EXTENSION: &str = "json";
/// The Gmail app.
pub const GMAIL: &str = "com.google.android.gm";

/// Why Email accounts are left out on Android.
pub(crate) const EMAIL_UNSUPPORTED: &str = "IMAP/POP accounts are not supported on Android: \
     Gmail's managed configuration, the only one Android Enterprise offers for mail, sets up \
     Exchange accounts only";
/// Why further Exchange accounts are left out on Android.
pub(crate) const ONE_ACCOUNT_ONLY: &str = "Gmail's managed configuration holds one Exchange \
     account, and this user's first one (by definition and address) is the one configured";

/// An `applications[]` entry (AMAPI `ApplicationPolicy`) for Gmail.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Application<'a> {
    /// Always [`GMAIL`].
    pub package_name: &'static str,
    /// The definition's `android.install_type`.
    pub install_type: &'static str,
    /// Gmail's restriction keys.
    pub managed_configuration: GmailConfiguration<'a>,
}

/// Gmail's managed-configuration keys for one Exchange account.
#[derive(Debug, Clone, Serialize)]
pub struct GmailConfiguration<'a> {
    /// The account's address.
    pub email_address: &'a str,
    /// The Exchange host.
    pub exchange_host: &'a str,
    /// The login, `DOMAIN\user` when a domain is stored.
    pub exchange_username: Cow<'a, str>,
    /// Connect with TLS.
    pub exchange_ssl_required: bool,
    /// Past mail to sync: 0 all, 1 a day, 2 three days, 3 a week, 4 two weeks, 5 a month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_exchange_sync_window: Option<u8>,
}

#[derive(Serialize)]
struct PolicyFragment<'a> {
    applications: [Application<'a>; 1],
}

/// The Gmail entry for an Exchange account of the plan; `None` for an Email account.
pub(crate) fn application<'a>(entry: &Entry<'a>) -> Option<Application<'a>> {
    let Settings::Exchange {
        exchange,
        username,
        domain,
        ..
    } = entry.settings
    else {
        return None;
    };
    Some(Application {
        package_name: GMAIL,
        install_type: entry.definition.android_install_type.as_str(),
        managed_configuration: GmailConfiguration {
            email_address: &entry.account.address,
            exchange_host: &exchange.host,
            exchange_username: qualified_username(username, domain),
            exchange_ssl_required: exchange.tls,
            default_exchange_sync_window: exchange.mail_days_to_sync.map(sync_window),
        },
    })
}

/// Renders the plan, which holds exactly one Exchange account on Android.
pub(crate) fn render(plan: &Plan<'_>) -> Result<Vec<u8>, RenderError> {
    let entry =
        plan.entries
            .iter()
            .find_map(application)
            .ok_or_else(|| RenderError::Serialize {
                platform: Platform::Android,
                message: "no Exchange account in the plan".into(),
            })?;
    let fragment = PolicyFragment {
        applications: [entry],
    };
    let mut body = serde_json::to_vec_pretty(&fragment).map_err(|e| RenderError::Serialize {
        platform: Platform::Android,
        message: e.to_string(),
    })?;
    body.push(b'\n');
    Ok(body)
}
