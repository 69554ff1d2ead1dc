//! The writing side of a committed import: one transaction, applying decided chunks as they
//! come (the accounts to add or change, the lines not applied, a deflated run of the results
//! file), then the import's record and the commit. On SQLite it runs on a thread of its own
//! over a connection of its own ([`SqliteBulk`]); on PostgreSQL, in a task on the import's
//! sqlx transaction.

use std::path::PathBuf;

use tokio::sync::mpsc;
use uuid::Uuid;

use super::ImportError;
use super::packed::Chunk;
use crate::model::{AccountKind, Counts, Outcome};
use crate::secrets::SecretsError;
use crate::store::{AccountWrite, LineRecord, NewImport, PgBulk, SqliteBulk, Store, StoreError};

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
    /// Bytes of pages the write connection may cache, where it has a cache of its own.
    pub cache_bytes: u64,
}

/// What the writer is given.
pub enum Work {
    /// Record the import.
    Start(Start),
    /// Apply a decided chunk.
    Lines(Chunk),
}

/// What the import's record gets once every line is written, and the audit entry.
pub struct Finish<'a> {
    /// Import id.
    pub id: Uuid,
    /// Outcome counts.
    pub counts: &'a Counts,
    /// SHA-256 of the file, hex.
    pub file_sha256: &'a str,
    /// Who, for the audit log.
    pub actor: &'a str,
    /// What was imported, for the audit log.
    pub source: &'a str,
    /// Audit details.
    pub details: serde_json::Value,
}

/// A running writer.
pub struct Writer {
    work: mpsc::Sender<Work>,
    running: Running,
}

enum Running {
    Sqlite(tokio::sync::oneshot::Receiver<Result<SqliteBulk, ImportError>>),
    Postgres(tokio::task::JoinHandle<Result<PgBulk, ImportError>>),
}

/// Every chunk written; the transaction still open, to be committed or rolled back.
pub enum Written {
    /// On SQLite's own connection.
    Sqlite(SqliteBulk),
    /// On PostgreSQL.
    Postgres(PgBulk),
}

/// Starts a writer: its transaction has begun (and, on SQLite, holds the write lock) when
/// this returns, so whatever is read afterwards cannot change before the import commits.
/// It also holds the store's key check, which must still name `key_id`, the key the
/// import seals with: a rotation waits for the import, or the import writes nothing.
pub async fn start(store: &Store, kind: AccountKind, key_id: &str) -> Result<Writer, ImportError> {
    // A window's worth queued: the next window is decided while this one is written. With
    // less, deciding stopped whenever the writer wrote, and the writer then waited for it.
    let (work, queue) = mpsc::channel(WINDOW);
    let running = match store.sqlite_file() {
        Some(path) => Running::Sqlite(start_sqlite(path, kind, key_id, queue).await?),
        None => {
            let mut tx = PgBulk::begin(store).await?;
            if tx.hold_key_check().await?.as_deref() != Some(key_id) {
                tx.rollback().await?;
                return Err(SecretsError::Rotated.into());
            }
            Running::Postgres(tokio::spawn(async move {
                match apply_postgres(&mut tx, kind, queue).await {
                    Ok(()) => Ok(tx),
                    Err(e) => {
                        let _ = tx.rollback().await;
                        Err(e)
                    }
                }
            }))
        }
    };
    Ok(Writer { work, running })
}

/// Begins the transaction on a thread of its own and returns once it holds the write lock.
async fn start_sqlite(
    path: PathBuf,
    kind: AccountKind,
    key_id: &str,
    mut queue: mpsc::Receiver<Work>,
) -> Result<tokio::sync::oneshot::Receiver<Result<SqliteBulk, ImportError>>, ImportError> {
    let (begun, started) = tokio::sync::oneshot::channel();
    let key_id = key_id.to_owned();
    let thread = super::on_thread("import-write", move || {
        let opened = SqliteBulk::begin(&path).and_then(|mut bulk| {
            let held = bulk.hold_key_check()?;
            Ok((bulk, held))
        });
        let mut bulk = match opened {
            Ok((bulk, held)) if held.as_deref() == Some(key_id.as_str()) => {
                let _ = begun.send(Ok(()));
                bulk
            }
            Ok((bulk, _)) => {
                let _ = bulk.rollback();
                let _ = begun.send(Err(ImportError::Key(SecretsError::Rotated)));
                return Err(ImportError::Stopped);
            }
            Err(e) => {
                let _ = begun.send(Err(e.into()));
                return Err(ImportError::Stopped);
            }
        };
        let mut id = Uuid::nil();
        let mut window = Vec::with_capacity(WINDOW);
        loop {
            let work = queue.blocking_recv();
            let done = work.is_none();
            let applied = match work {
                Some(Work::Start(start)) => {
                    id = start.id;
                    bulk.set_cache(start.cache_bytes)
                        .and_then(|()| bulk.insert_import(&new_import(&start, kind)))
                }
                Some(Work::Lines(chunk)) => {
                    window.push(chunk);
                    if window.len() < WINDOW {
                        Ok(())
                    } else {
                        write_window(&mut bulk, kind, id, &std::mem::take(&mut window))
                    }
                }
                None => write_window(&mut bulk, kind, id, &window),
            };
            if let Err(e) = applied {
                let _ = bulk.rollback();
                return Err(e.into());
            }
            if done {
                return Ok(bulk);
            }
        }
    })?;
    started.await.map_err(|_| ImportError::Stopped)??;
    Ok(thread)
}

/// Chunks the writer gathers before writing them: new accounts go in in key order across
/// the whole window, so the key index is filled a stretch at a time.
const WINDOW: usize = 8;

/// Writes a window of chunks on SQLite.
fn write_window(
    bulk: &mut SqliteBulk,
    kind: AccountKind,
    id: Uuid,
    window: &[Chunk],
) -> Result<(), StoreError> {
    let writes = writes(window);
    bulk.insert_accounts(kind, &writes.added)?;
    bulk.update_accounts(&writes.updated)?;
    bulk.insert_import_lines(id, &writes.not_applied)?;
    for chunk in window {
        bulk.insert_import_results(id, chunk.first_line(), &chunk.results)?;
    }
    Ok(())
}

async fn apply_postgres(
    tx: &mut PgBulk,
    kind: AccountKind,
    mut queue: mpsc::Receiver<Work>,
) -> Result<(), ImportError> {
    let mut id = Uuid::nil();
    let mut window = Vec::with_capacity(WINDOW);
    loop {
        let work = queue.recv().await;
        let done = work.is_none();
        match work {
            Some(Work::Start(start)) => {
                id = start.id;
                tx.insert_import(&new_import(&start, kind)).await?;
            }
            Some(Work::Lines(chunk)) => window.push(chunk),
            None => {}
        }
        if window.len() == WINDOW || (done && !window.is_empty()) {
            let written = std::mem::take(&mut window);
            let writes = writes(&written);
            tx.insert_accounts(kind, &writes.added).await?;
            tx.update_accounts(&writes.updated).await?;
            tx.insert_import_lines(id, &writes.not_applied).await?;
            for chunk in &written {
                tx.insert_import_results(id, chunk.first_line(), &chunk.results)
                    .await?;
            }
        }
        if done {
            return Ok(());
        }
    }
}

fn new_import(start: &Start, kind: AccountKind) -> NewImport<'_> {
    NewImport {
        id: start.id,
        kind,
        source: &start.source,
        file_sha256: "",
        actor: &start.actor,
        options: &start.options,
        encoding: &start.encoding,
        delimiter: &start.delimiter,
        header: start.header,
    }
}

/// What some chunks write.
struct Writes<'a> {
    added: Vec<AccountWrite<'a>>,
    updated: Vec<AccountWrite<'a>>,
    not_applied: Vec<LineRecord<'a>>,
}

fn writes(chunks: &[Chunk]) -> Writes<'_> {
    let mut writes = Writes {
        added: Vec::new(),
        updated: Vec::new(),
        not_applied: Vec::new(),
    };
    for chunk in chunks {
        for (outcome, write) in chunk.writes() {
            if outcome == Outcome::Added {
                writes.added.push(write);
            } else {
                writes.updated.push(write);
            }
        }
        writes.not_applied.extend(chunk.not_applied());
    }
    // New accounts go in with a plain insert, a quarter cheaper in SQLite than an upsert,
    // and in key order: the key index is then filled page by page rather than at random.
    // Updates go in storage order, for the same reason.
    writes
        .added
        .sort_unstable_by(|a, b| (a.user_id, a.address_norm).cmp(&(b.user_id, b.address_norm)));
    writes.updated.sort_unstable_by_key(|a| a.id);
    writes
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
    pub async fn finish(self) -> Result<Written, ImportError> {
        drop(self.work);
        let joined = |e: tokio::task::JoinError| ImportError::Sink(std::io::Error::other(e));
        match self.running {
            Running::Sqlite(thread) => Ok(Written::Sqlite(
                thread.await.unwrap_or(Err(ImportError::Stopped))?,
            )),
            Running::Postgres(task) => Ok(Written::Postgres(task.await.map_err(joined)??)),
        }
    }

    /// Ends the writer and undoes what it wrote; its error, if it had failed.
    pub async fn abandon(self) -> Result<(), ImportError> {
        self.finish().await?.rollback().await
    }
}

impl Written {
    /// Undoes every write.
    pub async fn rollback(self) -> Result<(), ImportError> {
        match self {
            Written::Sqlite(bulk) => blocking(move || bulk.rollback()).await?,
            Written::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// Records the import's counts and the audit entry, and commits.
    pub async fn commit(self, finish: Finish<'_>) -> Result<(), ImportError> {
        match self {
            Written::Sqlite(mut bulk) => {
                bulk.finish_import(finish.id, finish.counts, finish.file_sha256)?;
                bulk.audit(
                    finish.actor,
                    "accounts.import",
                    finish.source,
                    &finish.details,
                )?;
                // The commit may run a WAL checkpoint, which copies the whole import.
                blocking(move || bulk.commit()).await?;
            }
            Written::Postgres(mut tx) => {
                tx.finish_import(finish.id, finish.counts, finish.file_sha256)
                    .await?;
                tx.audit(
                    finish.actor,
                    "accounts.import",
                    finish.source,
                    &finish.details,
                )
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

async fn blocking(
    f: impl FnOnce() -> Result<(), StoreError> + Send + 'static,
) -> Result<(), ImportError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ImportError::Sink(std::io::Error::other(e)))??;
    Ok(())
}
