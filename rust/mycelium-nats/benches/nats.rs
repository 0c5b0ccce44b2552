//! Native vs Unix socket bridge vs NATS core vs NATS JetStream, and our NATS layer against a
//! bare async-nats publisher/subscriber pair on the same server, in one run:
//! `cargo bench -p mycelium-nats --bench nats` (starts its own nats-server on a loopback port;
//! Debian: /usr/sbin/nats-server).
//!
//! - throughput: one task publishes N `TextMessage`s with a 64 B or a 1 KiB payload on bus A,
//!   one task takes them on bus B (native: the same bus); first publish to last take, median
//!   of several rounds. A round that loses messages (core NATS may, under a slow consumer) is
//!   reported with what arrived;
//! - round trip: A publishes a `TextMessage` of that size, a task on B answers with a
//!   `TradeTick`, A waits for it; p50 and p99.
//!
//! The bare pair publishes the same payload bytes on one subject with one client and counts
//! them on another client's subscription: what NATS itself costs, for the overhead figure;
//! twice more with headers: our schema header, and the two full-length headers joins sent
//! before it (what one short header saves).
//! `MYCELIUM_BENCH_MESSAGES`, `MYCELIUM_BENCH_TRIPS` and `MYCELIUM_BENCH_ROUNDS` change the
//! sizes. Prints Markdown tables for docs/benchmarks.md.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use mycelium_bridge::{Bridge, ConnectConfig, Endpoint, ListenConfig};
use mycelium_nats::{JetStreamOptions, NatsBridge, NatsConfig};
use mycelium_protocol::{Schema, Writer};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

/// As long as a real fingerprint and digest (hex SHA-256), for the bare pair's header rows.
const FAKE_SHA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const TEXT_MESSAGE: u16 = 2;
const TRADE_TICK: u16 = 1;
/// A round that has not finished after this is cut and reported with what arrived.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Native,
    Unix,
    NatsCore,
    NatsJetStream,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native (one bus)",
            Mode::Unix => "Unix socket bridge",
            Mode::NatsCore => "NATS core",
            Mode::NatsJetStream => "NATS JetStream",
        }
    }
}

/// Two buses joined by `mode`, and what keeps the join alive.
struct Setup {
    a: MessageBus,
    b: MessageBus,
    _bridges: Vec<mycelium_bridge::BridgeHandle>,
    joins: Vec<NatsBridge>,
}

async fn setup(mode: Mode, schema: &Schema, core: &str, js: &str, round: usize) -> Setup {
    let a = MessageBus::new();
    let b = MessageBus::new();
    match mode {
        Mode::Native => Setup {
            b: a.clone(),
            a,
            _bridges: Vec::new(),
            joins: Vec::new(),
        },
        Mode::Unix => {
            let dir = std::env::temp_dir().join(format!("myc-nats-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let endpoint = Endpoint::unix(dir.join(format!("bus{round}.sock")));
            let server = Bridge::listen(&a, schema, ListenConfig::new([endpoint]))
                .await
                .unwrap();
            let client = Bridge::connect(
                &b,
                schema,
                ConnectConfig::new(server.endpoints()[0].clone()),
            )
            .await
            .unwrap();
            let connected =
                tokio::time::timeout(Duration::from_secs(30), client.wait_for_sessions(1)).await;
            assert!(
                connected == Ok(true),
                "the Unix bridge connects within 30 s"
            );
            Setup {
                a,
                b,
                _bridges: vec![server, client],
                joins: Vec::new(),
            }
        }
        Mode::NatsCore | Mode::NatsJetStream => {
            let config = |url: &str, durable: &str| {
                let config = NatsConfig::new(url).with_subscription_capacity(1 << 20);
                if mode == Mode::NatsJetStream {
                    // A stream (and subjects) per setup, so rounds do not replay each
                    // other's messages; a durable per bus, so each consumes.
                    config.with_prefix(format!("bench{round}")).with_jetstream(
                        JetStreamOptions::new(format!("BENCH{round}")).with_durable(durable),
                    )
                } else {
                    config
                }
            };
            let url = if mode == Mode::NatsJetStream {
                js
            } else {
                core
            };
            let ja = NatsBridge::connect(&a, schema, config(url, "a"))
                .await
                .unwrap();
            let jb = NatsBridge::connect(&b, schema, config(url, "b"))
                .await
                .unwrap();
            Setup {
                a,
                b,
                _bridges: Vec::new(),
                joins: vec![ja, jb],
            }
        }
    }
}

impl Setup {
    /// Until every join carries the buses' current subscriptions (core NATS delivers only to
    /// subscribers the server already has).
    async fn ready(&self) {
        for join in &self.joins {
            assert!(
                join.wait_ready(Duration::from_secs(30)).await,
                "join not ready: connected {}, subscribed {}",
                join.is_connected(),
                join.stats().subscribed.get()
            );
        }
    }

    async fn close(self) {
        for join in self.joins {
            join.close().await;
        }
    }
}

/// A TextMessage whose encoded payload is `size` bytes.
fn text(size: usize) -> Bytes {
    let encode = |body: &str| {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.put_str("bench").unwrap();
        w.put_str(body).unwrap();
        w.put_u64(7);
        out
    };
    let overhead = encode("").len();
    let payload = encode(&"x".repeat(size.saturating_sub(overhead)));
    assert_eq!(payload.len(), size, "payload size");
    Bytes::from(payload)
}

fn tick() -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_str("BTC-USD").unwrap();
    w.put_f64(100.5);
    w.put_u32(3);
    w.put_u64(1);
    w.put_u8(1);
    Bytes::from(out)
}

async fn wait_subscribers(bus: &MessageBus, type_id: u16, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while bus.subscriber_count(type_id) < count {
        assert!(Instant::now() < deadline, "subscriber never arrived");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Messages per second, and how many of `n` arrived.
async fn throughput(s: &Setup, mode: Mode, n: usize, payload: &Bytes) -> (f64, usize) {
    let sub = s.b.subscribe_raw(
        TEXT_MESSAGE,
        SubscribeOptions::new(1 << 14, OverflowPolicy::Block),
    );
    match mode {
        Mode::Unix => wait_subscribers(&s.a, TEXT_MESSAGE, 1).await,
        _ => s.ready().await,
    }
    let consumer = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(5), sub.recv()).await {
                Ok(Some(_)) => got += 1,
                _ => break, // lost messages: stop waiting once nothing comes any more
            }
        }
        (got, Instant::now())
    });
    let start = Instant::now();
    for _ in 0..n {
        s.a.publish_raw_async(TEXT_MESSAGE, payload.clone())
            .await
            .unwrap();
    }
    let (got, end) = tokio::time::timeout(ROUND_LIMIT, consumer)
        .await
        .expect("round finished")
        .unwrap();
    (got as f64 / (end - start).as_secs_f64(), got)
}

async fn round_trips(s: &Setup, mode: Mode, trips: usize, payload: &Bytes) -> Vec<Duration> {
    let options = || SubscribeOptions::new(64, OverflowPolicy::Block);
    let requests = s.b.subscribe_raw(TEXT_MESSAGE, options());
    let answers = s.a.subscribe_raw(TRADE_TICK, options());
    match mode {
        Mode::Unix => {
            wait_subscribers(&s.a, TEXT_MESSAGE, 1).await;
            wait_subscribers(&s.b, TRADE_TICK, 1).await;
        }
        _ => s.ready().await,
    }
    let b = s.b.clone();
    let echo = tokio::spawn(async move {
        let answer = tick();
        while requests.recv().await.is_some() {
            if b.publish_raw_async(TRADE_TICK, answer.clone())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut samples = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        s.a.publish_raw_async(TEXT_MESSAGE, payload.clone())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), answers.recv())
            .await
            .expect("an answer within 10 s")
            .unwrap();
        samples.push(start.elapsed());
    }
    echo.abort();
    samples.sort();
    samples
}

/// The bare async-nats pair: messages per second from one client to another's subscription.
/// What the bare pair's messages carry besides the payload.
#[derive(Clone, Copy)]
enum BareHeaders {
    None,
    /// Our schema header, cloned from one built up front as the join does.
    Ours,
    /// The two full-length headers joins sent before (`Mycelium-Fingerprint` and
    /// `Mycelium-Digest`, 64 hex digits each), built per message: what one header saves.
    TwoFull,
}

/// The bare async-nats pair: messages per second from one client to another's subscription.
async fn bare_throughput(
    url: &str,
    n: usize,
    payload: &Bytes,
    headers: BareHeaders,
) -> (f64, usize) {
    let publisher = async_nats::connect(url).await.unwrap();
    let subscriber = async_nats::ConnectOptions::new()
        .subscription_capacity(1 << 20)
        .connect(url)
        .await
        .unwrap();
    let mut sub = subscriber.subscribe("bench.bare").await.unwrap();
    subscriber.flush().await.unwrap();
    let consumer = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
                Ok(Some(_)) => got += 1,
                _ => break,
            }
        }
        (got, Instant::now())
    });
    let start = Instant::now();
    let subject = async_nats::Subject::from("bench.bare");
    let mut ours = async_nats::HeaderMap::new();
    ours.insert(
        mycelium_nats::SCHEMA_HEADER,
        mycelium_nats::schema_header_value(FAKE_SHA, FAKE_SHA).as_str(),
    );
    for _ in 0..n {
        let h = match headers {
            BareHeaders::None => {
                publisher
                    .publish(subject.clone(), payload.clone())
                    .await
                    .unwrap();
                continue;
            }
            BareHeaders::Ours => ours.clone(),
            BareHeaders::TwoFull => {
                let mut h = async_nats::HeaderMap::new();
                h.insert("Mycelium-Fingerprint", FAKE_SHA);
                h.insert("Mycelium-Digest", FAKE_SHA);
                h
            }
        };
        publisher
            .publish_with_headers(subject.clone(), h, payload.clone())
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();
    let (got, end) = tokio::time::timeout(ROUND_LIMIT, consumer)
        .await
        .expect("round finished")
        .unwrap();
    (got as f64 / (end - start).as_secs_f64(), got)
}

async fn bare_round_trips(url: &str, trips: usize, payload: &Bytes) -> Vec<Duration> {
    let a = async_nats::connect(url).await.unwrap();
    let b = async_nats::connect(url).await.unwrap();
    let mut requests = b.subscribe("bench.req").await.unwrap();
    let mut answers = a.subscribe("bench.ans").await.unwrap();
    b.flush().await.unwrap();
    a.flush().await.unwrap();
    let echo = tokio::spawn(async move {
        let answer = tick();
        while requests.next().await.is_some() {
            if b.publish("bench.ans", answer.clone()).await.is_err() {
                return;
            }
        }
    });
    // `flush` only empties the socket: `b`'s subscription may reach the server after `a`'s
    // first request (one run lost it and waited out its 10 s). Ask until the echo answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        a.publish("bench.req", payload.clone()).await.unwrap();
        match tokio::time::timeout(Duration::from_millis(100), answers.next()).await {
            Ok(answer) => {
                answer.expect("subscription open");
                break;
            }
            Err(_) => assert!(Instant::now() < deadline, "the bare echo never answered"),
        }
    }
    // Answers to the probes sent before the one that got through.
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), answers.next()).await {
    }
    let mut samples = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        a.publish("bench.req", payload.clone()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), answers.next())
            .await
            .expect("an answer within 10 s")
            .unwrap();
        samples.push(start.elapsed());
    }
    echo.abort();
    samples.sort();
    samples
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let messages = env_or("MYCELIUM_BENCH_MESSAGES", 100_000);
    let trips = env_or("MYCELIUM_BENCH_TRIPS", 2_000);
    let rounds = env_or("MYCELIUM_BENCH_ROUNDS", 3).max(1);
    let schema = common::schema();
    let core_server = common::NatsServer::start("");
    let js_server = common::NatsServer::start_jetstream();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{messages} TextMessages per throughput round, median of {rounds} rounds (each mode and \
         the bare pair alternate within a round); {trips} round trips (TextMessage out, \
         TradeTick back)"
    );
    for size in [64usize, 1024] {
        let payload = text(size);
        let modes = [
            Mode::Native,
            Mode::Unix,
            Mode::NatsCore,
            Mode::NatsJetStream,
        ];
        // rates[mode] per round; then the bare pair with each of `bare`'s headers.
        let bare = [BareHeaders::None, BareHeaders::Ours, BareHeaders::TwoFull];
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); modes.len() + bare.len()];
        let mut lost: Vec<usize> = vec![0; modes.len() + bare.len()];
        let mut setup_round = 0;
        runtime.block_on(async {
            for _ in 0..rounds {
                for (i, &mode) in modes.iter().enumerate() {
                    setup_round += 1;
                    let s = setup(
                        mode,
                        &schema,
                        &core_server.url(),
                        &js_server.url(),
                        setup_round + size,
                    )
                    .await;
                    let (rate, got) = throughput(&s, mode, messages, &payload).await;
                    rates[i].push(rate);
                    lost[i] += messages - got;
                    s.close().await;
                }
                for (j, &headers) in bare.iter().enumerate() {
                    let (rate, got) =
                        bare_throughput(&core_server.url(), messages, &payload, headers).await;
                    rates[modes.len() + j].push(rate);
                    lost[modes.len() + j] += messages - got;
                }
            }
        });
        let mut trips_rows = Vec::new();
        runtime.block_on(async {
            for &mode in &modes {
                setup_round += 1;
                let s = setup(
                    mode,
                    &schema,
                    &core_server.url(),
                    &js_server.url(),
                    setup_round + size,
                )
                .await;
                let t = if mode == Mode::NatsJetStream {
                    trips / 4 // file-backed acks: a quarter is enough for stable percentiles
                } else {
                    trips
                };
                trips_rows.push(round_trips(&s, mode, t, &payload).await);
                s.close().await;
            }
            trips_rows.push(bare_round_trips(&core_server.url(), trips, &payload).await);
        });
        let native = median(rates[0].clone());
        let bare = median(rates[modes.len()].clone());
        println!();
        println!("Payload {size} B:");
        println!();
        println!("| transport | throughput | vs native | lost | round trip p50 | round trip p99 |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let names: Vec<&str> = modes
            .iter()
            .map(|m| m.name())
            .chain([
                "bare async-nats pair",
                "bare async-nats pair + our schema header",
                "bare async-nats pair + 2 full-length headers (before)",
            ])
            .collect();
        for (i, name) in names.iter().enumerate() {
            let rate = median(rates[i].clone());
            let (p50, p99) = match trips_rows.get(i) {
                Some(samples) => (
                    format!("{:.1} µs", micros(samples[samples.len() / 2])),
                    format!("{:.1} µs", micros(samples[samples.len() * 99 / 100])),
                ),
                None => ("—".to_string(), "—".to_string()),
            };
            println!(
                "| {name} | {rate:.0} msg/s | {:.3}x | {} | {p50} | {p99} |",
                rate / native,
                lost[i],
            );
        }
        let core = median(rates[2].clone());
        println!();
        let bare_headers = median(rates[modes.len() + 1].clone());
        println!(
            "NATS core through mycelium vs the bare async-nats pair: {:.1} % of its throughput \
             ({:+.1} % overhead; vs the pair sending our header: {:+.1} %); per round: \
             ours {:?}, bare {:?}, bare + headers {:?}",
            100.0 * core / bare,
            100.0 * (bare / core - 1.0),
            100.0 * (bare_headers / core - 1.0),
            rates[2].iter().map(|r| r.round()).collect::<Vec<_>>(),
            rates[modes.len()]
                .iter()
                .map(|r| r.round())
                .collect::<Vec<_>>(),
            rates[modes.len() + 1]
                .iter()
                .map(|r| r.round())
                .collect::<Vec<_>>(),
        );
    }
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("myc-nats-bench-{}", std::process::id())),
    );
}
