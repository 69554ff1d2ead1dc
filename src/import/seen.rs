//! Which keys a file has already used, for duplicate detection without keeping its rows.

use std::collections::HashMap;
use std::hash::Hasher;

use siphasher::sip128::{Hasher128, SipHasher13};

/// Remembers the first line of every key seen in one file.
///
/// Keys are kept as 128-bit SipHash digests (16 bytes each, whatever their length), so a
/// million-line file costs tens of megabytes here rather than its whole text; at 128 bits an
/// accidental collision is not a practical concern.
#[derive(Default)]
pub struct FirstSeen {
    lines: HashMap<u128, u64>,
}

impl FirstSeen {
    /// Records `key` at `line`; returns the earlier line if the key was seen before.
    pub fn check(&mut self, key: &[&str], line: u64) -> Option<u64> {
        let mut hasher = SipHasher13::new();
        for part in key {
            hasher.write(part.as_bytes());
            // A separator that cannot occur in text keeps ("ab","c") apart from ("a","bc").
            hasher.write_u8(0xff);
        }
        let digest = hasher.finish128().as_u128();
        match self.lines.entry(digest) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
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
}
