//! Reports of what went wrong on a library thread, where no caller can receive an error code: a
//! callback or `drop` function that panicked.
//!
//! They go to the `tracing` subscriber when the process has one (a Rust host that set up
//! logging; `MYCELIUM_LOG` / `RUST_LOG` filter it there), as structured events with the
//! subscription id. A C program, or an interpreter that set none up, has no subscriber: then
//! the line goes to standard error, so a failure is never silently lost. Nothing here runs on
//! a path that succeeds.

/// Reports a callback (or `drop`) of `subscription` that panicked.
pub(crate) fn callback_panicked(subscription: Option<u64>, what: &str, panic: &str) {
    if has_subscriber() {
        match subscription {
            Some(id) => tracing::error!(subscription = id, "{what} panicked: {panic}"),
            None => tracing::error!("{what} panicked: {panic}"),
        }
    } else {
        match subscription {
            Some(id) => eprintln!("mycelium: subscription {id}: {what} panicked: {panic}"),
            None => eprintln!("mycelium: {what} panicked: {panic}"),
        }
    }
}

/// Whether this thread has a `tracing` subscriber (the global one, or one set for the scope).
pub(crate) fn has_subscriber() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn reports_go_to_the_hosts_subscriber_with_the_subscription_id() {
        assert!(
            !has_subscriber(),
            "no subscriber in a plain test thread: stderr is used"
        );
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            assert!(has_subscriber());
            callback_panicked(Some(7), "the callback", "boom");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("ERROR"), "{text}");
        assert!(text.contains("subscription=7"), "{text}");
        assert!(text.contains("the callback panicked: boom"), "{text}");
    }
}
