//! How named topics and subscription patterns become NATS subjects.
//!
//! A message type's messages go to `<prefix>.<schema>.<Message>` (its *base*); one published
//! on topic `ticks/BTC-USD` goes to `<base>.ticks.BTC-USD`. The topic grammar is NATS's own
//! (`*` one segment, `>` one or more trailing ones, no `.` inside a segment), so a pattern
//! maps token for token and the server filters by topic: a bus that only wants `ticks/BTC-USD`
//! is not sent every other symbol.
//!
//! NATS delivers a message once per matching subscription of a connection, so the subjects a
//! join subscribes to for one type must never overlap, or a message would reach the local bus
//! twice. [`filters`] picks such a set.

use std::borrow::Cow;
use std::collections::BTreeSet;

use mycelium_transport::{TopicName, TopicPattern};

/// Above this many distinct patterns on one type, the join subscribes to every topic of the
/// type (`<base>.>`) and leaves the filtering to the bus: checking that n patterns do not
/// overlap costs n² comparisons at each subscription change.
pub const MAX_PATTERN_SUBJECTS: usize = 64;

/// The subject a message of the type whose subject is `base` goes out on.
pub(crate) fn subject_for<'a>(base: &'a str, topic: Option<&TopicName>) -> Cow<'a, str> {
    match topic {
        None => Cow::Borrowed(base),
        Some(topic) => Cow::Owned(format!("{base}.{}", topic.as_str().replace('/', "."))),
    }
}

/// The topic carried by `tail`, the part of a subject after `<base>.`.
pub(crate) fn topic_of_tail(tail: &str) -> Option<TopicName> {
    TopicName::new(&tail.replace('.', "/")).ok()
}

/// The subjects that bring the messages of one type (subject `base`) that local subscriptions
/// with these patterns want, no two of them overlapping. Empty when there is no subscription.
pub(crate) fn filters(base: &str, patterns: &[Option<TopicPattern>]) -> Vec<String> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let every_topic = format!("{base}.>");
    if patterns.iter().any(Option::is_none) {
        // Messages without a topic and with any topic: two disjoint subjects.
        return vec![base.to_string(), every_topic];
    }
    let distinct: BTreeSet<&str> = patterns.iter().flatten().map(|p| p.as_str()).collect();
    let distinct: Vec<&str> = distinct.into_iter().collect();
    let overlapping = distinct.len() > MAX_PATTERN_SUBJECTS
        || distinct
            .iter()
            .enumerate()
            .any(|(i, a)| distinct[i + 1..].iter().any(|b| overlap(a, b)));
    if overlapping {
        return vec![every_topic];
    }
    distinct
        .iter()
        .map(|p| format!("{base}.{}", p.replace('/', ".")))
        .collect()
}

/// Whether some topic matches both patterns.
fn overlap(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('/'), b.split('/'));
    loop {
        match (a.next(), b.next()) {
            // `>` takes one or more segments: the other pattern has at least one here, and
            // whatever follows in it can be matched by the rest.
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) => {
                if x != "*" && y != "*" && x != y {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &str) -> TopicName {
        TopicName::new(t).unwrap()
    }

    fn pattern(p: &str) -> Option<TopicPattern> {
        Some(TopicPattern::new(p).unwrap())
    }

    /// Every sequence of 1..=3 tokens drawn from `tokens`, joined with `/`.
    fn words(tokens: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        let mut last = all.clone();
        for _ in 1..3 {
            last = last
                .iter()
                .flat_map(|w| tokens.iter().map(move |t| format!("{w}/{t}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// Against the bus's own matcher, over every pattern of up to three segments from
    /// {a, b, *, >}: two patterns overlap exactly when some topic of up to three segments from
    /// {a, b} matches both (a shortest witness never needs more segments or other tokens).
    #[test]
    fn overlap_agrees_with_the_matcher_exhaustively() {
        let topics: Vec<TopicName> = words(&["a", "b"]).iter().map(|t| topic(t)).collect();
        let patterns: Vec<TopicPattern> = words(&["a", "b", "*", ">"])
            .iter()
            .filter_map(|p| TopicPattern::new(p).ok())
            .collect();
        assert!(patterns.len() > 50, "the universe is not trivial");
        let mut overlapping = 0;
        for p in &patterns {
            for q in &patterns {
                let witness = topics.iter().any(|t| p.matches(t) && q.matches(t));
                assert_eq!(
                    overlap(p.as_str(), q.as_str()),
                    witness,
                    "{} vs {}",
                    p.as_str(),
                    q.as_str()
                );
                overlapping += usize::from(witness);
            }
        }
        assert!(overlapping > 0 && overlapping < patterns.len() * patterns.len());
    }

    #[test]
    fn topics_become_subject_tokens_and_back() {
        assert_eq!(subject_for("p.s.Tick", None), "p.s.Tick");
        let t = topic("ticks/BTC-USD");
        assert_eq!(subject_for("p.s.Tick", Some(&t)), "p.s.Tick.ticks.BTC-USD");
        assert_eq!(topic_of_tail("ticks.BTC-USD"), Some(t));
        assert_eq!(
            topic_of_tail("ticks..x"),
            None,
            "an empty token is no topic"
        );
        assert_eq!(topic_of_tail("ticks.*"), None, "a wildcard is no topic");
    }

    #[test]
    fn filters_never_overlap() {
        let base = "p.s.Tick";
        assert!(filters(base, &[]).is_empty());
        assert_eq!(
            filters(base, &[pattern("ticks/BTC"), None]),
            ["p.s.Tick", "p.s.Tick.>"],
            "a plain subscriber wants everything"
        );
        assert_eq!(
            filters(
                base,
                &[
                    pattern("ticks/BTC"),
                    pattern("ticks/*/x"),
                    pattern("ticks/BTC")
                ]
            ),
            ["p.s.Tick.ticks.*.x", "p.s.Tick.ticks.BTC"],
            "disjoint patterns map one to one (duplicates once)"
        );
        assert_eq!(
            filters(base, &[pattern("ticks/BTC"), pattern("ticks/*")]),
            ["p.s.Tick.>"],
            "overlapping patterns would deliver twice: every topic, filtered by the bus"
        );
        let many: Vec<_> = (0..=MAX_PATTERN_SUBJECTS)
            .map(|i| pattern(&format!("t/{i}")))
            .collect();
        assert_eq!(filters(base, &many), ["p.s.Tick.>"]);
        assert_eq!(filters(base, &many[1..]).len(), MAX_PATTERN_SUBJECTS);
    }
}
