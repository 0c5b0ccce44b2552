//! The library's log records (`tracing` events of the bus, bridges and this adapter) delivered
//! to Python's `logging`, as the `mycelium.*` loggers.
//!
//! Why a queue and a Python thread rather than calling `logging` from the event: an event may be
//! emitted on any thread, including one that holds a bus lock that a thread holding the GIL waits
//! for; taking the GIL there could deadlock. So the layer only pushes the record into a bounded
//! channel (never blocks: a full channel drops and counts), and a daemon thread started by
//! `mycelium_native/__init__.py` takes records without the GIL and logs them with it. A forked
//! child has no such thread (the parent's held the channel at the fork): its records are dropped.
//!
//! The records kept are chosen by `MYCELIUM_LOG` (else `RUST_LOG`), in tracing's filter syntax,
//! default `info`: events below it cost one cached check at their call site, so debug and trace
//! events on hot paths stay free unless asked for.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;

use parking_lot::Mutex;
use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::EnvFilter;

use crate::lifecycle::detach;

/// Records waiting for the Python thread; beyond this they are dropped (and counted).
const CAPACITY: usize = 10_000;

/// One event, as the Python thread receives it: (logging level, target, message, fields).
type Record = (u8, String, String, Vec<(String, String)>);

struct Channel {
    sender: SyncSender<Record>,
    receiver: Mutex<Receiver<Record>>,
    dropped: AtomicU64,
}

static CHANNEL: OnceLock<Channel> = OnceLock::new();

fn channel() -> &'static Channel {
    CHANNEL.get_or_init(|| {
        let (sender, receiver) = sync_channel(CAPACITY);
        Channel {
            sender,
            receiver: Mutex::new(receiver),
            dropped: AtomicU64::new(0),
        }
    })
}

/// Python's numeric level for a tracing level (TRACE has no name there: 5).
fn python_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// The event's `message` and its other fields as text pairs.
#[derive(Default)]
struct Fields {
    message: String,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.fields
                .push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.fields
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

/// The layer that queues events for Python.
struct ToPython;

impl<S: Subscriber> Layer<S> for ToPython {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let record = (
            python_level(meta.level()),
            meta.target().to_owned(),
            fields.message,
            fields.fields,
        );
        let channel = channel();
        match channel.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                channel.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Installs the forwarding layer as this extension's global `tracing` subscriber (its own copy
/// of tracing: a Rust host embedding Python keeps its own subscriber). Returns false when one
/// was already installed.
pub(crate) fn install() -> bool {
    let filter = ["MYCELIUM_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()))
        .and_then(|text| EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry().with(filter).with(ToPython);
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

/// The next log record as `(level, target, message, fields)`, waiting for it without the GIL
/// (the sender is static, so the wait ends only with a record). Called in a loop by the
/// `mycelium-log` daemon thread; `detach` parks it for good once the interpreter shuts down.
#[pyfunction]
pub(crate) fn _next_log_record(py: Python<'_>) -> Option<Record> {
    detach(py, || channel().receiver.lock().recv().ok())
}

/// Log records dropped because the Python thread fell 10 000 behind.
#[pyfunction]
pub(crate) fn _log_records_dropped() -> u64 {
    channel().dropped.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_become_records_with_python_levels_and_fields() {
        let subscriber = tracing_subscriber::registry().with(ToPython);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "unix:/x", attempts = 3, "cannot connect");
        });
        let (level, target, message, fields) = channel()
            .receiver
            .lock()
            .recv_timeout(Duration::from_secs(1))
            .unwrap();
        assert_eq!(level, 30);
        assert!(target.ends_with("logs::tests"), "{target}");
        assert_eq!(message, "cannot connect");
        assert_eq!(
            fields,
            [
                ("peer".to_owned(), "unix:/x".to_owned()),
                ("attempts".to_owned(), "3".to_owned())
            ]
        );
    }
}
