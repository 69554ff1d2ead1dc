//! The `imports` and `import_lines` tables: a record of every committed import and the
//! outcome of each of its lines.

use sqlx::QueryBuilder;
use uuid::Uuid;

use super::{Store, StoreError, Tx, now_ms, on_pool, on_tx};
use crate::model::{AccountKind, Counts, Outcome};

/// An import being recorded.
#[derive(Debug, Clone, Copy)]
pub struct NewImport<'a> {
    /// Its id.
    pub id: Uuid,
    /// Account type imported.
    pub kind: AccountKind,
    /// File name or other description of the input.
    pub source: &'a str,
    /// SHA-256 of the file's bytes, hex.
    pub file_sha256: &'a str,
    /// Who ran it.
    pub actor: &'a str,
    /// The options it ran with, as JSON.
    pub options: &'a str,
    /// Encoding detected or forced.
    pub encoding: &'a str,
    /// Delimiter detected or forced.
    pub delimiter: &'a str,
    /// Whether the file had a header row.
    pub header: bool,
}

/// A line that was not applied, as recorded.
#[derive(Debug, Clone, Copy)]
pub struct LineRecord<'a> {
    /// Physical line number.
    pub line: u64,
    /// Discarded, rejected or duplicate.
    pub outcome: Outcome,
    /// The column to blame, for rejected lines.
    pub field: Option<&'a str>,
    /// Why.
    pub message: &'a str,
    /// User email as written.
    pub user_email: &'a str,
    /// Account address as written.
    pub account_address: &'a str,
}

/// A recorded import.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ImportRow {
    /// Its id.
    pub id: Uuid,
    /// `email` or `exchange`.
    pub kind: String,
    /// File name.
    pub source: String,
    /// SHA-256 of the file, hex.
    pub file_sha256: String,
    /// Who ran it.
    pub actor: String,
    /// Options as JSON.
    pub options: String,
    /// Encoding.
    pub encoding: String,
    /// Delimiter.
    pub delimiter: String,
    /// Header row present.
    pub header: bool,
    /// Data lines.
    pub rows: i64,
    /// Outcome counts.
    pub added: i64,
    /// Outcome counts.
    pub updated: i64,
    /// Outcome counts.
    pub unchanged: i64,
    /// Outcome counts.
    pub discarded: i64,
    /// Outcome counts.
    pub rejected: i64,
    /// Outcome counts.
    pub duplicates: i64,
    /// When, in unix milliseconds.
    pub created_at: i64,
}

/// A recorded line that was not applied.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct StoredLine {
    /// Physical line number.
    pub line: i64,
    /// Outcome name.
    pub outcome: String,
    /// Column to blame.
    pub field: Option<String>,
    /// Explanation.
    pub message: String,
    /// User email as written.
    pub user_email: String,
    /// Account address as written.
    pub account_address: String,
}

/// A count or line number as the stores keep it.
pub(super) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The start of an import; its counts are filled in by [`FINISH_IMPORT`].
pub(super) const INSERT_IMPORT: &str = "INSERT INTO imports (id, kind, source, file_sha256, \
     actor, options, encoding, delimiter, header, rows, added, updated, unchanged, discarded, \
     rejected, duplicates, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, 0, 0, 0, 0, 0, $10)";

/// One line of an import that was not applied.
pub(super) const INSERT_IMPORT_LINE: &str = "INSERT INTO import_lines (import_id, line, outcome, \
     field, message, user_email, account_address) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// One run of an import's results file.
pub(super) const INSERT_IMPORT_RESULTS: &str =
    "INSERT INTO import_results (import_id, first_line, csv_deflated) VALUES ($1, $2, $3)";

/// An import's counts and file digest, once it has read every line.
pub(super) const FINISH_IMPORT: &str = "UPDATE imports SET rows = $1, added = $2, updated = $3, \
     unchanged = $4, discarded = $5, rejected = $6, duplicates = $7, file_sha256 = $8 \
     WHERE id = $9";

impl Tx {
    /// Records the start of an import; [`Tx::finish_import`] fills in its counts.
    pub async fn insert_import(&mut self, import: &NewImport<'_>) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(INSERT_IMPORT)
                .bind(import.id)
                .bind(import.kind.as_str())
                .bind(import.source)
                .bind(import.file_sha256)
                .bind(import.actor)
                .bind(import.options)
                .bind(import.encoding)
                .bind(import.delimiter)
                .bind(import.header)
                .bind(now_ms())
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Records lines of an import that were not applied (at most [`super::BATCH`]).
    pub async fn insert_import_lines(
        &mut self,
        id: Uuid,
        lines: &[LineRecord<'_>],
    ) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        on_tx!(self, conn => {
            let mut q = QueryBuilder::new(
                "INSERT INTO import_lines (import_id, line, outcome, field, message, user_email, \
                 account_address) ",
            );
            q.push_values(lines, |mut row, l| {
                row.push_bind(id)
                    .push_bind(int(l.line))
                    .push_bind(l.outcome.as_str())
                    .push_bind(l.field)
                    .push_bind(l.message)
                    .push_bind(l.user_email)
                    .push_bind(l.account_address);
            });
            q.build().execute(conn).await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Stores a run of an import's results file that starts at `first_line`.
    pub async fn insert_import_results(
        &mut self,
        id: Uuid,
        first_line: u64,
        csv_deflated: &[u8],
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(INSERT_IMPORT_RESULTS)
                .bind(id)
                .bind(int(first_line))
                .bind(csv_deflated)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Stores an import's final counts and the digest of the file it read.
    pub async fn finish_import(
        &mut self,
        id: Uuid,
        counts: &Counts,
        file_sha256: &str,
    ) -> Result<(), StoreError> {
        on_tx!(self, conn => {
            sqlx::query(FINISH_IMPORT)
                .bind(int(counts.rows))
                .bind(int(counts.added))
                .bind(int(counts.updated))
                .bind(int(counts.unchanged))
                .bind(int(counts.discarded))
                .bind(int(counts.rejected))
                .bind(int(counts.duplicates))
                .bind(file_sha256)
                .bind(id)
                .execute(conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}

impl Store {
    /// A recorded import.
    pub async fn import(&self, id: Uuid) -> Result<Option<ImportRow>, StoreError> {
        const SQL: &str = "SELECT id, kind, source, file_sha256, actor, options, encoding, \
             delimiter, header, rows, added, updated, unchanged, discarded, rejected, duplicates, \
             created_at FROM imports WHERE id = $1";
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL).bind(id).fetch_optional(pool).await
        })?)
    }

    /// One page of the recorded imports, newest first, older than import `before`.
    pub async fn list_imports(
        &self,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ImportRow>, StoreError> {
        // Ids are UUIDv7, so their order is the order the imports began in.
        const FIRST: &str = "SELECT id, kind, source, file_sha256, actor, options, encoding, \
             delimiter, header, rows, added, updated, unchanged, discarded, rejected, duplicates, \
             created_at FROM imports ORDER BY id DESC LIMIT $1";
        const NEXT: &str = "SELECT id, kind, source, file_sha256, actor, options, encoding, \
             delimiter, header, rows, added, updated, unchanged, discarded, rejected, duplicates, \
             created_at FROM imports WHERE id < $2 ORDER BY id DESC LIMIT $1";
        Ok(on_pool!(self, pool => match before {
            None => sqlx::query_as(FIRST).bind(limit).fetch_all(pool).await,
            Some(before) => sqlx::query_as(NEXT).bind(limit).bind(before).fetch_all(pool).await,
        })?)
    }

    /// One page of the lines of an import that were not applied, in line order, after line
    /// `after`; only those of `outcome` when it is given.
    pub async fn import_lines(
        &self,
        id: Uuid,
        after: u64,
        limit: i64,
        outcome: Option<Outcome>,
    ) -> Result<Vec<StoredLine>, StoreError> {
        const SQL: &str = "SELECT line, outcome, field, message, user_email, account_address \
             FROM import_lines WHERE import_id = $1 AND line > $2 \
             AND ($4 IS NULL OR outcome = $4) ORDER BY line LIMIT $3";
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(id)
                .bind(int(after))
                .bind(limit)
                .bind(outcome.map(Outcome::as_str))
                .fetch_all(pool)
                .await
        })?)
    }

    /// One page of the runs of an import's results file, in line order, after the run that
    /// starts at line `after`: (first line, deflated CSV rows).
    pub async fn import_results(
        &self,
        id: Uuid,
        after: u64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        const SQL: &str = "SELECT first_line, csv_deflated FROM import_results \
             WHERE import_id = $1 AND first_line > $2 ORDER BY first_line LIMIT $3";
        Ok(on_pool!(self, pool => {
            sqlx::query_as(SQL)
                .bind(id)
                .bind(int(after))
                .bind(limit)
                .fetch_all(pool)
                .await
        })?)
    }
}
