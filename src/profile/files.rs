//! File names for profiles: a user's email or a device id made into one path component that
//! cannot leave the folder it is joined to, used by `profile --all` and the folder transport.
//!
//! [`safe_name`] keeps every character except these, which it percent-escapes as the
//! upper-case hex of their UTF-8 bytes (`/` is `%2F`, `%` itself is `%25`):
//!
//! - `/` and `\`, which separate folders (on Unix and on Windows);
//! - NUL and every other control character (C0, DEL and C1), which no file system or
//!   terminal handles well;
//! - `:` `*` `?` `"` `<` `>` `|`, which Windows and SMB shares refuse;
//! - `%`, so that an escape in the result always stands for an escaped character;
//! - a leading `.`, so that `.`, `..` and hidden names cannot come out (and no result can
//!   be taken for the hidden `.NAME.partial` file a profile is written to first);
//! - a trailing `.` or space, which Windows drops from names;
//! - the first character of a name whose part before its first `.` is one of the device
//!   names Windows reserves (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, in
//!   any case): a folder transport writing `NUL` or `con.smith@…` on a Windows share would
//!   be writing to a device, not a file.
//!
//! Letters in any script are kept, as is the case: an admin reads these names, and callers
//! pass the form they want (user emails are lower-cased first). Decoding the escapes gives
//! back the name, so different names give different results. Only two results are not
//! escapes of their name:
//!
//! - the empty name becomes `%`, which no other name gives (every other `%` in a result is
//!   followed by two hex digits);
//! - a result longer than [`MAX_LEN`] bytes is cut at the last whole character or escape
//!   within [`MAX_LEN`] bytes and ends in `~` and the first 16 hex digits of the SHA-256 of
//!   the name. Such a result is always longer than [`MAX_LEN`] bytes, and every other result
//!   is not, so it cannot equal the result of a short name; two long names give the same
//!   result only if they share the first [`MAX_LEN`] bytes of their result and 64 bits of
//!   their hash. At most [`MAX_LEN`] + 17 bytes, a result leaves room for an extension and
//!   the `.partial` of the file written first within the 255 bytes file systems allow.

use std::fmt::Write;

use sha2::{Digest, Sha256};

/// The longest result [`safe_name`] gives without shortening it.
pub const MAX_LEN: usize = 200;

/// `name` as a single file or folder name, by the mapping the [module](self) describes.
pub fn safe_name(name: &str) -> String {
    if name.is_empty() {
        return "%".to_owned();
    }
    let mut safe = String::with_capacity(name.len());
    // The length of `safe` at the last whole character or escape within MAX_LEN, where a
    // long result is cut: cutting inside an escape would leave a `%` without its digits.
    let mut cut = 0;
    let mut chars = name.chars().peekable();
    let mut first = true;
    let reserved = reserved_on_windows(name);
    while let Some(c) = chars.next() {
        let last = chars.peek().is_none();
        if must_escape(c, first, last) || (first && reserved) {
            let mut utf8 = [0; 4];
            for byte in c.encode_utf8(&mut utf8).bytes() {
                let _ = write!(safe, "%{byte:02X}");
            }
        } else {
            safe.push(c);
        }
        if safe.len() <= MAX_LEN {
            cut = safe.len();
        }
        first = false;
    }
    if safe.len() > MAX_LEN {
        safe.truncate(cut);
        safe.push('~');
        safe.push_str(&crate::crypto::to_hex(
            &Sha256::digest(name.as_bytes())[..8],
        ));
    }
    safe
}

fn must_escape(c: char, first: bool, last: bool) -> bool {
    matches!(
        c,
        '%' | '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|'
    ) || c.is_control()
        || (first && c == '.')
        || (last && matches!(c, '.' | ' '))
}

/// Whether Windows takes `name` for a device: its part before the first `.`, without
/// trailing spaces, is a reserved device name (superscript digits count for `COM` and
/// `LPT`).
fn reserved_on_windows(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let Some(prefix) = stem.get(..3) else {
        return false;
    };
    let rest = &stem[3..];
    match prefix.to_ascii_uppercase().as_str() {
        "CON" | "PRN" | "AUX" | "NUL" => rest.is_empty(),
        "COM" | "LPT" => {
            let mut digits = rest.chars();
            matches!(
                (digits.next(), digits.next()),
                (Some('0'..='9' | '¹' | '²' | '³'), None)
            )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Undoes the escapes, for checking that a result stands for its name.
    fn unescape(safe: &str) -> String {
        let mut bytes = Vec::new();
        let mut rest = safe.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                bytes.push(b);
                rest = tail;
            }
        }
        String::from_utf8(bytes).unwrap()
    }

    /// What every result must be: one component that names a file in the folder it is
    /// joined to, no longer than file systems allow with an extension added.
    fn assert_one_component(name: &str) {
        let safe = safe_name(name);
        assert!(!safe.is_empty(), "{name:?}");
        assert!(!safe.starts_with('.'), "{name:?} gave {safe:?}");
        assert!(
            !safe.contains(['/', '\\', '\0']) && !safe.chars().any(char::is_control),
            "{name:?} gave {safe:?}"
        );
        assert!(
            safe.len() <= MAX_LEN + 17,
            "{name:?} gave {} bytes",
            safe.len()
        );
        let joined = std::path::Path::new("/folder").join(&safe);
        assert_eq!(
            joined.parent(),
            Some(std::path::Path::new("/folder")),
            "{safe:?}"
        );
        assert_eq!(joined.file_name().unwrap(), safe.as_str());
    }

    #[test]
    fn a_plain_address_is_unchanged() {
        assert_eq!(safe_name("alice@example.com"), "alice@example.com");
        assert_eq!(
            safe_name("a.b+c_d-e@mail.example.com"),
            "a.b+c_d-e@mail.example.com"
        );
    }

    #[test]
    fn letters_of_any_script_are_kept() {
        assert_eq!(safe_name("élodie@exemple.fr"), "élodie@exemple.fr");
        assert_eq!(safe_name("用户@例子.中国"), "用户@例子.中国");
    }

    #[test]
    fn an_absolute_path_becomes_a_name_in_the_folder() {
        assert_eq!(safe_name("/abs/dir/x@y.zz"), "%2Fabs%2Fdir%2Fx@y.zz");
        assert_one_component("/abs/dir/x@y.zz");
    }

    #[test]
    fn parent_and_current_folder_steps_are_escaped() {
        assert_eq!(safe_name("../x@y.zz"), "%2E.%2Fx@y.zz");
        assert_eq!(safe_name("a/./b@y.zz"), "a%2F.%2Fb@y.zz");
        assert_eq!(safe_name(".."), "%2E%2E");
        assert_eq!(safe_name("."), "%2E");
        assert_eq!(safe_name("..\\x"), "%2E.%5Cx");
        for name in ["../x@y.zz", "a/./b@y.zz", "..", ".", "..\\x", "/", "//"] {
            assert_one_component(name);
        }
    }

    #[test]
    fn a_hidden_name_is_not_hidden() {
        assert_eq!(safe_name(".hidden"), "%2Ehidden");
        assert_eq!(safe_name("not.hidden"), "not.hidden");
    }

    #[test]
    fn nul_and_control_characters_are_escaped() {
        assert_eq!(safe_name("a\0b"), "a%00b");
        assert_eq!(safe_name("a\nb\tc\rd\u{1b}e\u{7f}"), "a%0Ab%09c%0Dd%1Be%7F");
        assert_eq!(
            safe_name("a\u{85}b"),
            "a%C2%85b",
            "C1 controls, byte by byte"
        );
        assert_one_component("\0\n\u{85}");
    }

    #[test]
    fn characters_windows_refuses_are_escaped() {
        assert_eq!(
            safe_name("a:b*c?d\"e<f>g|h"),
            "a%3Ab%2Ac%3Fd%22e%3Cf%3Eg%7Ch"
        );
        assert_eq!(safe_name("dev."), "dev%2E");
        assert_eq!(safe_name("dev "), "dev%20");
        assert_eq!(safe_name("a b"), "a b", "only a trailing space");
    }

    #[test]
    fn names_windows_takes_for_devices_are_escaped() {
        assert_eq!(safe_name("NUL"), "%4EUL");
        assert_eq!(safe_name("con"), "%63on");
        assert_eq!(safe_name("COM1"), "%43OM1");
        assert_eq!(safe_name("lpt²"), "%6Cpt²");
        assert_eq!(
            safe_name("con.smith@acme.example"),
            "%63on.smith@acme.example"
        );
        assert_eq!(safe_name("aux .txt"), "%61ux .txt");
        for kept in [
            "console",
            "com10",
            "nul1",
            "co",
            "connor@acme.example",
            "x.con",
        ] {
            assert_eq!(safe_name(kept), kept);
        }
        for name in ["NUL", "con.smith@acme.example", "COM1"] {
            assert_eq!(unescape(&safe_name(name)), name);
            assert_one_component(name);
        }
    }

    #[test]
    fn the_empty_name_gives_a_name() {
        assert_eq!(safe_name(""), "%");
        assert_one_component("");
    }

    #[test]
    fn different_names_give_different_results() {
        let names = [
            "a_b", "a/b", "a%2Fb", "a+b", "a%b", "a\\b", "a:b", "", "%", "%25", ".", "%2E", "..",
            "a.", "a%2E", "a", "A", "\0", "%00",
        ];
        let results: std::collections::HashSet<String> =
            names.iter().map(|n| safe_name(n)).collect();
        assert_eq!(results.len(), names.len(), "{results:?}");
    }

    #[test]
    fn a_result_decodes_to_its_name() {
        for name in [
            "/abs/dir/x@y.zz",
            "../x@y.zz",
            ".hidden",
            "a%2Fb",
            "a\u{85}:b.",
            "é/ü",
        ] {
            assert_eq!(unescape(&safe_name(name)), name);
        }
    }

    #[test]
    fn the_mapping_is_stable() {
        // Files already written are found again only if the mapping never changes.
        assert_eq!(
            safe_name(&"x".repeat(300)),
            format!("{}~{}", "x".repeat(200), "0d4e2ca9e9cbced7")
        );
    }

    #[test]
    fn a_long_name_is_shortened_and_stays_distinct() {
        let long = format!("{}@example.com", "x".repeat(288));
        assert_eq!(long.len(), 300);
        let safe = safe_name(&long);
        assert_one_component(&long);
        assert_eq!(safe.len(), MAX_LEN + 17);
        assert!(safe.starts_with(&"x".repeat(200)), "{safe}");
        let (_, hash) = safe.rsplit_once('~').unwrap();
        assert_eq!(hash.len(), 16);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
        let other = format!("{}@example.org", "x".repeat(288));
        assert_ne!(
            safe_name(&other),
            safe,
            "the same first 200 bytes, another name"
        );

        let exactly = "y".repeat(MAX_LEN);
        assert_eq!(
            safe_name(&exactly),
            exactly,
            "up to the limit nothing changes"
        );
    }

    #[test]
    fn a_long_name_is_cut_between_characters_and_escapes() {
        // 'é' is two bytes: 150 of them end on byte 300, and 100 end on byte 200 exactly.
        let accented = "é".repeat(150);
        let safe = safe_name(&accented);
        assert!(safe.starts_with(&"é".repeat(100)), "{safe}");
        assert_one_component(&accented);

        // Escapes are three bytes: 66 end on byte 198, the 67th would end on byte 201.
        let slashes = "/".repeat(100);
        let safe = safe_name(&slashes);
        let (kept, _) = safe.rsplit_once('~').unwrap();
        assert_eq!(kept, "%2F".repeat(66), "no escape cut in half");
        assert_one_component(&slashes);
    }
}
