//! The SQLite and PostgreSQL migrations describe one schema.

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::TestDb;

fn migration_names(dialect: &str) -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_dialects_have_the_same_migration_versions_and_names() {
    let sqlite = migration_names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_names("postgres"));
}

type Columns = BTreeSet<(String, String)>;

async fn sqlite_columns(db: &TestDb) -> Columns {
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

async fn postgres_columns(db: &TestDb) -> Columns {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn both_dialects_create_the_same_tables_and_columns() {
    let Some(postgres) = TestDb::postgres().await else {
        return;
    };
    let sqlite = TestDb::sqlite().await;
    sqlite.open().await;
    postgres.open().await;

    let sqlite_columns = sqlite_columns(&sqlite).await;
    assert!(sqlite_columns.contains(&("users".into(), "email_norm".into())));
    assert_eq!(sqlite_columns, postgres_columns(&postgres).await);
}

crate::support::store_test! {
    async fn opening_a_store_again_leaves_its_schema_as_it_is(db: TestDb) {
        let first = db.open().await.health().await.unwrap();
        let second = db.open().await.health().await.unwrap();
        assert_eq!(first.schema_version, 8);
        assert_eq!(second.schema_version, first.schema_version);
    }
}
