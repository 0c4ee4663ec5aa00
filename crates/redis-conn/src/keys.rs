//! Key naming: a namespace prefix and hash tags, so a crate's multi-key scripts land in one
//! cluster slot.

use crate::error::{Error, Result};

/// The cluster slot of a key (CRC16 of the hash tag, or of the whole key), 0..16384.
///
/// ```
/// assert_eq!(redis_conn::keys::slot(b"{user1000}.following"), redis_conn::keys::slot(b"{user1000}.followers"));
/// assert_eq!(redis_conn::keys::slot(b"foo"), 12182);
/// ```
pub fn slot(key: &[u8]) -> u16 {
    fred::util::redis_keyslot(key)
}

/// A key in the same cluster slot as `key`, named `<key>:<suffix>`: it reuses `key`'s hash tag,
/// or makes the whole of `key` its tag (`{<key>}:<suffix>`). `None` when no such key exists
/// (a key whose first `{...}` is empty hashes whole, and so cannot be wrapped).
///
/// ```
/// use redis_conn::keys::{sibling, slot};
/// assert_eq!(sibling("{user:7}:cart", "lock").as_deref(), Some("{user:7}:cart:lock"));
/// let s = sibling("cache:42", "rebuild").unwrap();
/// assert_eq!(s, "{cache:42}:rebuild");
/// assert_eq!(slot(s.as_bytes()), slot(b"cache:42"));
/// ```
pub fn sibling(key: &str, suffix: &str) -> Option<String> {
    let tagged = key
        .find('{')
        .and_then(|s| key[s + 1..].find('}').map(|e| e > 0))
        .unwrap_or(false);
    let sibling = if tagged {
        format!("{key}:{suffix}")
    } else {
        format!("{{{key}}}:{suffix}")
    };
    (slot(sibling.as_bytes()) == slot(key.as_bytes())).then_some(sibling)
}

/// A key prefix such as `shop` or `shop:cache`: keys become `shop:<name>`, and tagged groups
/// become `shop:{<tag>}:<name>` so every key of the group shares one cluster slot.
///
/// ```
/// let ns = redis_conn::Namespace::new("shop").unwrap();
/// assert_eq!(ns.key("config"), "shop:config");
/// let order = ns.tagged("order:42").unwrap();
/// assert_eq!(order.key("items"), "shop:{order:42}:items");
/// assert_eq!(redis_conn::keys::slot(order.key("items").as_bytes()), order.slot());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

fn check_part(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::config(what, "must not be empty"));
    }
    if s.contains(['{', '}']) {
        return Err(Error::config(
            what,
            format!(
                "{s:?} contains '{{' or '}}', which would change the key's hash tag (and cluster slot)"
            ),
        ));
    }
    Ok(())
}

impl Namespace {
    /// A namespace; the prefix must not be empty or contain `{` / `}` (a brace in the prefix
    /// would become the hash tag of every key and put the whole namespace in one slot).
    pub fn new(prefix: impl Into<String>) -> Result<Namespace> {
        let prefix = prefix.into();
        check_part("namespace prefix", &prefix)?;
        Ok(Namespace { prefix })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:<name>`.
    pub fn key(&self, name: &str) -> String {
        join(&self.prefix, name)
    }

    /// A nested namespace `<prefix>:<child>`.
    pub fn child(&self, child: &str) -> Result<Namespace> {
        check_part("namespace child", child)?;
        Namespace::new(self.key(child))
    }

    /// A group of keys sharing the hash tag `tag` (which must not contain braces).
    pub fn tagged(&self, tag: &str) -> Result<TaggedKeys> {
        check_part("hash tag", tag)?;
        Ok(TaggedKeys {
            base: format!("{}:{{{tag}}}", self.prefix),
        })
    }

    /// A `SCAN` pattern matching every key of this namespace (`*` and `?` in the prefix are
    /// escaped).
    ///
    /// ```
    /// assert_eq!(redis_conn::Namespace::new("a*b").unwrap().pattern(), "a\\*b:*");
    /// ```
    pub fn pattern(&self) -> String {
        self.glob("*")
    }

    /// A `SCAN` pattern for keys of this namespace whose name matches `glob` (the prefix is
    /// escaped, `glob` is not).
    ///
    /// ```
    /// assert_eq!(redis_conn::Namespace::new("a?").unwrap().glob("user:*"), "a\\?:user:*");
    /// ```
    pub fn glob(&self, glob: &str) -> String {
        let mut p = String::new();
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                p.push('\\');
            }
            p.push(c);
        }
        p.push(':');
        p.push_str(glob);
        p
    }
}

/// Keys of one hash-tagged group: all in the same cluster slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedKeys {
    base: String,
}

impl TaggedKeys {
    /// `<prefix>:{<tag>}:<name>`.
    pub fn key(&self, name: &str) -> String {
        join(&self.base, name)
    }

    /// `<prefix>:{<tag>}` itself (usable as a key too).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The slot every key of the group maps to.
    pub fn slot(&self) -> u16 {
        slot(self.base.as_bytes())
    }
}

/// `<a>:<b>` in one exact allocation (key building is on every cache and lock call).
fn join(a: &str, b: &str) -> String {
    let mut key = String::with_capacity(a.len() + 1 + b.len());
    key.push_str(a);
    key.push(':');
    key.push_str(b);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_are_rejected_where_they_would_change_the_slot() {
        assert!(Namespace::new("a{b}").is_err());
        assert!(Namespace::new("").is_err());
        let ns = Namespace::new("app").expect("valid");
        assert!(ns.tagged("x}y").is_err());
        assert!(ns.tagged("").is_err());
        assert!(ns.child("c{").is_err());
    }

    #[test]
    fn tagged_keys_share_a_slot_and_untagged_ones_spread() {
        let ns = Namespace::new("app").expect("valid");
        let t = ns.tagged("queue:emails").expect("valid");
        let slots: std::collections::HashSet<u16> = ["ready", "delayed", "inflight", "dead"]
            .iter()
            .map(|k| slot(t.key(k).as_bytes()))
            .collect();
        assert_eq!(slots.len(), 1);
        let spread: std::collections::HashSet<u16> = (0..50)
            .map(|i| slot(ns.key(&i.to_string()).as_bytes()))
            .collect();
        assert!(spread.len() > 40);
    }
}
