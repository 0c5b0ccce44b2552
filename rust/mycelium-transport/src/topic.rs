//! One message type's routing entry: its current subscribers and its counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::keys::{PatternIndex, TopicName};
use crate::metrics::TypeStats;
use crate::subscriber::SubscriberShared;

pub(crate) type SubscriberList = Arc<[Arc<SubscriberShared>]>;

/// Type id → topic, read without taking a lock: 256 pages of 256 slots, each page allocated the
/// first time one of its ids is used, each slot set once. A publish reaches its topic with two
/// loads; the `RwLock<HashMap>` it replaced cost two locked instructions on a line every
/// publisher of every type shared (issue 16). Topics are never removed, so a `&Arc<Topic>`
/// handed out stays valid for the table's life.
pub(crate) struct TopicTable {
    pages: Box<[OnceLock<Page>]>,
    /// Every topic, in creation order: for the rare whole-bus walks (metrics, close).
    all: Mutex<Vec<Arc<Topic>>>,
}

const PAGE: usize = 256;

/// `PAGE` slots, each set at most once.
type Page = Box<[OnceLock<Arc<Topic>>]>;

impl Default for TopicTable {
    fn default() -> Self {
        TopicTable {
            pages: (0..(usize::from(u16::MAX) + 1) / PAGE)
                .map(|_| OnceLock::new())
                .collect(),
            all: Mutex::new(Vec::new()),
        }
    }
}

impl TopicTable {
    fn slot(&self, type_id: u16) -> Option<&OnceLock<Arc<Topic>>> {
        let id = usize::from(type_id);
        Some(&self.pages[id / PAGE].get()?[id % PAGE])
    }

    pub(crate) fn get(&self, type_id: u16) -> Option<&Arc<Topic>> {
        self.slot(type_id)?.get()
    }

    /// The topic of `type_id`, made by `make` if there is none yet (at most once per id).
    pub(crate) fn get_or_insert_with(
        &self,
        type_id: u16,
        make: impl FnOnce() -> Topic,
    ) -> &Arc<Topic> {
        let id = usize::from(type_id);
        let page =
            self.pages[id / PAGE].get_or_init(|| (0..PAGE).map(|_| OnceLock::new()).collect());
        page[id % PAGE].get_or_init(|| {
            let topic = Arc::new(make());
            self.all.lock().push(Arc::clone(&topic));
            topic
        })
    }

    /// Every topic so far.
    pub(crate) fn all(&self) -> Vec<Arc<Topic>> {
        self.all.lock().clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.all.lock().len()
    }
}

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

    /// Runs `f` on the subscribers a publish routes to: those without a pattern, plus (for a
    /// publish with a topic) those whose pattern matches it. Without a topic, or with no
    /// pattern subscribed, `f` runs under the plain list's read lock (no `Arc` clone, no
    /// allocation), so it must not wait and must not call back into the bus.
    pub(crate) fn with_route<R>(
        &self,
        topic: Option<&TopicName>,
        f: impl FnOnce(&[Arc<SubscriberShared>]) -> R,
    ) -> R {
        let plain = self.plain.read();
        let Some(topic) = topic else {
            return f(&plain);
        };
        let patterns = self.patterns.read();
        if patterns.is_empty() {
            return f(&plain);
        }
        let mut all: Vec<_> = plain.iter().cloned().collect();
        drop(plain);
        patterns.matches(topic.as_str(), &mut all);
        drop(patterns);
        f(&all)
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
