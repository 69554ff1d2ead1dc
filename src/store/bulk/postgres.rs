//! On PostgreSQL, the import's write transaction ([`PgBulk`]): accounts go in by `COPY` in
//! the binary format, new ones straight into `email_accounts`, changed ones into a temporary
//! table that one `UPDATE … FROM` applies. A million rows bound as parameters cost PostgreSQL
//! its time in parsing and planning arrays; `COPY` is the path it makes for bulk rows. The
//! snapshot's scan reads the store by `COPY` too ([`scan`]).

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::TryStreamExt;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::ScanTable;
use crate::model::{AccountKind, Counts};
use crate::store::{
    AccountWrite, LineRecord, NewImport, ScanSink, ScannedAccount, Store, StoreError, Tx, TxInner,
};

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

/// Hands every user and every account of `kind` that `conn`'s transaction sees to clones of
/// `sink`. Rows are read by `COPY … TO STDOUT` in the binary format: fetched as query rows,
/// each decoded by the driver, they took the import's thread twice as long as PostgreSQL took
/// to send them. Then PostgreSQL was the one busy, one core reading both tables; so both are
/// cut into parts by where their rows lie (see [`block_ranges`]), and two connections take the
/// next part whenever they are free: `conn`, and one opened with `options` in the same
/// snapshot of the store (exported by `conn`'s transaction, which must be repeatable-read).
/// Where no second connection can share the snapshot (a pooler in front of PostgreSQL may
/// hand it another server's session), `conn` reads every part alone.
pub async fn scan<S: ScanSink + Clone>(
    conn: &mut PgConnection,
    options: &PgConnectOptions,
    kind: AccountKind,
    sink: S,
) -> Result<(), StoreError> {
    const PARTS: [(ScanTable, usize); 2] = [(ScanTable::Users, 4), (ScanTable::Accounts, 12)];
    let (snapshot, users_blocks, accounts_blocks): (String, i64, i64) = sqlx::query_as(
        "SELECT pg_export_snapshot(), \
         pg_relation_size('users') / current_setting('block_size')::bigint, \
         pg_relation_size('email_accounts') / current_setting('block_size')::bigint",
    )
    .fetch_one(&mut *conn)
    .await?;
    // `SET TRANSACTION SNAPSHOT` takes no parameters; an exported snapshot's name is hex
    // digits and dashes, checked so that nothing else is ever put in the statement.
    if snapshot.is_empty() || !snapshot.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(malformed(&format!(
            "an exported snapshot named {snapshot:?}"
        )));
    }
    let parts: Vec<(ScanTable, String)> = PARTS
        .into_iter()
        .flat_map(|(table, parts)| {
            let blocks = match table {
                ScanTable::Users => users_blocks,
                ScanTable::Accounts => accounts_blocks,
            };
            block_ranges(blocks, parts)
                .into_iter()
                .map(move |range| (table, range))
        })
        .collect();
    let next = AtomicUsize::new(0);
    let mut other = match in_snapshot(options, &snapshot).await {
        Ok(other) => other,
        Err(e) => {
            tracing::warn!(error = %e, "import: scanning on one connection");
            return take_parts(conn, &parts, &next, kind, sink).await;
        }
    };
    // The first error stops both connections' reads.
    let taken = tokio::try_join!(
        take_parts(conn, &parts, &next, kind, sink.clone()),
        take_parts(&mut other, &parts, &next, kind, sink),
    );
    // Closing the connection ends its transaction, which only read.
    let closed = other.close().await;
    taken?;
    Ok(closed?)
}

/// A new connection, opened with `options`, in a read-only transaction that sees the
/// exported `snapshot`.
async fn in_snapshot(
    options: &PgConnectOptions,
    snapshot: &str,
) -> Result<PgConnection, StoreError> {
    let mut conn = PgConnection::connect_with(options).await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("SET TRANSACTION SNAPSHOT '{snapshot}'"))
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// Reads the next of `parts` on `conn` until none is left, handing its rows to `sink`.
async fn take_parts(
    conn: &mut PgConnection,
    parts: &[(ScanTable, String)],
    next: &AtomicUsize,
    kind: AccountKind,
    mut sink: impl ScanSink,
) -> Result<(), StoreError> {
    while let Some((table, range)) = parts.get(next.fetch_add(1, Ordering::Relaxed)) {
        match table {
            ScanTable::Users => {
                let statement = format!(
                    "COPY (SELECT id, email_norm FROM users WHERE {range}) \
                     TO STDOUT (FORMAT binary)"
                );
                copy_out(conn, &statement, |row| {
                    let [id, email_norm] = fields(row)?;
                    sink.user(int(id)?, value(email_norm)?);
                    Ok(())
                })
                .await?;
            }
            ScanTable::Accounts => {
                // `COPY` takes no parameters; the kind is one of two fixed words.
                let statement = format!(
                    "COPY (SELECT user_id, address, address_norm, display_name, username, \
                     domain, outgoing_username, password_mac, outgoing_password_mac, id \
                     FROM email_accounts WHERE kind = '{}' AND {range}) \
                     TO STDOUT (FORMAT binary)",
                    kind.as_str()
                );
                copy_out(conn, &statement, |row| {
                    let [
                        user_id,
                        address,
                        address_norm,
                        display_name,
                        username,
                        domain,
                        outgoing_username,
                        password_mac,
                        outgoing_password_mac,
                        id,
                    ] = fields(row)?;
                    sink.account(&ScannedAccount {
                        user_id: int(user_id)?,
                        address: value(address)?,
                        address_norm: value(address_norm)?,
                        display_name,
                        username: value(username)?,
                        domain,
                        outgoing_username,
                        password_mac,
                        outgoing_password_mac,
                        id: int(id)?,
                    });
                    Ok(())
                })
                .await?;
            }
        }
    }
    Ok(())
}

/// Conditions that cut a table of `blocks` pages into at most `parts` ranges of pages, as
/// ranges of its rows' places (`ctid`), which PostgreSQL reads by a TID range scan: the
/// pages of the range and no other. The first range is open below and the last above, so that
/// together they hold every row whatever the table's size now.
fn block_ranges(blocks: i64, parts: usize) -> Vec<String> {
    let parts = i64::try_from(parts.max(1)).unwrap_or(1);
    let mut starts: Vec<i64> = (1..parts)
        .map(|i| i128::from(blocks.max(0)) * i128::from(i) / i128::from(parts))
        .map(|start| i64::try_from(start).unwrap_or(i64::MAX))
        .filter(|&start| start > 0)
        .collect();
    starts.dedup();
    let tid = |block: i64| format!("'({block},0)'::tid");
    let mut ranges = Vec::with_capacity(starts.len() + 1);
    let mut low = None;
    for start in starts.into_iter().map(Some).chain([None]) {
        ranges.push(match (low, start) {
            (None, None) => "TRUE".to_owned(),
            (None, Some(high)) => format!("ctid < {}", tid(high)),
            (Some(low), Some(high)) => format!("ctid >= {} AND ctid < {}", tid(low), tid(high)),
            (Some(low), None) => format!("ctid >= {}", tid(low)),
        });
        low = start;
    }
    ranges
}

/// Runs `statement`, a `COPY … TO STDOUT (FORMAT binary)`, handing each row to `row`.
async fn copy_out(
    conn: &mut PgConnection,
    statement: &str,
    mut row: impl FnMut(&[Option<&[u8]>]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut chunks = conn.copy_out_raw(statement).await?;
    let mut rows = CopyReader::default();
    while let Some(chunk) = chunks.try_next().await? {
        rows.feed(&chunk, &mut row)?;
    }
    rows.finish()
}

/// The `N` fields of a row that must have `N`.
fn fields<'r, const N: usize>(
    row: &[Option<&'r [u8]>],
) -> Result<[Option<&'r [u8]>; N], StoreError> {
    row.try_into().map_err(|_| {
        malformed(&format!(
            "a row of {} fields where {N} were asked for",
            row.len()
        ))
    })
}

/// A field that may not be NULL.
fn value(field: Option<&[u8]>) -> Result<&[u8], StoreError> {
    field.ok_or_else(|| malformed("NULL in a column that has none"))
}

/// A BIGINT field: eight bytes, most significant first.
fn int(field: Option<&[u8]>) -> Result<i64, StoreError> {
    let bytes = value(field)?;
    let bytes = bytes
        .try_into()
        .map_err(|_| malformed(&format!("a BIGINT of {} bytes", bytes.len())))?;
    Ok(i64::from_be_bytes(bytes))
}

fn malformed(what: &str) -> StoreError {
    StoreError::Query(sqlx::Error::Protocol(format!(
        "unexpected data from COPY TO STDOUT: {what}"
    )))
}

/// The signature that opens the binary `COPY` format.
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Fields a row read by [`CopyReader`] may have: more than any query here asks for.
const MAX_FIELDS: usize = 16;

/// Rows in PostgreSQL's binary `COPY` format, the counterpart of [`CopyRows`], read as the
/// chunks of the stream arrive: a row may be cut anywhere between two chunks.
#[derive(Default)]
struct CopyReader {
    /// Bytes received and not yet read: the start of a row cut off by the end of its chunk.
    buf: Vec<u8>,
    /// Whether the signature and header have been read.
    header: bool,
    /// Whether the trailer that ends the rows has been read.
    ended: bool,
}

impl CopyReader {
    /// Reads `chunk`, handing each row it completes to `row` as its fields' bytes (`None`
    /// for NULL).
    fn feed(
        &mut self,
        chunk: &[u8],
        row: &mut impl FnMut(&[Option<&[u8]>]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        if self.ended && !chunk.is_empty() {
            return Err(malformed("data after the end of the rows"));
        }
        self.buf.extend_from_slice(chunk);
        let mut at = 0;
        if !self.header {
            match self.read_header()? {
                Some(end) => at = end,
                None => return Ok(()),
            }
        }
        let mut ranges: [Option<Range<usize>>; MAX_FIELDS] = Default::default();
        while let Some(count) = self.be_bytes::<2>(at).map(i16::from_be_bytes) {
            if count == -1 {
                self.ended = true;
                at += 2;
                break;
            }
            let count = usize::try_from(count)
                .ok()
                .filter(|&n| n <= MAX_FIELDS)
                .ok_or_else(|| malformed(&format!("a row of {count} fields")))?;
            let Some(end) = self.read_fields(at + 2, &mut ranges[..count])? else {
                break;
            };
            let mut fields: [Option<&[u8]>; MAX_FIELDS] = [None; MAX_FIELDS];
            for (field, range) in fields.iter_mut().zip(&ranges[..count]) {
                *field = range.clone().map(|r| &self.buf[r]);
            }
            row(&fields[..count])?;
            at = end;
        }
        if self.ended && at < self.buf.len() {
            return Err(malformed("data after the end of the rows"));
        }
        self.buf.drain(..at);
        Ok(())
    }

    /// Where the rows start, once the signature and header are all in; an error when they
    /// are not what PostgreSQL writes.
    fn read_header(&mut self) -> Result<Option<usize>, StoreError> {
        let flags_at = COPY_SIGNATURE.len();
        let Some(extension) = self.be_bytes::<4>(flags_at + 4).map(i32::from_be_bytes) else {
            return Ok(None);
        };
        if !self.buf.starts_with(COPY_SIGNATURE) {
            return Err(malformed("no binary COPY signature"));
        }
        let extension = usize::try_from(extension)
            .map_err(|_| malformed(&format!("a header extension of {extension} bytes")))?;
        let end = flags_at + 8 + extension;
        if self.buf.len() < end {
            return Ok(None);
        }
        self.header = true;
        Ok(Some(end))
    }

    /// Reads the fields of a row from `at` into `ranges`; where the row ends, or `None`
    /// when it is not all in yet.
    fn read_fields(
        &self,
        mut at: usize,
        ranges: &mut [Option<Range<usize>>],
    ) -> Result<Option<usize>, StoreError> {
        for range in ranges {
            let Some(len) = self.be_bytes::<4>(at).map(i32::from_be_bytes) else {
                return Ok(None);
            };
            at += 4;
            *range = match len {
                -1 => None,
                len => {
                    let len = usize::try_from(len)
                        .map_err(|_| malformed(&format!("a field of {len} bytes")))?;
                    if self.buf.len() - at < len {
                        return Ok(None);
                    }
                    at += len;
                    Some(at - len..at)
                }
            };
        }
        Ok(Some(at))
    }

    /// The `N` bytes at `at`, if they are all in.
    fn be_bytes<const N: usize>(&self, at: usize) -> Option<[u8; N]> {
        self.buf.get(at..at.checked_add(N)?)?.try_into().ok()
    }

    /// An error unless the stream ended with the trailer after its last row.
    fn finish(self) -> Result<(), StoreError> {
        if self.ended {
            Ok(())
        } else {
            Err(malformed("the stream ended in the middle of the rows"))
        }
    }
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
        buf.extend_from_slice(COPY_SIGNATURE);
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Writes down every row it is given, for all its clones together.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl ScanSink for Recorder {
        fn user(&mut self, id: i64, email_norm: &[u8]) {
            let email = String::from_utf8_lossy(email_norm);
            self.0.lock().unwrap().push(format!("user {id} {email}"));
        }

        fn account(&mut self, a: &ScannedAccount<'_>) {
            let shown = a.display_name.map(String::from_utf8_lossy);
            self.0
                .lock()
                .unwrap()
                .push(format!("account {a:?} shown as {shown:?}"));
        }
    }

    /// Every row a scan of `store` hands over, sorted, its second connection opened with
    /// `second` (or the store's own settings).
    async fn scanned(store: &Store, second: Option<PgConnectOptions>) -> Vec<String> {
        let crate::store::Pool::Postgres(pool) = &store.pool else {
            panic!("a PostgreSQL store")
        };
        let options = second.unwrap_or_else(|| (*pool.connect_options()).clone());
        let mut tx = store.begin_read().await.unwrap();
        let TxInner::Postgres(conn) = &mut tx.inner else {
            panic!("a PostgreSQL transaction")
        };
        let sink = Recorder::default();
        scan(conn, &options, AccountKind::Email, sink.clone())
            .await
            .unwrap();
        let mut rows = std::mem::take(&mut *sink.0.lock().unwrap());
        rows.sort();
        rows
    }

    /// Runs only when `MDM_MAIL_TEST_POSTGRES_URL` names a database, as the suite's storage
    /// tests do, in a schema of its own.
    #[tokio::test]
    async fn a_scan_refused_a_second_connection_reads_every_part_on_the_first() {
        let Ok(base) = std::env::var("MDM_MAIL_TEST_POSTGRES_URL") else {
            return;
        };
        let mut admin = PgConnection::connect(&base)
            .await
            .expect("MDM_MAIL_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
        let schema = format!("t_{}", Uuid::new_v4().simple());
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let store = Store::open(&format!(
            "{base}{separator}options=-c%20search_path%3D{schema}"
        ))
        .await
        .unwrap();
        // Enough rows for pages to be cut into several parts, and a changed account whose
        // older version is still on its page.
        sqlx::raw_sql(&format!(
            "SET search_path = {schema}; \
             INSERT INTO users (email, email_norm, created_at, updated_at) \
             SELECT 'u' || i || '@example.com', 'u' || i || '@example.com', 0, 0 \
             FROM generate_series(1, 3000) i; \
             INSERT INTO email_accounts (user_id, kind, address, address_norm, username, \
             password_mac, created_at, updated_at) \
             SELECT id, 'email', email, email_norm, 'user', '\\x02aa'::bytea, 0, 0 FROM users; \
             UPDATE email_accounts SET display_name = 'Zoë' WHERE id % 7 = 0"
        ))
        .execute(&mut admin)
        .await
        .unwrap();

        let side_by_side = scanned(&store, None).await;
        let refused = PgConnectOptions::new().host("127.0.0.1").port(1);
        let alone = scanned(&store, Some(refused)).await;

        assert_eq!(side_by_side.len(), 6_000);
        assert_eq!(alone, side_by_side);
        assert!(alone.iter().any(|row| row.contains("Zoë")));
        store.close().await;
        sqlx::raw_sql(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    /// Every row `reader` hands over from `chunks`, each field as text (`-` for NULL).
    fn read(chunks: &[&[u8]]) -> Result<Vec<Vec<String>>, String> {
        let mut reader = CopyReader::default();
        let mut rows = Vec::new();
        for chunk in chunks {
            reader
                .feed(chunk, &mut |fields| {
                    rows.push(
                        fields
                            .iter()
                            .map(|f| {
                                f.map_or("-".to_owned(), |b| String::from_utf8_lossy(b).into())
                            })
                            .collect(),
                    );
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
        }
        reader.finish().map_err(|e| e.to_string())?;
        Ok(rows)
    }

    fn written() -> Vec<u8> {
        let mut rows = CopyRows::new();
        rows.row(3).text(Some("Zoë")).bytes(None).text(Some(""));
        rows.row(1).bytes(Some(&[0xff; 300]));
        rows.row(0);
        rows.finish()
    }

    #[test]
    fn rows_read_back_as_written_wherever_the_stream_is_cut() {
        let bytes = written();
        let expected = vec![
            vec!["Zoë".to_owned(), "-".to_owned(), String::new()],
            vec![String::from_utf8_lossy(&[0xff; 300]).into_owned()],
            vec![],
        ];
        assert_eq!(read(&[&bytes]), Ok(expected.clone()));
        for cut in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(cut);
            assert_eq!(read(&[head, tail]), Ok(expected.clone()), "cut at {cut}");
        }
        let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(read(&bytes_one_by_one), Ok(expected));
    }

    #[test]
    fn a_stream_that_is_not_whole_binary_copy_data_is_an_error() {
        let bytes = written();
        let fails = |chunks: &[&[u8]], why: &str| {
            let error = read(chunks).expect_err(why);
            assert!(error.contains("COPY"), "{why}: {error}");
        };
        fails(&[&bytes[..bytes.len() - 2]], "no trailer");
        fails(&[&bytes[..bytes.len() - 5]], "cut in a row");
        fails(&[b"PGCOPY\n\xff\r\n\0"], "cut in the header");
        fails(
            &[b"name,address\n0000000000000000000000"],
            "CSV, not binary",
        );
        fails(&[&bytes, b"\0"], "data after the trailer");
        let mut negative = CopyRows::new();
        negative
            .row(1)
            .buf
            .extend_from_slice(&(-2i32).to_be_bytes());
        fails(&[&negative.finish()], "a field of -2 bytes");
        let mut wide = CopyRows::new();
        wide.row(17);
        fails(&[&wide.finish()], "17 fields");
    }

    #[test]
    fn block_ranges_hold_every_page_once_with_open_ends() {
        assert_eq!(block_ranges(0, 4), ["TRUE"]);
        assert_eq!(block_ranges(1, 4), ["TRUE"]);
        assert_eq!(block_ranges(100, 1), ["TRUE"]);
        assert_eq!(
            block_ranges(10, 3),
            [
                "ctid < '(3,0)'::tid",
                "ctid >= '(3,0)'::tid AND ctid < '(6,0)'::tid",
                "ctid >= '(6,0)'::tid",
            ]
        );
        assert_eq!(
            block_ranges(2, 4),
            ["ctid < '(1,0)'::tid", "ctid >= '(1,0)'::tid"]
        );
        assert_eq!(block_ranges(i64::MAX, 2).len(), 2);
    }

    #[test]
    fn fields_are_checked_for_count_nulls_and_integer_width() {
        let row: [Option<&[u8]>; 2] = [Some(&7i64.to_be_bytes()), None];
        let [id, missing] = fields(&row).expect("two fields");
        assert_eq!(int(id).ok(), Some(7));
        assert!(value(missing).is_err());
        assert!(fields::<3>(&row).is_err());
        assert!(int(Some(&[0; 4])).is_err());
    }
}
