//! The statements of a bulk import, on each database the fastest way it takes and gives
//! rows: on SQLite prepared one-row statements stepped on connections of the import's own, on
//! PostgreSQL `COPY`.

mod postgres;
mod sqlite;

pub use postgres::{PgBulk, scan as scan_postgres};
pub use sqlite::{SqliteBulk, SqliteRead};

/// A table a snapshot's scan reads, a part at a time.
#[derive(Clone, Copy)]
enum ScanTable {
    Users,
    Accounts,
}
