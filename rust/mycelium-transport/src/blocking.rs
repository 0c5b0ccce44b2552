//! Waiting on a future from a plain thread, with a deadline.
//!
//! async-channel offers `recv_blocking` but no timed variant, and pulling in an executor
//! crate for one call is not worth it: parking the thread and unparking it from the waker is
//! all a single-future wait needs.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it completes or `deadline` passes (then `None`).
/// Dropping the unfinished future must be harmless; async-channel's `Recv` is.
pub(crate) fn wait_until<F: Future>(future: F, deadline: Instant) -> Option<F::Output> {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(Unparker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        // Wake-ups may be spurious or stale; the loop re-polls either way.
        thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ready_future_completes_even_with_a_past_deadline() {
        assert_eq!(wait_until(async { 7 }, Instant::now()), Some(7));
    }

    #[test]
    fn pending_future_gives_up_at_the_deadline() {
        let never = std::future::pending::<()>();
        assert_eq!(
            wait_until(never, Instant::now() + Duration::from_millis(5)),
            None
        );
    }

    #[test]
    fn wakes_when_another_thread_completes_the_future() {
        let (tx, rx) = async_channel::bounded::<u32>(1);
        let sender = thread::spawn(move || {
            thread::sleep(Duration::from_millis(10));
            tx.send_blocking(42)
        });
        let got = wait_until(rx.recv(), Instant::now() + Duration::from_secs(30));
        assert_eq!(got, Some(Ok(42)));
        assert!(sender.join().is_ok_and(|sent| sent.is_ok()));
    }
}
