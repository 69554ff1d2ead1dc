//! Per-user email configuration profiles for Apple, Windows and Android devices.
//!
//! The admin describes the mail servers once, in [`definition`]s (`profiles/*.toml`); a user's
//! imported accounts supply the per-user values.
//!
//! A user's profile identifier is `{identifier_prefix}.{user uuid}` ([`identity`]). One
//! profile holds the accounts of several definitions, and its identifier must not change
//! when the user gains or loses accounts, so every definition must declare the same
//! `identifier_prefix` (loading refuses them otherwise) rather than one being picked per
//! render.

pub mod definition;
pub mod identity;
pub mod template;

pub use definition::{Definition, DefinitionError, Definitions};
pub use identity::profile_identifier;
