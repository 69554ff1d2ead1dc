//! `mdm-mail accounts remove`: takes one mail account off a user, and its profile off their
//! devices. Imports only add and update, so this is how an account goes.

use std::process::ExitCode;

use crate::config::Settings;
use crate::model::AccountKind;
use crate::store::Store;

/// The `accounts` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Remove one account from a user; their devices get the profile without it.
    Remove {
        /// The user's email address.
        user_email: String,
        /// The account's email address.
        address: String,
        /// The account's type.
        #[arg(long = "type", value_name = "email|exchange")]
        kind: AccountKind,
        /// Do not queue the changed profiles for push.
        #[arg(long)]
        no_push: bool,
    },
}

/// Runs an `accounts` subcommand.
pub async fn run(
    store: &Store,
    settings: &Settings,
    command: AccountsCommand,
) -> anyhow::Result<ExitCode> {
    let AccountsCommand::Remove {
        user_email,
        address,
        kind,
        no_push,
    } = command;
    let removed =
        crate::accounts::delete(store, &super::actor(), &user_email, kind, &address).await?;
    let (user_email, address) = (user_email.trim(), address.trim());
    let code = super::removed(
        removed,
        &format!("removed the {kind} account {address} of {user_email}"),
        &format!("{user_email} has no {kind} account {address}"),
    );
    if removed && !no_push {
        super::push::after_change(store, settings).await;
    }
    Ok(code)
}
