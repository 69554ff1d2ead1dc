//! The columns of the two account files, in the positional order MDM admins know from
//! Miradore, with the labels and aliases a header may use instead of the canonical names.

use crate::csv::Column;
use crate::model::AccountKind;

/// The most columns an account type has.
pub const MAX_COLUMNS: usize = EMAIL.len();
const _: () = assert!(EXCHANGE.len() <= MAX_COLUMNS);

/// "Email" rows: IMAP/POP plus SMTP.
pub const EMAIL: [Column; 7] = [
    Column {
        name: "user_email",
        label: "User email",
        aliases: &[
            "user",
            "user e-mail",
            "user mail",
            "owner",
            "owner email",
            "mdm user",
        ],
        required: true,
    },
    Column {
        name: "display_name",
        label: "User display name",
        aliases: &[
            "display name",
            "name",
            "full name",
            "account name",
            "sender name",
        ],
        // A file without it (a mail host's export) gives accounts whose profile shows the
        // user's own display name.
        required: false,
    },
    Column {
        name: "email_address",
        label: "Email address",
        aliases: &[
            "email",
            "e-mail",
            "e-mail address",
            "mail address",
            "address",
            "account email",
        ],
        required: true,
    },
    Column {
        name: "incoming_username",
        label: "Incoming server user name",
        aliases: &[
            "incoming user name",
            "incoming user",
            "incoming login",
            "imap username",
            "imap user name",
            "pop username",
        ],
        required: true,
    },
    Column {
        name: "incoming_password",
        label: "Incoming server password",
        aliases: &["incoming password", "imap password", "pop password"],
        required: false,
    },
    Column {
        name: "outgoing_username",
        label: "Outgoing server user name",
        aliases: &[
            "outgoing user name",
            "outgoing user",
            "outgoing login",
            "smtp username",
            "smtp user name",
        ],
        required: true,
    },
    Column {
        name: "outgoing_password",
        label: "Outgoing server password",
        aliases: &["outgoing password", "smtp password"],
        required: false,
    },
];

/// "Mail for Exchange" rows: ActiveSync.
pub const EXCHANGE: [Column; 5] = [
    EMAIL[0],
    Column {
        name: "exchange_email",
        label: "Exchange email",
        aliases: &[
            "exchange e-mail",
            "exchange email address",
            "email address",
            "email",
            "e-mail",
            "address",
        ],
        required: true,
    },
    Column {
        name: "exchange_username",
        label: "Exchange user name",
        aliases: &["user name", "username", "login", "exchange login"],
        required: true,
    },
    Column {
        name: "exchange_domain",
        label: "Exchange domain",
        aliases: &["domain", "windows domain"],
        required: false,
    },
    Column {
        name: "exchange_password",
        label: "Exchange password",
        aliases: &["password"],
        required: false,
    },
];

/// The columns of a kind's file, in positional order.
pub fn columns(kind: AccountKind) -> &'static [Column] {
    match kind {
        AccountKind::Email => &EMAIL,
        AccountKind::Exchange => &EXCHANGE,
    }
}

/// The canonical name of a kind's password column: 0 the primary (incoming or Exchange)
/// password, 1 the outgoing one.
pub fn password_column_name(kind: AccountKind, which: usize) -> &'static str {
    let position = match (kind, which) {
        (AccountKind::Email, 0) => email::INCOMING_PASSWORD,
        (AccountKind::Email, _) => email::OUTGOING_PASSWORD,
        (AccountKind::Exchange, _) => exchange::PASSWORD,
    };
    columns(kind)[position].name
}

/// Whether a column holds a password (masked in previews, never echoed).
pub fn is_password(name: &str) -> bool {
    name.ends_with("_password")
}

/// Positions of the fields within [`EMAIL`].
pub mod email {
    /// `user_email`.
    pub const USER_EMAIL: usize = 0;
    /// `display_name`.
    pub const DISPLAY_NAME: usize = 1;
    /// `email_address`.
    pub const ADDRESS: usize = 2;
    /// `incoming_username`.
    pub const INCOMING_USERNAME: usize = 3;
    /// `incoming_password`.
    pub const INCOMING_PASSWORD: usize = 4;
    /// `outgoing_username`.
    pub const OUTGOING_USERNAME: usize = 5;
    /// `outgoing_password`.
    pub const OUTGOING_PASSWORD: usize = 6;
}

/// Positions of the fields within [`EXCHANGE`].
pub mod exchange {
    /// `user_email`.
    pub const USER_EMAIL: usize = 0;
    /// `exchange_email`.
    pub const ADDRESS: usize = 1;
    /// `exchange_username`.
    pub const USERNAME: usize = 2;
    /// `exchange_domain`.
    pub const DOMAIN: usize = 3;
    /// `exchange_password`.
    pub const PASSWORD: usize = 4;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::columns::header_key;

    #[test]
    fn no_two_columns_of_a_kind_share_a_header_spelling() {
        for kind in [AccountKind::Email, AccountKind::Exchange] {
            let mut seen = std::collections::HashMap::new();
            for column in columns(kind) {
                for spelling in [column.name, column.label]
                    .into_iter()
                    .chain(column.aliases.iter().copied())
                {
                    if let Some(other) = seen.insert(header_key(spelling), column.name) {
                        assert_eq!(other, column.name, "{kind}: {spelling:?} is ambiguous");
                    }
                }
            }
        }
    }
}
