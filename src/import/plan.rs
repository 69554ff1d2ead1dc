//! Deciding each line's outcome against what is stored: discarded when no user matches,
//! added, updated (saying which fields changed) or unchanged. Pure: the store's answer comes in,
//! outcomes and the writes to make come out, with the passwords to store sealed.

use std::collections::HashMap;

use super::index::{Known, StoreIndex};
use super::schema;
use super::validate::{Checked, ParsedLine, ValidRow};
use crate::crypto::{self, Keys, PasswordColumn, PasswordMac};
use crate::model::{AccountKind, Outcome};
use crate::store::{AccountWrite, SealedRef, StoredAccount, UserAccounts};

/// One line's outcome (decisions come in the order of their lines).
#[derive(Debug)]
pub struct Decision {
    /// What happens to the line.
    pub outcome: Outcome,
    /// For rejected lines, the canonical column to blame.
    pub field: Option<&'static str>,
    /// Why (rejections, discards, duplicates) or what changed (updates); empty otherwise.
    pub message: String,
    /// The owner's store id, for the lines to write (added and updated).
    pub write_for: Option<i64>,
    /// The stored account's id, for the lines that update one.
    pub account: Option<i64>,
}

/// One line's passwords as they are stored: each sealed, beside its MAC.
#[derive(Debug, Default)]
pub struct Ciphertexts {
    password: Option<(Vec<u8>, PasswordMac)>,
    outgoing_password: Option<(Vec<u8>, PasswordMac)>,
}

/// Decides one line. `users` holds, for every user email of the line's chunk that exists,
/// the user's stored accounts of `kind`; `keys` compares passwords with MACs stored by older
/// versions.
pub fn decide_line(
    kind: AccountKind,
    keys: &Keys,
    line: &ParsedLine,
    users: &HashMap<String, UserAccounts>,
) -> Decision {
    let row = match unmatched(line) {
        Ok(row) => row,
        Err(decision) => return decision,
    };
    let Some(user) = users.get(row.user_norm()) else {
        return discarded(line);
    };
    let stored = user
        .accounts
        .iter()
        .find(|a| a.address_norm == row.address_norm());
    match stored {
        None => applied(line, Outcome::Added, String::new(), user.user_id, None),
        Some(stored) => applied_changes(
            kind,
            line,
            &changes(kind, keys, row, line.address(), stored),
            user.user_id,
            stored.id,
        ),
    }
}

/// Decides the lines `index` can settle without a look-up, in order; `None` for each line
/// that needs one (decide those with [`decide_line`]). The chunk's users are looked up
/// together, then their accounts, which is what makes the index fast (see
/// [`StoreIndex::users`]).
pub fn decide_indexed(
    kind: AccountKind,
    keys: &Keys,
    lines: &[ParsedLine],
    index: &StoreIndex,
) -> Vec<Option<Decision>> {
    let mut decisions: Vec<Option<Decision>> =
        lines.iter().map(|line| unmatched(line).err()).collect();
    let valid: Vec<(usize, &ValidRow)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| match &line.check {
            Checked::Valid(row) => Some((i, &**row)),
            _ => None,
        })
        .collect();
    let emails: Vec<&str> = valid.iter().map(|(_, row)| row.user_norm()).collect();
    // The lines whose user exists: where each is in the chunk, and what the index takes.
    let mut positions = Vec::with_capacity(valid.len());
    let mut owned = Vec::with_capacity(valid.len());
    for ((i, row), user) in valid.into_iter().zip(index.users(&emails)) {
        match user {
            Some(user_id) => {
                positions.push(i);
                owned.push((user_id, &lines[i], row));
            }
            None => decisions[i] = Some(discarded(&lines[i])),
        }
    }
    let known = index.accounts(&owned, keys, kind);
    for ((i, (user_id, line, _)), known) in positions.into_iter().zip(owned).zip(known) {
        decisions[i] = match known {
            Known::New => Some(applied(line, Outcome::Added, String::new(), user_id, None)),
            Known::Stored { id, passwords } => {
                let names: Vec<&'static str> = passwords
                    .into_iter()
                    .map(|i| schema::password_column_name(kind, i))
                    .collect();
                Some(applied_changes(kind, line, &names, user_id, id))
            }
            Known::Unsure => None,
        };
    }
    decisions
}

/// A valid line's row, or the decision of a line that is not valid.
fn unmatched(line: &ParsedLine) -> Result<&ValidRow, Decision> {
    let decision = |outcome, field, message| Decision {
        outcome,
        field,
        message,
        write_for: None,
        account: None,
    };
    match &line.check {
        Checked::Valid(row) => Ok(row),
        Checked::Rejected { field, message } => {
            Err(decision(Outcome::Rejected, *field, message.clone()))
        }
        Checked::Duplicate { first } => Err(decision(
            Outcome::Duplicate,
            None,
            format!("same user, type and address as line {first}"),
        )),
    }
}

fn discarded(line: &ParsedLine) -> Decision {
    Decision {
        outcome: Outcome::Discarded,
        field: None,
        message: format!("no user with email {}", line.user_email()),
        write_for: None,
        account: None,
    }
}

/// `line`'s stored account `account` of user `user_id`: unchanged when none of the fields
/// `changed`, else updated saying which.
fn applied_changes(
    kind: AccountKind,
    line: &ParsedLine,
    changed: &[&'static str],
    user_id: i64,
    account: i64,
) -> Decision {
    if changed.is_empty() {
        applied(
            line,
            Outcome::Unchanged,
            String::new(),
            user_id,
            Some(account),
        )
    } else {
        let message = changed_fields(kind, changed, line);
        applied(line, Outcome::Updated, message, user_id, Some(account))
    }
}

/// A line to apply (or left unchanged), its message followed by the line's own note.
fn applied(
    line: &ParsedLine,
    outcome: Outcome,
    message: String,
    user_id: i64,
    account: Option<i64>,
) -> Decision {
    let note = match &line.check {
        Checked::Valid(row) => row.note(),
        _ => None,
    };
    let message = match note {
        None => message,
        Some(note) if message.is_empty() => note.to_owned(),
        Some(note) => format!("{message}; {note}"),
    };
    Decision {
        outcome,
        field: None,
        message,
        write_for: (outcome != Outcome::Unchanged).then_some(user_id),
        account,
    }
}

/// "changed a, b", each field the admin mapped followed by what it was read from.
fn changed_fields(kind: AccountKind, changed: &[&'static str], line: &ParsedLine) -> String {
    let names = schema::columns(kind);
    let named: Vec<String> = changed
        .iter()
        .map(|field| {
            let source = line
                .mapped
                .as_deref()
                .zip(names.iter().position(|c| c.name == *field))
                .and_then(|(mapped, i)| mapped.get(i).cloned().flatten());
            match source {
                Some(source) => format!("{field} (read from {source:?})"),
                None => (*field).to_owned(),
            }
        })
        .collect();
    format!("changed {}", named.join(", "))
}

/// The canonical names of the columns whose values differ from the stored account. A blank
/// password (none given) never counts as a change: it keeps the stored one.
fn changes(
    kind: AccountKind,
    keys: &Keys,
    row: &ValidRow,
    address: &str,
    stored: &StoredAccount,
) -> Vec<&'static str> {
    let names = schema::columns(kind);
    let name = |i: usize| names[i].name;
    let differs_mac = |stored: &Option<Vec<u8>>, column| {
        let given = row.password(column).zip(row.mac(keys, kind, column));
        given.is_some_and(|(given, mac)| {
            stored.as_deref().is_none_or(|stored| {
                let aad = crypto::account_aad(kind, row.user_norm(), row.address_norm(), column);
                !keys.mac_matches(stored, mac, &aad, given)
            })
        })
    };
    let mut changed = Vec::new();
    match kind {
        AccountKind::Email => {
            use schema::email::*;
            let checks = [
                (stored.address != address, ADDRESS),
                (
                    stored.display_name.as_deref() != row.display_name(),
                    DISPLAY_NAME,
                ),
                (stored.username != row.username(), INCOMING_USERNAME),
                (
                    differs_mac(&stored.password_mac, PasswordColumn::Primary),
                    INCOMING_PASSWORD,
                ),
                (
                    stored.outgoing_username.as_deref() != row.outgoing_username(),
                    OUTGOING_USERNAME,
                ),
                (
                    differs_mac(&stored.outgoing_password_mac, PasswordColumn::Outgoing),
                    OUTGOING_PASSWORD,
                ),
            ];
            changed.extend(checks.iter().filter(|c| c.0).map(|c| name(c.1)));
        }
        AccountKind::Exchange => {
            use schema::exchange::*;
            let checks = [
                (stored.address != address, ADDRESS),
                (stored.username != row.username(), USERNAME),
                (stored.domain.as_deref() != row.domain(), DOMAIN),
                (
                    differs_mac(&stored.password_mac, PasswordColumn::Primary),
                    PASSWORD,
                ),
            ];
            changed.extend(checks.iter().filter(|c| c.0).map(|c| name(c.1)));
        }
    }
    changed
}

/// Seals the passwords of the lines to be written, one entry per line (empty for the
/// others).
pub fn seal(
    kind: AccountKind,
    keys: &Keys,
    lines: &[ParsedLine],
    decisions: &[Decision],
) -> Vec<Ciphertexts> {
    lines
        .iter()
        .zip(decisions)
        .map(|(line, d)| match (&line.check, d.write_for) {
            (Checked::Valid(row), Some(_)) => {
                let seal = |column| {
                    let given = row.password(column)?;
                    let aad =
                        crypto::account_aad(kind, row.user_norm(), row.address_norm(), column);
                    let mac = *row.mac(keys, kind, column)?;
                    Some((keys.seal(&aad, given), mac))
                };
                Ciphertexts {
                    password: seal(PasswordColumn::Primary),
                    outgoing_password: seal(PasswordColumn::Outgoing),
                }
            }
            _ => Ciphertexts::default(),
        })
        .collect()
}

/// The account writes the decisions call for, with the ciphertexts [`seal`] made for them,
/// each with its outcome (added or updated).
pub fn writes<'a>(
    lines: &'a [ParsedLine],
    decisions: &'a [Decision],
    sealed: &'a [Ciphertexts],
) -> impl Iterator<Item = (Outcome, AccountWrite<'a>)> {
    lines
        .iter()
        .zip(decisions)
        .zip(sealed)
        .filter_map(|((line, d), c)| {
            let (Checked::Valid(row), Some(user_id)) = (&line.check, d.write_for) else {
                return None;
            };
            let stored = |sealed: &'a Option<(Vec<u8>, PasswordMac)>| {
                sealed
                    .as_ref()
                    .map(|(ciphertext, mac)| SealedRef { ciphertext, mac })
            };
            Some((
                d.outcome,
                AccountWrite {
                    id: d.account,
                    user_id,
                    address: line.address(),
                    address_norm: row.address_norm(),
                    display_name: row.display_name(),
                    username: row.username(),
                    domain: row.domain(),
                    outgoing_username: row.outgoing_username(),
                    password: stored(&c.password),
                    outgoing_password: stored(&c.outgoing_password),
                },
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv::{ColumnMap, Record};
    use crate::import::validate::Validator;

    fn decide(
        kind: AccountKind,
        keys: &Keys,
        lines: &[ParsedLine],
        users: &HashMap<String, UserAccounts>,
    ) -> Vec<Decision> {
        lines
            .iter()
            .map(|line| decide_line(kind, keys, line, users))
            .collect()
    }

    fn parse(rows: &[[&str; 5]]) -> Vec<ParsedLine> {
        let columns = ColumnMap::positional(&schema::EXCHANGE);
        let mut v = Validator::new(AccountKind::Exchange, columns);
        let mut lines: Vec<ParsedLine> = rows
            .iter()
            .enumerate()
            .map(|(i, cells)| v.check(&Record::from_cells(i as u64 + 1, cells.iter().copied())))
            .collect();
        crate::import::validate::mark_duplicates(&mut Default::default(), &mut lines);
        lines
    }

    fn stored(address: &str, mac: Option<crate::crypto::PasswordMac>) -> StoredAccount {
        StoredAccount {
            id: 1,
            address: address.into(),
            address_norm: address.to_lowercase(),
            display_name: None,
            username: "alice".into(),
            domain: Some("CORP".into()),
            outgoing_username: None,
            password_mac: mac.map(|m| m.to_vec()),
            outgoing_password_mac: None,
        }
    }

    #[test]
    fn outcomes_follow_the_stored_state() {
        let lines = parse(&[
            [
                "alice@example.com",
                "alice@example.com",
                "alice",
                "CORP",
                "",
            ],
            [
                "alice@example.com",
                "alice2@example.com",
                "alice",
                "CORP",
                "",
            ],
            [
                "alice@example.com",
                "alice3@example.com",
                "alice",
                "OTHER",
                "",
            ],
            ["nobody@example.com", "n@example.com", "n", "", ""],
            ["alice@example.com", "bad", "alice", "", ""],
            [
                "ALICE@example.com",
                "Alice2@example.com",
                "alice",
                "CORP",
                "",
            ],
        ]);
        let users = HashMap::from([(
            "alice@example.com".to_owned(),
            UserAccounts {
                user_id: 7,
                accounts: vec![
                    stored("alice@example.com", None),
                    stored("alice3@example.com", None),
                ],
            },
        )]);

        let keys = Keys::from_master(&[3; 32]);
        let decisions = decide(AccountKind::Exchange, &keys, &lines, &users);
        let outcomes: Vec<(Outcome, &str)> = decisions
            .iter()
            .map(|d| (d.outcome, d.message.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Unchanged, ""),
                (Outcome::Added, ""),
                (Outcome::Updated, "changed exchange_domain"),
                (Outcome::Discarded, "no user with email nobody@example.com"),
                (Outcome::Rejected, "\"bad\" is not an email address (no @)"),
                (Outcome::Duplicate, "same user, type and address as line 2"),
            ]
        );
        assert_eq!(decisions[1].write_for, Some(7));
        assert!(
            decisions[0].write_for.is_none(),
            "unchanged lines write nothing"
        );
        let sealed = seal(AccountKind::Exchange, &keys, &lines, &decisions);
        let written: Vec<(Outcome, &str)> = writes(&lines, &decisions, &sealed)
            .map(|(outcome, w)| (outcome, w.address))
            .collect();
        assert_eq!(
            written,
            [
                (Outcome::Added, "alice2@example.com"),
                (Outcome::Updated, "alice3@example.com")
            ]
        );
    }

    #[test]
    fn a_blank_password_keeps_the_stored_one_and_a_new_one_is_a_change() {
        let keys = Keys::from_master(&[3; 32]);
        let aad = crate::crypto::account_aad(
            AccountKind::Exchange,
            "alice@example.com",
            "alice@example.com",
            crate::crypto::PasswordColumn::Primary,
        );
        let stored_mac = keys.mac(&aad, "old");
        let users = HashMap::from([(
            "alice@example.com".to_owned(),
            UserAccounts {
                user_id: 7,
                accounts: vec![stored("alice@example.com", Some(stored_mac))],
            },
        )]);
        let outcome = |password: &str| {
            let lines = parse(&[[
                "alice@example.com",
                "alice@example.com",
                "alice",
                "CORP",
                password,
            ]]);
            let decisions = decide(AccountKind::Exchange, &keys, &lines, &users);
            (decisions[0].outcome, decisions[0].message.clone())
        };
        assert_eq!(outcome(""), (Outcome::Unchanged, String::new()));
        assert_eq!(outcome("old"), (Outcome::Unchanged, String::new()));
        assert_eq!(
            outcome("new"),
            (Outcome::Updated, "changed exchange_password".to_owned())
        );
    }
}
