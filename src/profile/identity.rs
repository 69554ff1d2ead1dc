//! Stable identities. Devices decide from identifiers whether a profile or account is new or
//! an update of one they hold, so every identifier here is a name-based (v5) UUID of what
//! the thing *is* — never of its content, never random:
//!
//! - a user's profile: the identifier prefix and the user's address (case-insensitive);
//! - an account: that, plus the definition's name, the account type, the account's address
//!   and, for Email accounts, the incoming protocol (a device cannot turn an IMAP account
//!   into a POP one in place, so a protocol change is a new account).
//!
//! Host names, ports, passwords and display names are content: changing them keeps every
//! identifier, so devices update the account in place.

use uuid::{Uuid, uuid};

use super::definition::{Definition, Servers};
use crate::model::{Account, normalize_email};

/// The namespace of every mdm-mail UUID. Changing it would make every device see new
/// profiles, so it is fixed forever.
const NAMESPACE: Uuid = uuid!("b55aa112-bbc9-41c8-94f0-857c359f68d8");

/// A v5 UUID of `parts`, each length-prefixed so that no two different lists of parts
/// produce the same name.
fn v5(parts: &[&[u8]]) -> Uuid {
    let mut name = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
        name.extend_from_slice(&len.to_be_bytes());
        name.extend_from_slice(part);
    }
    Uuid::new_v5(&NAMESPACE, &name)
}

/// The UUID naming a user, whatever the case of their address.
pub fn user_uuid(user_email: &str) -> Uuid {
    v5(&[b"user", normalize_email(user_email).as_bytes()])
}

/// The identifier of a user's profile on every platform: `{prefix}.{user uuid}`. On Apple
/// devices it is the top-level `PayloadIdentifier`, which `RemoveProfile` takes. It depends
/// on nothing but the prefix and the user, so the profile replaces itself whatever accounts
/// come and go.
pub fn profile_identifier(prefix: &str, user_email: &str) -> String {
    format!("{prefix}.{}", user_uuid(user_email).hyphenated())
}

/// The top-level `PayloadUUID` of a user's Apple profile.
pub fn profile_uuid(prefix: &str, user_email: &str) -> Uuid {
    v5(&[
        b"profile",
        prefix.as_bytes(),
        normalize_email(user_email).as_bytes(),
    ])
}

/// The UUID of one account of a user under `definition`: the Apple payload's `PayloadUUID`
/// and the Windows account node's GUID.
pub fn account_uuid(definition: &Definition, account: &Account) -> Uuid {
    let protocol: &[u8] = match &definition.servers {
        Servers::Email { incoming, .. } => incoming.protocol.as_str().as_bytes(),
        Servers::Exchange(_) => b"",
    };
    v5(&[
        b"account",
        definition.identifier_prefix.as_bytes(),
        definition.id.as_bytes(),
        normalize_email(&account.user_email).as_bytes(),
        account.kind().as_str().as_bytes(),
        normalize_email(&account.address).as_bytes(),
        protocol,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_one_identity_whatever_the_case_of_the_address() {
        assert_eq!(
            profile_identifier("com.example.mail", " Alice@Example.COM"),
            profile_identifier("com.example.mail", "alice@example.com")
        );
        assert_eq!(
            profile_uuid("com.example.mail", "ALICE@example.com"),
            profile_uuid("com.example.mail", "alice@example.com")
        );
    }

    #[test]
    fn identifiers_are_fixed_forever() {
        // Devices already hold these; a change here would duplicate every profile.
        assert_eq!(
            profile_identifier("com.example.mail", "alice@example.com"),
            format!("com.example.mail.{}", user_uuid("alice@example.com"))
        );
        assert_eq!(
            user_uuid("alice@example.com").to_string(),
            Uuid::new_v5(&NAMESPACE, b"\0\0\0\x04user\0\0\0\x11alice@example.com").to_string()
        );
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        assert_ne!(v5(&[b"ab", b"c"]), v5(&[b"a", b"bc"]));
        assert_ne!(v5(&[b"a", b""]), v5(&[b"a"]));
    }

    #[test]
    fn different_users_and_prefixes_get_different_profiles() {
        assert_ne!(user_uuid("alice@example.com"), user_uuid("bob@example.com"));
        assert_ne!(
            profile_uuid("com.example.mail", "alice@example.com"),
            profile_uuid("com.example.other", "alice@example.com")
        );
    }
}
