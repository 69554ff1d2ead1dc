//! A decided chunk as the writer holds it until it is written: its account writes and its
//! lines not applied, their text and bytes packed into one buffer each ([`Buffers`]).
//!
//! The writer holds a window of chunks, and is queued as many again so that deciding goes
//! on while it writes. A parsed line, with its checks, plain passwords and ciphertexts, took
//! about a kilobyte in a dozen allocations; packed, a line to write takes half of that, in
//! none of its own.

use std::ops::Range;

use super::buffers::Buffers;
use super::plan::{self, Ciphertexts, Decision};
use super::validate::ParsedLine;
use crate::model::Outcome;
use crate::store::{AccountWrite, LineRecord, SealedRef};

/// A decided chunk, packed for the writer.
pub struct Chunk {
    first_line: u64,
    writes: Vec<Write>,
    not_applied: Vec<NotApplied>,
    buffers: Buffers,
    /// The chunk's rows of the results file, deflated.
    pub results: Vec<u8>,
}

/// An account write; its text and bytes are ranges of the chunk's buffers.
struct Write {
    outcome: Outcome,
    id: Option<i64>,
    user_id: i64,
    address: Range<usize>,
    address_norm: Range<usize>,
    display_name: Option<Range<usize>>,
    username: Range<usize>,
    domain: Option<Range<usize>>,
    outgoing_username: Option<Range<usize>>,
    /// Ciphertext and MAC.
    password: Option<[Range<usize>; 2]>,
    /// Ciphertext and MAC.
    outgoing_password: Option<[Range<usize>; 2]>,
}

/// A line not applied; its text is ranges of the chunk's buffer.
struct NotApplied {
    line: u64,
    outcome: Outcome,
    field: Option<&'static str>,
    message: Range<usize>,
    user_email: Range<usize>,
    account_address: Range<usize>,
}

impl Chunk {
    /// Packs `lines` with their `decisions`, the ciphertexts [`plan::seal`] made for them
    /// and their deflated run of the results file.
    pub fn pack(
        lines: &[ParsedLine],
        decisions: &[Decision],
        sealed: &[Ciphertexts],
        results: Vec<u8>,
    ) -> Chunk {
        let writes: Vec<(Outcome, AccountWrite<'_>)> =
            plan::writes(lines, decisions, sealed).collect();
        let not_applied: Vec<(&ParsedLine, &Decision)> = lines
            .iter()
            .zip(decisions)
            .filter(|(_, d)| !d.outcome.applied())
            .collect();
        // Sized exactly, once: a buffer grown by doubling would hold a quarter of it unused.
        let text_len = writes.iter().map(|(_, w)| text_len(w)).sum::<usize>()
            + not_applied
                .iter()
                .map(|(l, d)| d.message.len() + l.user_email().len() + l.address().len())
                .sum::<usize>();
        let bytes_len = writes.iter().map(|(_, w)| bytes_len(w)).sum();
        let mut chunk = Chunk {
            first_line: lines.first().map_or(0, |l| l.line),
            writes: Vec::with_capacity(writes.len()),
            not_applied: Vec::with_capacity(not_applied.len()),
            buffers: Buffers::with_capacity(text_len, bytes_len),
            results,
        };
        let b = &mut chunk.buffers;
        for (outcome, w) in &writes {
            let write = Write {
                outcome: *outcome,
                id: w.id,
                user_id: w.user_id,
                address: b.text(w.address),
                address_norm: b.text(w.address_norm),
                display_name: w.display_name.map(|t| b.text(t)),
                username: b.text(w.username),
                domain: w.domain.map(|t| b.text(t)),
                outgoing_username: w.outgoing_username.map(|t| b.text(t)),
                password: w.password.map(|p| [b.bytes(p.ciphertext), b.bytes(p.mac)]),
                outgoing_password: w
                    .outgoing_password
                    .map(|p| [b.bytes(p.ciphertext), b.bytes(p.mac)]),
            };
            chunk.writes.push(write);
        }
        for (line, d) in not_applied {
            let record = NotApplied {
                line: line.line,
                outcome: d.outcome,
                field: d.field,
                message: b.text(&d.message),
                user_email: b.text(line.user_email()),
                account_address: b.text(line.address()),
            };
            chunk.not_applied.push(record);
        }
        chunk
    }

    /// The line the chunk's run of the results file starts at.
    pub fn first_line(&self) -> u64 {
        self.first_line
    }

    /// The account writes, each with its outcome (added or updated).
    pub fn writes(&self) -> impl Iterator<Item = (Outcome, AccountWrite<'_>)> {
        let text = |r: &Range<usize>| self.buffers.text_at(r);
        let sealed = |[ciphertext, mac]: &[Range<usize>; 2]| SealedRef {
            ciphertext: self.buffers.bytes_at(ciphertext),
            mac: self.buffers.bytes_at(mac),
        };
        self.writes.iter().map(move |w| {
            (
                w.outcome,
                AccountWrite {
                    id: w.id,
                    user_id: w.user_id,
                    address: text(&w.address),
                    address_norm: text(&w.address_norm),
                    display_name: w.display_name.as_ref().map(text),
                    username: text(&w.username),
                    domain: w.domain.as_ref().map(text),
                    outgoing_username: w.outgoing_username.as_ref().map(text),
                    password: w.password.as_ref().map(sealed),
                    outgoing_password: w.outgoing_password.as_ref().map(sealed),
                },
            )
        })
    }

    /// The lines not applied, in file order.
    pub fn not_applied(&self) -> impl Iterator<Item = LineRecord<'_>> {
        let text = |r: &Range<usize>| self.buffers.text_at(r);
        self.not_applied.iter().map(move |r| LineRecord {
            line: r.line,
            outcome: r.outcome,
            field: r.field,
            message: text(&r.message),
            user_email: text(&r.user_email),
            account_address: text(&r.account_address),
        })
    }
}

fn text_len(w: &AccountWrite<'_>) -> usize {
    [
        Some(w.address),
        Some(w.address_norm),
        w.display_name,
        Some(w.username),
        w.domain,
        w.outgoing_username,
    ]
    .into_iter()
    .flatten()
    .map(str::len)
    .sum()
}

fn bytes_len(w: &AccountWrite<'_>) -> usize {
    [w.password, w.outgoing_password]
        .into_iter()
        .flatten()
        .map(|p| p.ciphertext.len() + p.mac.len())
        .sum()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::crypto::Keys;
    use crate::csv::{ColumnMap, Record};
    use crate::import::schema;
    use crate::import::validate::Validator;
    use crate::model::AccountKind;
    use crate::store::{StoredAccount, UserAccounts};

    /// Email lines: user, display name, address, user name, password, outgoing user name,
    /// outgoing password.
    fn parse(rows: &[[&str; 7]]) -> Vec<ParsedLine> {
        let columns = ColumnMap::positional(&schema::EMAIL);
        let mut v = Validator::new(AccountKind::Email, columns);
        rows.iter()
            .enumerate()
            .map(|(i, cells)| v.check(&Record::from_cells(i as u64 + 1, cells.iter().copied())))
            .collect()
    }

    #[test]
    fn a_packed_chunk_gives_back_every_write_and_every_line_not_applied() {
        let keys = Keys::from_master(&[5; 32]);
        let lines = parse(&[
            [
                "zoe@example.com",
                "Ødegård, Zoë",
                "Zoe@Example.com",
                "zoe",
                "'=x",
                "zoe-out",
                "",
            ],
            [
                "zoe@example.com",
                "Zoë",
                "old@example.com",
                "z",
                "",
                "z",
                "p2",
            ],
            ["nobody@example.com", "N", "n@example.com", "n", "", "n", ""],
            ["zoe@example.com", "Zoë", "not an address", "z", "", "z", ""],
        ]);
        let users = HashMap::from([(
            "zoe@example.com".to_owned(),
            UserAccounts {
                user_id: 7,
                accounts: vec![StoredAccount {
                    id: 70,
                    address: "old@example.com".into(),
                    address_norm: "old@example.com".into(),
                    display_name: None,
                    username: "y".into(),
                    domain: None,
                    outgoing_username: None,
                    password_mac: None,
                    outgoing_password_mac: None,
                }],
            },
        )]);
        let decisions: Vec<Decision> = lines
            .iter()
            .map(|l| plan::decide_line(AccountKind::Email, &keys, l, &users))
            .collect();
        let sealed = plan::seal(AccountKind::Email, &keys, &lines, &decisions);
        let chunk = Chunk::pack(&lines, &decisions, &sealed, vec![1, 2, 3]);

        let show = |(outcome, w): (Outcome, AccountWrite<'_>)| format!("{outcome:?} {w:?}");
        let expected: Vec<String> = plan::writes(&lines, &decisions, &sealed)
            .map(show)
            .collect();
        let packed: Vec<String> = chunk.writes().map(show).collect();
        assert_eq!(packed, expected);
        assert_eq!(packed.len(), 2);
        assert!(packed[0].starts_with("Added") && packed[0].contains("Ødegård, Zoë"));
        assert!(packed[1].starts_with("Updated") && packed[1].contains("Some(70)"));

        let records: Vec<String> = chunk
            .not_applied()
            .map(|r| {
                format!(
                    "{} {:?} {:?} {} {} {}",
                    r.line, r.outcome, r.field, r.message, r.user_email, r.account_address
                )
            })
            .collect();
        let expected: Vec<String> = lines
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| !d.outcome.applied())
            .map(|(l, d)| {
                format!(
                    "{} {:?} {:?} {} {} {}",
                    l.line,
                    d.outcome,
                    d.field,
                    d.message,
                    l.user_email(),
                    l.address()
                )
            })
            .collect();
        assert_eq!(records, expected);
        assert_eq!(records.len(), 2);
        assert_eq!(chunk.first_line(), 1);
        assert_eq!(chunk.results, [1, 2, 3]);
    }
}
