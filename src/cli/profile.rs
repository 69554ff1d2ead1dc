//! `mdm-mail profile`: one user's profile, or every user's into a folder.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Settings;
use crate::model::{Platform, normalize_email};
use crate::profile::files::safe_name;
use crate::profile::{ProfileError, RenderError, RenderOptions, SyncHeader, SyncMlForm};
use crate::store::Store;

/// The arguments of `profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// The user's email address.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    user_email: Option<String>,
    /// ios, ipados, macos, windows or android.
    #[arg(long, value_name = "ios|ipados|macos|windows|android")]
    platform: Platform,
    /// Write the profile to this file instead of standard output.
    #[arg(long, conflicts_with = "all")]
    out: Option<PathBuf>,
    /// Render every user that has accounts, one file each, into --out-dir.
    #[arg(long, requires = "out_dir")]
    all: bool,
    /// The folder --all writes into (created if missing).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Windows: a complete SyncML message rather than the bare command fragment, addressed to
    /// this device id (the device's ./DevInfo/DevID).
    #[arg(long, value_name = "DEVICE_ID", requires = "server_url")]
    message: Option<String>,
    /// Windows, with --message: the management server URL the message comes from.
    #[arg(long, requires = "message")]
    server_url: Option<String>,
    /// Replace passwords with asterisks (for reading, not for devices; not signed). The
    /// default when the profile goes to a terminal.
    #[arg(long, conflicts_with = "show_passwords")]
    redact: bool,
    /// Print the passwords even on a terminal, where they are otherwise replaced.
    #[arg(long)]
    show_passwords: bool,
}

/// Runs `profile`.
pub async fn run(
    store: &Store,
    settings: &Settings,
    args: ProfileArgs,
) -> anyhow::Result<ExitCode> {
    let profiles = settings.profiles()?;
    // Passwords on a screen stay in its scrollback and in view of whoever stands behind: a
    // profile shown on a terminal is redacted unless asked for in full.
    let on_terminal = args.out.is_none() && !args.all && std::io::stdout().is_terminal();
    let redact = args.redact || (on_terminal && !args.show_passwords);
    if redact && !args.redact {
        eprintln!(
            "mdm-mail: passwords replaced by ******** on the terminal; --show-passwords prints them, --out FILE writes the profile for a device"
        );
    }
    let options = RenderOptions {
        redact_secrets: redact,
        syncml: match (&args.message, &args.server_url) {
            (Some(target), Some(source)) => SyncMlForm::Message(SyncHeader {
                session_id: "1".into(),
                msg_id: 1,
                target: target.clone(),
                source: source.clone(),
            }),
            _ => SyncMlForm::Fragment,
        },
        ..RenderOptions::default()
    };
    if let (true, Some(dir)) = (args.all, &args.out_dir) {
        return render_all(store, &profiles, args.platform, &options, dir).await;
    }
    let email = args.user_email.unwrap_or_default();
    let rendered = profiles
        .for_user(store, &email, args.platform, &options)
        .await?;
    for skipped in &rendered.skipped {
        eprintln!("{email}: left out {skipped}");
    }
    match &args.out {
        Some(path) => crate::secrets::write_secret_file(path, &rendered.body)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().write_all(&rendered.body)?,
    }
    Ok(ExitCode::SUCCESS)
}

const PAGE: i64 = 500;

/// Renders every user with accounts into `dir`, a page of users at a time, each into the
/// file [`safe_name`] makes of their lower-cased address. A user whose profile cannot be
/// rendered or written is reported and the others are still written (exit status 3); a
/// storage, key or signing error is no one user's problem and stops the run.
async fn render_all(
    store: &Store,
    profiles: &crate::profile::Profiles,
    platform: Platform,
    options: &RenderOptions,
    dir: &Path,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let keys = profiles.keys(store).await?;
    let (mut written, mut nothing, mut failed) = (0u64, 0u64, 0u64);
    let mut after: Option<String> = None;
    loop {
        let page = crate::accounts::page(store, &keys, after.as_deref(), PAGE).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.email.clone());
        for (user, accounts) in &page {
            let rendered = crate::profile::render(
                &user.email,
                accounts,
                platform,
                &profiles.definitions,
                options,
            );
            let mut rendered = match rendered {
                Ok(rendered) => rendered,
                Err(e @ RenderError::NothingToRender { .. }) => {
                    eprintln!("{e}");
                    nothing += 1;
                    continue;
                }
                Err(e) => {
                    eprintln!("mdm-mail: {}: {e}", user.email);
                    failed += 1;
                    continue;
                }
            };
            // One signing identity signs every profile: if it fails for one it fails for all.
            profiles
                .sign(platform, options, &mut rendered)
                .map_err(ProfileError::from)?;
            let name = safe_name(&normalize_email(&user.email));
            let path = dir.join(format!("{name}.{}", rendered.extension));
            if let Err(e) = crate::secrets::write_secret_file(&path, &rendered.body) {
                eprintln!(
                    "mdm-mail: {}: cannot write {}: {e}",
                    user.email,
                    path.display()
                );
                failed += 1;
                continue;
            }
            written += 1;
        }
    }
    println!(
        "{written} {platform} profiles written to {}; {nothing} users had nothing to render for \
         {platform}; {failed} users failed (named above)",
        dir.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_PARTIAL)
    })
}
