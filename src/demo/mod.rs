//! The sample data `serve --demo` loads into an empty store, so a newcomer sees the product
//! working on something real: users, their devices and a few mail accounts of both types. It
//! loads through the same importers as any file.

use crate::import::directory::{self, LoadReport};
use crate::import::{self, ImportOptions, ImportResult, Mode};
use crate::model::AccountKind;
use crate::secrets::KeySource;
use crate::store::Store;

const USERS: &str = include_str!("users.csv");
const DEVICES: &str = include_str!("devices.csv");
const EMAIL_ACCOUNTS: &str = include_str!("accounts-email.csv");
const EXCHANGE_ACCOUNTS: &str = include_str!("accounts-exchange.csv");

/// What the demo loaded.
pub struct Loaded {
    /// The users file's report.
    pub users: LoadReport,
    /// The devices file's report.
    pub devices: LoadReport,
    /// The two account imports (Email, Exchange).
    pub accounts: Vec<ImportResult>,
}

/// The name of the admin `serve --demo` creates.
pub const ADMIN: &str = "demo";

/// The folder, in the working directory, that `serve --demo` delivers profiles to when no
/// push transport is configured.
pub const DEVICES_FOLDER: &str = "mdm-mail-demo-devices";

/// The example profile definitions shipped in `profiles/`, for a demo started where there
/// are none.
const EXAMPLE_PROFILES: [(&str, &str); 2] = [
    ("email.toml", include_str!("../../profiles/email.toml")),
    (
        "exchange.toml",
        include_str!("../../profiles/exchange.toml"),
    ),
];

/// Writes the example profile definitions into `dir` if it does not exist, so that a demo
/// started in an empty folder renders and pushes; true when it wrote them.
pub fn write_example_profiles(dir: &std::path::Path) -> std::io::Result<bool> {
    if dir.exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    for (name, text) in EXAMPLE_PROFILES {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(true)
}

/// Creates the admin [`ADMIN`] with a random password when there is no admin at all, and
/// returns that password (to be printed once); `None` when admins exist.
pub async fn ensure_admin(store: &Store) -> Result<Option<String>, crate::auth::AuthError> {
    if store.count_admins().await? > 0 {
        return Ok(None);
    }
    let password = crate::auth::random_secret()[..20].to_owned();
    crate::auth::add_admin(store, "serve --demo", ADMIN, &password).await?;
    Ok(Some(password))
}

/// Why the demo could not load.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Users or devices did not load.
    #[error(transparent)]
    Directory(#[from] directory::LoadError),
    /// Accounts did not import.
    #[error(transparent)]
    Import(#[from] import::ImportError),
}

/// Loads the sample set if the store has no users yet; `None` when it had some.
pub async fn load_if_empty(store: &Store, keys: &KeySource) -> Result<Option<Loaded>, DemoError> {
    if store
        .count_users()
        .await
        .map_err(directory::LoadError::from)?
        > 0
    {
        return Ok(None);
    }
    let users = directory::load_users(store, USERS.as_bytes(), "demo", "demo users").await?;
    let devices =
        directory::load_devices(store, DEVICES.as_bytes(), "demo", "demo devices").await?;
    let mut accounts = Vec::new();
    for (kind, text, source) in [
        (AccountKind::Email, EMAIL_ACCOUNTS, "demo email accounts"),
        (
            AccountKind::Exchange,
            EXCHANGE_ACCOUNTS,
            "demo exchange accounts",
        ),
    ] {
        let mode = Mode::Commit {
            actor: "demo",
            source,
            expected: None,
        };
        let options = ImportOptions::new(kind);
        accounts.push(import::run(store, keys, text.as_bytes(), &options, mode, None).await?);
    }
    Ok(Some(Loaded {
        users,
        devices,
        accounts,
    }))
}
