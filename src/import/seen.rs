//! Which keys a file has already used, for duplicate detection without keeping its rows.

use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Remembers the first line of every key seen in one file.
///
/// A key is kept as 96 bits of a SipHash keyed at random for this file, beside a 32-bit
/// line number: 16 bytes a key whatever its length, so a million-line file costs about 32 MiB
/// here rather than its text. At 96 bits an accidental collision among a billion keys has a
/// probability below 10^-11, and with a secret key nobody can make one on purpose. The keys
/// are spread over [`SHARDS`] tables by more bits of the hash, so that growing one table
/// holds its old and new slots for a 256th of the keys, not for all of them at once.
pub struct FirstSeen {
    keys: (u64, u64),
    shards: Vec<Table>,
}

/// Tables the keys are spread over.
const SHARDS: usize = 256;

/// A key's digest: the table it belongs to and the 96 bits kept.
#[derive(Clone, Copy)]
struct Digest {
    shard: usize,
    key: [u32; 3],
}

impl Default for FirstSeen {
    fn default() -> Self {
        use rand::RngExt;
        let mut rng = rand::rng();
        FirstSeen {
            keys: (rng.random(), rng.random()),
            shards: (0..SHARDS).map(|_| Table::default()).collect(),
        }
    }
}

impl FirstSeen {
    /// Records `key` at `line`; returns the earlier line if the key was seen before.
    pub fn check(&mut self, key: &[&str], line: u64) -> Option<u64> {
        let digest = self.digest(key);
        self.shards[digest.shard].insert(digest, line)
    }

    /// [`FirstSeen::check`] of each key at its line, in order. Each check is a cache miss in
    /// tables far larger than the caches; made one after another, each waits for its own. So
    /// the slot where each key's probe starts is read first, for all of them: those reads do
    /// not depend on each other, and the processor waits for their misses together.
    pub fn check_all<'k>(
        &mut self,
        keys: impl Iterator<Item = ([&'k str; 2], u64)>,
    ) -> Vec<Option<u64>> {
        let digests: Vec<(Digest, u64)> =
            keys.map(|(key, line)| (self.digest(&key), line)).collect();
        let first_words = digests
            .iter()
            .fold(0u32, |acc, (d, _)| acc ^ self.shards[d.shard].peek(d.key));
        std::hint::black_box(first_words);
        digests
            .into_iter()
            .map(|(digest, line)| self.shards[digest.shard].insert(digest, line))
            .collect()
    }

    fn digest(&self, key: &[&str]) -> Digest {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        for part in key {
            hasher.write(part.as_bytes());
            // A separator that cannot occur in text keeps ("ab","c") apart from ("a","bc").
            hasher.write_u8(0xff);
        }
        let digest = hasher.finish128().as_u128();
        // Truncation intended: 96 of the 128 bits are kept, and others pick the table.
        Digest {
            shard: (digest >> 96) as usize % SHARDS,
            key: [digest as u32, (digest >> 32) as u32, (digest >> 64) as u32],
        }
    }
}

/// An open-addressed table of keys and lines, probed linearly from the slot the key's first
/// word names; a slot with line 0 is free (lines are counted from 1).
#[derive(Default)]
struct Table {
    slots: Vec<Slot>,
    len: usize,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    key: [u32; 3],
    line: u32,
}

/// Slots a table starts with.
const FIRST_SLOTS: usize = 16;

impl Table {
    /// Reads the slot where a probe for `key` starts, to bring it into the cache.
    fn peek(&self, key: [u32; 3]) -> u32 {
        match self.slots.len() {
            0 => 0,
            n => self.slots[home(key) & (n - 1)].line,
        }
    }

    /// Records the digest's key at `line`, or returns the line it was first recorded at.
    fn insert(&mut self, digest: Digest, line: u64) -> Option<u64> {
        // At most three quarters full, so that probes stay short.
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let at = self.probe(digest.key);
        let slot = &mut self.slots[at];
        if slot.line != 0 {
            return Some(u64::from(slot.line));
        }
        *slot = Slot {
            key: digest.key,
            line: u32::try_from(line).unwrap_or(u32::MAX).max(1),
        };
        self.len += 1;
        None
    }

    /// The slot holding `key`, else the free slot where it belongs.
    fn probe(&self, key: [u32; 3]) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = home(key) & mask;
        while self.slots[at].line != 0 && self.slots[at].key != key {
            at = (at + 1) & mask;
        }
        at
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        for slot in old.into_iter().filter(|s| s.line != 0) {
            let at = self.probe(slot.key);
            self.slots[at] = slot;
        }
    }
}

/// Where a probe for `key` starts, before it is masked to a table's size.
fn home(key: [u32; 3]) -> usize {
    key[0] as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_occurrence_names_the_first_line() {
        let mut seen = FirstSeen::default();
        assert_eq!(seen.check(&["a", "bc"], 2), None);
        assert_eq!(seen.check(&["ab", "c"], 3), None);
        assert_eq!(seen.check(&["a", "bc"], 7), Some(2));
    }

    #[test]
    fn many_distinct_keys_are_all_new() {
        let mut seen = FirstSeen::default();
        for i in 1..100_000u64 {
            assert_eq!(seen.check(&[&i.to_string(), "x"], i), None);
        }
        assert_eq!(seen.check(&["99999", "x"], 1), Some(99_999));
    }

    #[test]
    fn keys_checked_together_are_checked_in_order() {
        let mut seen = FirstSeen::default();
        let texts: Vec<String> = (0..50_000u64).map(|i| (i % 30_000).to_string()).collect();
        let found = seen.check_all(
            texts
                .iter()
                .zip(1..)
                .map(|(t, line)| ([t.as_str(), "y"], line)),
        );
        for (i, first) in found.iter().enumerate() {
            let expected = (i >= 30_000).then(|| i as u64 - 30_000 + 1);
            assert_eq!(*first, expected, "key {i}");
        }
        assert_eq!(seen.check(&["0", "y"], 60_000), Some(1));
        assert_eq!(seen.check(&["0", "z"], 60_001), None);
    }
}
