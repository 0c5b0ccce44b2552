//! One message type's routing entry: its current subscribers and its counters.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::keys::{PatternIndex, TopicName};
use crate::metrics::TypeStats;
use crate::subscriber::SubscriberShared;

pub(crate) type SubscriberList = Arc<[Arc<SubscriberShared>]>;

/// Hashes a `u16` type id with one multiplication. SipHash's resistance to crafted keys buys
/// nothing with at most 65 536 distinct ids, and every publish pays for the hash.
#[derive(Default, Clone, Copy)]
pub(crate) struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u16(&mut self, id: u16) {
        self.0 = u64::from(id);
    }

    fn finish(&self) -> u64 {
        // Fibonacci hashing spreads small ids over the high bits the table probes with.
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

pub(crate) type TopicTable = HashMap<u16, Arc<Topic>, BuildHasherDefault<TypeIdHasher>>;

pub(crate) struct Topic {
    pub(crate) type_id: u16,
    /// Copy-on-write list: publishers clone the `Arc` under a brief read lock and iterate
    /// without any lock, so a publisher blocked on a full queue never holds up (un)subscribe,
    /// and (un)subscribe never sees a half-updated list.
    subscribers: RwLock<SubscriberList>,
    /// The subscribers without a pattern: what a publish without a topic routes to (the same
    /// list as `subscribers` while nobody subscribed with a pattern).
    plain: RwLock<SubscriberList>,
    /// The subscribers with a pattern, by pattern; consulted only for publishes with a topic.
    patterns: RwLock<PatternIndex<Arc<SubscriberShared>>>,
    pub(crate) stats: Arc<TypeStats>,
    /// Name learnt from a typed publish or subscribe (`Message::NAME`).
    learnt_name: OnceLock<&'static str>,
    /// The bus-wide subscription generation, bumped on every add and remove.
    changes: SubscriptionChanges,
}

/// The bus-wide counter behind `MessageBus::watch_subscriptions` (feature `tokio`). Without
/// tokio nobody can watch it, so there is nothing to count.
pub(crate) struct Changes {
    #[cfg(feature = "tokio")]
    pub(crate) sender: tokio::sync::watch::Sender<u64>,
}

impl Changes {
    pub(crate) fn new() -> Changes {
        Changes {
            #[cfg(feature = "tokio")]
            sender: tokio::sync::watch::Sender::new(0),
        }
    }
}

pub(crate) type SubscriptionChanges = Arc<Changes>;

pub(crate) fn bump(changes: &SubscriptionChanges) {
    #[cfg(feature = "tokio")]
    changes
        .sender
        .send_modify(|generation| *generation = generation.wrapping_add(1));
    #[cfg(not(feature = "tokio"))]
    let _ = changes;
}

impl Topic {
    pub(crate) fn new(type_id: u16, changes: SubscriptionChanges) -> Self {
        Topic {
            type_id,
            subscribers: RwLock::new(Arc::from(Vec::new())),
            plain: RwLock::new(Arc::from(Vec::new())),
            patterns: RwLock::new(PatternIndex::default()),
            stats: Arc::new(TypeStats::new()),
            learnt_name: OnceLock::new(),
            changes,
        }
    }

    pub(crate) fn subscribers(&self) -> SubscriberList {
        self.subscribers.read().clone()
    }

    pub(crate) fn subscriber_count(&self) -> usize {
        self.subscribers.read().len()
    }

    /// The subscribers a publish routes to: those without a pattern, plus (for a publish with
    /// a topic) those whose pattern matches it.
    pub(crate) fn route(&self, topic: Option<&TopicName>) -> SubscriberList {
        let plain = self.plain.read().clone();
        let Some(topic) = topic else {
            return plain;
        };
        let patterns = self.patterns.read();
        if patterns.is_empty() {
            return plain;
        }
        let mut all: Vec<_> = plain.iter().cloned().collect();
        patterns.matches(topic.as_str(), &mut all);
        all.into()
    }

    pub(crate) fn add(&self, subscriber: Arc<SubscriberShared>) {
        let mut list = self.subscribers.write();
        let mut next: Vec<_> = list.iter().cloned().collect();
        next.push(Arc::clone(&subscriber));
        match &subscriber.pattern {
            Some(pattern) => self.patterns.write().insert(pattern, subscriber.clone()),
            None => {
                let mut plain = self.plain.write();
                let mut with: Vec<_> = plain.iter().cloned().collect();
                with.push(Arc::clone(&subscriber));
                *plain = with.into();
            }
        }
        *list = next.into();
        // Bumped under the list lock, so a watcher woken by it reads a list that already
        // holds the change.
        bump(&self.changes);
    }

    /// Removes subscriber `id`; a no-op if it is already gone.
    pub(crate) fn remove(&self, id: u64) {
        let mut list = self.subscribers.write();
        let Some(gone) = list.iter().find(|s| s.id == id).cloned() else {
            return;
        };
        match &gone.pattern {
            Some(pattern) => {
                self.patterns.write().remove(pattern, |s| s.id == id);
            }
            None => {
                let mut plain = self.plain.write();
                let next: Vec<_> = plain.iter().filter(|s| s.id != id).cloned().collect();
                *plain = next.into();
            }
        }
        let next: Vec<_> = list.iter().filter(|s| s.id != id).cloned().collect();
        *list = next.into();
        // Under the list's write lock, so `delivered` counts this queue's takes either in the
        // list or in the total, never in both or neither.
        let unflushed = gone.queue.retire();
        self.stats.delivered.fetch_add(unflushed, Ordering::Relaxed);
        bump(&self.changes);
    }

    /// Messages taken from a queue by a subscriber of this type: the flushed total plus what
    /// every live queue has not handed over yet, read under the list's read lock (see
    /// `remove`).
    pub(crate) fn delivered(&self) -> u64 {
        let list = self.subscribers.read();
        let flushed = self.stats.delivered.load(Ordering::Relaxed);
        flushed + list.iter().map(|s| s.queue.unflushed()).sum::<u64>()
    }

    pub(crate) fn learn_name(&self, name: &'static str) {
        // The atomic check keeps the typed publish path free of the OnceLock's init machinery.
        if self.learnt_name.get().is_none() {
            let _ = self.learnt_name.set(name);
        }
    }

    pub(crate) fn learnt_name(&self) -> Option<&'static str> {
        self.learnt_name.get().copied()
    }
}
