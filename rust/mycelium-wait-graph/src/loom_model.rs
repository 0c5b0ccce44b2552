//! Loom model of the subscription lifecycle that this crate keeps free of deadlocks.
//!
//! Delivery threads, OS joins and the handle's map of live subscriptions are mirrored with loom's
//! primitives; the edges are the real [`Edges`] under a lock, as `Waiting::enter` holds them.
//! Loom runs every interleaving (bounded by `LOOM_MAX_PREEMPTIONS`) and fails a model whose
//! threads can all end up blocked, so each model below proves, for its scenario, that:
//! - nothing deadlocks (callbacks unsubscribing each other in rings of 2 and 3, a callback
//!   destroying the runtime while two others unsubscribe each other);
//! - every subscription's `drop` runs exactly once, after its last call;
//! - an unsubscribe made by a thread that runs no callback returns only once the target's
//!   callback has returned and its `drop` has run (the promise documented in the header).
//!
//! Run: `RUSTFLAGS="--cfg mycelium_loom" cargo test -p mycelium-wait-graph --release`
//! (scripts/test-loom.sh, in a separate target dir).

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

use crate::Edges;

/// How the application thread is named in the graph (delivery thread `i` is named `i`).
const APP: usize = 100;

/// What a subscription's callback does with the one message it is given.
#[derive(Clone, Copy)]
enum Callback {
    Unsubscribe(usize),
    Destroy,
}

/// `SubShared` plus what an OS join observes of a delivery thread.
struct Sub {
    cancelled: AtomicBool,
    in_call: AtomicBool,
    drops: AtomicUsize,
    /// (closed, exited): `closed` is the queue close that ends the delivery loop; `exited` is
    /// what `JoinHandle::join` waits for.
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

struct Runtime {
    /// The handle's map of live subscriptions: whoever takes an entry out joins it.
    live: Mutex<Vec<bool>>,
    graph: Mutex<Edges<usize>>,
    subs: Vec<Sub>,
    /// Callbacks that have returned, so the application can wait for them before destroying
    /// (the header forbids destroy concurrently with other calls on the handle).
    returned: Mutex<usize>,
    returned_cv: Condvar,
}

impl Runtime {
    fn new(n: usize) -> Arc<Runtime> {
        Arc::new(Runtime {
            live: Mutex::new(vec![true; n]),
            graph: Mutex::new(Edges::new()),
            subs: (0..n)
                .map(|_| Sub {
                    cancelled: AtomicBool::new(false),
                    in_call: AtomicBool::new(false),
                    drops: AtomicUsize::new(0),
                    state: Mutex::new((false, false)),
                    changed: Condvar::new(),
                })
                .collect(),
            returned: Mutex::new(0),
            returned_cv: Condvar::new(),
        })
    }

    /// `runtime::unsubscribe`: the entry leaves the map, then `cancel_and_join`. False when the
    /// id is no longer live (`MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION`).
    fn unsubscribe(&self, me: usize, target: usize) -> bool {
        let taken = std::mem::replace(&mut self.live.lock().unwrap()[target], false);
        if taken {
            self.cancel_and_join(me, target);
        }
        taken
    }

    /// `runtime::destroy` → `Handle::unsubscribe_all`: drain the map, join outside its lock.
    fn destroy(&self, me: usize) {
        let taken: Vec<usize> = {
            let mut live = self.live.lock().unwrap();
            (0..live.len())
                .filter(|&i| std::mem::replace(&mut live[i], false))
                .collect()
        };
        for t in taken {
            self.cancel_and_join(me, t);
        }
    }

    /// `SubEntry::cancel_and_join`, step for step.
    fn cancel_and_join(&self, me: usize, target: usize) {
        let sub = &self.subs[target];
        sub.cancelled.store(true, SeqCst);
        sub.state.lock().unwrap().0 = true; // raw.close()
        sub.changed.notify_all();
        let allowed = self.graph.lock().unwrap().register(me, &[target]);
        if allowed.is_empty() {
            return; // the JoinHandle is dropped: the thread is detached
        }
        let mut state = sub.state.lock().unwrap();
        while !state.1 {
            state = sub.changed.wait(state).unwrap();
        }
        drop(state);
        self.graph.lock().unwrap().unregister(me); // the `Waiting` guard's drop
    }

    /// A delivery thread with one message queued: the callback runs unless the subscription was
    /// cancelled first; then the loop waits for the close, runs `drop` and exits.
    fn deliver(&self, i: usize, callback: Callback) {
        let sub = &self.subs[i];
        if !sub.cancelled.load(SeqCst) {
            sub.in_call.store(true, SeqCst);
            match callback {
                Callback::Unsubscribe(target) => {
                    self.unsubscribe(i, target);
                }
                Callback::Destroy => self.destroy(i),
            }
            sub.in_call.store(false, SeqCst);
        }
        *self.returned.lock().unwrap() += 1;
        self.returned_cv.notify_all();
        let mut state = sub.state.lock().unwrap();
        while !state.0 {
            state = sub.changed.wait(state).unwrap();
        }
        sub.drops.fetch_add(1, SeqCst); // the closure's drop, after the last call
        state.1 = true;
        drop(state);
        sub.changed.notify_all();
    }

    /// The application waits for every callback to return, destroys the handle, then checks.
    fn finish(&self, threads: Vec<thread::JoinHandle<()>>) {
        let mut returned = self.returned.lock().unwrap();
        while *returned < self.subs.len() {
            returned = self.returned_cv.wait(returned).unwrap();
        }
        drop(returned);
        self.destroy(APP);
        for t in threads {
            t.join().unwrap();
        }
        for (i, sub) in self.subs.iter().enumerate() {
            assert_eq!(
                sub.drops.load(SeqCst),
                1,
                "drop of subscription {i} ran once"
            );
        }
    }
}

fn spawn_all(rt: &Arc<Runtime>, callbacks: &[Callback]) -> Vec<thread::JoinHandle<()>> {
    callbacks
        .iter()
        .enumerate()
        .map(|(i, &cb)| {
            let rt = rt.clone();
            thread::spawn(move || rt.deliver(i, cb))
        })
        .collect()
}

#[test]
fn two_callbacks_unsubscribing_each_other_never_deadlock() {
    loom::model(|| {
        let rt = Runtime::new(2);
        let threads = spawn_all(&rt, &[Callback::Unsubscribe(1), Callback::Unsubscribe(0)]);
        rt.finish(threads);
    });
}

#[test]
fn a_ring_of_three_unsubscribing_callbacks_never_deadlocks() {
    loom::model(|| {
        let rt = Runtime::new(3);
        let threads = spawn_all(
            &rt,
            &[
                Callback::Unsubscribe(1),
                Callback::Unsubscribe(2),
                Callback::Unsubscribe(0),
            ],
        );
        rt.finish(threads);
    });
}

#[test]
fn a_callback_destroying_the_runtime_while_two_others_unsubscribe_each_other() {
    loom::model(|| {
        let rt = Runtime::new(3);
        let threads = spawn_all(
            &rt,
            &[
                Callback::Destroy,
                Callback::Unsubscribe(2),
                Callback::Unsubscribe(1),
            ],
        );
        rt.finish(threads);
    });
}

#[test]
fn unsubscribe_from_a_thread_outside_the_callbacks_waits_for_the_callback_and_drop() {
    loom::model(|| {
        let rt = Runtime::new(2);
        let threads = spawn_all(&rt, &[Callback::Unsubscribe(1), Callback::Unsubscribe(0)]);
        if rt.unsubscribe(APP, 0) {
            let sub = &rt.subs[0];
            assert!(!sub.in_call.load(SeqCst), "callback 0 still running");
            assert_eq!(sub.drops.load(SeqCst), 1, "drop of 0 has not run");
        }
        rt.finish(threads);
    });
}
