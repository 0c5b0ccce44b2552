//! Named topics: a `/`-separated key a publish may carry besides its type (`ticks/BTC-USD`),
//! and the patterns a subscription may filter those keys by. The grammar is NATS's, so a topic
//! maps to a NATS subject token for token: `*` matches exactly one segment, `>` (last only)
//! matches one or more trailing segments. See docs/topics.md.
//!
//! [`PatternIndex`] finds the patterns matching a topic with one walk down a trie of segments,
//! so a publish costs the depth of the topic, not the number of patterns.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// Longest topic or pattern, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// Why a topic or pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {text:?} {reason}")]
pub struct TopicError {
    /// "topic" or "pattern".
    pub what: &'static str,
    /// The text as given (cut to 64 characters).
    pub text: String,
    pub reason: &'static str,
}

fn check(text: &str, pattern: bool) -> Result<(), &'static str> {
    if text.is_empty() {
        return Err("is empty");
    }
    if text.len() > MAX_TOPIC_LEN {
        return Err("is longer than 256 bytes");
    }
    let mut segments = text.split('/').peekable();
    while let Some(segment) = segments.next() {
        if segment.is_empty() {
            return Err("has an empty segment (a leading, trailing or doubled '/')");
        }
        if segment
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '.')
        {
            return Err(
                "has a space, a control character or a '.' (segments become NATS subject tokens)",
            );
        }
        let wild = segment.contains(['*', '>']);
        if !wild {
            continue;
        }
        if !pattern {
            return Err("has a wildcard ('*' or '>'): only subscription patterns may");
        }
        match segment {
            "*" => {}
            ">" if segments.peek().is_none() => {}
            ">" => return Err("has '>' before its last segment"),
            _ => return Err("has '*' or '>' inside a segment (a wildcard is a whole segment)"),
        }
    }
    Ok(())
}

fn refused(what: &'static str, text: &str, reason: &'static str) -> TopicError {
    TopicError {
        what,
        text: text.chars().take(64).collect(),
        reason,
    }
}

/// A valid topic (no wildcards). Cheap to clone: the text is shared.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(Arc<str>);

impl TopicName {
    /// Checks `text`: non-empty segments separated by `/`, at most 256 bytes, no wildcard, no
    /// whitespace, control character or `.`.
    pub fn new(text: &str) -> Result<TopicName, TopicError> {
        check(text, false).map_err(|reason| refused("topic", text, reason))?;
        Ok(TopicName(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by topic be searched by text, without building a `TopicName` (its `Hash`
/// and `Eq` are those of the text).
impl std::borrow::Borrow<str> for TopicName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A subscription's topic filter: segments where `*` matches exactly one segment and a final
/// `>` matches one or more.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TopicPattern(Arc<str>);

impl TopicPattern {
    /// Checks `text` as [`TopicName::new`] does, wildcards allowed as whole segments (`>` last).
    pub fn new(text: &str) -> Result<TopicPattern, TopicError> {
        check(text, true).map_err(|reason| refused("pattern", text, reason))?;
        Ok(TopicPattern(Arc::from(text)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `topic` matches (a linear check; the bus uses [`PatternIndex`]).
    pub fn matches(&self, topic: &TopicName) -> bool {
        let mut p = self.0.split('/');
        let mut t = topic.0.split('/');
        loop {
            match (p.next(), t.next()) {
                (Some(">"), Some(_)) => return true,
                (Some("*"), Some(_)) => {}
                (Some(a), Some(b)) if a == b => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Debug for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One trie node: the values whose pattern ends here, those whose pattern continues with `>`
/// here, and the children by literal segment and by `*`.
struct Node<V> {
    here: Vec<V>,
    rest: Vec<V>,
    literal: HashMap<Box<str>, Node<V>>,
    star: Option<Box<Node<V>>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            here: Vec::new(),
            rest: Vec::new(),
            literal: HashMap::new(),
            star: None,
        }
    }
}

impl<V> Node<V> {
    fn is_empty(&self) -> bool {
        self.here.is_empty()
            && self.rest.is_empty()
            && self.literal.is_empty()
            && self.star.is_none()
    }
}

/// Patterns and their values (subscribers), matched against topics by walking a trie.
pub struct PatternIndex<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for PatternIndex<V> {
    fn default() -> Self {
        PatternIndex {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V: Clone> PatternIndex<V> {
    /// Values held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value` under `pattern`.
    pub fn insert(&mut self, pattern: &TopicPattern, value: V) {
        let mut node = &mut self.root;
        let mut segments = pattern.as_str().split('/').peekable();
        while let Some(segment) = segments.next() {
            if segment == ">" {
                node.rest.push(value);
                self.len += 1;
                return;
            }
            node = if segment == "*" {
                node.star.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(Box::from(segment)).or_default()
            };
            if segments.peek().is_none() {
                node.here.push(value);
                self.len += 1;
                return;
            }
        }
    }

    /// Removes the first value under `pattern` for which `is_it` holds; true if one was.
    /// Nodes left empty are pruned, so the trie does not grow with churn.
    pub fn remove(&mut self, pattern: &TopicPattern, is_it: impl Fn(&V) -> bool) -> bool {
        let segments: Vec<&str> = pattern.as_str().split('/').collect();
        let removed = remove_in(&mut self.root, &segments, &is_it);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Appends to `out` every value whose pattern matches `topic` (a valid topic name).
    pub fn matches(&self, topic: &str, out: &mut Vec<V>) {
        walk(&self.root, topic, out);
    }
}

fn take_first<V>(list: &mut Vec<V>, is_it: &impl Fn(&V) -> bool) -> bool {
    match list.iter().position(is_it) {
        Some(i) => {
            list.remove(i);
            true
        }
        None => false,
    }
}

fn remove_in<V>(node: &mut Node<V>, segments: &[&str], is_it: &impl Fn(&V) -> bool) -> bool {
    let Some((&first, tail)) = segments.split_first() else {
        return false;
    };
    if first == ">" {
        return take_first(&mut node.rest, is_it);
    }
    let removed = if first == "*" {
        let Some(child) = node.star.as_deref_mut() else {
            return false;
        };
        let removed = if tail.is_empty() {
            take_first(&mut child.here, is_it)
        } else {
            remove_in(child, tail, is_it)
        };
        if child.is_empty() {
            node.star = None;
        }
        removed
    } else {
        let Some(child) = node.literal.get_mut(first) else {
            return false;
        };
        let removed = if tail.is_empty() {
            take_first(&mut child.here, is_it)
        } else {
            remove_in(child, tail, is_it)
        };
        if child.is_empty() {
            node.literal.remove(first);
        }
        removed
    };
    removed
}

fn walk<V: Clone>(node: &Node<V>, topic: &str, out: &mut Vec<V>) {
    // Every pattern ending in `>` here matches: the topic has at least one segment left.
    out.extend(node.rest.iter().cloned());
    let (segment, tail) = match topic.split_once('/') {
        Some((segment, tail)) => (segment, Some(tail)),
        None => (topic, None),
    };
    let mut visit = |child: &Node<V>| match tail {
        Some(tail) => walk(child, tail, out),
        None => out.extend(child.here.iter().cloned()),
    };
    if let Some(child) = node.literal.get(segment) {
        visit(child);
    }
    if let Some(child) = node.star.as_deref() {
        visit(child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> TopicName {
        TopicName::new(t).unwrap()
    }

    fn pat(p: &str) -> TopicPattern {
        TopicPattern::new(p).unwrap()
    }

    #[test]
    fn names_and_patterns_are_checked_with_a_reason() {
        for (bad, reason) in [
            ("", "is empty"),
            ("a//b", "empty segment"),
            ("/a", "empty segment"),
            ("a/", "empty segment"),
            ("a b", "a space"),
            ("a.b", "'.'"),
            ("a/*", "wildcard"),
            ("a/>", "wildcard"),
        ] {
            let e = TopicName::new(bad).unwrap_err();
            assert!(e.to_string().contains(reason), "{bad:?}: {e}");
        }
        assert!(TopicName::new(&"a".repeat(257))
            .unwrap_err()
            .to_string()
            .contains("256"));
        for (bad, reason) in [
            ("a/>/b", "before its last"),
            ("a*/b", "inside a segment"),
            ("x>", "inside"),
        ] {
            let e = TopicPattern::new(bad).unwrap_err();
            assert!(e.to_string().contains(reason), "{bad:?}: {e}");
        }
        for good in ["ticks/BTC-USD", "camera/left", "x", "é/ü_1"] {
            name(good);
        }
        for good in ["ticks/*", ">", "*", "a/*/c/>", "a/b"] {
            pat(good);
        }
    }

    #[test]
    fn wildcards_match_as_in_nats() {
        let cases = [
            ("ticks/*", "ticks/BTC", true),
            ("ticks/*", "ticks/BTC/1m", false),
            ("ticks/*", "ticks", false),
            ("ticks/>", "ticks/BTC/1m", true),
            ("ticks/>", "ticks", false),
            (">", "a", true),
            ("*/x", "a/x", true),
            ("a/b", "a/b", true),
            ("a/b", "a/c", false),
        ];
        for (p, t, expected) in cases {
            assert_eq!(pat(p).matches(&name(t)), expected, "{p} vs {t}");
            let mut index = PatternIndex::default();
            index.insert(&pat(p), 1);
            let mut out = Vec::new();
            index.matches(t, &mut out);
            assert_eq!(!out.is_empty(), expected, "index: {p} vs {t}");
        }
    }

    #[test]
    fn removal_prunes_and_keeps_the_others() {
        let mut index = PatternIndex::default();
        index.insert(&pat("a/*/c"), 1);
        index.insert(&pat("a/*/c"), 2);
        index.insert(&pat("a/>"), 3);
        assert_eq!(index.len(), 3);
        assert!(index.remove(&pat("a/*/c"), |v| *v == 1));
        assert!(!index.remove(&pat("a/*/c"), |v| *v == 1));
        let mut out = Vec::new();
        index.matches("a/b/c", &mut out);
        out.sort();
        assert_eq!(out, [2, 3]);
        assert!(index.remove(&pat("a/*/c"), |v| *v == 2));
        assert!(index.remove(&pat("a/>"), |v| *v == 3));
        assert!(
            index.is_empty() && index.root.is_empty(),
            "pruned to nothing"
        );
    }
}
