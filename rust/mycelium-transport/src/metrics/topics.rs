//! Per-topic counters: opt-in, because topics can be unbounded in number (a topic per order id,
//! say) while metrics are read by systems that keep every label set forever.
//!
//! Off by default: a publish with a topic then pays one relaxed load. Once enabled with a
//! limit, each publish with a topic takes one uncontended mutex and a hash lookup by the
//! topic's text (no allocation for a topic already counted); the first `limit` distinct
//! (type, topic) pairs are counted one by one, and publishes under any further topic are
//! counted together in `untracked`, so a runaway topic space shows up as one growing number
//! instead of as memory. A publish without a topic never comes here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;

use crate::keys::TopicName;

#[derive(Default)]
pub(crate) struct TopicStats {
    /// Most (type, topic) pairs counted one by one; 0: off.
    limit: AtomicUsize,
    counted: Mutex<Counted>,
    untracked: AtomicU64,
}

#[derive(Default)]
struct Counted {
    by_type: HashMap<u16, HashMap<TopicName, Counts>>,
    pairs: usize,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    published: u64,
    published_bytes: u64,
}

/// Counters of one topic of one message type (see
/// [`MessageBus::enable_topic_metrics`](crate::MessageBus::enable_topic_metrics)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicMetrics {
    /// Schema type id.
    pub type_id: u16,
    /// Message name, if known (as in [`TypeMetrics::name`](crate::TypeMetrics::name)).
    pub name: Option<String>,
    /// The topic.
    pub topic: String,
    /// Publishes accepted under this topic since it was first counted.
    pub published: u64,
    /// Their payload bytes.
    pub published_bytes: u64,
}

impl TopicStats {
    /// Counts topics one by one up to `limit` (type, topic) pairs; 0 turns counting off and
    /// forgets what was counted.
    pub(crate) fn set_limit(&self, limit: usize) {
        let mut counted = self.counted.lock();
        self.limit.store(limit, Ordering::Relaxed);
        if limit == 0 {
            *counted = Counted::default();
            self.untracked.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, type_id: u16, topic: &TopicName, bytes: usize) {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit == 0 {
            return;
        }
        let mut counted = self.counted.lock();
        let Counted { by_type, pairs } = &mut *counted;
        let topics = by_type.entry(type_id).or_default();
        let counts = match topics.get_mut(topic.as_str()) {
            Some(counts) => counts,
            None if *pairs < limit => {
                *pairs += 1;
                topics.entry(topic.clone()).or_default()
            }
            None => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        counts.published += 1;
        counts.published_bytes += bytes as u64;
    }

    /// Every counted topic, by type id then topic; `name` names a type id.
    pub(crate) fn snapshot(&self, name: impl Fn(u16) -> Option<String>) -> Vec<TopicMetrics> {
        let counted = self.counted.lock();
        let mut out: Vec<TopicMetrics> = counted
            .by_type
            .iter()
            .flat_map(|(&type_id, topics)| {
                let name = name(type_id);
                topics.iter().map(move |(topic, counts)| TopicMetrics {
                    type_id,
                    name: name.clone(),
                    topic: topic.as_str().to_owned(),
                    published: counts.published,
                    published_bytes: counts.published_bytes,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.type_id, &a.topic).cmp(&(b.type_id, &b.topic)));
        out
    }

    /// Publishes under a topic beyond the limit (not counted one by one).
    pub(crate) fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(t: &str) -> TopicName {
        TopicName::new(t).unwrap()
    }

    #[test]
    fn off_by_default_then_counted_up_to_the_limit_and_the_rest_together() {
        let stats = TopicStats::default();
        stats.record(1, &topic("a"), 10);
        assert!(stats.snapshot(|_| None).is_empty(), "off by default");
        stats.set_limit(2);
        stats.record(1, &topic("a"), 10);
        stats.record(1, &topic("a"), 5);
        stats.record(2, &topic("a"), 1);
        stats.record(1, &topic("b"), 7);
        stats.record(1, &topic("b"), 7);
        let got = stats.snapshot(|id| Some(format!("T{id}")));
        let rows: Vec<_> = got
            .iter()
            .map(|t| (t.type_id, t.topic.as_str(), t.published, t.published_bytes))
            .collect();
        assert_eq!(
            rows,
            [(1, "a", 2, 15), (2, "a", 1, 1)],
            "same text, two types"
        );
        assert_eq!(got[0].name.as_deref(), Some("T1"));
        assert_eq!(stats.untracked(), 2, "b came after the limit");
        stats.set_limit(0);
        assert!(stats.snapshot(|_| None).is_empty());
        assert_eq!(stats.untracked(), 0, "turning it off forgets");
    }
}
