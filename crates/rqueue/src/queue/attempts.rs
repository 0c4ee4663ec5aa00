//! A message's error history: [`AttemptError`], how the nack and reclaim scripts store it
//! (`lua/errors.lua`: newest first in the message's field of the reasons hash, at most 10
//! attempts and 8 KiB) and how the readers ([`Queue::job`](crate::Queue::job),
//! [`Queue::dead_letters`](crate::Queue::dead_letters)) parse it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Separates entries (and starts a history): ASCII record separator.
const ENTRY: char = '\u{1e}';
/// Separates an entry's time, attempt and text: ASCII unit separator.
const PART: char = '\u{1f}';
/// Longest error text stored per attempt (bytes; longer ones are cut at a character
/// boundary), so one 8 KiB history holds at least three long errors.
const MAX_ERROR: usize = 2048;

/// The error of one failed attempt of a message.
///
/// ```no_run
/// # async fn demo(q: rqueue::Queue<String>, id: &str) -> Result<(), rqueue::Error> {
/// for e in q.job(id).await?.errors {
///     println!("attempt {} at {:?}: {}", e.attempt, e.at, e.error);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct AttemptError {
    /// When the attempt failed (server clock); `None` for an error stored by a version of
    /// rqueue that kept only the last error.
    pub at: Option<SystemTime>,
    /// Which delivery of the message it was (1 for the first; failures and stalls count);
    /// 0 when unknown (an error stored by an older version).
    pub attempt: u32,
    /// The error (the handler's error, `stalled` for an expired lease, `decode: …`, or the
    /// reason given to [`Delivery::dead`](crate::Delivery::dead)).
    pub error: String,
}

/// An error text as the scripts store it: without the history's separators (replaced by
/// spaces) and at most 2 KiB.
pub(super) fn sanitize(text: &str) -> String {
    let mut cut = text.len().min(MAX_ERROR);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].replace([ENTRY, PART], " ")
}

/// The entries of a stored history, newest first (empty for an empty value). A value that is
/// not a history (written before it existed) is one entry without time or attempt.
pub(super) fn parse(raw: &str) -> Vec<AttemptError> {
    if raw.is_empty() {
        return Vec::new();
    }
    let Some(history) = raw.strip_prefix(ENTRY) else {
        return vec![AttemptError {
            at: None,
            attempt: 0,
            error: raw.to_string(),
        }];
    };
    history
        .split(ENTRY)
        .map(|entry| {
            let mut parts = entry.splitn(3, PART);
            let at = parts
                .next()
                .and_then(|ms| ms.parse::<u64>().ok())
                .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
            let attempt = parts.next().and_then(|a| a.parse().ok()).unwrap_or(0);
            AttemptError {
                at,
                attempt,
                error: parts.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_reads_newest_first_and_an_old_single_error_still_reads() {
        let raw = "\u{1e}1700000000123\u{1f}2\u{1f}second\u{1e}1700000000001\u{1f}1\u{1f}first";
        let got = parse(raw);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].attempt, got[0].error.as_str()), (2, "second"));
        assert_eq!(
            got[0].at,
            Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123))
        );
        assert_eq!((got[1].attempt, got[1].error.as_str()), (1, "first"));
        let old = parse("upstream timed out");
        assert_eq!(
            old,
            vec![AttemptError {
                at: None,
                attempt: 0,
                error: "upstream timed out".into()
            }]
        );
        // An old error the script turned into an entry without time or attempt.
        let mixed = parse("\u{1e}5\u{1f}3\u{1f}new\u{1e}\u{1f}\u{1f}old");
        assert_eq!((mixed[1].at, mixed[1].attempt), (None, 0));
        assert_eq!(mixed[1].error, "old");
        assert!(parse("").is_empty());
    }

    #[test]
    fn error_texts_lose_the_separators_and_are_cut_at_2_kib() {
        assert_eq!(sanitize("a\u{1e}b\u{1f}c"), "a b c");
        let long = "é".repeat(3000);
        let cut = sanitize(&long);
        assert!(cut.len() <= MAX_ERROR && cut.len() >= MAX_ERROR - 1);
        assert!(long.starts_with(&cut));
    }
}
