//! A stored user's profile: the one library call behind `mdm-mail profile`, the API's profile
//! download and push. It opens the user's accounts, renders them, and signs Apple profiles
//! when a signing identity is configured.

use crate::accounts::{self, AccountsError};
use crate::crypto::Keys;
use crate::model::Platform;
use crate::secrets::{self, KeySource, SecretsError};
use crate::store::Store;

use super::{Definitions, RenderError, RenderOptions, Rendered, SignError, Signer, render};

/// What rendering stored users' profiles needs besides the store.
pub struct Profiles {
    /// The admin's definitions.
    pub definitions: Definitions,
    /// Signs Apple profiles, when configured.
    pub signer: Option<Signer>,
    /// Where the key that opens stored passwords is.
    pub secrets: KeySource,
}

/// Why a user's profile could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The user or their accounts could not be read.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// Nothing could be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Signing failed.
    #[error("cannot sign the profile: {0}")]
    Sign(#[from] SignError),
}

impl Profiles {
    /// The profile of the user with address `email` for `platform`. Apple profiles are
    /// signed when a signer is configured, except redacted previews, which are for reading.
    pub async fn for_user(
        &self,
        store: &Store,
        email: &str,
        platform: Platform,
        options: &RenderOptions,
    ) -> Result<Rendered, ProfileError> {
        let keys = self.keys(store).await.map_err(AccountsError::from)?;
        let (user, accounts) = accounts::of_user(store, &keys, email).await?;
        let mut rendered = render(&user.email, &accounts, platform, &self.definitions, options)?;
        self.sign(platform, options, &mut rendered)?;
        Ok(rendered)
    }

    /// The key that opens the store's passwords, looked up now and checked against the
    /// store's key check.
    pub async fn keys(&self, store: &Store) -> Result<Keys, SecretsError> {
        secrets::for_reading(store, &self.secrets).await
    }

    /// Signs `rendered` in place if it is an Apple profile meant for a device.
    pub fn sign(
        &self,
        platform: Platform,
        options: &RenderOptions,
        rendered: &mut Rendered,
    ) -> Result<(), SignError> {
        let apple = matches!(platform, Platform::Ios | Platform::Ipados | Platform::Macos);
        if let (true, false, Some(signer)) = (apple, options.redact_secrets, &self.signer) {
            rendered.body = signer.sign(&rendered.body)?.to_vec();
        }
        Ok(())
    }
}
