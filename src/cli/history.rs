//! `mdm-mail imports list|show`: the record of past imports and their results files.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use uuid::Uuid;

use crate::import::history::StoredResults;
use crate::store::Store;

/// `imports` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ImportsCommand {
    /// List the committed imports, newest first: id, when, type, file, who, counts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one import: its record and the lines it did not apply.
    Show {
        /// The import's id (`import` prints it; `imports list` lists them).
        id: Uuid,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Write the import's results file (every line's outcome) to FILE, or `-` for
        /// standard output, instead.
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
    },
}

/// Lines not applied read per query.
const PAGE: i64 = 1000;

/// Runs `imports …`.
pub async fn run(store: &Store, command: ImportsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImportsCommand::List { json } => {
            super::output::list_imports(store, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        ImportsCommand::Show { id, json, results } => {
            let Some((row, mut stored)) = StoredResults::open(store, id).await? else {
                eprintln!("mdm-mail: there is no import {id}");
                return Ok(ExitCode::FAILURE);
            };
            if let Some(path) = results {
                let mut out: Box<dyn Write> = if path.as_os_str() == "-" {
                    Box::new(std::io::stdout().lock())
                } else {
                    Box::new(std::io::BufWriter::new(
                        std::fs::File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?,
                    ))
                };
                while let Some(chunk) = stored.next_chunk().await? {
                    out.write_all(&chunk)?;
                }
                out.flush()?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string(&row)?)?;
            } else {
                writeln!(
                    out,
                    "import {}: {} rows of {} from {} ({}), by {} at {}",
                    row.id,
                    row.rows,
                    row.kind,
                    row.source,
                    row.file_sha256,
                    row.actor,
                    crate::model::when(row.created_at)
                )?;
                let count = |n: i64| u64::try_from(n).unwrap_or(0);
                let counts = crate::model::Counts {
                    rows: count(row.rows),
                    added: count(row.added),
                    updated: count(row.updated),
                    unchanged: count(row.unchanged),
                    discarded: count(row.discarded),
                    rejected: count(row.rejected),
                    duplicates: count(row.duplicates),
                };
                writeln!(out, "{counts}")?;
            }
            let mut after = 0;
            loop {
                let page = store.import_lines(id, after, PAGE, None).await?;
                for line in &page {
                    if json {
                        writeln!(out, "{}", serde_json::to_string(line)?)?;
                    } else {
                        let field = line
                            .field
                            .as_deref()
                            .map(|f| format!("{f}: "))
                            .unwrap_or_default();
                        writeln!(
                            out,
                            "{}:{}: {}: {field}{}",
                            row.source, line.line, line.outcome, line.message
                        )?;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX) => {
                        after = u64::try_from(last.line).unwrap_or(u64::MAX);
                    }
                    _ => break,
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
