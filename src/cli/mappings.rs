//! `mdm-mail mappings list|remove`: the saved column mappings imports reuse by name.

use std::process::ExitCode;

use super::actor;
use crate::import::mapping;
use crate::store::Store;

/// `mappings` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MappingsCommand {
    /// List the saved column mappings: name, account type, each field's source.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a saved column mapping.
    Remove {
        /// Its name.
        name: String,
    },
}

/// Runs `mappings …`.
pub async fn run(store: &Store, command: MappingsCommand) -> anyhow::Result<ExitCode> {
    match command {
        MappingsCommand::List { json } => {
            let listed = mapping::list(store).await?;
            if json {
                println!("{}", serde_json::to_string(&listed)?);
                return Ok(ExitCode::SUCCESS);
            }
            if listed.is_empty() {
                println!(
                    "no saved mappings: import --map FIELD=SOURCE --save-mapping NAME saves one"
                );
            }
            for saved in &listed {
                println!(
                    "{} ({} accounts, saved by {})",
                    saved.name, saved.kind, saved.created_by
                );
                if let Some(fields) = saved.fields.as_object() {
                    for (field, source) in fields {
                        println!("  {field} = {}", source.as_str().unwrap_or_default());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        MappingsCommand::Remove { name } => {
            if store.remove_mapping(&name, &actor()).await? {
                println!("removed the mapping {name:?}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("mdm-mail: there is no saved mapping called {name:?}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
