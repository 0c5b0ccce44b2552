//! Counters of one bridge (all its connections) and the plain snapshot they are read into.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;

/// Recent rejections and closes kept for the snapshot; older ones are only counted.
const RECENT: usize = 32;

/// A connection that did not become a session, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The peer: its address, or its name once known.
    pub peer: String,
    /// Why, in words a user can act on.
    pub reason: String,
}

/// A session that ended, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClosedSession {
    /// The peer's name and address.
    pub peer: String,
    /// Why it ended ("closed by this side" for a normal shutdown).
    pub reason: String,
}

/// What a bridge has done so far, over all its connections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BridgeStats {
    /// Frames received after the handshake (messages and control frames).
    pub frames_in: u64,
    /// Frames sent after the handshake.
    pub frames_out: u64,
    /// Bytes of those frames, headers included.
    pub bytes_in: u64,
    /// Bytes of those frames, headers included.
    pub bytes_out: u64,
    /// Messages received, validated and published on the local bus.
    pub messages_in: u64,
    /// Messages sent to peers.
    pub messages_out: u64,
    /// Valid messages received for a type this side had just unsubscribed from (discarded).
    pub unrequested: u64,
    /// Sessions established (handshake done).
    pub sessions: u64,
    /// Sessions established by a connector after its first one.
    pub reconnects: u64,
    /// Sessions open now.
    pub active_sessions: u64,
    /// Connections refused by this side, or refusals received from the peer.
    pub rejected: u64,
    /// Connection attempts that failed before a handshake (connector only).
    pub connect_failures: u64,
    /// Why the most recent connection attempt failed ("connect unix:/x.sock: No such file or
    /// directory"), until a session starts; `None` when none failed since.
    pub last_connect_failure: Option<String>,
    /// The most recent rejections, oldest first.
    pub rejections: Vec<Rejection>,
    /// The most recently ended sessions, oldest first.
    pub closed: Vec<ClosedSession>,
}

/// Whether the bridge runs and how many sessions it has; waited on by the handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub active: u64,
    pub stopped: bool,
}

pub(crate) struct Stats {
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub unrequested: AtomicU64,
    pub sessions: AtomicU64,
    pub reconnects: AtomicU64,
    pub rejected: AtomicU64,
    pub connect_failures: AtomicU64,
    pub last_connect_failure: Mutex<Option<String>>,
    rejections: Mutex<VecDeque<Rejection>>,
    closed: Mutex<VecDeque<ClosedSession>>,
    pub state: watch::Sender<State>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            unrequested: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            last_connect_failure: Mutex::new(None),
            rejections: Mutex::new(VecDeque::new()),
            closed: Mutex::new(VecDeque::new()),
            state: watch::Sender::new(State::default()),
        }
    }
}

impl std::fmt::Debug for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.snapshot().fmt(f)
    }
}

fn push_recent<T>(list: &Mutex<VecDeque<T>>, item: T) {
    let mut list = list.lock();
    if list.len() == RECENT {
        list.pop_front();
    }
    list.push_back(item);
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Stats {
    pub(crate) fn reject(&self, peer: String, reason: String) {
        bump(&self.rejected, 1);
        push_recent(&self.rejections, Rejection { peer, reason });
    }

    pub(crate) fn session_started(&self) {
        bump(&self.sessions, 1);
        self.state.send_modify(|s| s.active += 1);
    }

    pub(crate) fn session_ended(&self, peer: String, reason: String) {
        push_recent(&self.closed, ClosedSession { peer, reason });
        self.state
            .send_modify(|s| s.active = s.active.saturating_sub(1));
    }

    pub(crate) fn stopped(&self) {
        self.state.send_modify(|s| s.stopped = true);
    }

    pub(crate) fn snapshot(&self) -> BridgeStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            frames_in: load(&self.frames_in),
            frames_out: load(&self.frames_out),
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            messages_in: load(&self.messages_in),
            messages_out: load(&self.messages_out),
            unrequested: load(&self.unrequested),
            sessions: load(&self.sessions),
            reconnects: load(&self.reconnects),
            active_sessions: self.state.borrow().active,
            rejected: load(&self.rejected),
            connect_failures: load(&self.connect_failures),
            last_connect_failure: self.last_connect_failure.lock().clone(),
            rejections: self.rejections.lock().iter().cloned().collect(),
            closed: self.closed.lock().iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_lists_keep_the_newest_and_counters_keep_everything() {
        let stats = Stats::default();
        for i in 0..(RECENT + 5) {
            stats.reject(format!("peer{i}"), "bad token".into());
        }
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.rejected, (RECENT + 5) as u64);
        assert_eq!(snapshot.rejections.len(), RECENT);
        assert_eq!(snapshot.rejections[0].peer, "peer5");

        stats.session_started();
        stats.session_started();
        stats.session_ended("a".into(), "idle".into());
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.sessions, snapshot.active_sessions), (2, 1));
        assert_eq!(snapshot.closed[0].reason, "idle");
    }
}

/// Bridges' counters in the Prometheus text format, one series per bridge labelled `bridge`
/// (its endpoints, e.g. "unix:/run/bus.sock"), to append to the bus's own
/// [`MetricsSnapshot::to_prometheus`](mycelium_transport::MetricsSnapshot::to_prometheus).
/// Empty when there are no bridges.
pub fn bridges_prometheus(bridges: &[(String, BridgeStats)]) -> String {
    use std::fmt::Write;
    type Get = fn(&BridgeStats) -> u64;
    let series: [(&str, &str, &str, Get); 11] = [
        (
            "sessions_total",
            "counter",
            "Sessions that completed the handshake.",
            |s| s.sessions,
        ),
        ("active_sessions", "gauge", "Sessions open now.", |s| {
            s.active_sessions
        }),
        (
            "reconnects_total",
            "counter",
            "Sessions started after an earlier one ended (connector).",
            |s| s.reconnects,
        ),
        (
            "connect_failures_total",
            "counter",
            "Connection attempts that failed before a handshake.",
            |s| s.connect_failures,
        ),
        (
            "rejected_total",
            "counter",
            "Handshakes refused by this side or by the peer.",
            |s| s.rejected,
        ),
        (
            "messages_in_total",
            "counter",
            "Messages received from peers and published locally.",
            |s| s.messages_in,
        ),
        (
            "messages_out_total",
            "counter",
            "Messages sent to peers.",
            |s| s.messages_out,
        ),
        (
            "bytes_in_total",
            "counter",
            "Bytes received from peers.",
            |s| s.bytes_in,
        ),
        ("bytes_out_total", "counter", "Bytes sent to peers.", |s| {
            s.bytes_out
        }),
        (
            "frames_in_total",
            "counter",
            "Frames received after the handshake.",
            |s| s.frames_in,
        ),
        (
            "unrequested_total",
            "counter",
            "Messages a peer sent for a type nobody here subscribes to.",
            |s| s.unrequested,
        ),
    ];
    let mut out = String::new();
    if bridges.is_empty() {
        return out;
    }
    for (suffix, kind, help, get) in series {
        let name = format!("mycelium_bridge_{suffix}");
        // Writing into a String cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (bridge, stats) in bridges {
            let label = mycelium_transport::prometheus_escape_label(bridge);
            let _ = writeln!(out, "{name}{{bridge=\"{label}\"}} {}", get(stats));
        }
    }
    out
}

#[cfg(test)]
mod prometheus_tests {
    use super::*;

    #[test]
    fn bridge_counters_render_once_per_family_and_per_bridge() {
        let a = BridgeStats {
            reconnects: 3,
            connect_failures: 5,
            ..Default::default()
        };
        let b = BridgeStats {
            sessions: 2,
            ..Default::default()
        };
        let text = bridges_prometheus(&[
            ("tcp:127.0.0.1:7000".into(), a),
            ("unix:/run/\"odd\".sock".into(), b),
        ]);
        assert!(
            text.contains("mycelium_bridge_reconnects_total{bridge=\"tcp:127.0.0.1:7000\"} 3\n")
        );
        assert!(text
            .contains("mycelium_bridge_connect_failures_total{bridge=\"tcp:127.0.0.1:7000\"} 5\n"));
        assert!(text
            .contains("mycelium_bridge_sessions_total{bridge=\"unix:/run/\\\"odd\\\".sock\"} 2\n"));
        assert_eq!(
            text.matches("# TYPE mycelium_bridge_reconnects_total counter")
                .count(),
            1
        );
        assert_eq!(bridges_prometheus(&[]), "");
    }
}
