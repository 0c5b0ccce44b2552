//! Who waits for whom, so that waits made from inside callbacks never close a cycle.
//!
//! `mycelium_unsubscribe` and `mycelium_runtime_destroy` wait for a delivery thread to finish its
//! current callback; unsubscribing a pull receiver waits for the threads inside its `visit`. A
//! callback may itself make such a call, so two callbacks that unsubscribe each other would each
//! wait for the other forever (and so would three in a ring, or a callback destroying a runtime
//! whose other callbacks unsubscribe one another).
//!
//! Every such wait is registered here first, as edges "this thread waits for those threads",
//! under one process-wide lock. A wait whose target can already reach the waiting thread through
//! the registered edges would close a cycle: that target is skipped instead of waited for. The
//! graph therefore stays acyclic, so the waits that do happen all end: whoever adds the last
//! edge of a would-be cycle does not wait, returns, lets its own callback return, and every other
//! thread of the cycle then gets what it waits for.
//!
//! Only waits that run foreign code's completion are registered (joins of delivery threads and
//! visits); short internal locks are not. The graph is per copy of the library: a cycle through
//! two separately built copies in one process is not seen.

use std::collections::HashMap;
use std::hash::Hash;
use std::thread::ThreadId;

use parking_lot::Mutex;

#[cfg(all(test, mycelium_loom))]
mod loom_model;

static GRAPH: Mutex<Option<Edges<ThreadId>>> = Mutex::new(None);

/// A registered wait; dropping it removes the edges.
#[must_use = "the wait is registered only while this guard lives"]
pub struct Waiting {
    me: ThreadId,
    registered: bool,
}

impl Waiting {
    /// Registers that the calling thread is about to wait for each of `targets`, and returns the
    /// guard plus the targets it may wait for: the calling thread itself and every target that
    /// (transitively) waits for the calling thread are left out.
    pub fn enter(targets: &[ThreadId]) -> (Waiting, Vec<ThreadId>) {
        let me = std::thread::current().id();
        let allowed = GRAPH
            .lock()
            .get_or_insert_with(Edges::new)
            .register(me, targets);
        let registered = !allowed.is_empty();
        (Waiting { me, registered }, allowed)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.registered {
            if let Some(graph) = GRAPH.lock().as_mut() {
                graph.unregister(self.me);
            }
        }
    }
}

/// The edges "this waiter waits for those". Generic over how a waiter is named so that the
/// lock-then-wait protocol built on it can be model-checked (the loom model at the end of this
/// file names its threads by index); the process uses `ThreadId`s behind `GRAPH`'s lock.
pub(crate) struct Edges<K> {
    waits_for: HashMap<K, Vec<K>>,
}

impl<K: Copy + Eq + Hash> Edges<K> {
    pub(crate) fn new() -> Self {
        Edges {
            waits_for: HashMap::new(),
        }
    }

    /// Records that `me` is about to wait for `targets` and returns the ones it may wait for:
    /// `me` itself and every target that (transitively) waits for `me` are left out, so the
    /// graph never holds a cycle. Nothing is recorded when no target is left.
    pub(crate) fn register(&mut self, me: K, targets: &[K]) -> Vec<K> {
        let allowed: Vec<K> = targets
            .iter()
            .copied()
            .filter(|&t| !self.reaches(t, me))
            .collect();
        if !allowed.is_empty() {
            // A thread makes one blocking wait at a time, so there is no older entry to merge.
            self.waits_for.insert(me, allowed.clone());
        }
        allowed
    }

    /// Removes `me`'s wait once it is over.
    pub(crate) fn unregister(&mut self, me: K) {
        self.waits_for.remove(&me);
    }

    /// Whether `from` is `to` or waits for it through registered edges.
    fn reaches(&self, from: K, to: K) -> bool {
        let mut stack = vec![from];
        let mut seen = Vec::new();
        while let Some(t) = stack.pop() {
            if t == to {
                return true;
            }
            if seen.contains(&t) {
                continue;
            }
            seen.push(t);
            if let Some(next) = self.waits_for.get(&t) {
                stack.extend(next.iter().copied());
            }
        }
        false
    }

    #[cfg(test)]
    fn is_waiting(&self, me: K) -> bool {
        self.waits_for.contains_key(&me)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn waiting_for_oneself_is_skipped() {
        let me = std::thread::current().id();
        let (_w, allowed) = Waiting::enter(&[me]);
        assert!(allowed.is_empty());
    }

    #[test]
    fn the_edge_that_would_close_a_ring_is_refused_and_edges_go_with_the_guard() {
        // Three threads each register a wait for the next; exactly the last to register (in
        // lock order) must be refused, whichever it is.
        for _ in 0..200 {
            let ids: Arc<Mutex<Vec<ThreadId>>> = Arc::new(Mutex::new(Vec::new()));
            let ready = Arc::new(Barrier::new(3));
            let registered = Arc::new(Barrier::new(3));
            let handles: Vec<_> = (0..3)
                .map(|_| {
                    let (ids, ready, registered) = (ids.clone(), ready.clone(), registered.clone());
                    std::thread::spawn(move || {
                        ids.lock().push(std::thread::current().id());
                        ready.wait();
                        let next = {
                            let all = ids.lock();
                            // the ring follows arrival order, not spawn order
                            let pos = all
                                .iter()
                                .position(|t| *t == std::thread::current().id())
                                .unwrap();
                            all[(pos + 1) % 3]
                        };
                        let (guard, allowed) = Waiting::enter(&[next]);
                        registered.wait(); // every thread has tried before anyone leaves
                        let refused = allowed.is_empty();
                        registered.wait();
                        drop(guard);
                        refused
                    })
                })
                .collect();
            let refused = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|r| *r)
                .count();
            assert_eq!(refused, 1, "one and only one edge of a 3-ring is refused");
            // every guard is gone, so none of these threads is left in the graph
            let graph = GRAPH.lock();
            let left = graph.as_ref().map_or(0, |g| {
                ids.lock().iter().filter(|t| g.is_waiting(**t)).count()
            });
            assert_eq!(left, 0);
        }
    }
}
