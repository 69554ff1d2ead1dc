//! What every test needs: a fresh database on each backend, the real binary, fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mdm_mail::store::Store;

/// The variable naming a PostgreSQL database to run the storage tests against as well.
pub const POSTGRES_ENV: &str = "MDM_MAIL_TEST_POSTGRES_URL";

/// Declares a test that runs once against SQLite and once against PostgreSQL: it expands to
/// a module named after the behaviour holding `sqlite` and `postgres` test functions.
macro_rules! store_test {
    ($(#[$meta:meta])* async fn $name:ident($db:ident: TestDb) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn scenario($db: $crate::support::TestDb) $body

            #[tokio::test]
            async fn sqlite() {
                scenario($crate::support::TestDb::sqlite().await).await
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(db) = $crate::support::TestDb::postgres().await {
                    scenario(db).await
                }
            }
        }
    };
}
pub(crate) use store_test;

/// A database of its own for one test: a SQLite file in a temporary folder, or a fresh
/// schema in the PostgreSQL test database, dropped afterwards.
pub struct TestDb {
    /// What to pass as `--database-url`.
    pub url: String,
    /// A scratch folder the test may use (it also holds the SQLite file).
    pub dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl TestDb {
    /// A new SQLite database file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            url,
            dir,
            schema: None,
        }
    }

    /// A new schema in the database `MDM_MAIL_TEST_POSTGRES_URL` names, or `None` when the
    /// variable is unset. When it is set, an unreachable server fails the test: CI must never
    /// pass by skipping PostgreSQL.
    pub async fn postgres() -> Option<TestDb> {
        let Ok(base) = std::env::var(POSTGRES_ENV) else {
            eprintln!("{POSTGRES_ENV} is not set: the PostgreSQL run of this test is skipped");
            return None;
        };
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect_postgres(&base).await;
        sqlx::Executor::execute(&mut admin, format!("CREATE SCHEMA {schema}").as_str())
            .await
            .expect("create a test schema");
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(TestDb {
            url,
            dir: tempfile::tempdir().expect("temporary folder"),
            schema: Some((base, schema)),
        })
    }

    /// Opens (and migrates) the database through the library.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.expect("open the test store")
    }

    /// Runs one SQL query against the test database and returns the first column of the first
    /// row, for assertions about what was (not) written.
    pub async fn scalar_i64(&self, sql: &'static str) -> i64 {
        match &self.schema {
            None => {
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect(sql)
            }
            Some(_) => {
                let mut conn = connect_postgres(&self.url).await;
                sqlx::query_scalar(sql)
                    .fetch_one(&mut conn)
                    .await
                    .expect(sql)
            }
        }
    }

    /// Runs SQL written for this test's backend (`sqlite` or `postgres`), for setting up
    /// conditions the application cannot create, such as a failing trigger.
    pub async fn execute(&self, sqlite: &str, postgres: &str) {
        match &self.schema {
            None => {
                let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .expect("connect to the test database");
                sqlx::raw_sql(sqlite)
                    .execute(&mut conn)
                    .await
                    .expect(sqlite);
            }
            Some(_) => {
                let mut conn = connect_postgres(&self.url).await;
                sqlx::raw_sql(postgres)
                    .execute(&mut conn)
                    .await
                    .expect(postgres);
            }
        }
    }

    /// Runs the real `mdm-mail` binary against this database, in the scratch folder, with
    /// the test secret key.
    pub fn run(&self, args: &[&str]) -> Output {
        mdm_mail_in(
            self.dir.path(),
            &[
                ("MDM_MAIL_DATABASE_URL", self.url.as_str()),
                ("MDM_MAIL_SECRET_KEY", crate::import::KEY),
            ],
            args,
        )
    }
}

async fn connect_postgres(url: &str) -> sqlx::PgConnection {
    <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{POSTGRES_ENV} is set but PostgreSQL is unreachable: {e}"))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, schema)) = self.schema.take() else {
            return;
        };
        // Drop cannot await; a thread with its own runtime removes the schema.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let mut admin = connect_postgres(&base).await;
                // A connection left inside a transaction by a failing test must not make the
                // clean-up, and so the test, hang: give up on the schema instead.
                let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA {schema} CASCADE");
                let _ = sqlx::Executor::execute(&mut admin, sql.as_str()).await;
            });
        })
        .join();
    }
}

/// The path of the compiled `mdm-mail` binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mdm-mail")
}

/// Runs `mdm-mail` in `dir` with `env` set and every other `MDM_MAIL_*` variable cleared.
pub fn mdm_mail_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    mdm_mail_command(dir, env, args)
        .output()
        .expect("run mdm-mail")
}

/// The command [`mdm_mail_in`] runs, for a test that starts several at once.
pub fn mdm_mail_command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(binary());
    command.current_dir(dir).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MDM_MAIL_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    command
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Standard output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file and folder under `dir`, at any depth, for asserting where a command wrote.
pub fn entries_under(dir: &Path) -> std::collections::BTreeSet<PathBuf> {
    let mut entries = std::collections::BTreeSet::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("read the folder") {
            let path = entry.expect("read the folder").path();
            if path.symlink_metadata().expect("stat").is_dir() {
                folders.push(path.clone());
            }
            entries.insert(path);
        }
    }
    entries
}

/// Signs `name` in through the library as the wizard does, from loopback with the default
/// throttle: the session, or `None` for a wrong name or password.
pub async fn sign_in_directly(
    store: &Store,
    name: &str,
    password: &str,
) -> Option<mdm_mail::auth::NewSession> {
    let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
    let throttle = mdm_mail::auth::Throttle::default();
    match mdm_mail::auth::sign_in(store, &throttle, loopback, name, password).await {
        Ok(mdm_mail::auth::SignIn::Session(session)) => Some(session),
        Ok(mdm_mail::auth::SignIn::Refused) => None,
        other => panic!("signing in as {name:?}: {other:?}"),
    }
}
