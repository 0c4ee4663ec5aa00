//! [`QueueRef`]: which queue the console means (namespace and name).

use std::fmt;

use serde::Serialize;

use crate::error::Error;

/// A queue's identity: namespace and name (its keys are `<namespace>:{<name>}:*`).
///
/// ```
/// let q = redkit_console::QueueRef::parse("emails").unwrap();
/// assert_eq!((q.namespace.as_str(), q.name.as_str()), ("rq", "emails"));
/// assert_eq!(q.to_string(), "rq/emails");
/// assert_eq!(redkit_console::QueueRef::parse("shop/orders").unwrap().base(), "shop:{orders}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct QueueRef {
    /// The namespace (`rq` unless the queue's config says otherwise).
    pub namespace: String,
    /// The queue's name.
    pub name: String,
}

impl QueueRef {
    /// A queue of `namespace`.
    ///
    /// ```
    /// let q = redkit_console::QueueRef::new("rq", "emails");
    /// assert_eq!(q.base(), "rq:{emails}");
    /// ```
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> QueueRef {
        QueueRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `name` (namespace `rq`) or `namespace/name`.
    ///
    /// ```
    /// assert!(redkit_console::QueueRef::parse("rq/{bad}").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<QueueRef, Error> {
        let (ns, name) = s.split_once('/').unwrap_or(("rq", s));
        let r = QueueRef::new(ns, name);
        r.check()?;
        Ok(r)
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.name.is_empty()
            || self.namespace.is_empty()
            || self.name.contains(['{', '}'])
            || self.namespace.contains(['{', '}'])
        {
            return Err(Error::Usage(format!(
                "{self:?} is not a queue name: namespace and name must be non-empty and free of braces"
            )));
        }
        Ok(())
    }

    /// The queue's key prefix, `<namespace>:{<name>}`.
    ///
    /// ```
    /// assert_eq!(redkit_console::QueueRef::new("a", "b").base(), "a:{b}");
    /// ```
    pub fn base(&self) -> String {
        format!("{}:{{{}}}", self.namespace, self.name)
    }

    /// Parses a queue's key prefix (`ns:{name}`) or one of its keys (`ns:{name}:stats`).
    pub(crate) fn from_key(key: &str) -> Option<QueueRef> {
        let open = key.find(":{")?;
        let close = key[open + 2..].find('}')? + open + 2;
        let r = QueueRef::new(&key[..open], &key[open + 2..close]);
        r.check().ok().map(|()| r)
    }
}

impl fmt::Display for QueueRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_from_names_and_keys() {
        assert_eq!(
            QueueRef::from_key("rq:{emails}:stats"),
            Some(QueueRef::new("rq", "emails"))
        );
        assert_eq!(
            QueueRef::from_key("a:b:{c:d}:stats"),
            Some(QueueRef::new("a:b", "c:d"))
        );
        assert_eq!(QueueRef::from_key("plain:key"), None);
        assert_eq!(QueueRef::from_key(":{x}:stats"), None);
        assert!(QueueRef::parse("").is_err());
        assert_eq!(
            QueueRef::parse("ns/a/b").ok(),
            Some(QueueRef::new("ns", "a/b"))
        );
    }
}
