//! Windows: OMA-DM SyncML 1.2 for the ActiveSync CSP (Exchange accounts, under
//! `./User/Vendor/MSFT/ActiveSync/Accounts/{GUID}`) and the EMAIL2 CSP (Email accounts,
//! under `./User/Vendor/MSFT/EMAIL2/{GUID}`), node names, formats and limits as in their DDF
//! files. Every leaf is `chr` text, even numbers and flags.
//!
//! The commands sit in one `<Atomic>` (the ActiveSync account node demands it, EMAIL2's
//! documentation asks for it), so a device takes all accounts or none. Two forms:
//! the bare fragment, which MDM servers that wrap SyncML themselves (Fleet, Intune custom
//! settings) take, and a full `<SyncML>` message for a server that speaks OMA-DM itself.
//!
//! Installing and updating differ on Windows: an `Add` of an account GUID the device already
//! has fails (EMAIL2) or deletes the account (ActiveSync). So a first install `Add`s the
//! account node and its leaves, and an update `Replace`s the leaves of the same GUID, leaving
//! out the account type, which the CSPs fix at creation. [`removal`] deletes account nodes.
//!
//! EMAIL2 details the DDF leaves open, chosen here: `SYNCINGCONTENTTYPES` is written in
//! decimal (`2`, mail); when the outgoing credentials differ from the incoming ones the
//! alternative SMTP set is sent whole (EMAIL2 rejects a partial one), with an empty domain
//! and, when no outgoing password is stored, an empty password the user then corrects on
//! the device. `SERVICENAME` is cut to 32 and `NAME` to 255 UTF-16 units, the DDF's limits.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use uuid::Uuid;

use super::definition::{Authentication, IncomingProtocol, sync_window};
use super::{Plan, RenderError, RenderOptions, RenderedAccount, Settings, secret};
use crate::model::{AccountKind, Platform};

/// MIME type of a full SyncML message (OMA-DM over HTTP).
pub const CONTENT_TYPE_MESSAGE: &str = "application/vnd.syncml.dm+xml";
/// MIME type of a bare command fragment.
pub const CONTENT_TYPE_FRAGMENT: &str = "application/xml";
/// File name extension of either form.
pub const EXTENSION: &str = "xml";

/// Where ActiveSync accounts live.
pub const ACTIVESYNC_ACCOUNTS: &str = "./User/Vendor/MSFT/ActiveSync/Accounts";
/// Where EMAIL2 accounts live.
pub const EMAIL2_ACCOUNTS: &str = "./User/Vendor/MSFT/EMAIL2";

/// Longest `SERVICENAME` (EMAIL2 DDF: "32 characters maximum").
pub const SERVICE_NAME_MAX: usize = 32;
/// Longest `NAME` (EMAIL2 DDF: "Limited to 255 characters").
pub const SENDER_NAME_MAX: usize = 255;

/// ActiveSync content types (ActiveSync DDF, `Options/ContentTypes`).
const CONTENT_EMAIL: &str = "c6d47067-6e92-480e-b0fc-4ba82182fac7";
const CONTENT_CONTACTS: &str = "0dd8685c-e272-4fcb-9ecf-2ead7ea2497b";
const CONTENT_CALENDAR: &str = "4a5d9fe0-f139-4a63-a5a4-4f31ceea02ad";
const CONTENT_TASKS: &str = "783ae4f6-4c12-4423-8270-66361260d4f1";

/// EMAIL2 `SYNCINGCONTENTTYPES` bit for mail (DDF flag `0x2`), written in decimal.
const SYNC_MAIL: &str = "2";

/// Which SyncML document to write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SyncMlForm {
    /// Only the commands (`<Atomic>…</Atomic>`), for MDM servers that wrap commands into
    /// their own messages.
    #[default]
    Fragment,
    /// A whole `<SyncML>` message with this header.
    Message(SyncHeader),
}

/// The `SyncHdr` of a full message. These come from the OMA-DM session the message is
/// sent in, so the caller supplies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncHeader {
    /// `SessionID`, echoing the device's.
    pub session_id: String,
    /// `MsgID`, this server message's number in the session.
    pub msg_id: u32,
    /// `Target/LocURI`: the device id the device reported (`./DevInfo/DevID`).
    pub target: String,
    /// `Source/LocURI`: the management server's URL.
    pub source: String,
}

/// Whether accounts are created or updated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SyncMlCommand {
    /// Create the account nodes and their settings (first install).
    #[default]
    Add,
    /// Replace the settings of account nodes the device has (same GUIDs).
    Replace,
}

impl SyncMlCommand {
    fn element(self) -> &'static str {
        match self {
            SyncMlCommand::Add => "Add",
            SyncMlCommand::Replace => "Replace",
        }
    }
}

/// The MIME type of `form`.
pub fn content_type(form: &SyncMlForm) -> &'static str {
    match form {
        SyncMlForm::Fragment => CONTENT_TYPE_FRAGMENT,
        SyncMlForm::Message(_) => CONTENT_TYPE_MESSAGE,
    }
}

/// The LocURI of an account's node: the CSP is decided by the account type, the GUID is the
/// account's UUID in braces, URL-encoded as `%7B…%7D`.
pub fn account_node(kind: AccountKind, uuid: Uuid) -> String {
    let mut buffer = Uuid::encode_buffer();
    let guid = uuid.hyphenated().encode_upper(&mut buffer);
    match kind {
        AccountKind::Exchange => format!("{ACTIVESYNC_ACCOUNTS}/%7B{guid}%7D"),
        AccountKind::Email => format!("{EMAIL2_ACCOUNTS}/%7B{guid}%7D"),
    }
}

/// SyncML that deletes the account nodes of `accounts` (from [`super::Rendered::accounts`]).
/// Each delete sits in an `<Atomic>` of its own: the ActiveSync account node requires
/// Atomic, and an account already gone must not keep the others.
pub fn removal(accounts: &[RenderedAccount], form: &SyncMlForm) -> Result<Vec<u8>, RenderError> {
    write_document(form, |w, cmd| {
        for account in accounts {
            let atomic = cmd.next();
            let delete = cmd.next();
            w.create_element("Atomic").write_inner_content(|w| {
                cmd_id(w, atomic)?;
                w.create_element("Delete").write_inner_content(|w| {
                    cmd_id(w, delete)?;
                    w.create_element("Item").write_inner_content(|w| {
                        target(w, &account_node(account.kind, account.uuid))
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
        }
        Ok(())
    })
}

/// Renders the plan as SyncML in the form and with the command `options` ask for.
pub(crate) fn render(plan: &Plan<'_>, options: &RenderOptions) -> Result<Vec<u8>, RenderError> {
    let command = options.syncml_command;
    write_document(&options.syncml, |w, cmd| {
        let atomic = cmd.next();
        w.create_element("Atomic").write_inner_content(|w| {
            cmd_id(w, atomic)?;
            for entry in &plan.entries {
                let node = account_node(entry.account.kind(), entry.uuid);
                let mut leaves = Leaves {
                    w: &mut *w,
                    cmd: &mut *cmd,
                    command,
                    node: &node,
                };
                if command == SyncMlCommand::Add {
                    leaves.node()?;
                }
                let values = entry.values();
                let account_name = entry.definition.account_name.render(&values);
                match entry.settings {
                    Settings::Exchange {
                        exchange,
                        username,
                        domain,
                        password,
                    } => {
                        leaves.leaf("EmailAddress", &entry.account.address)?;
                        leaves.leaf("AccountName", &account_name)?;
                        if command == SyncMlCommand::Add {
                            leaves.leaf("AccountType", "Exchange")?;
                        }
                        leaves.leaf("ServerName", &exchange.host)?;
                        leaves.leaf("UserName", username)?;
                        if let Some(domain) = domain.filter(|d| !d.trim().is_empty()) {
                            leaves.leaf("Domain", domain)?;
                        }
                        // OAuth accounts sign in interactively; the CSP has no OAuth node.
                        if exchange.oauth.is_none()
                            && let Some(password) = secret(password, options)
                        {
                            leaves.leaf("Password", password)?;
                        }
                        leaves.leaf("Options/UseSSL", flag(exchange.tls))?;
                        if let Some(days) = exchange.mail_days_to_sync {
                            leaves.leaf("Options/MailAgeFilter", age_filter(days))?;
                        }
                        let s = exchange.services;
                        for (content, on) in [
                            (CONTENT_EMAIL, s.mail),
                            (CONTENT_CONTACTS, s.contacts),
                            (CONTENT_CALENDAR, s.calendars),
                            (CONTENT_TASKS, s.reminders),
                        ] {
                            let leaf = format!("Options/ContentTypes/%7B{content}%7D/Enabled");
                            leaves.leaf(&leaf, flag(on))?;
                        }
                    }
                    Settings::Email {
                        incoming,
                        outgoing,
                        incoming_username,
                        incoming_password,
                        outgoing_username,
                        outgoing_password,
                    } => {
                        if command == SyncMlCommand::Add {
                            leaves.leaf("ACCOUNTTYPE", "Email")?;
                        }
                        leaves.leaf("SERVICENAME", truncate(&account_name, SERVICE_NAME_MAX))?;
                        if command == SyncMlCommand::Add {
                            leaves.leaf(
                                "SERVICETYPE",
                                match incoming.protocol {
                                    IncomingProtocol::Imap => "IMAP4",
                                    IncomingProtocol::Pop => "POP3",
                                },
                            )?;
                        }
                        let sender = entry.display_name();
                        if !sender.is_empty() {
                            leaves.leaf("NAME", truncate(sender, SENDER_NAME_MAX))?;
                        }
                        leaves.leaf("REPLYADDR", &entry.account.address)?;
                        leaves.leaf("INSERVER", &server(&incoming.host, incoming.port))?;
                        leaves.leaf("OUTSERVER", &server(&outgoing.host, outgoing.port))?;
                        leaves.leaf("AUTHNAME", incoming_username)?;
                        if let Some(password) = secret(incoming_password, options) {
                            leaves.leaf("AUTHSECRET", password)?;
                        }
                        leaves.leaf(
                            "AUTHREQUIRED",
                            flag(outgoing.authentication != Authentication::None),
                        )?;
                        leaves.leaf("SYNCINGCONTENTTYPES", SYNC_MAIL)?;
                        leaves.leaf("TAGPROPS/8128000B", flag(incoming.tls))?;
                        leaves.leaf("TAGPROPS/812C000B", flag(outgoing.tls))?;
                        // EMAIL2 uses the incoming credentials for SMTP unless the
                        // alternative ones are enabled, and wants those all or none.
                        let separate = outgoing_username != incoming_username
                            || (outgoing_password.is_some()
                                && outgoing_password != incoming_password);
                        leaves.leaf("SMTPALTENABLED", flag(separate))?;
                        if separate {
                            leaves.leaf("SMTPALTAUTHNAME", outgoing_username)?;
                            leaves.leaf("SMTPALTDOMAIN", "")?;
                            leaves.leaf(
                                "SMTPALTPASSWORD",
                                secret(outgoing_password, options).unwrap_or_default(),
                            )?;
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(())
    })
}

/// Numbers the commands of one document.
struct CmdIds(u32);

impl CmdIds {
    fn next(&mut self) -> u32 {
        self.0 += 1;
        self.0
    }
}

/// Writes the commands `body` writes, wrapped as `form` asks.
fn write_document(
    form: &SyncMlForm,
    body: impl FnOnce(&mut Writer<Vec<u8>>, &mut CmdIds) -> io::Result<()>,
) -> Result<Vec<u8>, RenderError> {
    let mut w = Writer::new_with_indent(Vec::with_capacity(8192), b' ', 2);
    let mut cmd = CmdIds(0);
    let written = match form {
        SyncMlForm::Fragment => body(&mut w, &mut cmd),
        SyncMlForm::Message(header) => message(&mut w, header, |w| body(w, &mut cmd)),
    };
    written.map_err(|e| RenderError::Serialize {
        platform: Platform::Windows,
        message: e.to_string(),
    })?;
    let mut out = w.into_inner();
    out.push(b'\n');
    Ok(out)
}

fn message(
    w: &mut Writer<Vec<u8>>,
    header: &SyncHeader,
    body: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>,
) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("SyncML")
        .with_attribute(("xmlns", "SYNCML:SYNCML1.2"))
        .write_inner_content(|w| {
            w.create_element("SyncHdr").write_inner_content(|w| {
                text(w, "VerDTD", "1.2")?;
                text(w, "VerProto", "DM/1.2")?;
                text(w, "SessionID", &header.session_id)?;
                text(w, "MsgID", &header.msg_id.to_string())?;
                w.create_element("Target")
                    .write_inner_content(|w| text(w, "LocURI", &header.target))?;
                w.create_element("Source")
                    .write_inner_content(|w| text(w, "LocURI", &header.source))?;
                Ok(())
            })?;
            w.create_element("SyncBody").write_inner_content(|w| {
                body(w)?;
                w.create_element("Final").write_empty()?;
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// The commands for one account node.
struct Leaves<'w, 'n> {
    w: &'w mut Writer<Vec<u8>>,
    cmd: &'w mut CmdIds,
    command: SyncMlCommand,
    node: &'n str,
}

impl Leaves<'_, '_> {
    /// `Add` of the account node itself (interior node, no data).
    fn node(&mut self) -> io::Result<()> {
        let id = self.cmd.next();
        let node = self.node;
        self.w.create_element("Add").write_inner_content(|w| {
            cmd_id(w, id)?;
            w.create_element("Item").write_inner_content(|w| {
                target(w, node)?;
                w.create_element("Meta")
                    .write_inner_content(|w| format(w, "node"))?;
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    }

    /// An `Add` or `Replace` of the leaf at `path` below the account node.
    fn leaf(&mut self, path: &str, value: &str) -> io::Result<()> {
        let id = self.cmd.next();
        let uri = format!("{}/{path}", self.node);
        self.w
            .create_element(self.command.element())
            .write_inner_content(|w| {
                cmd_id(w, id)?;
                w.create_element("Item").write_inner_content(|w| {
                    target(w, &uri)?;
                    w.create_element("Meta").write_inner_content(|w| {
                        format(w, "chr")?;
                        w.create_element("Type")
                            .with_attribute(("xmlns", "syncml:metinf"))
                            .write_text_content(BytesText::new("text/plain"))?;
                        Ok(())
                    })?;
                    text(w, "Data", value)
                })?;
                Ok(())
            })?;
        Ok(())
    }
}

fn cmd_id(w: &mut Writer<Vec<u8>>, id: u32) -> io::Result<()> {
    text(w, "CmdID", &id.to_string())
}

fn target(w: &mut Writer<Vec<u8>>, uri: &str) -> io::Result<()> {
    w.create_element("Target")
        .write_inner_content(|w| text(w, "LocURI", uri))?;
    Ok(())
}

fn format(w: &mut Writer<Vec<u8>>, format: &str) -> io::Result<()> {
    w.create_element("Format")
        .with_attribute(("xmlns", "syncml:metinf"))
        .write_text_content(BytesText::new(format))?;
    Ok(())
}

fn text(w: &mut Writer<Vec<u8>>, element: &str, value: &str) -> io::Result<()> {
    w.create_element(element)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

/// `host` or `host:port`, as `INSERVER` and `OUTSERVER` take it.
fn server(host: &str, port: Option<u16>) -> String {
    match port {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// ActiveSync `MailAgeFilter` for Apple's days of mail to sync.
fn age_filter(days: u8) -> &'static str {
    match sync_window(days) {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        4 => "4",
        _ => "5",
    }
}

/// `text` cut to at most `max` UTF-16 code units (how Windows counts characters), on a
/// character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut units = 0;
    for (i, c) in text.char_indices() {
        units += c.len_utf16();
        if units > max {
            return &text[..i];
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_the_windows_limit_on_character_boundaries() {
        assert_eq!(truncate("short", 32), "short");
        assert_eq!(truncate(&"é".repeat(40), 32), "é".repeat(32));
        // An emoji is two UTF-16 units: 31 letters leave room for none.
        assert_eq!(
            truncate(&format!("{}😀", "a".repeat(31)), 32),
            "a".repeat(31)
        );
    }

    #[test]
    fn account_nodes_encode_the_guid_braces() {
        let uuid = Uuid::from_u128(0x6F1A2B3C_4D5E_4F60_8172_93A4B5C6D7E8);
        assert_eq!(
            account_node(AccountKind::Exchange, uuid),
            "./User/Vendor/MSFT/ActiveSync/Accounts/%7B6F1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8%7D"
        );
        assert_eq!(
            account_node(AccountKind::Email, uuid),
            "./User/Vendor/MSFT/EMAIL2/%7B6F1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8%7D"
        );
    }

    #[test]
    fn mail_days_map_onto_the_age_filter_scale() {
        let mapped: Vec<&str> = [0, 1, 3, 7, 14, 31].into_iter().map(age_filter).collect();
        assert_eq!(mapped, ["0", "1", "2", "3", "4", "5"]);
    }
}
