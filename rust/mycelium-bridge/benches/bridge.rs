//! Native vs Unix bridge vs TCP bridge, one workload, one run:
//! `cargo bench -p mycelium-bridge --bench bridge`.
//!
//! - throughput: one task publishes N `TradeTick`s (40-byte payloads) on bus A, one task
//!   receives them on bus B (native: A and B are the same bus); time from the first publish
//!   to the last receive, median of several rounds;
//! - round trip: A publishes an `Order`, a task on B answers with an `OrderDecision`, A
//!   waits for it; p50 and p99 over many trips.
//!
//! `MYCELIUM_BENCH_MESSAGES` and `MYCELIUM_BENCH_TRIPS` change the sizes. Prints a Markdown
//! table for docs/benchmarks.md.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mycelium_bridge::{Bridge, BridgeHandle, ConnectConfig, Endpoint, ListenConfig};
use mycelium_protocol::{Schema, Writer};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

const TRADE_TICK: u16 = 1;
const ORDER: u16 = 3;
const ORDER_DECISION: u16 = 4;
const ROUNDS: usize = 5;

#[derive(Clone, Copy)]
enum Mode {
    Native,
    Unix,
    Tcp,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Native => "native (one bus)",
            Mode::Unix => "Unix socket bridge",
            Mode::Tcp => "TCP bridge (127.0.0.1)",
        }
    }
}

struct Setup {
    a: MessageBus,
    b: MessageBus,
    _bridges: Vec<BridgeHandle>,
    _dir: Option<std::path::PathBuf>,
}

async fn setup(mode: Mode, schema: &Schema) -> Setup {
    let a = MessageBus::new();
    let endpoint = match mode {
        Mode::Native => {
            return Setup {
                b: a.clone(),
                a,
                _bridges: Vec::new(),
                _dir: None,
            }
        }
        Mode::Unix => {
            let dir = std::env::temp_dir().join(format!("mycelium-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Endpoint::unix(dir.join("bus.sock"))
        }
        Mode::Tcp => Endpoint::tcp("127.0.0.1:0").unwrap(),
    };
    let b = MessageBus::new();
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
    assert!(client.wait_for_sessions(1).await);
    Setup {
        a,
        b,
        _bridges: vec![server, client],
        _dir: None,
    }
}

async fn wait_subscribers(bus: &MessageBus, type_id: u16, count: usize) {
    let mut watch = bus.watch_subscriptions();
    while bus.subscriber_count(type_id) < count {
        watch.changed().await.unwrap();
    }
}

fn tick() -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_str("BTC-USD").unwrap();
    w.put_f64(100.5);
    w.put_u32(3);
    w.put_u64(1_700_000_000_000_000_000);
    w.put_u8(1);
    Bytes::from(out)
}

fn order() -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_u64(42);
    w.put_str("BTC-USD").unwrap();
    w.put_u8(0);
    w.put_u32(5);
    w.put_f64(100.0);
    w.put_u64(0);
    Bytes::from(out)
}

fn decision() -> Bytes {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.put_u64(42);
    w.put_bool(true);
    w.put_str("").unwrap();
    w.put_u64(0);
    Bytes::from(out)
}

async fn throughput(s: &Setup, n: usize) -> Duration {
    let sub = s.b.subscribe_raw(
        TRADE_TICK,
        SubscribeOptions::new(1024, OverflowPolicy::Block),
    );
    wait_subscribers(&s.a, TRADE_TICK, 1).await;
    let consumer = tokio::spawn(async move {
        for _ in 0..n {
            sub.recv().await.expect("the bus stays open");
        }
    });
    let payload = tick();
    let start = Instant::now();
    for _ in 0..n {
        s.a.publish_raw_async(TRADE_TICK, payload.clone())
            .await
            .unwrap();
    }
    consumer.await.unwrap();
    let elapsed = start.elapsed();
    // The subscription is gone; wait until the other side knows, for the next round.
    let mut watch = s.a.watch_subscriptions();
    while s.a.subscriber_count(TRADE_TICK) > 0 {
        watch.changed().await.unwrap();
    }
    elapsed
}

async fn round_trips(s: &Setup, trips: usize) -> Vec<Duration> {
    let options = || SubscribeOptions::new(64, OverflowPolicy::Block);
    let requests = s.b.subscribe_raw(ORDER, options());
    let answers = s.a.subscribe_raw(ORDER_DECISION, options());
    wait_subscribers(&s.a, ORDER, 1).await;
    wait_subscribers(&s.b, ORDER_DECISION, 1).await;
    let b = s.b.clone();
    let echo = tokio::spawn(async move {
        let answer = decision();
        while requests.recv().await.is_some() {
            if b.publish_raw_async(ORDER_DECISION, answer.clone())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let request = order();
    let mut samples = Vec::with_capacity(trips);
    for _ in 0..trips {
        let start = Instant::now();
        s.a.publish_raw_async(ORDER, request.clone()).await.unwrap();
        answers.recv().await.unwrap();
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

fn main() {
    let messages = env_or("MYCELIUM_BENCH_MESSAGES", 200_000);
    let trips = env_or("MYCELIUM_BENCH_TRIPS", 5_000);
    let schema = Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml"))
        .expect("contracts.yaml loads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for mode in [Mode::Native, Mode::Unix, Mode::Tcp] {
            let s = setup(mode, &schema).await;
            let mut rates: Vec<f64> = Vec::new();
            for _ in 0..ROUNDS {
                let elapsed = throughput(&s, messages).await;
                rates.push(messages as f64 / elapsed.as_secs_f64());
            }
            rates.sort_by(f64::total_cmp);
            let samples = round_trips(&s, trips).await;
            let p50 = samples[samples.len() / 2];
            let p99 = samples[samples.len() * 99 / 100];
            rows.push((mode, rates[ROUNDS / 2], p50, p99));
            if let Mode::Unix = mode {
                let dir =
                    std::env::temp_dir().join(format!("mycelium-bench-{}", std::process::id()));
                drop(s);
                let _ = std::fs::remove_dir_all(dir);
            }
        }
        rows
    });
    let native = rows[0].1;
    println!(
        "{messages} TradeTick messages per round, median of {ROUNDS} rounds; {trips} round trips"
    );
    println!();
    println!("| transport | throughput | vs native | round trip p50 | round trip p99 |");
    println!("| --- | --- | --- | --- | --- |");
    for (mode, rate, p50, p99) in rows {
        println!(
            "| {} | {:.0} msg/s | {:.2}x | {:.1} µs | {:.1} µs |",
            mode.name(),
            rate,
            rate / native,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
    }
}
