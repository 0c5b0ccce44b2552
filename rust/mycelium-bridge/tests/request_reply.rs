//! Request/reply across a real socket bridge (two buses in one process, a Unix socket between
//! them): the responder is on one side, the requester on the other. Includes a responder whose
//! side disconnects mid-request (the requester gets `ResponderFailed` at once, not a hang),
//! timeouts, failures, and concurrent requesters.
//!
//! Requests that must end at once use an hour-long timeout: a regression shows up as the
//! `within` limit failing the test, never as a pass.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use mycelium_bridge::{Bridge, ConnectConfig, Endpoint, Limits, ListenConfig};
use mycelium_protocol::Reader;
use mycelium_transport::{MessageBus, RequestError, ServeOptions};

/// The test service: a TradeTick asks, a TextMessage answers with the tick's `ts_ns`.
const REQ: u16 = TRADE_TICK;
const REP: u16 = TEXT_MESSAGE;
const LONG: Duration = Duration::from_secs(3600);

fn body_of(text_payload: &[u8]) -> String {
    let mut r = Reader::new(text_payload);
    r.get_str("sender").unwrap();
    r.get_str("body").unwrap().to_owned()
}

/// Waits until `bus` counts at least `count` responders of the test service (a proxy for a
/// remote responder counts: that is how a test knows the peer's serve frame arrived).
async fn responders_at_least(bus: &MessageBus, count: usize) {
    let mut watch = bus.watch_subscriptions();
    within("responders", async {
        while bus.responder_count(REQ, REP) < count {
            watch.changed().await.unwrap();
        }
    })
    .await;
}

async fn responders_exactly(bus: &MessageBus, count: usize) {
    let mut watch = bus.watch_subscriptions();
    within("responder count", async {
        while bus.responder_count(REQ, REP) != count {
            watch.changed().await.unwrap();
        }
    })
    .await;
}

fn echo_seq(payload: Bytes) -> Result<Bytes, String> {
    let seq = seq_of(&payload);
    if seq == 666 {
        return Err(format!("tick {seq} is refused"));
    }
    Ok(text(&format!("seq {seq}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_by_a_responder_across_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    // Nobody serves yet, on either side: at once.
    assert!(matches!(
        within(
            "no responder",
            p.client_bus.request_raw_async(REQ, REP, tick(1), LONG)
        )
        .await,
        Err(RequestError::NoResponder { .. })
    ));
    let guard = p
        .server_bus
        .serve_raw_with(REQ, REP, ServeOptions::default(), echo_seq);
    responders_at_least(&p.client_bus, 1).await;
    let reply = within(
        "a reply",
        p.client_bus.request_raw_async(REQ, REP, tick(42), LONG),
    )
    .await
    .unwrap();
    assert_eq!(body_of(&reply), "seq 42");
    // The handler's failure crosses with its reason; the responder stays.
    assert_eq!(
        within(
            "a failure",
            p.client_bus.request_raw_async(REQ, REP, tick(666), LONG)
        )
        .await,
        Err(RequestError::ResponderFailed {
            reason: "tick 666 is refused".into()
        })
    );
    // Requests do not reach subscribers, and the reply type is not broadcast either.
    let texts = p.client_bus.subscribe_raw(
        TEXT_MESSAGE,
        mycelium_transport::SubscribeOptions::default(),
    );
    let reply = within(
        "a second reply",
        p.client_bus.request_raw_async(REQ, REP, tick(7), LONG),
    )
    .await
    .unwrap();
    assert_eq!(body_of(&reply), "seq 7");
    assert!(texts.try_recv().is_err(), "a reply reached a subscriber");
    // Metrics on both sides: the client's service counted the requests, the server's too
    // (made there on the client's behalf).
    let client = p.client_bus.metrics();
    let c = client.service(REQ, REP).unwrap();
    assert_eq!((c.requests, c.replies, c.responder_failures), (4, 2, 1));
    let server = p.server_bus.metrics();
    let s = server.service(REQ, REP).unwrap();
    assert_eq!((s.requests, s.replies, s.responder_failures), (3, 2, 1));
    // Stopping the responder propagates: the client's proxy goes away.
    drop(guard);
    responders_exactly(&p.client_bus, 0).await;
    assert!(matches!(
        p.client_bus
            .request_raw_async(REQ, REP, tick(1), LONG)
            .await,
        Err(RequestError::NoResponder { .. })
    ));
    p.client.close_and_join().await.unwrap();
    p.server.close_and_join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_side_that_disconnects_mid_request_fails_the_request_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    // A responder that takes the request and never answers.
    let silent = p.server_bus.serve_raw(REQ, REP, ServeOptions::default());
    responders_at_least(&p.client_bus, 1).await;
    let requester = {
        let bus = p.client_bus.clone();
        tokio::spawn(async move { bus.request_raw_async(REQ, REP, tick(5), LONG).await })
    };
    let held = within("the request on the far side", silent.recv())
        .await
        .unwrap();
    assert_eq!(seq_of(held.payload()), 5);
    // The responder's side goes away while the request waits.
    p.server.close_and_join().await.unwrap();
    match within("the requester", requester).await.unwrap() {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("closed before it replied"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    // Its proxy is gone with the session: the next request is refused at once.
    responders_exactly(&p.client_bus, 0).await;
    assert!(matches!(
        p.client_bus
            .request_raw_async(REQ, REP, tick(6), LONG)
            .await,
        Err(RequestError::NoResponder { .. })
    ));
    drop(held);
    p.client.close_and_join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_across_the_bridge_and_the_late_reply_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    let silent = p.server_bus.serve_raw(REQ, REP, ServeOptions::default());
    responders_at_least(&p.client_bus, 1).await;
    let short = Duration::from_millis(200);
    assert_eq!(
        within(
            "the timeout",
            p.client_bus.request_raw_async(REQ, REP, tick(9), short)
        )
        .await,
        Err(RequestError::Timeout { timeout: short })
    );
    // The far side got it with the remaining time, and answers too late.
    let held = within("the request", silent.recv()).await.unwrap();
    assert!(held.remaining() <= short);
    held.reply(text("late"));
    p.client.close_and_join().await.unwrap();
    p.server.close_and_join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requesters_across_the_bridge_each_get_their_own_reply() {
    let dir = tempfile::tempdir().unwrap();
    let p = pair(
        unix_endpoint(dir.path(), "bus.sock"),
        Limits::default(),
        None,
    )
    .await;
    let _a = p
        .server_bus
        .serve_raw_with(REQ, REP, ServeOptions::default(), echo_seq);
    let _b = p
        .server_bus
        .serve_raw_with(REQ, REP, ServeOptions::default(), echo_seq);
    responders_at_least(&p.client_bus, 1).await;
    const TASKS: u64 = 4;
    const EACH: u64 = 100;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let bus = p.client_bus.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let seq = t * 1000 + i;
                    let reply = bus.request_raw_async(REQ, REP, tick(seq), LONG).await;
                    assert_eq!(body_of(&reply.unwrap()), format!("seq {seq}"));
                }
            })
        })
        .collect();
    for task in tasks {
        within("a requester", task).await.unwrap();
    }
    let client = p.client_bus.metrics();
    let c = client.service(REQ, REP).unwrap();
    assert_eq!((c.requests, c.replies), (TASKS * EACH, TASKS * EACH));
    // The client sees one responder (the proxy); the server's two both answered, first wins.
    assert_eq!(c.responders, 1);
    p.client.close_and_join().await.unwrap();
    p.server.close_and_join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_relays_requests_between_its_peers_without_looping() {
    let dir = tempfile::tempdir().unwrap();
    let schema = schema();
    let hub_bus = MessageBus::new();
    let hub = Bridge::listen(
        &hub_bus,
        &schema,
        ListenConfig::new([unix_endpoint(dir.path(), "hub.sock")]),
    )
    .await
    .unwrap();
    let endpoint = hub.endpoints()[0].clone();
    let (a_bus, c_bus) = (MessageBus::new(), MessageBus::new());
    let a = Bridge::connect(&a_bus, &schema, ConnectConfig::new(endpoint.clone()))
        .await
        .unwrap();
    let c = Bridge::connect(&c_bus, &schema, ConnectConfig::new(endpoint))
        .await
        .unwrap();
    assert!(within("two sessions", hub.wait_for_sessions(2)).await);
    // A serves; the hub proxies it, and announces its proxy to C (not back to A).
    let _guard = a_bus.serve_raw_with(REQ, REP, ServeOptions::default(), echo_seq);
    responders_at_least(&hub_bus, 1).await;
    responders_at_least(&c_bus, 1).await;
    let reply = within(
        "a relayed reply",
        c_bus.request_raw_async(REQ, REP, tick(77), LONG),
    )
    .await
    .unwrap();
    assert_eq!(body_of(&reply), "seq 77");
    // A asks its own service: answered locally, exactly once (the hub has no proxy for A
    // pointing back at A, so nothing loops).
    let reply = within(
        "a local reply",
        a_bus.request_raw_async(REQ, REP, tick(5), LONG),
    )
    .await
    .unwrap();
    assert_eq!(body_of(&reply), "seq 5");
    assert_eq!(a_bus.responder_count(REQ, REP), 1);
    let a_metrics = a_bus.metrics();
    let at_a = a_metrics.service(REQ, REP).unwrap();
    // C's request (made at A on the hub's behalf) and A's own.
    assert_eq!((at_a.requests, at_a.replies, at_a.late_replies), (2, 2, 0));
    drop((a, c));
}

/// The child process of `a_responder_process_killed_mid_request_fails_the_request_at_once`
/// (started by it as this test binary with `--ignored --exact`): connects to the socket in
/// `MYCELIUM_RR_SOCKET`, serves the test service with a handler that never returns, and says
/// what it does on stdout.
#[test]
#[ignore = "the responder process of a test below, started by it"]
fn responder_child() {
    let socket = std::env::var("MYCELIUM_RR_SOCKET").expect("started by the parent test");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bus = MessageBus::new();
        let _serving = bus.serve_raw_with(REQ, REP, ServeOptions::default(), |_| {
            println!("handling");
            std::thread::sleep(LONG); // killed long before it returns
            Err("unreachable".into())
        });
        let config = ConnectConfig::new(Endpoint::unix(&socket));
        let client = Bridge::connect(&bus, &schema(), config).await.unwrap();
        client.wait_for_sessions(1).await;
        println!("ready");
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_process_killed_mid_request_fails_the_request_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bus.sock");
    let bus = MessageBus::new();
    let server = Bridge::listen(
        &bus,
        &schema(),
        ListenConfig::new([Endpoint::unix(&socket)]),
    )
    .await
    .unwrap();
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "responder_child", "--ignored", "--nocapture"])
        .env("MYCELIUM_RR_SOCKET", &socket)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = ChildProcess::spawn(command);
    child.line_starting("ready");
    responders_at_least(&bus, 1).await;
    let requester = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.request_raw_async(REQ, REP, tick(3), LONG).await })
    };
    child.line_starting("handling");
    // SIGKILL: no bye frame, the socket just closes.
    blocking(|| child.kill());
    match within("the requester", requester).await.unwrap() {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("closed before it replied"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    responders_exactly(&bus, 0).await;
    server.close_and_join().await.unwrap();
}
