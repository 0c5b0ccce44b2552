//! The bridge between separate processes: the `mycelium-bridge` binary (the same code as
//! `mycelium bridge`) as a child, this test process as its peer.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use mycelium_bridge::{Bridge, ConnectConfig, Endpoint, ListenConfig, Token, Topology};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions, TryRecvError};

fn options() -> SubscribeOptions {
    SubscribeOptions::new(4096, OverflowPolicy::Block)
}

fn tick_json() -> &'static str {
    r#"{"symbol": "BTC-USD", "price": 100.5, "size": 3, "ts_ns": {i}, "side": 1}"#
}

/// A child that listens on `endpoint` and publishes `count` ticks numbered from `start`.
fn publishing_server(endpoint: &str, start: u64, count: u64, stay: bool) -> ChildProcess {
    let mut command = bridge_command();
    command
        .arg("--schema")
        .arg(contracts_path())
        .args(["--listen", endpoint]);
    command.args(["--publish-json", "TradeTick", tick_json()]);
    command.args(["--count", &count.to_string(), "--start", &start.to_string()]);
    if stay {
        command.arg("--stay");
    }
    ChildProcess::spawn(command)
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_process_publishes_to_this_one_through_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let child = publishing_server(&format!("unix:{}", path.display()), 0, 500, false);
    assert_eq!(
        child.line_starting("listening "),
        format!("unix:{}", path.display())
    );

    let bus = MessageBus::new();
    let ticks = bus.subscribe_raw(TRADE_TICK, options());
    let client = Bridge::connect(&bus, &schema(), ConnectConfig::new(Endpoint::unix(&path)))
        .await
        .unwrap();
    for seq in 0..500 {
        assert_eq!(
            seq_of(&within("a tick", ticks.recv()).await.unwrap().payload),
            seq
        );
    }
    assert_eq!(child.line_starting("published "), "500");
    let (status, stderr) = child.finish();
    assert!(status.success(), "{stderr}");
    assert!(!path.exists(), "the child removed its socket on exit");
    eventually("the goodbye", || client.stats().closed.len() == 1).await;
    assert!(client.stats().closed[0].reason.contains("shutting down"));
    assert_eq!(client.stats().messages_in, 500);
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_process_publishes_to_a_child_over_tcp_and_both_counts_agree() {
    let mut command = bridge_command();
    command.arg("--schema").arg(contracts_path());
    command.args(["--listen", "tcp:127.0.0.1:0", "--subscribe", "TradeTick"]);
    command.args(["--expect", "3000", "--quiet", "--stats"]);
    let child = ChildProcess::spawn(command);
    let address = child.line_starting("listening tcp:");
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    let bus = MessageBus::new();
    let client = Bridge::connect(
        &bus,
        &schema(),
        ConnectConfig::new(Endpoint::tcp(address).unwrap()),
    )
    .await
    .unwrap();
    subscribers_at_least(&bus, TRADE_TICK, 1).await;
    for seq in 0..3000 {
        bus.publish_raw_async(TRADE_TICK, tick(seq)).await.unwrap();
    }
    assert_eq!(child.line_starting("received "), "3000");
    let stats: serde_json::Value = serde_json::from_str(&child.line_starting("stats ")).unwrap();
    let (status, stderr) = child.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(stats["messages_in"], 3000);
    assert_eq!(stats["unrequested"], 0);
    assert_eq!(client.stats().messages_out, 3000);
    assert_eq!(bus.metrics().type_metrics(TRADE_TICK).unwrap().dropped, 0);
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reconnect_when_the_server_process_restarts_and_get_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    let address = format!("unix:{}", path.display());
    let mut first = publishing_server(&address, 0, 100, true);
    first.line_starting("listening ");

    let bus = MessageBus::new();
    let ticks = bus.subscribe_raw(TRADE_TICK, options());
    let mut config = ConnectConfig::new(Endpoint::unix(&path));
    config.backoff.min = Duration::from_millis(20);
    config.backoff.max = Duration::from_millis(200);
    let client = Bridge::connect(&bus, &schema(), config).await.unwrap();
    let mut seen = HashSet::new();
    for _ in 0..100 {
        assert!(seen.insert(seq_of(
            &within("a tick", ticks.recv()).await.unwrap().payload
        )));
    }
    first.line_starting("published ");
    // SIGKILL: no goodbye, and the socket file is left behind.
    first.kill();
    eventually("the client to notice the cut", || {
        client.stats().active_sessions == 0
    })
    .await;
    assert!(path.exists());

    let second = publishing_server(&address, 100, 100, true);
    second.line_starting("listening ");
    for _ in 0..100 {
        let seq = seq_of(&within("a tick", ticks.recv()).await.unwrap().payload);
        assert!(seen.insert(seq), "{seq} delivered twice");
    }
    second.line_starting("published ");
    assert_eq!(seen, (0..200).collect::<HashSet<u64>>());
    assert_eq!(client.stats().reconnects, 1);
    client.close_and_join().await.unwrap();
    assert_eq!(
        ticks.try_recv().map(|e| seq_of(&e.payload)),
        Err(TryRecvError::Empty)
    );
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_mid_stream_closes_only_its_own_session() {
    let dir = tempfile::tempdir().unwrap();
    let bus = MessageBus::new();
    let server = Bridge::listen(
        &bus,
        &schema(),
        ListenConfig::new([unix_endpoint(dir.path(), "bus.sock")]),
    )
    .await
    .unwrap();
    let ticks = bus.subscribe_raw(TRADE_TICK, options());
    let flood = |count: u64| {
        let mut command = bridge_command();
        command.arg("--schema").arg(contracts_path());
        command
            .arg("--connect")
            .arg(server.endpoints()[0].to_string());
        let symbol = "S".repeat(8 * 1024);
        let json =
            format!(r#"{{"symbol": "{symbol}", "price": 1.0, "size": 1, "ts_ns": 0, "side": 0}}"#);
        command.args([
            "--publish-json",
            "TradeTick",
            &json,
            "--count",
            &count.to_string(),
        ]);
        ChildProcess::spawn(command)
    };
    // 8 KiB frames flowing as fast as the socket allows: the kill lands inside one.
    let mut victim = flood(1_000_000);
    for _ in 0..200 {
        within("a tick from the victim", ticks.recv())
            .await
            .unwrap();
    }
    victim.kill();
    eventually("the session to close", || server.stats().closed.len() == 1).await;
    let reason = server.stats().closed[0].reason.clone();
    assert!(
        reason.contains("in the middle of a frame")
            || reason.contains("the peer closed the connection"),
        "{reason}"
    );
    // Drain what the victim got through, then a new peer works as before.
    while ticks.try_recv().is_ok() {}
    let survivor = flood(10);
    for _ in 0..10 {
        within("a tick from the survivor", ticks.recv())
            .await
            .unwrap();
    }
    let (status, stderr) = survivor.finish();
    assert!(status.success(), "{stderr}");
    assert_eq!(server.stats().sessions, 2);
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_mismatch_across_processes_is_explained_on_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.yaml");
    std::fs::write(&changed, changed_schema_yaml()).unwrap();
    let bus = MessageBus::new();
    let server = Bridge::listen(
        &bus,
        &schema(),
        ListenConfig::new([unix_endpoint(dir.path(), "bus.sock")]),
    )
    .await
    .unwrap();
    let mut command = bridge_command();
    command.arg("--schema").arg(&changed);
    command
        .arg("--connect")
        .arg(server.endpoints()[0].to_string());
    let (status, stderr) = ChildProcess::spawn(command).finish();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("schema mismatch"), "{stderr}");
    assert!(
        stderr.contains("TradeTick: field price f32 -> f64"),
        "{stderr}"
    );
    eventually("the server's rejection", || server.stats().rejected == 1).await;
    let rejection = server.stats().rejections[0].reason.clone();
    assert!(
        rejection.contains("TradeTick: field price f64 -> f32"),
        "{rejection}"
    );
}

// Multi-threaded: reading the child's output blocks one worker while the bridge runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_file_configures_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.token"), "hunter2\n").unwrap();
    let topology = format!(
        "schema: {}\nname: topo-child\nlisten: [unix:bus.sock]\ntoken_file: secret.token\n\
         socket_mode: \"0600\"\nlimits: {{ idle_timeout_ms: 5000, overflow: block }}\n",
        contracts_path().display()
    );
    let file = dir.path().join("topology.yaml");
    std::fs::write(&file, topology).unwrap();
    let parsed = Topology::from_path(&file).unwrap();
    assert_eq!(parsed.listen, [Endpoint::unix(dir.path().join("bus.sock"))]);

    let mut command = bridge_command();
    command.arg("--config").arg(&file);
    command.args(["--subscribe", "TradeTick", "--expect", "5", "--quiet"]);
    let child = ChildProcess::spawn(command);
    child.line_starting("listening ");

    let bus = MessageBus::new();
    let config = ConnectConfig::new(Endpoint::unix(dir.path().join("bus.sock")))
        .with_token(Token::new(b"hunter2".to_vec()).unwrap());
    let client = Bridge::connect(&bus, &schema(), config).await.unwrap();
    subscribers_at_least(&bus, TRADE_TICK, 1).await;
    for seq in 0..5 {
        bus.publish_raw_async(TRADE_TICK, tick(seq)).await.unwrap();
    }
    assert_eq!(child.line_starting("received "), "5");
    let (status, stderr) = child.finish();
    assert!(status.success(), "{stderr}");
    // The name from the topology file is what the peer knows the child by.
    eventually("the child's goodbye", || client.stats().closed.len() == 1).await;
    let closed = &client.stats().closed[0];
    assert!(closed.peer.starts_with("topo-child "), "{closed:?}");
}

#[test]
fn the_example_topology_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/bridge/topology.yaml");
    let topology = Topology::from_path(&path).unwrap();
    assert!(!topology.listen.is_empty());
    assert!(topology.schema.is_some_and(|p| p.exists()));
}

#[test]
fn usage_mistakes_exit_1_with_a_message() {
    let cases: [(&[&str], &str); 3] = [
        (&["--listen", "unix:/tmp/x.sock"], "no schema"),
        (
            &[
                "--schema",
                "/nonexistent.yaml",
                "--listen",
                "unix:/tmp/x.sock",
            ],
            "/nonexistent.yaml",
        ),
        (
            &[
                "--schema",
                "CONTRACTS",
                "--listen",
                "unix:/tmp/x.sock",
                "--subscribe",
                "Nope",
            ],
            "no message named 'Nope'",
        ),
    ];
    for (args, expected) in cases {
        let mut command = bridge_command();
        for arg in args {
            if *arg == "CONTRACTS" {
                command.arg(contracts_path());
            } else {
                command.arg(arg);
            }
        }
        let (status, stderr) = ChildProcess::spawn(command).finish();
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// A test client that is stopped before its `--expect` is reached must not look successful: a
/// CI smoke test would otherwise pass having received nothing.
#[test]
fn an_interrupted_subscriber_short_of_its_expectation_exits_3_and_says_how_far_it_got() {
    let mut command = bridge_command();
    command.arg("--schema").arg(contracts_path());
    command.args(["--listen", "tcp:127.0.0.1:0", "--subscribe", "TradeTick"]);
    command.args(["--expect", "5"]);
    let child = ChildProcess::spawn(command);
    child.line_starting("listening tcp:");
    child.terminate();
    assert_eq!(child.line_starting("received "), "0");
    let (status, stderr) = child.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("received 0 of --expect 5"), "{stderr}");
}

#[test]
fn an_interrupted_publisher_short_of_its_count_exits_3() {
    let mut command = bridge_command();
    command.arg("--schema").arg(contracts_path());
    command.args(["--listen", "tcp:127.0.0.1:0"]);
    command.args(["--publish-json", "TradeTick", tick_json(), "--count", "5"]);
    let child = ChildProcess::spawn(command);
    child.line_starting("listening tcp:");
    // nobody subscribes, so it waits for a subscriber until stopped
    child.terminate();
    assert_eq!(child.line_starting("published "), "0");
    let (status, stderr) = child.finish();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("published 0 of --count 5"), "{stderr}");
}

#[test]
fn an_interrupted_subscriber_without_an_expectation_exits_0() {
    let mut command = bridge_command();
    command.arg("--schema").arg(contracts_path());
    command.args(["--listen", "tcp:127.0.0.1:0", "--subscribe", "TradeTick"]);
    let child = ChildProcess::spawn(command);
    child.line_starting("listening tcp:");
    child.terminate();
    assert_eq!(child.line_starting("received "), "0");
    let (status, stderr) = child.finish();
    assert!(status.success(), "{stderr}");
}

/// With --json, standard output holds nothing but JSON objects, each naming its event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_mode_prints_only_json_objects_with_an_event() {
    let mut command = bridge_command();
    command.arg("--schema").arg(contracts_path());
    command.args(["--listen", "tcp:127.0.0.1:0", "--subscribe", "TradeTick"]);
    command.args(["--expect", "2", "--stats", "--json"]);
    let child = ChildProcess::spawn(command);
    let first: serde_json::Value = serde_json::from_str(&child.line().unwrap()).unwrap();
    assert_eq!(first["event"], "listening");
    let endpoint = first["endpoint"].as_str().unwrap().to_owned();
    let address = endpoint.strip_prefix("tcp:").unwrap();

    let bus = MessageBus::new();
    let client = Bridge::connect(
        &bus,
        &schema(),
        ConnectConfig::new(Endpoint::tcp(address).unwrap()),
    )
    .await
    .unwrap();
    subscribers_at_least(&bus, TRADE_TICK, 1).await;
    for seq in 0..2 {
        bus.publish_raw_async(TRADE_TICK, tick(seq)).await.unwrap();
    }
    let lines = blocking(|| child.remaining_lines());
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["message", "message", "received", "stats"],
        "{lines:?}"
    );
    assert_eq!(events[2]["count"], 2);
    assert_eq!(events[0]["message"], "TradeTick");
    let (status, stderr) = child.finish();
    assert!(status.success(), "{stderr}");
    client.close_and_join().await.unwrap();
}
