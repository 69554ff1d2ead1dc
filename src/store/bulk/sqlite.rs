//! On SQLite, connections of the import's own: the snapshot it decides its lines against
//! ([`SqliteRead`]) and its write transaction ([`SqliteBulk`]).
//!
//! sqlx runs every SQLite statement on a worker thread and hands it over and back: a
//! million-line import made of multi-row statements spent most of its time in those hand-offs
//! and in binding thousands of parameters, and SQLite runs a multi-row `VALUES` at half the
//! speed of a prepared one-row statement stepped again and again. Here the import's threads
//! own rusqlite connections and step cached one-row statements in place, with the same SQL
//! text as [`crate::store::Tx`] runs through sqlx and the same values in the same types.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags, Statement, params};
use uuid::Uuid;

use super::ScanTable;
use crate::model::{AccountKind, Counts};
use crate::store::imports::{
    FINISH_IMPORT, INSERT_IMPORT, INSERT_IMPORT_LINE, INSERT_IMPORT_RESULTS, int,
};
use crate::store::snapshot::ID_ENDS;
use crate::store::{
    AccountWrite, LineRecord, NewImport, ScanSink, ScannedAccount, StoreCounts, StoreError,
    StoredAccount, UserAccounts, now_ms,
};

/// Opens the database file at `path` for an import's statements.
fn open(path: &Path, cache_kib: i64) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = MEMORY"
    ))?;
    conn.set_prepared_statement_cache_capacity(16);
    Ok(conn)
}

/// One consistent state of the store, read on SQLite: the snapshot an import decides its
/// lines against. Its reads are index probes and whole-table scans, which a small page cache
/// serves as well as a large one.
pub struct SqliteRead {
    conn: Connection,
    /// More connections that see the same state, for scanning side by side.
    scanners: Vec<Connection>,
}

/// Page cache of each of a snapshot's connections, in KiB: enough for the upper levels of
/// the indexes its probes walk; a scan reads every page once, and a larger cache only held
/// pages never read again, a few MiB for each connection.
const SNAPSHOT_CACHE_KIB: i64 = 256;

/// Connections an import's snapshot is read with. On one, a scan of a million users and
/// accounts kept one core busy for a second while the other idled. Each costs a few MiB, and
/// a million-line import whose every password changed already peaks near 190 MiB.
const SCANNERS: usize = 2;

/// A user and their accounts of one kind, one row per account (the account columns NULL for
/// a user without any).
const USER_ACCOUNTS: &str = "SELECT u.id, a.address, a.address_norm, a.display_name, \
     a.username, a.domain, a.outgoing_username, a.password_mac, a.outgoing_password_mac, a.id \
     FROM users u LEFT JOIN email_accounts a ON a.user_id = u.id AND a.kind = $1 \
     WHERE u.email_norm = $2";

impl SqliteRead {
    /// Opens the database file at `path` and takes a snapshot of it, on [`SCANNERS`]
    /// connections when they can be started on one and the same state. They are, when no
    /// commit landed while they were being started, which `PRAGMA data_version` (it changes
    /// on every commit by another connection) tells; when commits keep landing, the
    /// snapshot is read with one.
    pub fn begin(path: &Path) -> Result<SqliteRead, StoreError> {
        const ATTEMPTS: usize = 3;
        let watch = open(path, 64)?;
        let version = || -> Result<i64, StoreError> {
            Ok(watch.query_row("PRAGMA data_version", [], |row| row.get(0))?)
        };
        for _ in 0..ATTEMPTS {
            let before = version()?;
            let mut conns = (0..SCANNERS)
                .map(|_| Self::begin_one(path))
                .collect::<Result<Vec<_>, _>>()?;
            if version()? == before {
                let conn = conns.remove(0);
                return Ok(SqliteRead {
                    conn,
                    scanners: conns,
                });
            }
        }
        Ok(SqliteRead {
            conn: Self::begin_one(path)?,
            scanners: Vec::new(),
        })
    }

    fn begin_one(path: &Path) -> Result<Connection, StoreError> {
        let conn = open(path, SNAPSHOT_CACHE_KIB)?;
        // A read transaction's snapshot starts at its first read, so one is made at once.
        conn.execute_batch("BEGIN")?;
        conn.query_row("SELECT count(*) FROM secret_key_check", [], |_| Ok(()))?;
        Ok(conn)
    }

    /// The ends of the users' and the accounts' ids (see [`ID_ENDS`]).
    pub fn id_ends(&mut self) -> Result<[Option<i64>; 4], StoreError> {
        Ok(self.conn.query_row(ID_ENDS, [], |row| {
            Ok([row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?])
        })?)
    }

    /// How many users and accounts of `kind` the store holds.
    pub fn counts(&mut self, kind: AccountKind) -> Result<StoreCounts, StoreError> {
        Ok(self.conn.query_row(
            "SELECT (SELECT count(*) FROM users), \
             (SELECT count(*) FROM email_accounts WHERE kind = $1)",
            [kind.as_str()],
            |row| {
                Ok(StoreCounts {
                    users: row.get(0)?,
                    accounts: row.get(1)?,
                })
            },
        )?)
    }

    /// Hands every user and every account of `kind` to a clone of `sink`, each table in
    /// storage order: sequential scans, never a probe per row. Both tables are cut into
    /// parts by id, users first; every connection, each but the first on a thread of its own
    /// (`import-scan`), takes the next part whenever it is free, so that they finish
    /// together however the work falls. Users are read in parts too, from the table rather
    /// than their smaller email index, because on a store without accounts one connection
    /// reading every user was all the import did for its first 150 ms.
    pub fn scan<S: ScanSink + Clone>(
        &mut self,
        kind: AccountKind,
        sink: S,
    ) -> Result<(), StoreError> {
        const PARTS_PER_SCANNER: usize = 8;
        let scanners = 1 + self.scanners.len();
        let [users_low, users_high, accounts_low, accounts_high] = self.id_ends()?;
        let mut parts: Vec<(ScanTable, RangeInclusive<i64>)> = Vec::new();
        for (table, low, high, per_scanner) in [
            (ScanTable::Users, users_low, users_high, 2),
            (
                ScanTable::Accounts,
                accounts_low,
                accounts_high,
                PARTS_PER_SCANNER,
            ),
        ] {
            if let Some((low, high)) = low.zip(high) {
                parts.extend(
                    split(low..=high, per_scanner * scanners)
                        .into_iter()
                        .map(|r| (table, r)),
                );
            }
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let take_parts = |conn: &Connection, sink: &mut S| -> Result<(), StoreError> {
            loop {
                let part = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match parts.get(part) {
                    None => return Ok(()),
                    Some((ScanTable::Users, ids)) => scan_users(conn, ids.clone(), sink)?,
                    Some((ScanTable::Accounts, ids)) => {
                        scan_accounts(conn, kind, ids.clone(), sink)?
                    }
                }
            }
        };
        std::thread::scope(|scope| {
            let mut threads = Vec::new();
            for conn in &mut self.scanners {
                let mut sink = sink.clone();
                let take_parts = &take_parts;
                let thread = std::thread::Builder::new()
                    .name("import-scan".to_owned())
                    .spawn_scoped(scope, move || take_parts(conn, &mut sink))
                    .map_err(|e| StoreError::Thread(e.to_string()))?;
                threads.push(thread);
            }
            let mut sink = sink;
            let mut result = take_parts(&self.conn, &mut sink);
            drop(sink);
            for thread in threads {
                let scanned = thread
                    .join()
                    .unwrap_or_else(|_| Err(StoreError::Thread("a scan panicked".to_owned())));
                result = result.and(scanned);
            }
            result
        })
    }

    /// The users among `emails_norm`, keyed by normalised email, each with their stored
    /// accounts of `kind`: one probe per user.
    pub fn users_with_accounts(
        &mut self,
        kind: AccountKind,
        emails_norm: &[String],
    ) -> Result<HashMap<String, UserAccounts>, StoreError> {
        let mut users = HashMap::new();
        let mut statement = self.conn.prepare_cached(USER_ACCOUNTS)?;
        for email in emails_norm {
            let mut rows = statement.query(params![kind.as_str(), email])?;
            while let Some(row) = rows.next()? {
                let user = users.entry(email.clone()).or_insert_with(|| UserAccounts {
                    user_id: 0,
                    accounts: Vec::new(),
                });
                user.user_id = row.get(0)?;
                let address: Option<String> = row.get(1)?;
                if let Some(address) = address {
                    user.accounts.push(StoredAccount {
                        id: row.get(9)?,
                        address,
                        address_norm: row.get(2)?,
                        display_name: row.get(3)?,
                        username: row.get(4)?,
                        domain: row.get(5)?,
                        outgoing_username: row.get(6)?,
                        password_mac: row.get(7)?,
                        outgoing_password_mac: row.get(8)?,
                    });
                }
            }
        }
        Ok(users)
    }
}

/// An open import transaction on SQLite, holding the write lock from its start.
pub struct SqliteBulk {
    conn: Connection,
    now: i64,
}

/// A new account, with every column as stored.
const INSERT_ACCOUNT: &str = "INSERT INTO email_accounts (user_id, kind, address, \
     address_norm, display_name, username, domain, outgoing_username, password, password_mac, \
     outgoing_password, outgoing_password_mac, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)";

/// A stored account changed in place, found by its id; a NULL password keeps the stored one.
const UPDATE_ACCOUNT: &str = "UPDATE email_accounts SET address = $1, display_name = $2, \
     username = $3, domain = $4, outgoing_username = $5, \
     password = COALESCE($6, password), password_mac = COALESCE($7, password_mac), \
     outgoing_password = COALESCE($8, outgoing_password), \
     outgoing_password_mac = COALESCE($9, outgoing_password_mac), updated_at = $10 \
     WHERE id = $11";

impl SqliteBulk {
    /// Opens the database file at `path` and begins the import's transaction, taking the
    /// write lock at once (waiting, as the pool does, up to 30 s for another writer).
    pub fn begin(path: &Path) -> Result<SqliteBulk, StoreError> {
        // The import sets the cache it can afford once it knows what else it holds.
        let conn = open(path, 16384)?;
        conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteBulk {
            conn,
            now: now_ms(),
        })
    }

    /// Lets the connection cache up to `bytes` of pages.
    pub fn set_cache(&mut self, bytes: u64) -> Result<(), StoreError> {
        let kib = i64::try_from(bytes / 1024).unwrap_or(i64::MAX);
        self.conn
            .execute_batch(&format!("PRAGMA cache_size = -{kib}"))?;
        Ok(())
    }

    /// The store's key check, read inside the transaction: a rotation, which needs the write
    /// lock this transaction holds, cannot move it before the import ends.
    pub fn hold_key_check(&mut self) -> Result<Option<String>, StoreError> {
        let mut statement = self.conn.prepare_cached(crate::store::secrets::CHECK)?;
        let mut rows = statement.query([])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// Records the start of an import, as [`crate::store::Tx::insert_import`] does.
    pub fn insert_import(&mut self, import: &NewImport<'_>) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(INSERT_IMPORT)?;
        bind(
            &mut statement,
            &[
                &import.id.as_bytes().as_slice(),
                &import.kind.as_str(),
                &import.source,
                &import.file_sha256,
                &import.actor,
                &import.options,
                &import.encoding,
                &import.delimiter,
                &import.header,
                &self.now,
            ],
        )?;
        statement.raw_execute()?;
        Ok(())
    }

    /// Inserts new accounts of `kind` (keys not yet stored).
    pub fn insert_accounts(
        &mut self,
        kind: AccountKind,
        accounts: &[AccountWrite<'_>],
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(INSERT_ACCOUNT)?;
        for a in accounts {
            bind(
                &mut statement,
                &[
                    &a.user_id,
                    &kind.as_str(),
                    &a.address,
                    &a.address_norm,
                    &a.display_name,
                    &a.username,
                    &a.domain,
                    &a.outgoing_username,
                    &a.password.map(|p| p.ciphertext),
                    &a.password.map(|p| p.mac),
                    &a.outgoing_password.map(|p| p.ciphertext),
                    &a.outgoing_password.map(|p| p.mac),
                    &self.now,
                ],
            )?;
            statement.raw_execute()?;
        }
        Ok(())
    }

    /// Updates stored accounts in place, each found by its id; a `None` password keeps the
    /// stored one.
    pub fn update_accounts(&mut self, accounts: &[AccountWrite<'_>]) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(UPDATE_ACCOUNT)?;
        for a in accounts {
            bind(
                &mut statement,
                &[
                    &a.address,
                    &a.display_name,
                    &a.username,
                    &a.domain,
                    &a.outgoing_username,
                    &a.password.map(|p| p.ciphertext),
                    &a.password.map(|p| p.mac),
                    &a.outgoing_password.map(|p| p.ciphertext),
                    &a.outgoing_password.map(|p| p.mac),
                    &self.now,
                    &a.id,
                ],
            )?;
            statement.raw_execute()?;
        }
        Ok(())
    }

    /// Records lines of an import that were not applied.
    pub fn insert_import_lines(
        &mut self,
        id: Uuid,
        lines: &[LineRecord<'_>],
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(INSERT_IMPORT_LINE)?;
        for l in lines {
            bind(
                &mut statement,
                &[
                    &id.as_bytes().as_slice(),
                    &int(l.line),
                    &l.outcome.as_str(),
                    &l.field,
                    &l.message,
                    &l.user_email,
                    &l.account_address,
                ],
            )?;
            statement.raw_execute()?;
        }
        Ok(())
    }

    /// Stores a run of an import's results file that starts at `first_line`.
    pub fn insert_import_results(
        &mut self,
        id: Uuid,
        first_line: u64,
        csv_deflated: &[u8],
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(INSERT_IMPORT_RESULTS)?;
        bind(
            &mut statement,
            &[&id.as_bytes().as_slice(), &int(first_line), &csv_deflated],
        )?;
        statement.raw_execute()?;
        Ok(())
    }

    /// Stores an import's final counts and the digest of the file it read.
    pub fn finish_import(
        &mut self,
        id: Uuid,
        counts: &Counts,
        file_sha256: &str,
    ) -> Result<(), StoreError> {
        let mut statement = self.conn.prepare_cached(FINISH_IMPORT)?;
        bind(
            &mut statement,
            &[
                &int(counts.rows),
                &int(counts.added),
                &int(counts.updated),
                &int(counts.unchanged),
                &int(counts.discarded),
                &int(counts.rejected),
                &int(counts.duplicates),
                &file_sha256,
                &id.as_bytes().as_slice(),
            ],
        )?;
        statement.raw_execute()?;
        Ok(())
    }

    /// Records `actor` doing `action` to `subject` in the audit log.
    pub fn audit(
        &mut self,
        actor: &str,
        action: &str,
        subject: &str,
        details: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            crate::store::audit::INSERT_AUDIT,
            params![now_ms(), actor, action, subject, details.to_string()],
        )?;
        Ok(())
    }

    /// Makes every write of the transaction durable.
    pub fn commit(self) -> Result<(), StoreError> {
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    /// Ends the transaction, undoing its writes.
    pub fn rollback(self) -> Result<(), StoreError> {
        self.conn.execute_batch("ROLLBACK")?;
        Ok(())
    }
}

/// Hands every user whose id is in `ids` to `sink`.
fn scan_users(
    conn: &Connection,
    ids: RangeInclusive<i64>,
    sink: &mut dyn ScanSink,
) -> Result<(), StoreError> {
    let mut users =
        conn.prepare_cached("SELECT id, email_norm FROM users WHERE id BETWEEN $1 AND $2")?;
    let mut rows = users.query(params![ids.start(), ids.end()])?;
    while let Some(row) = rows.next()? {
        sink.user(row.get(0)?, stored_bytes(row, 1)?);
    }
    Ok(())
}

/// Hands every account of `kind` whose id is in `ids` to `sink`.
fn scan_accounts(
    conn: &Connection,
    kind: AccountKind,
    ids: RangeInclusive<i64>,
    sink: &mut dyn ScanSink,
) -> Result<(), StoreError> {
    let mut accounts = conn.prepare_cached(
        "SELECT user_id, address, address_norm, display_name, username, domain, \
         outgoing_username, password_mac, outgoing_password_mac, id \
         FROM email_accounts WHERE kind = $1 AND id BETWEEN $2 AND $3",
    )?;
    let mut rows = accounts.query(params![kind.as_str(), ids.start(), ids.end()])?;
    while let Some(row) = rows.next()? {
        sink.account(&ScannedAccount {
            user_id: row.get(0)?,
            address: stored_bytes(row, 1)?,
            address_norm: stored_bytes(row, 2)?,
            display_name: opt_stored_bytes(row, 3)?,
            username: stored_bytes(row, 4)?,
            domain: opt_stored_bytes(row, 5)?,
            outgoing_username: opt_stored_bytes(row, 6)?,
            password_mac: opt_stored_bytes(row, 7)?,
            outgoing_password_mac: opt_stored_bytes(row, 8)?,
            id: row.get(9)?,
        });
    }
    Ok(())
}

/// `ids` cut into `parts` ranges of about as many ids each, in order, together covering
/// every id of it.
fn split(ids: RangeInclusive<i64>, parts: usize) -> Vec<RangeInclusive<i64>> {
    let (low, high) = (i128::from(*ids.start()), i128::from(*ids.end()));
    let parts = i128::try_from(parts.max(1)).unwrap_or(1);
    let span = (high - low + 1).max(0);
    // Every bound lies between `low` and `high + 1`, both i64 values or one past.
    let bound = |i: i128| low + span * i / parts;
    (0..parts)
        .map(|i| {
            let start = i64::try_from(bound(i)).unwrap_or(i64::MAX);
            let end = i64::try_from(bound(i + 1) - 1).unwrap_or(i64::MAX);
            start..=end
        })
        .collect()
}

/// Column `i` of `row`, text or a blob, as its bytes, borrowed from the row.
fn stored_bytes<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], StoreError> {
    Ok(row.get_ref(i)?.as_bytes().map_err(|e| conversion(i, e))?)
}

/// Column `i` of `row`, text, a blob or NULL, as its bytes, borrowed from the row.
fn opt_stored_bytes<'r>(
    row: &'r rusqlite::Row<'_>,
    i: usize,
) -> Result<Option<&'r [u8]>, StoreError> {
    Ok(row
        .get_ref(i)?
        .as_bytes_or_null()
        .map_err(|e| conversion(i, e))?)
}

fn conversion(i: usize, e: rusqlite::types::FromSqlError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Blob, Box::new(e))
}

/// Binds `values` to the parameters `$1`, `$2`, … of `statement`. SQLite numbers named
/// parameters in the order they first appear, so every statement here names them in that
/// order (which a test checks), and `$n` is the n-th.
fn bind(statement: &mut Statement<'_>, values: &[&dyn ToSql]) -> Result<(), StoreError> {
    for (i, value) in values.iter().enumerate() {
        statement.raw_bind_parameter(i + 1, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated store file in `dir`, in WAL mode as the store runs it, and a connection
    /// to it that writes without waiting for the disk.
    fn store_file(dir: &tempfile::TempDir) -> (std::path::PathBuf, Connection) {
        let path = dir.path().join("store.db");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "OFF").unwrap();
        migrate(&conn);
        (path, conn)
    }

    /// Runs the migrations on `conn`.
    fn migrate(conn: &Connection) {
        let mut migrations: Vec<_> = std::fs::read_dir("migrations/sqlite")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        migrations.sort();
        for migration in migrations {
            conn.execute_batch(&std::fs::read_to_string(migration).unwrap())
                .unwrap();
        }
    }

    #[test]
    fn a_snapshot_begun_while_commits_land_reads_one_state_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = store_file(&dir);
        let stop = std::sync::atomic::AtomicBool::new(false);
        let users = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
                .unwrap()
        };
        let stop = &stop;
        let (begun, apart, single) = std::thread::scope(|scope| {
            scope.spawn(move || {
                for id in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    writer
                        .execute(
                            "INSERT INTO users (email, email_norm, created_at, updated_at) \
                             VALUES ($1, $1, 0, 0)",
                            [format!("u{id}@example.com")],
                        )
                        .unwrap();
                    // Pauses long enough that some snapshots begin between two commits.
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            // Counted, not asserted, so that the writer is stopped whatever happens.
            let (mut apart, mut single) = (0, 0);
            let begun = (0..300)
                .map_while(|_| SqliteRead::begin(&path).ok())
                .inspect(|read| {
                    let seen = users(&read.conn);
                    apart += read.scanners.iter().filter(|s| users(s) != seen).count();
                    single += usize::from(read.scanners.is_empty());
                })
                .count();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            (begun, apart, single)
        });
        assert_eq!(begun, 300);
        assert_eq!(
            apart, 0,
            "scanners read another state than the first connection"
        );
        assert!(
            single < begun,
            "every snapshot was read with one connection"
        );
    }

    /// What a scan hands over: user ids and account ids.
    #[derive(Clone, Default)]
    struct Collected(std::sync::Arc<std::sync::Mutex<(Vec<i64>, Vec<i64>)>>);

    impl ScanSink for Collected {
        fn user(&mut self, id: i64, _: &[u8]) {
            self.0.lock().unwrap().0.push(id);
        }

        fn account(&mut self, account: &ScannedAccount<'_>) {
            self.0.lock().unwrap().1.push(account.id);
        }
    }

    #[test]
    fn a_scan_hands_over_every_user_and_account_of_the_kind_once_whatever_the_gaps_in_ids() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = store_file(&dir);
        // Ids far apart and clustered, so that some parts of the scan are empty and one
        // holds nearly everything.
        let user_ids: Vec<i64> = (1..=300).chain([5_000, 1 << 40]).collect();
        let mut email = Vec::new();
        for (n, &user) in user_ids.iter().enumerate() {
            conn.execute(
                "INSERT INTO users (id, email, email_norm, created_at, updated_at) \
                 VALUES ($1, $2, $2, 0, 0)",
                params![user, format!("u{user}@example.com")],
            )
            .unwrap();
            let id = 7 * user + 3;
            let kind = if n % 3 == 0 { "exchange" } else { "email" };
            conn.execute(
                "INSERT INTO email_accounts \
                 (id, user_id, kind, address, address_norm, username, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'a@example.com', 'a@example.com', 'a', 0, 0)",
                params![id, user, kind],
            )
            .unwrap();
            if kind == "email" {
                email.push(id);
            }
        }
        let mut read = SqliteRead::begin(&path).unwrap();
        assert!(!read.scanners.is_empty(), "scanned side by side");
        let sink = Collected::default();
        read.scan(AccountKind::Email, sink.clone()).unwrap();
        let (mut users, mut accounts) = sink.0.lock().unwrap().clone();
        users.sort_unstable();
        accounts.sort_unstable();
        assert_eq!(users, user_ids);
        assert_eq!(accounts, email);

        let counts = read.counts(AccountKind::Email).unwrap();
        let bounds = crate::store::StoreCounts::at_most(read.id_ends().unwrap());
        assert_eq!((counts.users, counts.accounts), (302, email.len() as i64));
        assert!(bounds.users >= counts.users && bounds.accounts >= counts.accounts);
        assert_eq!(bounds.accounts, (7 << 40) + 3 - 10 + 1);
    }

    /// Every statement run here compiles against the schema and names its parameters in
    /// the order they first appear, so that binding by position binds `$n` to the n-th value.
    #[test]
    fn every_statement_names_its_parameters_in_order() {
        let conn = Connection::open_in_memory().unwrap();
        migrate(&conn);
        for sql in [
            INSERT_ACCOUNT,
            UPDATE_ACCOUNT,
            USER_ACCOUNTS,
            INSERT_IMPORT,
            INSERT_IMPORT_LINE,
            INSERT_IMPORT_RESULTS,
            FINISH_IMPORT,
            crate::store::audit::INSERT_AUDIT,
            crate::store::secrets::CHECK,
        ] {
            let statement = conn.prepare(sql).unwrap();
            for i in 1..=statement.parameter_count() {
                assert_eq!(
                    statement.parameter_name(i),
                    Some(format!("${i}").as_str()),
                    "{sql}"
                );
            }
        }
    }
}
