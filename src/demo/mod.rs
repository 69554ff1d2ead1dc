//! The sample users and devices `serve --demo` loads into an empty store, so a newcomer sees
//! the product working on something real. They load through the same importers as any file.

use crate::import::directory::{self, LoadError, LoadReport};
use crate::store::Store;

const USERS: &str = include_str!("users.csv");
const DEVICES: &str = include_str!("devices.csv");

/// What the demo loaded; `None` when the store already had users and was left alone.
pub struct Loaded {
    /// The users file's report.
    pub users: LoadReport,
    /// The devices file's report.
    pub devices: LoadReport,
}

/// Loads the sample set if the store has no users yet.
pub async fn load_if_empty(store: &Store) -> Result<Option<Loaded>, LoadError> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let users = directory::load_users(store, USERS.as_bytes(), "demo", "demo users").await?;
    let devices =
        directory::load_devices(store, DEVICES.as_bytes(), "demo", "demo devices").await?;
    Ok(Some(Loaded { users, devices }))
}
