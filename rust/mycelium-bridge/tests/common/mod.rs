//! Helpers shared by the bridge's integration tests.
// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use mycelium_bridge::{Bridge, BridgeHandle, ConnectConfig, Endpoint, Limits, ListenConfig, Token};
use mycelium_protocol::{Reader, Schema, Writer};
use mycelium_transport::MessageBus;

/// Every wait in these tests is bounded by this; a hang fails instead of blocking CI.
pub const LIMIT: Duration = Duration::from_secs(30);

pub const TRADE_TICK: u16 = 1;
pub const TEXT_MESSAGE: u16 = 2;
pub const ORDER: u16 = 3;

pub fn contracts_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts.yaml")
}

pub fn schema() -> Schema {
    Schema::from_path(contracts_path()).expect("contracts.yaml loads")
}

/// The example schema with `TradeTick.price` changed from f64 to f32.
pub fn changed_schema_yaml() -> String {
    let text = std::fs::read_to_string(contracts_path()).unwrap();
    let changed = text.replacen("- price: f64", "- price: f32", 1);
    assert_ne!(
        changed, text,
        "the example schema changed; update this helper"
    );
    changed
}

pub fn changed_schema() -> Schema {
    Schema::from_yaml_str(&changed_schema_yaml()).unwrap()
}

/// A TradeTick payload whose `ts_ns` carries `seq`, so receivers can check order and
/// duplicates.
pub fn tick(seq: u64) -> Bytes {
    tick_with_symbol(seq, "BTC-USD")
}

pub fn tick_with_symbol(seq: u64, symbol: &str) -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_str(symbol).unwrap();
    w.put_f64(100.5);
    w.put_u32(3);
    w.put_u64(seq);
    w.put_u8(1);
    Bytes::from(out)
}

/// The `ts_ns` of a TradeTick payload.
pub fn seq_of(payload: &[u8]) -> u64 {
    let mut r = Reader::new(payload);
    r.get_str("symbol").unwrap();
    r.get_f64("price").unwrap();
    r.get_u32("size").unwrap();
    r.get_u64("ts_ns").unwrap()
}

/// A TextMessage payload.
pub fn text(body: &str) -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_str("desk").unwrap();
    w.put_str(body).unwrap();
    w.put_u64(0);
    Bytes::from(out)
}

/// Short timeouts so fault tests finish in about a second.
pub fn fast_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(1000),
        idle_timeout: Duration::from_millis(1000),
        write_timeout: Duration::from_millis(1000),
        ..Limits::default()
    }
}

pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits until `bus` has at least `count` subscribers for `type_id` (peers' forwarders
/// count: that is how a test knows a remote subscription has propagated).
pub async fn subscribers_at_least(bus: &MessageBus, type_id: u16, count: usize) {
    let mut watch = bus.watch_subscriptions();
    within("subscribers", async {
        while bus.subscriber_count(type_id) < count {
            watch.changed().await.unwrap();
        }
    })
    .await;
}

pub async fn subscribers_exactly(bus: &MessageBus, type_id: u16, count: usize) {
    let mut watch = bus.watch_subscriptions();
    within("subscriber count", async {
        while bus.subscriber_count(type_id) != count {
            watch.changed().await.unwrap();
        }
    })
    .await;
}

/// Polls `condition` every few milliseconds until it holds (for counters that have no
/// notification of their own).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

pub fn unix_endpoint(dir: &Path, name: &str) -> Endpoint {
    Endpoint::unix(dir.join(name))
}

/// A listening bus and a connected bus over `endpoint`, with the session up.
pub struct Pair {
    pub server_bus: MessageBus,
    pub client_bus: MessageBus,
    pub server: BridgeHandle,
    pub client: BridgeHandle,
}

pub async fn pair(endpoint: Endpoint, limits: Limits, token: Option<Token>) -> Pair {
    let schema = schema();
    let server_bus = MessageBus::new();
    let client_bus = MessageBus::new();
    let mut listen = ListenConfig::new([endpoint]).with_limits(limits.clone());
    listen.token = token.clone();
    listen.name = "server".into();
    let server = Bridge::listen(&server_bus, &schema, listen).await.unwrap();
    let mut connect = ConnectConfig::new(server.endpoints()[0].clone()).with_limits(limits);
    connect.token = token;
    connect.name = "client".into();
    let client = Bridge::connect(&client_bus, &schema, connect)
        .await
        .unwrap();
    assert!(within("the session", client.wait_for_sessions(1)).await);
    assert!(within("the session", server.wait_for_sessions(1)).await);
    Pair {
        server_bus,
        client_bus,
        server,
        client,
    }
}

/// Runs a blocking wait without stalling the async tasks of a multi-threaded test runtime
/// (outside a runtime it simply runs `f`).
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}

/// A child process killed when dropped, with its stdout lines readable with a timeout.
pub struct ChildProcess {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Collected by a thread, so a chatty child never blocks on a full pipe.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

pub fn bridge_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mycelium-bridge"));
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

impl ChildProcess {
    pub fn spawn(mut command: Command) -> ChildProcess {
        let mut child = command.spawn().expect("the mycelium-bridge binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        ChildProcess {
            child,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// The next stdout line, waiting at most [`LIMIT`]; `None` once stdout closed.
    pub fn line(&self) -> Option<String> {
        match blocking(|| self.lines.recv_timeout(LIMIT)) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no output from the child within {LIMIT:?}")
            }
        }
    }

    /// Reads lines until one starts with `prefix`; returns the rest of it.
    pub fn line_starting(&self, prefix: &str) -> String {
        loop {
            match self.line() {
                Some(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                None => panic!("the child ended without printing '{prefix}'"),
            }
        }
    }

    /// Waits for the exit (bounded) and returns the status and standard error.
    pub fn finish(self) -> (std::process::ExitStatus, String) {
        blocking(|| self.wait_for_exit())
    }

    fn wait_for_exit(mut self) -> (std::process::ExitStatus, String) {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if let Some(reader) = self.stderr_reader.take() {
                    reader.join().unwrap();
                }
                let stderr = self.stderr.lock().unwrap().clone();
                return (status, stderr);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the child did not exit"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM (what Ctrl-C or a service manager's stop does); the child shuts down
    /// gracefully.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Every remaining stdout line, until the child closes it.
    pub fn remaining_lines(&self) -> Vec<String> {
        std::iter::from_fn(|| self.line()).collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
