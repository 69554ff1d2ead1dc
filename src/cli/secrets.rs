//! `mdm-mail secrets status|rotate`: which key the stored passwords are sealed with, and
//! moving them to a new one.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Settings;
use crate::secrets::{self, NEW_KEY_ENV, NewKey};
use crate::store::Store;

/// `secrets` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Show the key the store's passwords are sealed with, the configured key, and whether
    /// it opens them (exit status 1 when it does not).
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every stored password under a new key, in one transaction, and record it as
    /// the store's key. The new key comes from --new-key-file, else MDM_MAIL_NEW_SECRET_KEY,
    /// else (SQLite with the key file beside the database) is made at random; the key file
    /// beside the database then holds it and the old one is kept as *.key.<id>.retired.
    Rotate {
        /// A file holding the new key: 32 bytes as base64 or hex, readable by its owner only.
        #[arg(long, value_name = "FILE")]
        new_key_file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `secrets …`.
pub async fn run(
    store: &Store,
    settings: &Settings,
    command: SecretsCommand,
) -> anyhow::Result<ExitCode> {
    let source = settings.key_source();
    match command {
        SecretsCommand::Status { json } => {
            let status = secrets::status(store, &source).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                let none = || "none".to_owned();
                println!(
                    "store's key:     {}",
                    status
                        .recorded
                        .clone()
                        .unwrap_or_else(|| "none recorded yet".to_owned())
                );
                println!(
                    "configured key:  {}",
                    status.configured.clone().unwrap_or_else(none)
                );
                println!("looked at:       {}", status.looked);
                println!(
                    "sealed:          {} passwords in {} accounts",
                    status.sealed.passwords, status.sealed.accounts
                );
                if let Some(problem) = &status.problem {
                    println!("problem:         {problem}");
                }
            }
            Ok(if status.problem.is_some() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        SecretsCommand::Rotate { new_key_file, json } => {
            let new = match (new_key_file, std::env::var(NEW_KEY_ENV)) {
                (Some(path), _) => NewKey::from_file(&path)?,
                (None, Ok(text)) => NewKey::from_env_text(&text)?,
                (None, Err(_)) => NewKey::Generate,
            };
            let rotated = secrets::rotate(store, &source, new, &super::actor()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rotated)?);
            } else if rotated.finished_interrupted {
                println!(
                    "finished an interrupted rotation: the key file now holds key {}",
                    rotated.to
                );
            } else {
                println!(
                    "resealed {} passwords in {} accounts: the store's key is now {}",
                    rotated.resealed.passwords, rotated.resealed.accounts, rotated.to
                );
            }
            match (&rotated.key_file, &rotated.retired_key_file) {
                (Some(file), retired) => {
                    eprintln!(
                        "the new key is in {}: back it up with the database",
                        file.display()
                    );
                    if let Some(retired) = retired {
                        eprintln!(
                            "the old key is kept in {}: it opens backups taken before now; delete it once none is needed",
                            retired.display()
                        );
                    }
                    super::push::after_change(store, settings).await;
                }
                (None, _) => eprintln!(
                    "configure the new key ({}) for every mdm-mail process in place of the old one ({}) and restart serve: until then they refuse to open the store's passwords",
                    rotated.to,
                    source.origin()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
