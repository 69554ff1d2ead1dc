//! Windows SyncML against the ActiveSync and EMAIL2 DDF files (tests/fixtures/specs/windows):
//! every document is parsed and each command checked against the DDF node tree — node
//! names, formats, access types, allowed values, length limits, required nodes and the
//! Atomic requirement.

use mdm_mail::model::{AccountKind, Platform};
use mdm_mail::profile::windows::{self, SyncHeader, SyncMlCommand, SyncMlForm};
use mdm_mail::profile::{RenderOptions, Rendered};

use super::xml::{self, Element};
use super::{
    alice_all, alice_email, alice_exchange, alice_pop, fixture_dir, render_with, without_passwords,
};

/// A node of a DDF tree.
#[derive(Debug)]
struct DdfNode {
    /// Empty for a dynamic (server-named) node.
    name: String,
    format: String,
    occurrence: String,
    access: Vec<String>,
    allowed: Allowed,
    description: String,
    atomic_required: bool,
    children: Vec<DdfNode>,
}

#[derive(Debug)]
enum Allowed {
    Any,
    Enum(Vec<String>),
    Flags(Vec<String>),
    Range(i64, i64),
    Regex(regex::Regex),
    /// A dynamic node named from a fixed list given in prose (ContentTypes GUIDs).
    UniqueName(String),
}

impl DdfNode {
    fn from_element(node: &Element) -> DdfNode {
        let properties = node.child("DFProperties").expect("DFProperties");
        let first_child = |name: &str| {
            properties
                .child(name)
                .and_then(|e| e.children.first())
                .map(|e| e.name.clone())
                .unwrap_or_default()
        };
        let allowed = match properties.child("MSFT:AllowedValues") {
            Some(values) => {
                let listed = || -> Vec<String> {
                    values
                        .all("MSFT:Enum")
                        .filter_map(|e| e.text_at("MSFT:Value"))
                        .map(str::to_owned)
                        .collect()
                };
                match values.attribute("ValueType") {
                    Some("ENUM") => Allowed::Enum(listed()),
                    Some("Flag") => Allowed::Flags(listed()),
                    Some("RegEx") => {
                        let pattern = values.text_at("MSFT:Value").expect("regex");
                        Allowed::Regex(regex::Regex::new(&format!("^(?:{pattern})$")).unwrap())
                    }
                    Some("Range") => {
                        let range = values.text_at("MSFT:Value").expect("range");
                        let inner = range.trim_matches(['[', ']']);
                        let (low, high) = inner.rsplit_once('-').expect("low-high");
                        let number = |s: &str| s.trim_matches(['(', ')']).parse::<i64>().unwrap();
                        Allowed::Range(number(low), number(high))
                    }
                    _ => Allowed::Any,
                }
            }
            None => match properties.text_at("MSFT:DynamicNodeNaming/MSFT:UniqueName") {
                Some(text) => Allowed::UniqueName(text.to_lowercase()),
                None => Allowed::Any,
            },
        };
        DdfNode {
            name: node.text_at("NodeName").unwrap_or_default().to_owned(),
            format: first_child("DFFormat"),
            occurrence: first_child("Occurrence"),
            access: properties
                .child("AccessType")
                .map(|a| a.children.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
            allowed,
            description: properties
                .text_at("Description")
                .unwrap_or_default()
                .to_owned(),
            atomic_required: properties.child("MSFT:AtomicRequired").is_some(),
            children: node.all("Node").map(DdfNode::from_element).collect(),
        }
    }

    /// The child that `segment` names: a fixed name, or the dynamic child it matches.
    fn child(&self, segment: &str) -> Option<&DdfNode> {
        self.children
            .iter()
            .find(|c| c.name == segment)
            .or_else(|| {
                self.children.iter().find(|c| {
                    c.name.is_empty()
                        && match &c.allowed {
                            Allowed::Regex(re) => re.is_match(segment),
                            Allowed::UniqueName(text) => text.contains(&segment.to_lowercase()),
                            _ => false,
                        }
                })
            })
    }

    /// The maximum length the description states, if any.
    fn max_len(&self) -> Option<usize> {
        let re =
            regex::Regex::new(r"Limited to (\d+) characters|\((\d+) characters maximum\)").unwrap();
        let caps = re.captures(&self.description)?;
        caps.get(1).or(caps.get(2))?.as_str().parse().ok()
    }
}

/// The root node of a DDF file and the path it sits under.
fn ddf(file: &str) -> (String, DdfNode) {
    let bytes = std::fs::read(fixture_dir("specs/windows").join(file)).unwrap();
    let tree = xml::parse(&bytes);
    let root = tree
        .iter()
        .find(|e| e.name == "MgmtTree")
        .and_then(|t| t.child("Node"))
        .expect("MgmtTree/Node");
    let path = root.text_at("Path").expect("Path").to_owned();
    (path, DdfNode::from_element(root))
}

/// One command of a SyncML document.
#[derive(Debug)]
struct Command {
    verb: String,
    cmd_id: String,
    uri: String,
    format: Option<String>,
    content_type: Option<String>,
    data: Option<String>,
    atomic: bool,
}

/// The commands of a fragment or message, checking the envelope on the way.
fn commands(body: &[u8], form: &SyncMlForm) -> Vec<Command> {
    let top = xml::parse(body);
    let commands_parent: Element = match form {
        SyncMlForm::Fragment => Element {
            children: top,
            ..Element::default()
        },
        SyncMlForm::Message(header) => {
            assert_eq!(top.len(), 1, "one root element");
            let root = &top[0];
            assert_eq!(root.name, "SyncML");
            assert_eq!(root.attribute("xmlns"), Some("SYNCML:SYNCML1.2"));
            let hdr = root.child("SyncHdr").expect("SyncHdr");
            assert_eq!(hdr.text_at("VerDTD"), Some("1.2"));
            assert_eq!(hdr.text_at("VerProto"), Some("DM/1.2"));
            assert_eq!(hdr.text_at("SessionID"), Some(header.session_id.as_str()));
            assert_eq!(
                hdr.text_at("MsgID"),
                Some(header.msg_id.to_string().as_str())
            );
            assert_eq!(hdr.text_at("Target/LocURI"), Some(header.target.as_str()));
            assert_eq!(hdr.text_at("Source/LocURI"), Some(header.source.as_str()));
            let body = root.child("SyncBody").expect("SyncBody");
            assert_eq!(body.children.last().map(|e| e.name.as_str()), Some("Final"));
            body.clone()
        }
    };
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for element in &commands_parent.children {
        match element.name.as_str() {
            "Atomic" => {
                ids.push(element.text_at("CmdID").expect("Atomic CmdID").to_owned());
                for inner in element.children.iter().filter(|c| c.name != "CmdID") {
                    assert_ne!(inner.name, "Atomic", "Atomic does not nest");
                    out.push(command(inner, true));
                }
            }
            "Final" => {}
            _ => out.push(command(element, false)),
        }
    }
    ids.extend(out.iter().map(|c| c.cmd_id.clone()));
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "CmdIDs are unique: {ids:?}");
    assert!(ids.iter().all(|id| id.parse::<u32>().is_ok_and(|n| n > 0)));
    out
}

fn command(element: &Element, atomic: bool) -> Command {
    let item = element.child("Item").expect("Item");
    let meta_text = |name: &str| {
        item.child("Meta").and_then(|m| m.child(name)).map(|f| {
            assert_eq!(
                f.attribute("xmlns"),
                Some("syncml:metinf"),
                "{name} namespace"
            );
            f.text.clone()
        })
    };
    Command {
        verb: element.name.clone(),
        cmd_id: element.text_at("CmdID").expect("CmdID").to_owned(),
        uri: item.text_at("Target/LocURI").expect("LocURI").to_owned(),
        format: meta_text("Format"),
        content_type: meta_text("Type"),
        data: item.child("Data").map(|d| d.text.clone()),
        atomic,
    }
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).expect("hex escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks every command against the DDF trees; returns the problems.
fn conformance_problems(body: &[u8], form: &SyncMlForm) -> Vec<String> {
    let trees = [ddf("ActiveSync.xml"), ddf("EMAIL2.xml")];
    let mut problems = Vec::new();
    let commands = commands(body, form);
    // Account node URI → leaves touched, its DDF node, whether EMAIL2, whether created here.
    let mut accounts: Vec<(String, Vec<String>, &DdfNode, bool, bool)> = Vec::new();
    for c in &commands {
        let uri = &c.uri;
        if uri.starts_with('/') || !uri.starts_with("./User/") {
            problems.push(format!("{uri}: not a user-scoped ./User/ URI"));
            continue;
        }
        let Some((root_path, root)) = trees
            .iter()
            .find(|(path, root)| uri.starts_with(&format!("{path}/{}", root.name)))
        else {
            problems.push(format!("{uri}: under neither CSP"));
            continue;
        };
        let rest = &uri[root_path.len() + root.name.len() + 1..];
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let mut node = root;
        let mut account_depth = None;
        let mut needs_atomic = false;
        let mut found = true;
        for (depth, segment) in segments.iter().enumerate() {
            match node.child(segment) {
                Some(child) => {
                    needs_atomic |= child.atomic_required;
                    if child.atomic_required || (child.name.is_empty() && account_depth.is_none()) {
                        account_depth.get_or_insert(depth);
                    }
                    node = child;
                }
                None => {
                    problems.push(format!(
                        "{uri}: no node {segment:?} in the {} DDF",
                        root.name
                    ));
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        if !node.access.contains(&c.verb) {
            problems.push(format!("{uri}: {} is not an allowed access type", c.verb));
        }
        if needs_atomic && !c.atomic {
            problems.push(format!("{uri}: the DDF requires Atomic"));
        }
        if node.name == "Name" && uri.contains("/ContentTypes/") {
            problems.push(format!("{uri}: ContentTypes Name fails inside Atomic"));
        }
        // Remember which leaves each account node got, for the required-node check.
        if let Some(depth) = account_depth {
            let account_uri = segments[..=depth].join("/");
            let leaf = segments[depth + 1..].join("/");
            let account_node = {
                let mut n = root;
                for s in &segments[..=depth] {
                    n = n.child(s).expect("walked before");
                }
                n
            };
            let created = c.verb == "Add" && leaf.is_empty();
            match accounts.iter_mut().find(|(uri, ..)| *uri == account_uri) {
                Some(entry) => {
                    entry.1.push(leaf);
                    entry.4 |= created;
                }
                None => accounts.push((
                    account_uri,
                    vec![leaf],
                    account_node,
                    root.name == "EMAIL2",
                    created,
                )),
            }
        }
        if c.verb == "Delete" {
            if c.data.is_some() || c.format.is_some() {
                problems.push(format!("{uri}: Delete carries no data"));
            }
            continue;
        }
        match (node.format.as_str(), c.format.as_deref()) {
            ("node", Some("node")) => {
                if c.data.is_some() {
                    problems.push(format!("{uri}: an interior node carries no data"));
                }
                continue;
            }
            (ddf_format, Some(sent)) if ddf_format == sent => {}
            (ddf_format, sent) => {
                problems.push(format!("{uri}: format {sent:?}, the DDF says {ddf_format}"));
                continue;
            }
        }
        if c.content_type.as_deref() != Some("text/plain") {
            problems.push(format!(
                "{uri}: Meta/Type is {:?}, not text/plain",
                c.content_type
            ));
        }
        let Some(data) = &c.data else {
            problems.push(format!("{uri}: a leaf without Data"));
            continue;
        };
        match &node.allowed {
            Allowed::Enum(values) if !values.contains(data) => {
                problems.push(format!("{uri}: {data:?} is not one of {values:?}"));
            }
            Allowed::Range(low, high) => match data.parse::<i64>() {
                Ok(n) if (*low..=*high).contains(&n) => {}
                _ => problems.push(format!("{uri}: {data:?} is not in [{low}, {high}]")),
            },
            Allowed::Flags(flags) => {
                let parse = |s: &str| match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None => s.parse::<u64>().ok(),
                };
                let known: u64 = flags.iter().filter_map(|f| parse(f)).fold(0, |a, b| a | b);
                match parse(data) {
                    Some(v) if v & !known == 0 => {}
                    _ => {
                        problems.push(format!("{uri}: {data:?} is not a combination of {flags:?}"))
                    }
                }
            }
            _ => {}
        }
        if let Some(max) = node.max_len()
            && data.encode_utf16().count() > max
        {
            problems.push(format!(
                "{uri}: {} characters, the DDF allows {max}",
                data.chars().count()
            ));
        }
    }
    // Required leaves of each account created here.
    for (uri, leaves, account, email2, created) in &accounts {
        if !created {
            continue; // updated or deleted here, not created
        }
        let required: Vec<String> = if *email2 {
            // EMAIL2's DDF marks its required leaves with Occurrence One.
            account
                .children
                .iter()
                .filter(|c| c.occurrence == "One" && c.format != "node")
                .map(|c| c.name.clone())
                .collect()
        } else {
            // ActiveSync's DDF says One for every leaf; its CSP documentation names these.
            [
                "EmailAddress",
                "AccountName",
                "AccountType",
                "ServerName",
                "UserName",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        for name in required {
            if !leaves.contains(&name) {
                problems.push(format!("{uri}: required node {name} is missing"));
            }
        }
        if leaves.first().is_some_and(|l| !l.is_empty()) {
            problems.push(format!("{uri}: leaves are added before their account node"));
        }
    }
    problems
}

fn header() -> SyncHeader {
    SyncHeader {
        session_id: "7".into(),
        msg_id: 2,
        target: "urn:uuid:5b1f0e4c-0000-4000-8000-000000000001".into(),
        source: "https://mdm.example.com/ManagementServer/MDM.svc".into(),
    }
}

fn options(form: SyncMlForm, command: SyncMlCommand) -> RenderOptions {
    RenderOptions {
        syncml: form,
        syncml_command: command,
        ..RenderOptions::default()
    }
}

fn render(accounts: &[mdm_mail::model::Account], options: &RenderOptions) -> Rendered {
    render_with(accounts, Platform::Windows, options)
}

#[test]
fn every_syncml_document_conforms_to_the_ddf() {
    for form in [SyncMlForm::Fragment, SyncMlForm::Message(header())] {
        for command in [SyncMlCommand::Add, SyncMlCommand::Replace] {
            for accounts in [
                alice_all(),
                without_passwords(alice_all()),
                vec![alice_pop()],
                vec![alice_exchange()],
            ] {
                let rendered = render(&accounts, &options(form.clone(), command));
                let problems = conformance_problems(&rendered.body, &form);
                assert!(
                    problems.is_empty(),
                    "{form:?} {command:?}:\n{}",
                    problems.join("\n")
                );
            }
        }
        let rendered = render(&alice_all(), &RenderOptions::default());
        let removal = windows::removal(&rendered.accounts, &form).unwrap();
        let problems = conformance_problems(&removal, &form);
        assert!(
            problems.is_empty(),
            "removal {form:?}:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_checker_catches_what_the_ddf_forbids() {
    let broken = br#"<Atomic><CmdID>1</CmdID>
<Add><CmdID>2</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/EMAIL2/%7BA1B2C3D4-E5F6-4789-9ABC-DEF012345678%7D</LocURI></Target><Meta><Format xmlns="syncml:metinf">node</Format></Meta></Item></Add>
<Add><CmdID>3</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/EMAIL2/%7BA1B2C3D4-E5F6-4789-9ABC-DEF012345678%7D/SERVICENAME</LocURI></Target><Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta><Data>a name much longer than thirty-two characters</Data></Item></Add>
<Add><CmdID>4</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/EMAIL2/%7BA1B2C3D4-E5F6-4789-9ABC-DEF012345678%7D/DWNDAY</LocURI></Target><Meta><Format xmlns="syncml:metinf">int</Format></Meta><Data>5</Data></Item></Add>
<Add><CmdID>5</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/EMAIL2/%7BA1B2C3D4-E5F6-4789-9ABC-DEF012345678%7D/PORT</LocURI></Target><Meta><Format xmlns="syncml:metinf">chr</Format></Meta><Data>1</Data></Item></Add>
<Add><CmdID>6</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/EMAIL2/%7BA1B2C3D4-E5F6-4789-9ABC-DEF012345678%7D/ACCOUNTTYPE</LocURI></Target><Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta><Data>Exchange</Data></Item></Add>
</Atomic>
<Add><CmdID>7</CmdID><Item><Target><LocURI>./User/Vendor/MSFT/ActiveSync/Accounts/%7B6F1A2B3C-4D5E-4F60-8172-93A4B5C6D7E8%7D/Options/UseSSL</LocURI></Target><Meta><Format xmlns="syncml:metinf">chr</Format><Type xmlns="syncml:metinf">text/plain</Type></Meta><Data>1</Data></Item></Add>"#;
    let problems = conformance_problems(broken, &SyncMlForm::Fragment);
    for expected in [
        "SERVICENAME: 45 characters, the DDF allows 32",
        "DWNDAY: format Some(\"int\"), the DDF says chr",
        "PORT\" in the EMAIL2 DDF",
        "ACCOUNTTYPE: \"Exchange\" is not one of [\"Email\", \"VVM\"]",
        "%7D/Options/UseSSL: the DDF requires Atomic",
        "required node REPLYADDR is missing",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "missing {expected:?} in {problems:#?}"
        );
    }
}

fn data_of<'a>(commands: &'a [Command], suffix: &str) -> Option<&'a str> {
    commands
        .iter()
        .find(|c| c.uri.ends_with(suffix))
        .and_then(|c| c.data.as_deref())
}

#[test]
fn email_accounts_go_to_email2_with_separate_smtp_credentials() {
    let rendered = render(&[alice_email()], &RenderOptions::default());
    let commands = commands(&rendered.body, &SyncMlForm::Fragment);
    let node = windows::account_node(AccountKind::Email, rendered.accounts[0].uuid);
    assert!(commands.iter().all(|c| c.uri.starts_with(&node)));
    assert_eq!(data_of(&commands, "/SERVICETYPE"), Some("IMAP4"));
    assert_eq!(
        data_of(&commands, "/INSERVER"),
        Some("imap.example.com:993")
    );
    assert_eq!(
        data_of(&commands, "/OUTSERVER"),
        Some("smtp.example.com:587")
    );
    assert_eq!(data_of(&commands, "/AUTHNAME"), Some("alice"));
    assert_eq!(data_of(&commands, "/AUTHSECRET"), Some("in-secret"));
    assert_eq!(data_of(&commands, "/SMTPALTENABLED"), Some("1"));
    assert_eq!(data_of(&commands, "/SMTPALTAUTHNAME"), Some("alice-smtp"));
    assert_eq!(data_of(&commands, "/SMTPALTPASSWORD"), Some("out-secret"));
    assert_eq!(data_of(&commands, "/TAGPROPS/8128000B"), Some("1"));
    assert_eq!(data_of(&commands, "/NAME"), Some("Alice Adams"));
}

#[test]
fn shared_smtp_credentials_are_not_repeated() {
    let rendered = render(&[alice_pop()], &RenderOptions::default());
    let commands = commands(&rendered.body, &SyncMlForm::Fragment);
    assert_eq!(data_of(&commands, "/SERVICETYPE"), Some("POP3"));
    assert_eq!(data_of(&commands, "/INSERVER"), Some("pop.example.net"));
    assert_eq!(data_of(&commands, "/AUTHREQUIRED"), Some("0"));
    assert_eq!(data_of(&commands, "/SMTPALTENABLED"), Some("0"));
    assert!(data_of(&commands, "/SMTPALTAUTHNAME").is_none());
    assert!(
        data_of(&commands, "/AUTHSECRET").is_none(),
        "no password stored"
    );
    // The POP account has no display name of its own: the owner's name is the sender.
    assert_eq!(data_of(&commands, "/NAME"), Some("Alice Adams"));
}

#[test]
fn exchange_accounts_go_to_activesync_with_content_types() {
    let rendered = render(&[alice_exchange()], &RenderOptions::default());
    let commands = commands(&rendered.body, &SyncMlForm::Fragment);
    assert_eq!(data_of(&commands, "/AccountType"), Some("Exchange"));
    assert_eq!(data_of(&commands, "/ServerName"), Some("mail.example.com"));
    assert_eq!(data_of(&commands, "/UserName"), Some("alice"));
    assert_eq!(data_of(&commands, "/Domain"), Some("CORP"));
    assert_eq!(data_of(&commands, "/Password"), Some("ex-secret"));
    assert_eq!(data_of(&commands, "/Options/MailAgeFilter"), Some("4"));
    assert_eq!(
        data_of(
            &commands,
            "/Options/ContentTypes/%7B783ae4f6-4c12-4423-8270-66361260d4f1%7D/Enabled"
        ),
        Some("0"),
        "reminders (tasks) are off in the definition"
    );
    assert!(commands.iter().all(|c| c.atomic));
}

#[test]
fn updates_replace_leaves_of_the_same_guids_and_leave_fixed_nodes_alone() {
    let add = render(&alice_all(), &RenderOptions::default());
    let replace = render(
        &alice_all(),
        &options(SyncMlForm::Fragment, SyncMlCommand::Replace),
    );
    assert_eq!(add.accounts, replace.accounts);
    let commands = commands(&replace.body, &SyncMlForm::Fragment);
    assert!(commands.iter().all(|c| c.verb == "Replace"));
    for fixed in ["/AccountType", "/ACCOUNTTYPE", "/SERVICETYPE"] {
        assert!(
            data_of(&commands, fixed).is_none(),
            "{fixed} is fixed at creation"
        );
    }
    for account in &add.accounts {
        let node = windows::account_node(account.kind, account.uuid);
        assert!(commands.iter().any(|c| c.uri.starts_with(&node)));
    }
}

#[test]
fn removal_deletes_each_account_node_independently() {
    let rendered = render(&alice_all(), &RenderOptions::default());
    let removal = windows::removal(&rendered.accounts, &SyncMlForm::Fragment).unwrap();
    let commands = commands(&removal, &SyncMlForm::Fragment);
    assert_eq!(commands.len(), 4);
    let atomics = xml::parse(&removal);
    assert_eq!(
        atomics.len(),
        4,
        "one Atomic per account, so a missing one does not stop the rest"
    );
    for (command, account) in commands.iter().zip(&rendered.accounts) {
        assert_eq!(command.verb, "Delete");
        assert!(
            command.atomic,
            "the ActiveSync account node requires Atomic"
        );
        assert_eq!(
            command.uri,
            windows::account_node(account.kind, account.uuid)
        );
    }
}

#[test]
fn fragment_and_message_carry_the_same_commands_with_their_content_types() {
    let fragment = render(&alice_all(), &RenderOptions::default());
    let message = render(
        &alice_all(),
        &options(SyncMlForm::Message(header()), SyncMlCommand::Add),
    );
    assert_eq!(fragment.content_type, "application/xml");
    assert_eq!(message.content_type, "application/vnd.syncml.dm+xml");
    let a = commands(&fragment.body, &SyncMlForm::Fragment);
    let b = commands(&message.body, &SyncMlForm::Message(header()));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!((&a.verb, &a.uri, &a.data), (&b.verb, &b.uri, &b.data));
    }
}
