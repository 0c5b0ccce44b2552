//! `mycelium echo`, `hz`, `record` and `replay` as a user runs them: separate processes joined
//! through socket bridges, a `mycelium bridge --publish-json` process as the bus being observed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_mycelium");
const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml");
const TICK: &str = r#"{"symbol": "BTC-USD", "price": 100.5, "size": 3, "ts_ns": {i}, "side": 1}"#;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mycelium-tools-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn unix(dir: &Path, name: &str) -> String {
    format!("unix:{}", dir.join(name).display())
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A bus to observe: listens at `address` and publishes `count` ticks once someone subscribes.
fn publisher(address: &str, count: u64) -> Child {
    spawn(&[
        "bridge",
        "--schema",
        SCHEMA,
        "--listen",
        address,
        "--publish-json",
        "TradeTick",
        TICK,
        "--count",
        &count.to_string(),
    ])
}

/// Waits at most 30 s, so a tool that never finishes fails the test instead of hanging it.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a mycelium process did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn ts_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(v["message"], "TradeTick");
    v["value"]["ts_ns"].as_u64().unwrap()
}

/// Waits for a Unix socket file, so a client does not race its server's bind.
fn wait_for_socket(address: &str) {
    let path = address.strip_prefix("unix:").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Path::new(path).exists() {
        assert!(Instant::now() < deadline, "{path} never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn echo_prints_each_message_as_a_json_line() {
    let dir = scratch("echo");
    let address = unix(&dir, "bus.sock");
    let bus = publisher(&address, 5);
    wait_for_socket(&address);
    let echo = finish(spawn(&[
        "echo",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--count",
        "5",
    ]));
    assert_eq!(echo.code, 0, "{}", echo.stderr);
    let seen: Vec<u64> = echo.stdout.lines().map(ts_of).collect();
    assert_eq!(seen, [0, 1, 2, 3, 4]);
    assert_eq!(finish(bus).code, 0);
}

#[test]
fn a_recording_replays_the_same_messages_to_another_bus() {
    let dir = scratch("record");
    let (first, second) = (unix(&dir, "first.sock"), unix(&dir, "second.sock"));
    let file = dir.join("ticks.rec");
    let file = file.to_str().unwrap();
    let bus = publisher(&first, 50);
    wait_for_socket(&first);
    let rec = finish(spawn(&[
        "record",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &first,
        "--count",
        "50",
        "--out",
        file,
    ]));
    assert_eq!(rec.code, 0, "{}", rec.stderr);
    assert!(
        rec.stderr.contains("recorded 50 messages"),
        "{}",
        rec.stderr
    );
    assert_eq!(finish(bus).code, 0);
    assert!(std::fs::read(file)
        .unwrap()
        .starts_with(b"MYCELIUM-RECORDING 1\n"));

    // replay listens; echo connects and receives what was recorded, in order
    let replay = spawn(&[
        "replay", file, "--schema", SCHEMA, "--listen", &second, "--speed", "0",
    ]);
    wait_for_socket(&second);
    let echo = finish(spawn(&[
        "echo",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &second,
        "--count",
        "50",
    ]));
    assert_eq!(echo.code, 0, "{}", echo.stderr);
    let seen: Vec<u64> = echo.stdout.lines().map(ts_of).collect();
    assert_eq!(seen, (0..50).collect::<Vec<u64>>());
    let replay = finish(replay);
    assert_eq!(replay.code, 0, "{}", replay.stderr);
    assert!(
        replay.stderr.contains("replayed 50 messages"),
        "{}",
        replay.stderr
    );
}

#[test]
fn hz_counts_the_messages_and_reports_a_rate() {
    let dir = scratch("hz");
    let address = unix(&dir, "bus.sock");
    let bus = publisher(&address, 300);
    wait_for_socket(&address);
    let hz = finish(spawn(&[
        "hz",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--count",
        "300",
        "--json",
    ]));
    assert_eq!(hz.code, 0, "{}", hz.stderr);
    let last: serde_json::Value = serde_json::from_str(hz.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "TradeTick (all)");
    assert_eq!(last["count"], 300);
    assert!(last["rate_hz"].as_f64().unwrap() > 0.0, "{last}");
    assert_eq!(finish(bus).code, 0);
}

#[test]
fn a_recording_of_another_schema_or_another_file_is_refused_with_the_reason() {
    let dir = scratch("refuse");
    let not_a_recording = dir.join("notes.txt");
    std::fs::write(&not_a_recording, "hello\n").unwrap();
    let out = finish(spawn(&[
        "replay",
        not_a_recording.to_str().unwrap(),
        "--schema",
        SCHEMA,
        "--listen",
        &unix(&dir, "x.sock"),
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not a mycelium recording"),
        "{}",
        out.stderr
    );

    // A recording whose header names another schema: the difference is spelled out.
    let other = dir.join("other.yaml");
    std::fs::write(
        &other,
        "schema: other\nversion: 1\nmessages:\n  TradeTick:\n    id: 1\n    fields:\n      - price: f32\n",
    )
    .unwrap();
    let schema = mycelium_protocol::Schema::from_path(&other).unwrap();
    let mut file = Vec::new();
    mycelium_bridge::recording::write_header(
        &mut file,
        &mycelium_bridge::recording::Header {
            schema_digest: schema.digest(),
            schema_canonical: schema.canonical_description(),
            started_unix_ns: 0,
        },
    )
    .unwrap();
    let rec = dir.join("other.rec");
    std::fs::write(&rec, file).unwrap();
    let out = finish(spawn(&[
        "replay",
        rec.to_str().unwrap(),
        "--schema",
        SCHEMA,
        "--listen",
        &unix(&dir, "y.sock"),
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("recorded with another schema"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("TradeTick"), "{}", out.stderr);
}

#[test]
fn an_interrupted_echo_short_of_its_count_exits_3() {
    let dir = scratch("unmet");
    let address = unix(&dir, "bus.sock");
    let echo = spawn(&[
        "echo",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--listen",
        &address,
        "--count",
        "3",
    ]);
    wait_for_socket(&address);
    let status = Command::new("kill")
        .args(["-TERM", &echo.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = finish(echo);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("stopped before 3 messages"),
        "{}",
        out.stderr
    );
}

/// The log filter comes from MYCELIUM_LOG (or RUST_LOG): `error` hides the connector's
/// warnings, the default (info) shows them, a filter that does not parse says so.
#[test]
fn mycelium_log_filters_what_the_tools_log() {
    let run_with = |env: Option<&str>| -> String {
        let mut command = Command::new(BIN);
        command
            .args(["echo", "TradeTick", "--schema", SCHEMA, "--count", "1"])
            .args(["--connect", "unix:/nonexistent-dir/bus.sock"])
            .env_remove("RUST_LOG")
            .env_remove("MYCELIUM_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(filter) = env {
            command.env("MYCELIUM_LOG", filter);
        }
        let child = command.spawn().unwrap();
        // The first attempt fails at once; give it time to be logged, then stop the tool.
        std::thread::sleep(Duration::from_millis(500));
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = finish(child);
        assert_eq!(out.code, 3, "{}", out.stderr);
        out.stderr
    };
    let default = run_with(None);
    assert!(default.contains("bridge cannot connect"), "{default}");
    assert!(default.contains("No such file"), "{default}");
    let quiet = run_with(Some("error"));
    assert!(!quiet.contains("bridge cannot connect"), "{quiet}");
    let typo = run_with(Some("[[["));
    assert!(typo.contains("is not a log filter"), "{typo}");
    assert!(
        typo.contains("bridge cannot connect"),
        "the default applies: {typo}"
    );
}

const ORDER: &str = r#"{"order_id": 42, "symbol": "BTC-USD", "side": 0, "qty": 1, "limit_price": 100.5, "ts_ns": 7}"#;
const APPROVED: &str = r#"{"order_id": 0, "approved": true, "reason": "", "ts_ns": 0}"#;

#[test]
fn request_gets_the_answer_a_reply_process_serves() {
    let dir = scratch("request");
    let address = unix(&dir, "bus.sock");
    let server = spawn(&[
        "reply",
        "RiskCheck",
        APPROVED,
        "--copy",
        "order_id",
        "--schema",
        SCHEMA,
        "--listen",
        &address,
        "--count",
        "2",
    ]);
    wait_for_socket(&address);
    let client = finish(spawn(&[
        "request",
        "RiskCheck",
        ORDER,
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--count",
        "2",
    ]));
    assert_eq!(client.code, 0, "{}", client.stderr);
    let answers: Vec<serde_json::Value> = client
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(answers.len(), 2, "{}", client.stdout);
    for a in &answers {
        assert_eq!(a["service"], "RiskCheck");
        assert_eq!(a["message"], "OrderDecision");
        assert_eq!(a["value"]["order_id"], 42, "--copy order_id: {a}");
        assert_eq!(a["value"]["approved"], true);
    }
    let server = finish(server);
    assert_eq!(server.code, 0, "{}", server.stderr);
    let asked: Vec<serde_json::Value> = server
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(asked.len(), 2);
    assert_eq!(asked[0]["message"], "Order");
    assert_eq!(asked[0]["value"]["limit_price"], 100.5);
}

#[test]
fn request_failures_exit_1_and_say_why() {
    let dir = scratch("request-fail");
    // A responder that fails every request.
    let failing = unix(&dir, "failing.sock");
    let server = spawn(&[
        "reply",
        "RiskCheck",
        "--fail",
        "limit exceeded",
        "--schema",
        SCHEMA,
        "--listen",
        &failing,
        "--count",
        "1",
    ]);
    wait_for_socket(&failing);
    let out = finish(spawn(&[
        "request",
        "RiskCheck",
        ORDER,
        "--schema",
        SCHEMA,
        "--connect",
        &failing,
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("RiskCheck: the responder failed: limit exceeded"),
        "{}",
        out.stderr
    );
    assert_eq!(finish(server).code, 0);

    // A bus where nobody serves it.
    let empty = unix(&dir, "empty.sock");
    let mut bus = spawn(&["bridge", "--schema", SCHEMA, "--listen", &empty]);
    wait_for_socket(&empty);
    let out = finish(spawn(&[
        "request",
        "RiskCheck",
        ORDER,
        "--schema",
        SCHEMA,
        "--connect",
        &empty,
        "--timeout",
        "0.3",
    ]));
    let _ = bus.kill();
    let _ = bus.wait();
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("no responder serves RiskCheck on this bus"),
        "{}",
        out.stderr
    );

    // Bad input is refused before anything is sent: an unknown service, a value of the
    // wrong shape.
    let out = finish(spawn(&[
        "request",
        "RiskChek",
        ORDER,
        "--schema",
        SCHEMA,
        "--connect",
        &empty,
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("no service named 'RiskChek'") && out.stderr.contains("RiskCheck"),
        "{}",
        out.stderr
    );
    let out = finish(spawn(&[
        "request",
        "RiskCheck",
        r#"{"order_id": "x"}"#,
        "--schema",
        SCHEMA,
        "--connect",
        &empty,
    ]));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Order"), "{}", out.stderr);
}

#[test]
fn topics_from_the_command_line() {
    let dir = scratch("topics");
    let address = unix(&dir, "bus.sock");
    let bus = spawn(&[
        "bridge",
        "--schema",
        SCHEMA,
        "--listen",
        &address,
        "--publish-json",
        "TradeTick",
        TICK,
        "--count",
        "3",
        "--topic",
        "ticks/BTC-USD",
    ]);
    wait_for_socket(&address);
    let echo = finish(spawn(&[
        "echo",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--count",
        "3",
        "--pattern",
        "ticks/*",
    ]));
    assert_eq!(echo.code, 0, "{}", echo.stderr);
    for line in echo.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["topic"], "ticks/BTC-USD", "{line}");
    }
    assert_eq!(echo.stdout.lines().count(), 3);
    assert_eq!(finish(bus).code, 0);

    // Malformed ones are usage errors naming the reason.
    let bad = finish(spawn(&[
        "echo",
        "TradeTick",
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--pattern",
        "a/>/b",
    ]));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("before its last segment"),
        "{}",
        bad.stderr
    );
    let bad = finish(spawn(&[
        "bridge",
        "--schema",
        SCHEMA,
        "--connect",
        &address,
        "--publish-json",
        "TradeTick",
        TICK,
        "--topic",
        "ticks//x",
    ]));
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("empty segment"), "{}", bad.stderr);
}
