//! The synchronisation primitives of the concurrent core (the doorbell, the subscriber queue):
//! std's atomics and parking_lot's mutex and condition variable normally, loom's under
//! `--cfg mycelium_loom`, behind one small interface, so that `tests/loom.rs` model-checks the
//! library's own code rather than a copy of it.

#[cfg(mycelium_loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
#[cfg(not(mycelium_loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

#[cfg(not(mycelium_loom))]
pub(crate) use parking_lot::{Condvar, Mutex};

#[cfg(mycelium_loom)]
pub(crate) use self::loom_shim::{Condvar, Mutex};

#[cfg(mycelium_loom)]
mod loom_shim {
    use std::time::Instant;

    /// parking_lot's `lock()` shape over loom's mutex (never poisoned: nothing panics
    /// while holding it).
    #[derive(Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard(Some(self.0.lock().unwrap_or_else(|e| e.into_inner())))
        }
    }

    impl<T> std::ops::Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            // The guard is only `None` for the instant a condition-variable wait holds it.
            self.0.as_deref().expect("mutex guard taken by a wait")
        }
    }

    impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_deref_mut().expect("mutex guard taken by a wait")
        }
    }

    #[derive(Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    pub(crate) struct WaitResult(bool);

    impl WaitResult {
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    impl Condvar {
        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            if let Some(inner) = guard.0.take() {
                guard.0 = Some(self.0.wait(inner).unwrap_or_else(|e| e.into_inner()));
            }
        }
        /// Loom has no clock: a timed wait is modelled as one that times out at once,
        /// which a real one may always do.
        pub(crate) fn wait_until<T>(
            &self,
            _guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitResult {
            WaitResult(true)
        }
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}
