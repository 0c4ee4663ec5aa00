//! Who may use the console: [`Auth`] (a token or basic auth) and the checks behind it.

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};

/// How the console authenticates requests.
///
/// ```
/// let a = redkit_console::web::Auth::Token("s3cret".into());
/// assert!(a.is_required());
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// None (loopback only, or behind the embedding service's own auth).
    #[default]
    None,
    /// A shared token: `Authorization: Bearer …` or the login cookie.
    Token(String),
    /// HTTP basic auth.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "None",
            Auth::Token(_) => "Token(***)",
            Auth::Basic { .. } => "Basic(***)",
        })
    }
}

impl Auth {
    /// Whether requests must authenticate.
    ///
    /// ```
    /// assert!(!redkit_console::web::Auth::None.is_required());
    /// ```
    pub fn is_required(&self) -> bool {
        !matches!(self, Auth::None)
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(crate) fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Compares digests, so the time taken says nothing about the token.
pub(crate) fn same(a: &str, b: &str) -> bool {
    digest(a) == digest(b)
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub(crate) fn authorized(auth: &Auth, headers: &HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match auth {
        Auth::None => true,
        Auth::Token(t) => {
            given
                .and_then(|g| g.strip_prefix("Bearer "))
                .is_some_and(|g| same(g.trim(), t))
                || cookie(headers, "redkit_token").is_some_and(|c| same(c, &hex(&digest(t))))
        }
        Auth::Basic { user, password } => {
            let want = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
            given.is_some_and(|g| same(g.trim(), &want))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn base64_matches_the_rfc_vectors_and_tokens_are_checked() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let mut h = HeaderMap::new();
        let auth = Auth::Token("t0k".into());
        assert!(!authorized(&auth, &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert!(authorized(&auth, &h));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(!authorized(&auth, &h));
        let basic = Auth::Basic {
            user: "ops".into(),
            password: "pw".into(),
        };
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", base64(b"ops:pw")))
                .unwrap_or(HeaderValue::from_static("")),
        );
        assert!(authorized(&basic, &h));
    }
}
