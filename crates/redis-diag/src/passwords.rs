//! Weak passwords: a short list of the passwords tried first by every scanner, and how a
//! password the server holds is judged against it. The server gives plaintext only for
//! `requirepass` (`CONFIG GET`); ACL users' passwords come as SHA-256 hex hashes (`ACL LIST`
//! prints them as `#<hash>`), so the list's hashes are computed once and compared with those.
//! The integration tests check the match against hashes Redis made. Nothing here returns or
//! prints the password it judges.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// A `requirepass` shorter than this is a warning: Redis answers many thousands of `AUTH`
/// attempts a second, so short passwords fall to brute force.
pub(crate) const MIN_LENGTH: usize = 12;

/// Well-known passwords: `foobared` (the example in redis.conf), the commonest passwords of
/// leaked lists, and Redis-themed defaults.
pub(crate) const WELL_KNOWN: &[&str] = &[
    "foobared",
    "password",
    "password1",
    "password123",
    "Password1",
    "P@ssw0rd",
    "passw0rd",
    "pass",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "12345",
    "1234",
    "111111",
    "000000",
    "123123",
    "654321",
    "qwerty",
    "qwerty123",
    "1q2w3e4r",
    "abc123",
    "admin",
    "admin123",
    "administrator",
    "root",
    "toor",
    "redis",
    "redis123",
    "redispass",
    "redispassword",
    "changeme",
    "change_me",
    "secret",
    "default",
    "letmein",
    "welcome",
    "test",
    "test123",
    "guest",
    "master",
    "iloveyou",
    "monkey",
    "dragon",
    "trustno1",
    "sunshine",
    "football",
];

/// Whether `password` (plaintext, compared exactly) is a well-known one.
pub(crate) fn is_well_known(password: &str) -> bool {
    WELL_KNOWN.contains(&password)
}

/// SHA-256 as lowercase hex, the form `ACL LIST` prints.
fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the SHA-256 hex `hash` (as `ACL LIST` / `ACL GETUSER` print it, any case) is the
/// hash of a well-known password.
pub(crate) fn is_well_known_hash(hash: &str) -> bool {
    static HASHES: OnceLock<Vec<String>> = OnceLock::new();
    HASHES
        .get_or_init(|| {
            WELL_KNOWN
                .iter()
                .map(|p| sha256_hex(p.as_bytes()))
                .collect()
        })
        .iter()
        .any(|h| h.eq_ignore_ascii_case(hash))
}

/// What is wrong with a password, if anything (worst reason only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Weakness {
    /// Shorter than [`MIN_LENGTH`] characters (the count is not secret).
    Short(usize),
    /// One of [`WELL_KNOWN`].
    WellKnown,
}

/// Judges a plaintext password.
pub(crate) fn judge(password: &str) -> Option<Weakness> {
    let len = password.chars().count();
    if is_well_known(password) {
        Some(Weakness::WellKnown)
    } else if len < MIN_LENGTH {
        Some(Weakness::Short(len))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_the_ones_redis_prints() {
        // `ACL SETUSER u >foobared` then `ACL LIST` shows this hash.
        assert_eq!(
            sha256_hex(b"foobared"),
            "1b58ee375b42e41f0e48ef2ff27d10a5b1f6924a9acdcdba7cae868e7adce6bf"
        );
        assert!(
            WELL_KNOWN
                .iter()
                .all(|p| is_well_known_hash(&sha256_hex(p.as_bytes())))
        );
    }

    #[test]
    fn the_list_is_well_formed() {
        for (i, p) in WELL_KNOWN.iter().enumerate() {
            assert!(!WELL_KNOWN[..i].contains(p), "entry {i} is listed twice");
        }
        assert!(WELL_KNOWN.len() >= 30);
    }

    #[test]
    fn passwords_are_judged_without_being_repeated() {
        assert_eq!(judge("foobared"), Some(Weakness::WellKnown));
        assert_eq!(judge("short-pw"), Some(Weakness::Short(8)));
        assert_eq!(judge("correct horse battery staple"), None);
        assert!(is_well_known_hash(
            "1B58EE375B42E41F0E48EF2FF27D10A5B1F6924A9ACDCDBA7CAE868E7ADCE6BF"
        ));
        assert!(!is_well_known_hash("00"));
    }
}
