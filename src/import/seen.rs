//! Which keys a file has already used, for duplicate detection without keeping its rows.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use siphasher::sip128::{Hasher128, SipHasher13};

/// Remembers the first line of every key seen in one file.
///
/// A key is kept as 96 bits of a SipHash keyed at random for this file, beside a 32-bit
/// line number: 16 bytes a key whatever its length, so a million-line file costs about 32 MiB
/// here rather than its text. At 96 bits an accidental collision among a billion keys has a
/// probability below 10^-11, and with a secret key nobody can make one on purpose. The keys
/// are spread over [`SHARDS`] tables by more bits of the hash, so that growing one table
/// holds its old and new buckets for a 256th of the keys, not for all of them at once.
pub struct FirstSeen {
    keys: (u64, u64),
    shards: Vec<HashMap<[u32; 3], u32, Digested>>,
}

/// Tables the keys are spread over.
const SHARDS: usize = 256;

impl Default for FirstSeen {
    fn default() -> Self {
        use rand::RngExt;
        let mut rng = rand::rng();
        FirstSeen {
            keys: (rng.random(), rng.random()),
            shards: (0..SHARDS)
                .map(|_| HashMap::with_hasher(Digested))
                .collect(),
        }
    }
}

impl FirstSeen {
    /// Records `key` at `line`; returns the earlier line if the key was seen before.
    pub fn check(&mut self, key: &[&str], line: u64) -> Option<u64> {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        for part in key {
            hasher.write(part.as_bytes());
            // A separator that cannot occur in text keeps ("ab","c") apart from ("a","bc").
            hasher.write_u8(0xff);
        }
        let digest = hasher.finish128().as_u128();
        // Truncation intended: 96 of the 128 bits are kept.
        let packed = [digest as u32, (digest >> 32) as u32, (digest >> 64) as u32];
        let line = u32::try_from(line).unwrap_or(u32::MAX);
        let shard = (digest >> 96) as usize % SHARDS;
        match self.shards[shard].entry(packed) {
            std::collections::hash_map::Entry::Occupied(first) => Some(u64::from(*first.get())),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

/// Hashes a digest by taking its first 64 bits: it is already a keyed hash.
#[derive(Clone, Copy, Default)]
struct Digested;

impl BuildHasher for Digested {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 << 32) | u64::from(n);
    }
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
        for i in 0..100_000u64 {
            assert_eq!(seen.check(&[&i.to_string(), "x"], i), None);
        }
        assert_eq!(seen.check(&["99999", "x"], 1), Some(99_999));
    }
}
