//! The writing side of a committed import: one transaction, in a task of its own, applying
//! decided chunks as they come: the accounts to add or change, the lines not applied, and a
//! deflated run of the results file.

use tokio::sync::mpsc;
use uuid::Uuid;

use super::plan::{self, Ciphertexts, Decision};
use super::validate::ParsedLine;
use super::{ImportError, line_result, report};
use crate::model::{AccountKind, Outcome};
use crate::secrets::SecretsError;
use crate::store::{LineRecord, NewImport, Store, Tx};

/// The import's record, sent once the file is open.
pub struct Start {
    /// Import id.
    pub id: Uuid,
    /// File name.
    pub source: String,
    /// Who.
    pub actor: String,
    /// Options as JSON.
    pub options: String,
    /// Encoding read, or the spreadsheet format.
    pub encoding: String,
    /// Delimiter split on; empty for a spreadsheet.
    pub delimiter: String,
    /// Header row present.
    pub header: bool,
}

/// What the writer is given.
pub enum Work {
    /// Record the import.
    Start(Start),
    /// Apply a decided chunk.
    Lines {
        /// The chunk's lines.
        lines: Vec<ParsedLine>,
        /// One decision per line.
        decisions: Vec<Decision>,
        /// One set of ciphertexts per line.
        sealed: Vec<Ciphertexts>,
    },
}

/// A running writer.
pub struct Writer {
    work: mpsc::Sender<Work>,
    task: tokio::task::JoinHandle<Result<Tx, ImportError>>,
}

/// Starts a writer: its transaction has begun (and, on SQLite, holds the write lock) when
/// this returns, so whatever is read afterwards cannot change before the import commits.
/// It also holds the store's key check, which must still name `key_id`, the key the
/// import seals with: a rotation waits for the import, or the import writes nothing.
pub async fn start(store: &Store, kind: AccountKind, key_id: &str) -> Result<Writer, ImportError> {
    let mut tx = store.begin_bulk().await?;
    if tx.hold_key_check(false).await?.as_deref() != Some(key_id) {
        tx.rollback().await?;
        return Err(SecretsError::Rotated.into());
    }
    let (work, queue) = mpsc::channel(4);
    let task = tokio::spawn(async move {
        match apply(&mut tx, kind, queue).await {
            Ok(()) => Ok(tx),
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    });
    Ok(Writer { work, task })
}

impl Writer {
    /// Hands the writer more work; if it has stopped, its error.
    pub async fn send(&self, work: Work) -> Result<(), ImportError> {
        match self.work.send(work).await {
            Ok(()) => Ok(()),
            // The writer only stops early on an error, which ending it reports.
            Err(_) => Err(ImportError::Stopped),
        }
    }

    /// Waits for every chunk to be written; the transaction is left open for the caller to
    /// commit or roll back.
    pub async fn finish(self) -> Result<Tx, ImportError> {
        drop(self.work);
        self.task
            .await
            .map_err(|e| ImportError::Sink(std::io::Error::other(e)))?
    }

    /// Ends the writer and undoes what it wrote; its error, if it had failed.
    pub async fn abandon(self) -> Result<(), ImportError> {
        let tx = self.finish().await?;
        tx.rollback().await?;
        Ok(())
    }
}

async fn apply(
    tx: &mut Tx,
    kind: AccountKind,
    mut queue: mpsc::Receiver<Work>,
) -> Result<(), ImportError> {
    let mut id = Uuid::nil();
    while let Some(work) = queue.recv().await {
        match work {
            Work::Start(start) => {
                id = start.id;
                tx.insert_import(&NewImport {
                    id,
                    kind,
                    source: &start.source,
                    file_sha256: "",
                    actor: &start.actor,
                    options: &start.options,
                    encoding: &start.encoding,
                    delimiter: &start.delimiter,
                    header: start.header,
                })
                .await?;
            }
            Work::Lines {
                lines,
                decisions,
                sealed,
            } => {
                // New accounts go in with a plain insert, a quarter cheaper in SQLite than an
                // upsert; only changed ones need the update.
                let (added, updated): (Vec<_>, Vec<_>) = plan::writes(&lines, &decisions, &sealed)
                    .partition(|(outcome, _)| *outcome == Outcome::Added);
                let added: Vec<_> = added.into_iter().map(|(_, w)| w).collect();
                let updated: Vec<_> = updated.into_iter().map(|(_, w)| w).collect();
                tx.insert_accounts(kind, &added).await?;
                tx.update_accounts(kind, &updated).await?;
                let not_applied: Vec<LineRecord<'_>> = lines
                    .iter()
                    .zip(&decisions)
                    .filter(|(_, d)| !d.outcome.applied())
                    .map(|(line, d)| LineRecord {
                        line: line.line,
                        outcome: d.outcome,
                        field: d.field,
                        message: &d.message,
                        user_email: &line.user_email,
                        account_address: &line.address,
                    })
                    .collect();
                tx.insert_import_lines(id, &not_applied).await?;
                let run = report::deflate_run(
                    lines.iter().zip(&decisions).map(|(l, d)| line_result(l, d)),
                )
                .map_err(ImportError::Sink)?;
                let first = lines.first().map_or(0, |l| l.line);
                tx.insert_import_results(id, first, &run).await?;
            }
        }
    }
    Ok(())
}
