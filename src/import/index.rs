//! What an import that is large against the store knows of it: every user by email and every
//! stored account of the kind by owner and address, read in one scan of each table and kept
//! as keyed digests, so that most lines are decided without a look-up of their own.
//!
//! A million lines looked up one by one cost a million random reads of the users' and the
//! accounts' indexes; two sequential scans cost a fraction of that, and the digests hold a
//! million users and a million accounts in about 69 MiB. Rows are digested on the threads
//! that read them ([`Gather`]): handing them to a thread of their own cost copying every row,
//! more than the thread saved.
//!
//! Keys and the digest of an account's other fields are SipHash values under a key drawn at
//! random for the import, and a password's digest is part of its MAC, a keyed hash already;
//! so nobody can make two of them collide on purpose, and at 128 bits for keys (64 for each
//! digest) an accidental collision is out of reach. A line the digests cannot settle (a field
//! other than a password changed, or a password stored under the older MAC) is looked up as
//! a small import's lines are.

use std::hash::Hasher;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use siphasher::sip128::{Hasher128, SipHasher13};

use super::validate::{ParsedLine, ValidRow};
use crate::crypto::{Keys, MAC_LEN, PasswordColumn};
use crate::model::AccountKind;
use crate::store::{ScanSink, ScannedAccount};

/// The digest of a password that is not stored.
const NONE: u64 = 0;
/// The digest of a password whose MAC is of the older kind (16 bytes, where this version's
/// are [`MAC_LEN`]), which a digest cannot compare.
const LEGACY: u64 = 1;

/// A store's users and accounts of one kind, as digests.
pub struct StoreIndex {
    hashes: Hashes,
    users: Sorted<i64>,
    accounts: Sorted<AccountDigest>,
}

/// The keyed hashes an index is made of, under a key drawn at random for the import.
#[derive(Clone, Copy)]
struct Hashes {
    keys: (u64, u64),
}

/// Digests a scan of the store into a [`StoreIndex`]: each clone digests the rows of the
/// part of the scan it is given, on the thread that reads them, and adds them to the index
/// in batches.
pub struct Gather {
    hashes: Hashes,
    gathered: Arc<Mutex<Gathered>>,
    batch: Gathered,
}

/// Digests of the rows scanned, in the order they came.
#[derive(Default)]
struct Gathered {
    users: Vec<(Key, i64)>,
    accounts: Vec<(Key, AccountDigest)>,
}

/// Rows a clone of [`Gather`] digests before adding them to the index.
const BATCH_ROWS: usize = 4096;

/// What is compared of a stored account: its fields other than passwords, then each
/// password's MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AccountDigest {
    id: i64,
    fields: u64,
    password: u64,
    outgoing_password: u64,
}

/// What the digests tell of a line whose user exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known {
    /// No account of the user has the line's address.
    New,
    /// The account is stored with the line's fields, but for these passwords, as the
    /// columns' indexes (0 the primary password, 1 the outgoing one): none when it is stored
    /// exactly as the line has it.
    Stored {
        /// The account's store id.
        id: i64,
        /// The passwords that differ.
        passwords: Vec<usize>,
    },
    /// Something the digests cannot tell apart changed: look the account up.
    Unsure,
}

impl Gather {
    /// Starts an index of a store of at most `users` users and `accounts` accounts, to be
    /// filled by a scan of it.
    pub fn new(users: i64, accounts: i64) -> Gather {
        use rand::RngExt;
        let mut rng = rand::rng();
        let capacity = |n: i64| usize::try_from(n).unwrap_or(0);
        Gather {
            hashes: Hashes {
                keys: (rng.random(), rng.random()),
            },
            gathered: Arc::new(Mutex::new(Gathered {
                users: Vec::with_capacity(capacity(users)),
                accounts: Vec::with_capacity(capacity(accounts)),
            })),
            batch: Gathered::default(),
        }
    }

    /// The index of every row this and its clones were given, sorted for look-ups. The
    /// clones must be dropped first: their last rows are added when they are.
    pub fn finish(mut self) -> StoreIndex {
        self.add_batch();
        let gathered = std::mem::take(&mut *self.lock());
        let mut index = StoreIndex {
            hashes: self.hashes,
            users: Sorted::new(gathered.users),
            accounts: Sorted::new(gathered.accounts),
        };
        index.users.finish();
        index.accounts.finish();
        index
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gathered> {
        // A thread that panicked holding the lock left whole batches: nothing is half-added.
        self.gathered.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn add_batch(&mut self) {
        if self.batch.users.is_empty() && self.batch.accounts.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        let mut gathered = self.lock();
        gathered.users.append(&mut batch.users);
        gathered.accounts.append(&mut batch.accounts);
        drop(gathered);
        // The emptied vectors are kept, with their room for the next batch.
        self.batch = batch;
    }

    fn batch_full(&mut self) {
        if self.batch.users.len() + self.batch.accounts.len() >= BATCH_ROWS {
            self.add_batch();
        }
    }
}

/// Another gatherer of the same index, for a part of the scan read on another thread.
impl Clone for Gather {
    fn clone(&self) -> Gather {
        Gather {
            hashes: self.hashes,
            gathered: Arc::clone(&self.gathered),
            batch: Gathered::default(),
        }
    }
}

/// A gatherer adds the rows it holds when dropped, whether the scan finished or failed.
impl Drop for Gather {
    fn drop(&mut self) {
        self.add_batch();
    }
}

impl ScanSink for Gather {
    fn user(&mut self, id: i64, email_norm: &[u8]) {
        let key = self.hashes.user_key(email_norm);
        self.batch.users.push((key, id));
        self.batch_full();
    }

    fn account(&mut self, a: &ScannedAccount<'_>) {
        let key = self.hashes.account_key(a.user_id, a.address_norm);
        let digest = AccountDigest {
            id: a.id,
            fields: self.hashes.fields_digest(
                a.address,
                a.display_name,
                a.username,
                a.domain,
                a.outgoing_username,
            ),
            password: mac_digest(a.password_mac),
            outgoing_password: mac_digest(a.outgoing_password_mac),
        };
        self.batch.accounts.push((key, digest));
        self.batch_full();
    }
}

impl StoreIndex {
    /// Bytes the index holds.
    pub fn bytes(&self) -> u64 {
        index_bytes(
            i64::try_from(self.users.entries.len()).unwrap_or(i64::MAX),
            i64::try_from(self.accounts.entries.len()).unwrap_or(i64::MAX),
        )
    }

    /// The store id of each user of `emails`, by normalised email, looked up together (see
    /// [`Sorted::get_all`]).
    pub fn users(&self, emails: &[&str]) -> Vec<Option<i64>> {
        let keys: Vec<Key> = emails
            .iter()
            .map(|e| self.hashes.user_key(e.as_bytes()))
            .collect();
        self.users
            .get_all(&keys)
            .into_iter()
            .map(|id| id.copied())
            .collect()
    }

    /// What the index tells of each of `lines`, valid lines of `kind` (each with its
    /// checked row) beside their user's store id; looked up together (see
    /// [`Sorted::get_all`]). `keys` computes the MACs of the lines' passwords.
    pub fn accounts(
        &self,
        lines: &[(i64, &ParsedLine, &ValidRow)],
        keys: &Keys,
        kind: AccountKind,
    ) -> Vec<Known> {
        let account_keys: Vec<Key> = lines
            .iter()
            .map(|(user_id, _, row)| {
                self.hashes
                    .account_key(*user_id, row.address_norm().as_bytes())
            })
            .collect();
        let stored = self.accounts.get_all(&account_keys);
        lines
            .iter()
            .zip(stored)
            .map(|((_, line, row), stored)| self.compare(line, row, stored, keys, kind))
            .collect()
    }

    /// What `stored`, the account found for `row` (a valid line), tells of it.
    fn compare(
        &self,
        line: &ParsedLine,
        row: &ValidRow,
        stored: Option<&AccountDigest>,
        keys: &Keys,
        kind: AccountKind,
    ) -> Known {
        let Some(stored) = stored else {
            return Known::New;
        };
        fn text(t: Option<&str>) -> Option<&[u8]> {
            t.map(str::as_bytes)
        }
        let fields = self.hashes.fields_digest(
            line.address().as_bytes(),
            text(row.display_name()),
            row.username().as_bytes(),
            text(row.domain()),
            text(row.outgoing_username()),
        );
        if fields != stored.fields {
            return Known::Unsure;
        }
        let mut changed = Vec::new();
        for (i, column, stored) in [
            (0, PasswordColumn::Primary, stored.password),
            (1, PasswordColumn::Outgoing, stored.outgoing_password),
        ] {
            if row.password(column).is_none() {
                continue;
            }
            if stored == LEGACY {
                return Known::Unsure;
            }
            if stored != mac_digest(row.mac(keys, kind, column).map(|m| &m[..])) {
                changed.push(i);
            }
        }
        Known::Stored {
            id: stored.id,
            passwords: changed,
        }
    }
}

impl Hashes {
    fn user_key(&self, email_norm: &[u8]) -> Key {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        h.write_u8(b'u');
        h.write(email_norm);
        key(h.finish128().as_u128())
    }

    fn account_key(&self, user_id: i64, address_norm: &[u8]) -> Key {
        let mut h = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        h.write_u8(b'a');
        h.write_i64(user_id);
        h.write(address_norm);
        key(h.finish128().as_u128())
    }

    fn fields_digest(
        &self,
        address: &[u8],
        display_name: Option<&[u8]>,
        username: &[u8],
        domain: Option<&[u8]>,
        outgoing_username: Option<&[u8]>,
    ) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.keys.1, self.keys.0);
        for field in [
            Some(address),
            display_name,
            Some(username),
            domain,
            outgoing_username,
        ] {
            // The length first keeps ("ab", "c") apart from ("a", "bc"), and a missing field
            // apart from an empty one.
            match field {
                None => h.write_u8(0),
                Some(text) => {
                    h.write_u8(1);
                    h.write_usize(text.len());
                    h.write(text);
                }
            }
        }
        h.finish()
    }
}

/// A password's digest: 64 bits of its MAC, which is already a keyed hash, so that
/// equal digests are equal MACs but by a chance of one in 2^64.
fn mac_digest(mac: Option<&[u8]>) -> u64 {
    match mac {
        None => NONE,
        Some(mac) => match mac.get(1..9).and_then(|bits| bits.try_into().ok()) {
            Some(bits) if mac.len() == MAC_LEN => u64::from_le_bytes(bits).max(LEGACY + 1),
            // The older MAC, or one of no length this version writes.
            _ => LEGACY,
        },
    }
}

/// Bytes an index of `users` users and `accounts` accounts holds.
pub fn index_bytes(users: i64, accounts: i64) -> u64 {
    let size = |n: i64, entry: usize| u64::try_from(n).unwrap_or(0) * entry as u64;
    size(users, std::mem::size_of::<(Key, i64)>())
        + size(accounts, std::mem::size_of::<(Key, AccountDigest)>())
}

/// Key-value pairs sorted by key, with a directory of where each run of keys sharing their
/// top bits starts: the keys are uniform hashes, so a run holds a handful of entries, and a
/// look-up reads the directory and one or two cache lines of entries. Half the memory of a
/// hash table of the same pairs.
struct Sorted<V> {
    entries: Vec<(Key, V)>,
    /// `starts[b]` is the index of the first entry whose top `bits` bits are at least `b`.
    starts: Vec<u32>,
    bits: u32,
}

/// A 128-bit key as two words, top first: sorted as the number, but aligned to 8 bytes
/// rather than 16, which saves a third of a user entry.
type Key = [u64; 2];

/// The words of a 128-bit hash.
fn key(hash: u128) -> Key {
    [(hash >> 64) as u64, hash as u64]
}

/// Moves the items for which `first` holds before the others; returns how many there are.
fn partition<T>(items: &mut [T], first: impl Fn(&T) -> bool) -> usize {
    let mut firsts = 0;
    for i in 0..items.len() {
        if first(&items[i]) {
            items.swap(firsts, i);
            firsts += 1;
        }
    }
    firsts
}

/// Keys looked up together: enough for the processor to wait for many misses at once, few
/// enough that their pages are still in its translation cache when their runs are searched.
const GROUP: usize = 128;

/// Entries per directory slot, on average.
const PER_SLOT: usize = 4;

impl<V> Sorted<V> {
    /// `entries` in any order, to be sorted by [`Sorted::finish`].
    fn new(entries: Vec<(Key, V)>) -> Sorted<V> {
        Sorted {
            entries,
            starts: vec![0, 0],
            bits: 0,
        }
    }

    fn finish(&mut self)
    where
        V: Send,
    {
        // Only the runs of keys sharing their top bits must be in order, for a look-up
        // searches its run through; ordering by the top word alone is cheaper.
        fn by_top_word<V>(entries: &mut [(Key, V)]) {
            entries.sort_unstable_by_key(|(key, _)| key[0]);
        }
        // The import waits on this sort alone, once the scan is over: so the keys, uniform
        // hashes, are split on their top bit, and the halves sorted side by side.
        let half = partition(&mut self.entries, |(key, _)| key[0] >> 63 == 0);
        let (low, high) = self.entries.split_at_mut(half);
        let sorted_both = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("import-index".to_owned())
                .spawn_scoped(scope, move || by_top_word(low));
            by_top_word(high);
            other.is_ok_and(|thread| thread.join().is_ok())
        });
        if !sorted_both {
            by_top_word(&mut self.entries);
        }
        self.entries.shrink_to_fit();
        let slots = (self.entries.len() / PER_SLOT).max(1);
        self.bits = usize::BITS - 1 - slots.leading_zeros();
        let mut starts = Vec::with_capacity((1 << self.bits) + 1);
        let mut next = 0;
        for slot in 0..(1u64 << self.bits) {
            while next < self.entries.len() && self.slot(self.entries[next].0) < slot {
                next += 1;
            }
            starts.push(u32::try_from(next).unwrap_or(u32::MAX));
        }
        starts.push(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
        self.starts = starts;
    }

    fn slot(&self, key: Key) -> u64 {
        if self.bits == 0 {
            0
        } else {
            key[0] >> (64 - self.bits)
        }
    }

    #[cfg(test)]
    fn get(&self, key: Key) -> Option<&V> {
        self.find(self.run(key), key)
    }

    /// The value of each of `keys`. Each look-up is a cache miss or two in a table far
    /// larger than the caches; made one after another, each waits for its own. So the
    /// first and last entries of every key's run, for a [`GROUP`] of keys at a time, are read
    /// before any of their runs is searched: those reads do not depend on each other, and the
    /// processor waits for their misses together.
    fn get_all(&self, keys: &[Key]) -> Vec<Option<&V>> {
        let mut found = Vec::with_capacity(keys.len());
        for keys in keys.chunks(GROUP) {
            let runs: Vec<Range<usize>> = keys.iter().map(|key| self.run(*key)).collect();
            let words = runs
                .iter()
                .flat_map(|run| [run.start, run.end.saturating_sub(1)])
                .filter_map(|at| self.entries.get(at))
                .fold(0u64, |acc, (key, _)| acc ^ key[0]);
            std::hint::black_box(words);
            found.extend(keys.iter().zip(runs).map(|(key, run)| self.find(run, *key)));
        }
        found
    }

    /// The value of `key`, searched for in the entries `run`.
    fn find(&self, run: Range<usize>, key: Key) -> Option<&V> {
        let run = self.entries.get(run)?;
        run.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Where the entries whose keys share `key`'s top bits are.
    fn run(&self, key: Key) -> Range<usize> {
        let slot = usize::try_from(self.slot(key)).unwrap_or(usize::MAX);
        match (self.starts.get(slot), self.starts.get(slot.wrapping_add(1))) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_found_and_no_other() {
        let mut entries = Vec::new();
        let mut state = 7u64;
        let mut keys = Vec::new();
        for i in 0..10_000i64 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            let key = [state, state.rotate_left(17)];
            keys.push(key);
            entries.push((key, i));
        }
        // Clustered keys as well as uniform ones.
        for i in 0..100i64 {
            let key = [0, 1000 + i as u64];
            keys.push(key);
            entries.push((key, 20_000 + i));
        }
        let mut sorted = Sorted::new(entries);
        sorted.finish();
        for (i, key) in keys.iter().enumerate() {
            let expected = if i < 10_000 {
                i as i64
            } else {
                20_000 + (i as i64 - 10_000)
            };
            assert_eq!(sorted.get(*key), Some(&expected));
            assert_eq!(sorted.get([key[0] ^ (1 << 6), key[1]]), None);
        }
        let mut empty = Sorted::<i64>::new(Vec::new());
        empty.finish();
        assert_eq!(empty.get([0, 5]), None);
    }

    #[test]
    fn keys_looked_up_together_get_what_each_gets_alone() {
        let mut sorted = Sorted::new(
            (0..5_000u64)
                .map(|i| ([i.wrapping_mul(0x9e37_79b9_7f4a_7c15), i], i))
                .collect(),
        );
        sorted.finish();
        // Present and absent keys, repeated, in no particular order.
        let keys: Vec<Key> = (0..12_000u64)
            .map(|i| {
                let n = i * 7 % 6_000;
                [n.wrapping_mul(0x9e37_79b9_7f4a_7c15), n]
            })
            .collect();
        let alone: Vec<Option<&u64>> = keys.iter().map(|key| sorted.get(*key)).collect();
        assert_eq!(sorted.get_all(&keys), alone);
        assert_eq!(alone.iter().filter(|v| v.is_some()).count(), 10_000);
    }

    /// Users `user{n}@example.com` with id `n`, and each an account `Mail{n}@example.com`
    /// with id `1000 + n`.
    fn scan_rows(sink: &mut dyn ScanSink, ids: Range<i64>) {
        for id in ids.clone() {
            sink.user(id, format!("user{id}@example.com").as_bytes());
        }
        for id in ids {
            let address = format!("Mail{id}@example.com");
            sink.account(&ScannedAccount {
                user_id: id,
                address: address.as_bytes(),
                address_norm: address.to_lowercase().as_bytes(),
                display_name: (id % 2 == 0).then_some("Zoë, Ødegård".as_bytes()),
                username: b"user",
                domain: None,
                outgoing_username: None,
                password_mac: Some(&[id as u8; MAC_LEN]),
                outgoing_password_mac: None,
                id: 1000 + id,
            });
        }
    }

    #[test]
    fn rows_gathered_by_clones_side_by_side_are_all_in_the_index() {
        let gather = Gather::new(0, 0);
        let parts: Vec<_> = [0..3_000, 3_000..7_000, 7_000..7_001]
            .into_iter()
            .map(|ids| {
                let mut clone = gather.clone();
                std::thread::spawn(move || scan_rows(&mut clone, ids))
            })
            .collect();
        for part in parts {
            part.join().expect("scanning thread");
        }
        let index = gather.finish();
        let emails: Vec<String> = (0..7_002).map(|n| format!("user{n}@example.com")).collect();
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let users = index.users(&emails);
        let expected: Vec<Option<i64>> = (0..7_002).map(|n| (n < 7_001).then_some(n)).collect();
        assert_eq!(users, expected);
        for id in [0, 2_999, 3_000, 6_999, 7_000] {
            let key = index
                .hashes
                .account_key(id, format!("mail{id}@example.com").as_bytes());
            let found = index.accounts.get(key).map(|a| a.id);
            assert_eq!(found, Some(1000 + id));
        }
        assert_eq!(index.bytes(), index_bytes(7_001, 7_001));
    }

    #[test]
    fn a_password_stored_under_the_older_mac_cannot_be_compared_by_digest() {
        let digest = mac_digest;
        assert_eq!(digest(None), NONE);
        assert_eq!(digest(Some(&[0; 16])), LEGACY);
        assert_eq!(digest(Some(&[2; 5])), LEGACY);
        assert!(digest(Some(&[2; MAC_LEN])) > LEGACY);
        assert!(digest(Some(&[0; MAC_LEN])) > LEGACY);
        assert_ne!(digest(Some(&[2; MAC_LEN])), digest(Some(&[3; MAC_LEN])));
    }
}
