//! On PostgreSQL, the import's write transaction ([`PgBulk`]): accounts go in by `COPY` in
//! the binary format, new ones straight into `email_accounts`, changed ones into a temporary
//! table that one `UPDATE … FROM` applies. A million rows bound as parameters cost PostgreSQL
//! its time in parsing and planning arrays; `COPY` is the path it makes for bulk rows.

use uuid::Uuid;

use crate::model::{AccountKind, Counts};
use crate::store::{AccountWrite, LineRecord, NewImport, Store, StoreError, Tx, TxInner};

/// An open import transaction on PostgreSQL, holding from its start a SHARE lock on `users`,
/// which other imports share and readers do not notice: the users an import looks up are
/// then still there when its accounts, which refer to them, are committed.
pub struct PgBulk {
    tx: Tx,
}

/// Where the accounts an import changes wait for the `UPDATE` that applies them.
const UPDATES_TABLE: &str = "CREATE TEMPORARY TABLE import_updates (id BIGINT NOT NULL, \
     address TEXT NOT NULL, display_name TEXT, username TEXT NOT NULL, domain TEXT, \
     outgoing_username TEXT, password BYTEA, password_mac BYTEA, outgoing_password BYTEA, \
     outgoing_password_mac BYTEA) ON COMMIT DROP";

/// Applies the waiting changes; a NULL password keeps the stored one.
const APPLY_UPDATES: &str = "UPDATE email_accounts a SET address = u.address, \
     display_name = u.display_name, username = u.username, domain = u.domain, \
     outgoing_username = u.outgoing_username, \
     password = COALESCE(u.password, a.password), \
     password_mac = COALESCE(u.password_mac, a.password_mac), \
     outgoing_password = COALESCE(u.outgoing_password, a.outgoing_password), \
     outgoing_password_mac = COALESCE(u.outgoing_password_mac, a.outgoing_password_mac), \
     updated_at = $1 FROM import_updates u WHERE a.id = u.id";

impl PgBulk {
    /// Begins the import's transaction on `store`, which must be PostgreSQL.
    pub async fn begin(store: &Store) -> Result<PgBulk, StoreError> {
        let mut tx = store.begin().await?;
        let TxInner::Postgres(conn) = &mut tx.inner else {
            return Err(not_postgres());
        };
        sqlx::query("LOCK TABLE users IN SHARE MODE")
            .execute(&mut **conn)
            .await?;
        sqlx::query(UPDATES_TABLE).execute(&mut **conn).await?;
        Ok(PgBulk { tx })
    }

    /// The store's key check, held (`FOR SHARE`) until the import ends: a rotation waits.
    pub async fn hold_key_check(&mut self) -> Result<Option<String>, StoreError> {
        self.tx.hold_key_check(false).await
    }

    /// Records the start of an import.
    pub async fn insert_import(&mut self, import: &NewImport<'_>) -> Result<(), StoreError> {
        self.tx.insert_import(import).await
    }

    /// Inserts new accounts of `kind` (keys not yet stored).
    pub async fn insert_accounts(
        &mut self,
        kind: AccountKind,
        accounts: &[AccountWrite<'_>],
    ) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let now = super::super::now_ms();
        let mut rows = CopyRows::new();
        for a in accounts {
            rows.row(14)
                .int(a.user_id)
                .text(Some(kind.as_str()))
                .text(Some(a.address))
                .text(Some(a.address_norm))
                .text(a.display_name)
                .text(Some(a.username))
                .text(a.domain)
                .text(a.outgoing_username)
                .bytes(a.password.map(|p| p.ciphertext))
                .bytes(a.password.map(|p| p.mac))
                .bytes(a.outgoing_password.map(|p| p.ciphertext))
                .bytes(a.outgoing_password.map(|p| p.mac))
                .int(now)
                .int(now);
        }
        self.copy(
            "COPY email_accounts (user_id, kind, address, address_norm, display_name, \
             username, domain, outgoing_username, password, password_mac, outgoing_password, \
             outgoing_password_mac, created_at, updated_at) FROM STDIN (FORMAT binary)",
            rows,
        )
        .await
    }

    /// Updates stored accounts in place, each found by its id; a `None` password keeps the
    /// stored one.
    pub async fn update_accounts(
        &mut self,
        accounts: &[AccountWrite<'_>],
    ) -> Result<(), StoreError> {
        if accounts.is_empty() {
            return Ok(());
        }
        let mut rows = CopyRows::new();
        for a in accounts {
            let id = a.id.ok_or_else(|| {
                StoreError::Thread("an account to update was written without its id".to_owned())
            })?;
            rows.row(10)
                .int(id)
                .text(Some(a.address))
                .text(a.display_name)
                .text(Some(a.username))
                .text(a.domain)
                .text(a.outgoing_username)
                .bytes(a.password.map(|p| p.ciphertext))
                .bytes(a.password.map(|p| p.mac))
                .bytes(a.outgoing_password.map(|p| p.ciphertext))
                .bytes(a.outgoing_password.map(|p| p.mac));
        }
        self.copy("COPY import_updates FROM STDIN (FORMAT binary)", rows)
            .await?;
        let TxInner::Postgres(conn) = &mut self.tx.inner else {
            return Err(not_postgres());
        };
        sqlx::query(APPLY_UPDATES)
            .bind(super::super::now_ms())
            .execute(&mut **conn)
            .await?;
        sqlx::query("TRUNCATE import_updates")
            .execute(&mut **conn)
            .await?;
        Ok(())
    }

    async fn copy(&mut self, statement: &str, rows: CopyRows) -> Result<(), StoreError> {
        let TxInner::Postgres(conn) = &mut self.tx.inner else {
            return Err(not_postgres());
        };
        let mut copy = conn.copy_in_raw(statement).await?;
        copy.send(rows.finish()).await?;
        copy.finish().await?;
        Ok(())
    }

    /// Records lines of an import that were not applied.
    pub async fn insert_import_lines(
        &mut self,
        id: Uuid,
        lines: &[LineRecord<'_>],
    ) -> Result<(), StoreError> {
        for batch in lines.chunks(super::super::BATCH) {
            self.tx.insert_import_lines(id, batch).await?;
        }
        Ok(())
    }

    /// Stores a run of an import's results file that starts at `first_line`.
    pub async fn insert_import_results(
        &mut self,
        id: Uuid,
        first_line: u64,
        csv_deflated: &[u8],
    ) -> Result<(), StoreError> {
        self.tx
            .insert_import_results(id, first_line, csv_deflated)
            .await
    }

    /// Stores an import's final counts and the digest of the file it read.
    pub async fn finish_import(
        &mut self,
        id: Uuid,
        counts: &Counts,
        file_sha256: &str,
    ) -> Result<(), StoreError> {
        self.tx.finish_import(id, counts, file_sha256).await
    }

    /// Records `actor` doing `action` to `subject` in the audit log.
    pub async fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.tx.audit(actor, action, subject, details).await
    }

    /// Makes every write of the transaction durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await
    }

    /// Ends the transaction, undoing its writes.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await
    }
}

fn not_postgres() -> StoreError {
    StoreError::Thread("a PostgreSQL import on another database".to_owned())
}

/// Rows in PostgreSQL's binary `COPY` format: a signature and header, then per row its
/// number of fields and each field's length and bytes (-1 for NULL), then -1. Text goes as
/// its UTF-8 bytes and BYTEA as its bytes, with nothing to escape.
struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    fn new() -> CopyRows {
        let mut buf = Vec::with_capacity(1 << 16);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        CopyRows { buf }
    }

    fn row(&mut self, fields: i16) -> &mut CopyRows {
        self.buf.extend_from_slice(&fields.to_be_bytes());
        self
    }

    fn int(&mut self, value: i64) -> &mut CopyRows {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&value.to_be_bytes());
        self
    }

    fn text(&mut self, value: Option<&str>) -> &mut CopyRows {
        self.bytes(value.map(str::as_bytes))
    }

    fn bytes(&mut self, value: Option<&[u8]>) -> &mut CopyRows {
        match value {
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                // A field longer than 2 GiB cannot be; passwords and names are bounded far below.
                let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
                self.buf.extend_from_slice(&len.to_be_bytes());
                self.buf.extend_from_slice(bytes);
            }
        }
        self
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}
