//! The library's log records (`tracing` events of the bus, the bridges and the adapters), queued
//! for a language adapter to hand to its own logging: Python's `logging` (`python/src/logs.rs`),
//! an OCaml handler (`Mycelium_native.Log`). A Rust API for the adapters, not part of the C ABI.
//!
//! Why a queue rather than calling into the language from the event: an event may be emitted on
//! any thread, including one holding a bus lock that a thread holding the GIL (or the OCaml
//! runtime lock) waits for; taking that lock there could deadlock. So the layer only pushes the
//! record into a bounded channel (never blocks: a full channel drops and counts), and a thread
//! of the adapter takes records without its runtime lock and logs them with it.
//!
//! Records are chosen by `MYCELIUM_LOG` (else `RUST_LOG`), in tracing's filter syntax, default
//! `info`: events below it cost one cached check at their call site, so debug and trace events on
//! hot paths stay free unless asked for.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::EnvFilter;

/// Records waiting for the adapter's thread; beyond this they are dropped (and counted).
const CAPACITY: usize = 10_000;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub level: Level,
    /// The Rust module that emitted it, e.g. `mycelium_bridge::connector`.
    pub target: String,
    pub message: String,
    /// The event's other fields (endpoint, subscription, type...), as text.
    pub fields: Vec<(String, String)>,
}

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

/// The layer that queues events.
struct Queue;

impl<S: Subscriber> Layer<S> for Queue {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let record = Record {
            level: *meta.level(),
            target: meta.target().to_owned(),
            message: fields.message,
            fields: fields.fields,
        };
        let channel = channel();
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            channel.sender.try_send(record)
        {
            channel.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the queueing layer as the process's (this copy of tracing's) global subscriber.
/// Returns false when one was already installed, e.g. by a Rust host: its subscriber then keeps
/// receiving the records, and the queue stays empty.
pub fn install() -> bool {
    let filter = ["MYCELIUM_LOG", "RUST_LOG"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|t| !t.trim().is_empty()))
        .and_then(|text| EnvFilter::try_new(text).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry().with(filter).with(Queue);
    tracing::subscriber::set_global_default(subscriber).is_ok()
}

/// Reports a failure that has no caller to return it to (a destroy in a `Drop`, a finaliser's
/// helper thread): as a `tracing` error when the process has a subscriber (so it reaches the
/// adapter's handler), else on standard error, so it is never silently lost.
pub fn report_failure(message: &str) {
    if crate::log::has_subscriber() {
        tracing::error!("{message}");
    } else {
        eprintln!("mycelium: {message}");
    }
}

/// The next record, waiting for one (`None` only if the channel could disconnect, which its
/// static sender prevents). Blocks: call it without the GIL or the OCaml runtime lock. One
/// consumer at a time (others wait for it).
pub fn next_record() -> Option<Record> {
    channel().receiver.lock().recv().ok()
}

/// The next record, waiting at most `timeout`.
pub fn next_record_timeout(timeout: Duration) -> Option<Record> {
    channel().receiver.lock().recv_timeout(timeout).ok()
}

/// Records dropped because the consumer fell 10 000 behind (or none was running).
pub fn dropped() -> u64 {
    channel().dropped.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_become_records_with_their_fields() {
        let subscriber = tracing_subscriber::registry().with(Queue);
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "unix:/x", attempts = 3, "cannot connect");
        });
        let record = next_record_timeout(Duration::from_secs(1)).unwrap();
        assert_eq!(record.level, Level::WARN);
        assert!(
            record.target.ends_with("log_forward::tests"),
            "{}",
            record.target
        );
        assert_eq!(record.message, "cannot connect");
        assert_eq!(
            record.fields,
            [
                ("peer".to_owned(), "unix:/x".to_owned()),
                ("attempts".to_owned(), "3".to_owned())
            ]
        );
    }
}
