//! Apple configuration profiles (`.mobileconfig`): a `Configuration` dictionary holding one
//! payload per account, keys and types as in Apple's device-management schema
//! (`TopLevel`, `CommonPayloadKeys`, `com.apple.mail.managed`, `com.apple.eas.account`,
//! `com.apple.ews.account`).
//!
//! Choices the schema leaves open, made for MDM (non-interactive) installs:
//! - address and user names are always sent, because nobody is there to type them;
//! - `*UseSSL` / `SSL` are always sent, because their defaults differ between payloads;
//! - passwords are sent when stored, incoming and outgoing separately — never
//!   `OutgoingPasswordSameAsIncomingPassword`, which MDM installs on iOS ignore — and left
//!   out when none is stored, so the device prompts;
//! - on macOS, Exchange is `com.apple.ews.account` and the profile is user-scoped
//!   (`PayloadScope` `User`): neither mail payload may be installed on the device channel.
//!
//! The plist is written by serde structs, every optional key an `Option` skipped when
//! `None` (the plist crate writes a stray key for a `None` reached any other way).

use std::borrow::Cow;

use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::definition::{Authentication, Exchange, IncomingProtocol};
use super::{
    Entry, Plan, RenderError, RenderOptions, Settings, identity, qualified_username, secret,
};
use crate::model::Platform;

/// MIME type of a configuration profile, signed or not.
pub const CONTENT_TYPE: &str = "application/x-apple-aspen-config";
/// File name extension of a configuration profile.
pub const EXTENSION: &str = "mobileconfig";

/// `TargetDeviceType` values (TopLevel.yaml): 1 iPhone/iPad, 5 Mac.
const TARGET_IOS: u32 = 1;
const TARGET_MAC: u32 = 5;

/// Renders the plan as an XML plist.
pub(crate) fn render(
    plan: &Plan<'_>,
    platform: Platform,
    options: &RenderOptions,
) -> Result<Vec<u8>, RenderError> {
    let macos = platform == Platform::Macos;
    let first = &plan.entries[0];
    let first_values = first.values();
    let top = first.definition;
    let profile = Profile {
        content: plan
            .entries
            .iter()
            .map(|entry| payload(plan, entry, macos, options))
            .collect(),
        description: top.description.as_ref().map(|t| t.render(&first_values)),
        display_name: top.name.render(&first_values),
        identifier: &plan.identifier,
        organization: top.organization.as_ref().map(|t| t.render(&first_values)),
        scope: macos.then_some("User"),
        payload_type: "Configuration",
        uuid: UpperUuid(identity::profile_uuid(plan.prefix, plan.user_email)),
        version: 1,
        target_device_type: if macos { TARGET_MAC } else { TARGET_IOS },
    };
    let mut body = Vec::with_capacity(1024 + 1536 * plan.entries.len());
    plist::to_writer_xml(&mut body, &profile).map_err(|e| RenderError::Serialize {
        platform,
        message: e.to_string(),
    })?;
    body.push(b'\n');
    Ok(body)
}

fn payload<'a>(
    plan: &'a Plan<'a>,
    entry: &Entry<'a>,
    macos: bool,
    options: &RenderOptions,
) -> Payload<'a> {
    let definition = entry.definition;
    let values = entry.values();
    let account = entry.account;
    let common = Common {
        description: definition.description.as_ref().map(|t| t.render(&values)),
        display_name: definition.account_name.render(&values),
        identifier: format!("{}.{}", plan.identifier, entry.uuid.hyphenated()),
        organization: definition.organization.as_ref().map(|t| t.render(&values)),
        uuid: UpperUuid(entry.uuid),
    };
    match entry.settings {
        Settings::Email {
            incoming,
            outgoing,
            incoming_username,
            incoming_password,
            outgoing_username,
            outgoing_password,
        } => {
            let display_name = entry.display_name();
            Payload::Mail(MailPayload {
                account_description: definition.account_name.render(&values),
                account_name: (!display_name.is_empty()).then_some(display_name),
                account_type: match incoming.protocol {
                    IncomingProtocol::Imap => "EmailTypeIMAP",
                    IncomingProtocol::Pop => "EmailTypePOP",
                },
                address: &account.address,
                incoming_authentication: authentication(incoming.authentication),
                incoming_host: &incoming.host,
                incoming_path_prefix: match incoming.protocol {
                    IncomingProtocol::Imap => incoming.imap_path_prefix.as_deref(),
                    IncomingProtocol::Pop => None,
                },
                incoming_port: incoming.port,
                incoming_ssl: incoming.tls,
                incoming_username,
                incoming_password: secret(incoming_password, options),
                outgoing_authentication: authentication(outgoing.authentication),
                outgoing_host: &outgoing.host,
                outgoing_port: outgoing.port,
                outgoing_ssl: outgoing.tls,
                outgoing_username,
                outgoing_password: secret(outgoing_password, options),
                payload_description: common.description,
                payload_display_name: common.display_name,
                payload_identifier: common.identifier,
                payload_organization: common.organization,
                payload_type: "com.apple.mail.managed",
                payload_uuid: common.uuid,
                payload_version: 1,
            })
        }
        Settings::Exchange {
            exchange,
            username,
            domain,
            password,
        } => {
            let user_name = qualified_username(username, domain);
            // Apple: "If [OAuth is] enabled, don't specify a password".
            let password = match exchange.oauth {
                Some(_) => None,
                None => secret(password, options),
            };
            if macos {
                Payload::Ews(ews(exchange, &account.address, user_name, password, common))
            } else {
                Payload::Eas(eas(exchange, &account.address, user_name, password, common))
            }
        }
    }
}

fn eas<'a>(
    exchange: &'a Exchange,
    address: &'a str,
    user_name: Cow<'a, str>,
    password: Option<&'a str>,
    common: Common<'a>,
) -> EasPayload<'a> {
    let oauth = exchange.oauth.as_ref();
    EasPayload {
        address,
        enable_calendars: exchange.services.calendars,
        enable_contacts: exchange.services.contacts,
        enable_mail: exchange.services.mail,
        enable_notes: exchange.services.notes,
        enable_reminders: exchange.services.reminders,
        host: &exchange.host,
        mail_days: exchange.mail_days_to_sync,
        oauth: oauth.map(|_| true),
        oauth_sign_in_url: oauth.and_then(|o| o.sign_in_url.as_deref()),
        oauth_token_request_url: oauth.and_then(|o| o.token_request_url.as_deref()),
        password,
        payload_description: common.description,
        payload_display_name: common.display_name,
        payload_identifier: common.identifier,
        payload_organization: common.organization,
        payload_type: "com.apple.eas.account",
        payload_uuid: common.uuid,
        payload_version: 1,
        ssl: exchange.tls,
        user_name,
    }
}

fn ews<'a>(
    exchange: &'a Exchange,
    address: &'a str,
    user_name: Cow<'a, str>,
    password: Option<&'a str>,
    common: Common<'a>,
) -> EwsPayload<'a> {
    let oauth = exchange.oauth.as_ref();
    EwsPayload {
        address,
        host: &exchange.host,
        oauth: oauth.map(|_| true),
        oauth_sign_in_url: oauth.and_then(|o| o.sign_in_url.as_deref()),
        password,
        path: exchange.macos_path.as_deref(),
        payload_description: common.description,
        payload_display_name: common.display_name,
        payload_identifier: common.identifier,
        payload_organization: common.organization,
        payload_type: "com.apple.ews.account",
        payload_uuid: common.uuid,
        payload_version: 1,
        port: exchange.macos_port,
        ssl: exchange.tls,
        user_name,
    }
}

fn authentication(a: Authentication) -> &'static str {
    match a {
        Authentication::None => "EmailAuthNone",
        Authentication::Password => "EmailAuthPassword",
        Authentication::CramMd5 => "EmailAuthCRAMMD5",
        Authentication::Ntlm => "EmailAuthNTLM",
        Authentication::HttpMd5 => "EmailAuthHTTPMD5",
    }
}

/// A UUID written in upper case, as Apple's tools write `PayloadUUID`.
struct UpperUuid(Uuid);

impl Serialize for UpperUuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buffer = Uuid::encode_buffer();
        serializer.serialize_str(self.0.hyphenated().encode_upper(&mut buffer))
    }
}

/// The keys every payload has (CommonPayloadKeys.yaml).
struct Common<'a> {
    description: Option<Cow<'a, str>>,
    display_name: Cow<'a, str>,
    identifier: String,
    organization: Option<Cow<'a, str>>,
    uuid: UpperUuid,
}

#[derive(Serialize)]
struct Profile<'a> {
    #[serde(rename = "PayloadContent")]
    content: Vec<Payload<'a>>,
    #[serde(rename = "PayloadDescription", skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadDisplayName")]
    display_name: Cow<'a, str>,
    #[serde(rename = "PayloadIdentifier")]
    identifier: &'a str,
    #[serde(
        rename = "PayloadOrganization",
        skip_serializing_if = "Option::is_none"
    )]
    organization: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadScope", skip_serializing_if = "Option::is_none")]
    scope: Option<&'static str>,
    #[serde(rename = "PayloadType")]
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    uuid: UpperUuid,
    #[serde(rename = "PayloadVersion")]
    version: u32,
    #[serde(rename = "TargetDeviceType")]
    target_device_type: u32,
}

/// One payload; untagged, so each variant is written as its own dictionary.
#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Mail(MailPayload<'a>),
    Eas(EasPayload<'a>),
    Ews(EwsPayload<'a>),
}

/// `com.apple.mail.managed`.
#[derive(Serialize)]
struct MailPayload<'a> {
    #[serde(rename = "EmailAccountDescription")]
    account_description: Cow<'a, str>,
    #[serde(rename = "EmailAccountName", skip_serializing_if = "Option::is_none")]
    account_name: Option<&'a str>,
    #[serde(rename = "EmailAccountType")]
    account_type: &'static str,
    #[serde(rename = "EmailAddress")]
    address: &'a str,
    #[serde(rename = "IncomingMailServerAuthentication")]
    incoming_authentication: &'static str,
    #[serde(rename = "IncomingMailServerHostName")]
    incoming_host: &'a str,
    #[serde(
        rename = "IncomingMailServerIMAPPathPrefix",
        skip_serializing_if = "Option::is_none"
    )]
    incoming_path_prefix: Option<&'a str>,
    #[serde(
        rename = "IncomingMailServerPortNumber",
        skip_serializing_if = "Option::is_none"
    )]
    incoming_port: Option<u16>,
    #[serde(rename = "IncomingMailServerUseSSL")]
    incoming_ssl: bool,
    #[serde(rename = "IncomingMailServerUsername")]
    incoming_username: &'a str,
    #[serde(rename = "IncomingPassword", skip_serializing_if = "Option::is_none")]
    incoming_password: Option<&'a str>,
    #[serde(rename = "OutgoingMailServerAuthentication")]
    outgoing_authentication: &'static str,
    #[serde(rename = "OutgoingMailServerHostName")]
    outgoing_host: &'a str,
    #[serde(
        rename = "OutgoingMailServerPortNumber",
        skip_serializing_if = "Option::is_none"
    )]
    outgoing_port: Option<u16>,
    #[serde(rename = "OutgoingMailServerUseSSL")]
    outgoing_ssl: bool,
    #[serde(rename = "OutgoingMailServerUsername")]
    outgoing_username: &'a str,
    #[serde(rename = "OutgoingPassword", skip_serializing_if = "Option::is_none")]
    outgoing_password: Option<&'a str>,
    #[serde(rename = "PayloadDescription", skip_serializing_if = "Option::is_none")]
    payload_description: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadDisplayName")]
    payload_display_name: Cow<'a, str>,
    #[serde(rename = "PayloadIdentifier")]
    payload_identifier: String,
    #[serde(
        rename = "PayloadOrganization",
        skip_serializing_if = "Option::is_none"
    )]
    payload_organization: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadType")]
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    payload_uuid: UpperUuid,
    #[serde(rename = "PayloadVersion")]
    payload_version: u32,
}

/// `com.apple.eas.account` (iOS, iPadOS).
#[derive(Serialize)]
struct EasPayload<'a> {
    #[serde(rename = "EmailAddress")]
    address: &'a str,
    #[serde(rename = "EnableCalendars")]
    enable_calendars: bool,
    #[serde(rename = "EnableContacts")]
    enable_contacts: bool,
    #[serde(rename = "EnableMail")]
    enable_mail: bool,
    #[serde(rename = "EnableNotes")]
    enable_notes: bool,
    #[serde(rename = "EnableReminders")]
    enable_reminders: bool,
    #[serde(rename = "Host")]
    host: &'a str,
    #[serde(
        rename = "MailNumberOfPastDaysToSync",
        skip_serializing_if = "Option::is_none"
    )]
    mail_days: Option<u8>,
    #[serde(rename = "OAuth", skip_serializing_if = "Option::is_none")]
    oauth: Option<bool>,
    #[serde(rename = "OAuthSignInURL", skip_serializing_if = "Option::is_none")]
    oauth_sign_in_url: Option<&'a str>,
    #[serde(
        rename = "OAuthTokenRequestURL",
        skip_serializing_if = "Option::is_none"
    )]
    oauth_token_request_url: Option<&'a str>,
    #[serde(rename = "Password", skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(rename = "PayloadDescription", skip_serializing_if = "Option::is_none")]
    payload_description: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadDisplayName")]
    payload_display_name: Cow<'a, str>,
    #[serde(rename = "PayloadIdentifier")]
    payload_identifier: String,
    #[serde(
        rename = "PayloadOrganization",
        skip_serializing_if = "Option::is_none"
    )]
    payload_organization: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadType")]
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    payload_uuid: UpperUuid,
    #[serde(rename = "PayloadVersion")]
    payload_version: u32,
    #[serde(rename = "SSL")]
    ssl: bool,
    #[serde(rename = "UserName")]
    user_name: Cow<'a, str>,
}

/// `com.apple.ews.account` (macOS).
#[derive(Serialize)]
struct EwsPayload<'a> {
    #[serde(rename = "EmailAddress")]
    address: &'a str,
    #[serde(rename = "Host")]
    host: &'a str,
    #[serde(rename = "OAuth", skip_serializing_if = "Option::is_none")]
    oauth: Option<bool>,
    #[serde(rename = "OAuthSignInURL", skip_serializing_if = "Option::is_none")]
    oauth_sign_in_url: Option<&'a str>,
    #[serde(rename = "Password", skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(rename = "Path", skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(rename = "PayloadDescription", skip_serializing_if = "Option::is_none")]
    payload_description: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadDisplayName")]
    payload_display_name: Cow<'a, str>,
    #[serde(rename = "PayloadIdentifier")]
    payload_identifier: String,
    #[serde(
        rename = "PayloadOrganization",
        skip_serializing_if = "Option::is_none"
    )]
    payload_organization: Option<Cow<'a, str>>,
    #[serde(rename = "PayloadType")]
    payload_type: &'static str,
    #[serde(rename = "PayloadUUID")]
    payload_uuid: UpperUuid,
    #[serde(rename = "PayloadVersion")]
    payload_version: u32,
    #[serde(rename = "Port", skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(rename = "SSL")]
    ssl: bool,
    #[serde(rename = "UserName")]
    user_name: Cow<'a, str>,
}
