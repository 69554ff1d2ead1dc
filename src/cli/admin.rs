//! `mdm-mail admin add|list|remove` and `mdm-mail token create|list|revoke`: the people and
//! programs that may use the web wizard and the JSON API.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::auth;
use crate::model::Scopes;
use crate::store::{AdminSet, Store};

/// The variable a script may pass an admin password in instead of standard input.
pub const PASSWORD_ENV: &str = "MDM_MAIL_ADMIN_PASSWORD";

/// `admin` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Add a wizard admin, or set a new password for one, which signs out every session they
    /// have. The password is asked for on a terminal, else read as the first line of standard
    /// input (or MDM_MAIL_ADMIN_PASSWORD).
    Add {
        /// The sign-in name.
        name: String,
    },
    /// List the admins.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an admin; their signed-in sessions end at once.
    Remove {
        /// The sign-in name.
        name: String,
    },
}

/// `token` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Mint an API token and print it alone on standard output. It is shown once: only its
    /// hash is stored.
    Create {
        /// What the token is for (unique).
        name: String,
        /// What it may do, comma-separated: read (list and fetch), write (import, add,
        /// remove, retry), secrets (answers that hold passwords: the unredacted profile).
        #[arg(long, value_name = "read,write,secrets", default_value = "read,write")]
        scope: Scopes,
    },
    /// List the tokens: name, scopes, when made, when last used (to the minute).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: requests bearing it are refused from now on.
    Revoke {
        /// The token's name.
        name: String,
    },
}

/// Runs `admin …`.
pub async fn admin(store: &Store, command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Add { name } => {
            let password = read_password()?;
            match auth::add_admin(store, &super::actor(), &name, &password).await? {
                AdminSet::Added => eprintln!("admin {name:?} added"),
                AdminSet::PasswordChanged { sessions_ended } => eprintln!(
                    "admin {name:?} already existed: password changed; {sessions_ended} {} signed out",
                    if sessions_ended == 1 {
                        "session"
                    } else {
                        "sessions"
                    }
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::List { json } => {
            super::output::list_admins(store, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        AdminCommand::Remove { name } => Ok(super::removed(
            auth::remove_admin(store, &super::actor(), &name).await?,
            &format!("admin {name:?} removed and signed out"),
            &format!("there is no admin {name:?}"),
        )),
    }
}

/// Runs `token …`.
pub async fn token(store: &Store, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, scope } => {
            let token = auth::create_token(store, &super::actor(), &name, scope).await?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { json } => {
            super::output::list_tokens(store, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { name } => Ok(super::removed(
            auth::revoke_token(store, &super::actor(), &name).await?,
            &format!("token {name:?} revoked"),
            &format!("there is no token {name:?}"),
        )),
    }
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let second =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        bail!("no password on standard input (or set {PASSWORD_ENV})");
    }
    Ok(password.to_owned())
}
