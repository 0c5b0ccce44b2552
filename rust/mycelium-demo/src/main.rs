//! The demo pipeline on the example schema, all on one `MessageBus`:
//!
//! market (publishes `TradeTick`) -> strategy (turns some ticks into `Order`s)
//!   -> risk (answers each order with an `OrderDecision`) -> book (counts approvals).
//!
//! Today every stage is Rust; the native-host demo swaps the strategy for Python and the risk
//! check for OCaml code running in this same process, with the same messages.

mod report;
mod stages;

use std::time::{Duration, Instant};

use clap::Parser;
use mycelium_transport::{MessageBus, OverflowPolicy};

/// Runs the Mycelium demo pipeline and prints live throughput and a metrics table.
#[derive(Parser, Debug)]
#[command(name = "mycelium-demo", version)]
struct Args {
    /// How long the market publishes, in seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Trade ticks per second the market publishes (0 = as fast as possible).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// The strategy sends an order for one tick in this many.
    #[arg(long, default_value_t = 10)]
    order_every: u64,
    /// Queue capacity of every subscriber.
    #[arg(long, default_value_t = 4096)]
    capacity: usize,
    /// Overflow policy of every subscriber: block, drop-oldest or fail.
    #[arg(long, default_value = "block", value_parser = parse_policy)]
    policy: OverflowPolicy,
    /// Print the final metrics as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// No live progress line (for logs and CI).
    #[arg(long)]
    quiet: bool,
}

fn parse_policy(s: &str) -> Result<OverflowPolicy, String> {
    match s {
        "block" => Ok(OverflowPolicy::Block),
        "drop-oldest" => Ok(OverflowPolicy::DropOldest),
        "fail" => Ok(OverflowPolicy::FailPublish),
        other => Err(format!(
            "unknown policy '{other}': use block, drop-oldest or fail"
        )),
    }
}

fn main() {
    let args = Args::parse();
    if !(args.duration.is_finite() && args.duration > 0.0) {
        eprintln!("error: --duration must be a positive number of seconds");
        std::process::exit(2);
    }
    if args.order_every == 0 || args.capacity == 0 {
        eprintln!("error: --order-every and --capacity must be at least 1");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("error: cannot start the tokio runtime: {e}");
            std::process::exit(1);
        });
    let bus = MessageBus::new();
    let config = stages::Config {
        rate: args.rate,
        order_every: args.order_every,
        capacity: args.capacity,
        policy: args.policy,
    };
    let started = Instant::now();
    let pipeline = runtime.block_on(async { stages::start(&bus, &config) });
    let market = stages::spawn_market(bus.clone(), config, Duration::from_secs_f64(args.duration));

    let progress = report::Progress::new(&bus, !args.quiet);
    while !market.is_finished() {
        std::thread::sleep(Duration::from_millis(250));
        progress.tick(&pipeline);
    }
    let published = market.join().unwrap_or(0);
    // Let the pipeline drain what is queued, then close the bus: handlers finish their queues.
    runtime.block_on(pipeline.drain(Duration::from_secs(10)));
    progress.tick(&pipeline);
    progress.finish();
    // Snapshot before closing: closed subscriptions leave the per-subscriber table.
    let snapshot = bus.metrics();
    let counters = pipeline.counters.clone();
    bus.close();
    runtime.block_on(pipeline.join());
    if args.json {
        println!("{}", snapshot.to_json());
    } else {
        report::print_summary(&snapshot, published, started.elapsed(), &counters);
    }
}
