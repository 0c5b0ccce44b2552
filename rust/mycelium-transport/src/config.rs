//! Bus-wide and per-subscriber settings.

use std::time::Duration;

use serde::Serialize;

/// Largest payload the bus accepts unless [`BusConfig::max_payload`] says otherwise.
///
/// The wire format's own limit ([`mycelium_protocol::MAX_PAYLOAD`], 16 MiB), so anything the
/// bus accepts can also cross a socket bridge in one frame.
pub const DEFAULT_MAX_PAYLOAD: usize = mycelium_protocol::MAX_PAYLOAD;

/// Queue capacity used by [`SubscribeOptions::default`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Largest queue capacity a subscriber may ask for.
///
/// Queues grow as messages arrive (nothing is allocated up front), so the limit bounds what a
/// consumer that stopped reading can hold, not what subscribing costs; 1 Mi messages is far
/// beyond what a consumer that keeps up needs. A larger capacity is refused, never clamped.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// Longest spin a subscriber may ask for ([`SubscribeOptions::spin`]).
///
/// Spinning burns a core; past a few hundred microseconds sleeping costs less than it saves,
/// and 10 ms keeps a mistaken unit (seconds for microseconds) from pinning a CPU for good.
pub const MAX_SPIN: Duration = Duration::from_millis(10);

/// What a publish does when one subscriber's queue is full. Chosen per subscriber, so a slow
/// audit log can block publishers while a UI feed just keeps the latest values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowPolicy {
    /// The publisher waits until the subscriber makes room (back-pressure). A synchronous
    /// publish blocks its thread; an async publish awaits.
    #[default]
    Block,
    /// The oldest queued message is evicted (and counted as dropped) to make room, so the
    /// subscriber always sees the newest messages.
    DropOldest,
    /// The new message is not queued for this subscriber (counted as dropped) and the publish
    /// returns [`PublishError::QueueFull`](crate::PublishError::QueueFull); the other
    /// subscribers still receive it.
    #[serde(rename = "fail")]
    FailPublish,
}

impl OverflowPolicy {
    /// Every policy, in the order of their C values (`MYCELIUM_OVERFLOW_*`).
    pub const ALL: [OverflowPolicy; 3] = [
        OverflowPolicy::Block,
        OverflowPolicy::DropOldest,
        OverflowPolicy::FailPublish,
    ];

    /// The policy's one name, the same everywhere: metrics, the `mycelium bridge` flag and
    /// topology files, the demo, Python's `policy=` strings; C's `MYCELIUM_OVERFLOW_BLOCK`,
    /// `_DROP_OLDEST` and `_FAIL` say the same words.
    pub fn as_str(self) -> &'static str {
        match self {
            OverflowPolicy::Block => "block",
            OverflowPolicy::DropOldest => "drop_oldest",
            OverflowPolicy::FailPublish => "fail",
        }
    }

    /// Parses a policy name. Older spellings (`fail_publish`, `drop-oldest`, any case) are
    /// still accepted and come back with a deprecation note naming the current one.
    ///
    /// # Errors
    /// An unknown name, with the accepted ones listed.
    pub fn from_name(name: &str) -> Result<(OverflowPolicy, Option<String>), String> {
        if let Some(p) = Self::ALL.into_iter().find(|p| p.as_str() == name) {
            return Ok((p, None));
        }
        let folded = name.trim().to_ascii_lowercase().replace('-', "_");
        let old = match folded.as_str() {
            "fail_publish" => Some(OverflowPolicy::FailPublish),
            other => Self::ALL.into_iter().find(|p| p.as_str() == other),
        };
        match old {
            Some(p) => Ok((
                p,
                Some(format!(
                    "overflow policy '{name}' is an old spelling; write '{}'",
                    p.as_str()
                )),
            )),
            None => Err(format!(
                "unknown overflow policy '{name}' (expected block, drop_oldest or fail)"
            )),
        }
    }
}

/// How a new subscription queues messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Maximum number of messages queued for this subscriber, `1..=MAX_QUEUE_CAPACITY`.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub policy: OverflowPolicy,
    /// Free-form name shown in metrics and errors, e.g. `"python:telemetry-ui"`.
    pub label: Option<String>,
    /// How long a blocked receiver (`recv_blocking`, `recv_timeout`, and so the C ABI's
    /// delivery threads and pull receivers) may poll its empty queue before it goes to sleep;
    /// at most [`MAX_SPIN`]. Zero (the default) sleeps after a brief back-off of ~14 µs.
    ///
    /// Waking a sleeping thread costs a context switch, and on a virtual machine whose CPUs
    /// idle it can cost tens of microseconds; a receiver that spins across the gap between two
    /// messages skips both. The spin adapts, as adaptive mutexes do: one that caught a message
    /// doubles the next (up to this value), one that ran out halves it (down to 1/64 of it),
    /// so an oversubscribed machine or sparse traffic costs little. The price is a busy core
    /// while it spins: use it for a few latency-critical subscriptions on a machine with a core
    /// to spare. It does nothing for throughput.
    pub spin: Duration,
    /// Only messages published with a topic this pattern matches (see docs/topics.md); `None`
    /// (the default) receives every message of the type, with a topic or without.
    pub pattern: Option<crate::TopicPattern>,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        SubscribeOptions {
            capacity: DEFAULT_QUEUE_CAPACITY,
            policy: OverflowPolicy::default(),
            label: None,
            spin: Duration::ZERO,
            pattern: None,
        }
    }
}

impl SubscribeOptions {
    /// Options with the given capacity and policy and no label.
    pub fn new(capacity: usize, policy: OverflowPolicy) -> Self {
        SubscribeOptions {
            capacity,
            policy,
            label: None,
            spin: Duration::ZERO,
            pattern: None,
        }
    }

    /// Receives only messages published with a topic `pattern` matches (`ticks/*`,
    /// `camera/>`); messages published without a topic do not match any pattern.
    pub fn with_pattern(mut self, pattern: crate::TopicPattern) -> Self {
        self.pattern = Some(pattern);
        self
    }

    /// Sets the label shown in metrics and errors.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the queue capacity.
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets how long a blocked receiver spins before it sleeps (see [`spin`](Self::spin)).
    pub fn with_spin(mut self, spin: Duration) -> Self {
        self.spin = spin;
        self
    }

    /// Sets the overflow policy.
    pub fn with_policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }
}

/// Bus-wide limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// Largest payload, in bytes, that a publish accepts.
    pub max_payload: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            max_payload: DEFAULT_MAX_PAYLOAD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_name_per_policy_and_old_spellings_come_with_a_note() {
        for p in OverflowPolicy::ALL {
            assert_eq!(OverflowPolicy::from_name(p.as_str()), Ok((p, None)));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", p.as_str()),
                "metrics use the same name"
            );
        }
        for (old, p) in [
            ("fail_publish", OverflowPolicy::FailPublish),
            ("drop-oldest", OverflowPolicy::DropOldest),
            ("BLOCK", OverflowPolicy::Block),
        ] {
            let (got, note) = OverflowPolicy::from_name(old).unwrap();
            assert_eq!(got, p);
            assert!(note.unwrap().contains(&format!("write '{}'", p.as_str())));
        }
        let err = OverflowPolicy::from_name("newest").unwrap_err();
        assert!(err.contains("block, drop_oldest or fail"), "{err}");
    }
}
