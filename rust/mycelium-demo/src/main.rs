//! The demo: a Rust service owns a `MessageBus` and runs Python and OCaml code in its own
//! process on it, all on the example schema (contracts.yaml):
//!
//! ```text
//! market (Rust) --TradeTick on ticks/<symbol>--> strategy (Python, ticks/*) --OrderDecision--> book (Rust)
//!                                                     | RiskCheck: Order -> OrderDecision (request/reply)
//!                                                     +--> risk (OCaml service)
//! ```
//!
//! The guests reach the bus through the C ABI (`mycelium-ffi`): Python attaches with
//! `mycelium_native.Runtime.attach`, OCaml with `Runtime.of_handle`, both given the address of
//! the host's handle. `--strategy rust` and `--risk rust` swap either guest for Rust code that
//! applies the same rules. `bash scripts/demo.sh` builds everything and runs it.
//! `--nats URL --part front|risk` splits it into two processes joined over NATS (`nats.rs`).

mod cli;
mod clock;
mod error;
mod market;
mod nats;
mod pipeline;
mod progress;
mod report;
mod rules;
mod signals;
mod stages;

use std::time::{Duration, Instant};

use clap::Parser;

use crate::cli::{Args, Part};
use crate::error::DemoError;
use crate::market::Market;
use crate::pipeline::Pipeline;
use crate::progress::Progress;
use crate::report::RunFacts;

/// How long a stage may go without taking a message before the drain gives up on it.
const DRAIN_PATIENCE: Duration = Duration::from_secs(20);

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

/// Runs the pipeline and prints the report; returns whether the counts reconciled.
fn run(args: &Args) -> Result<bool, DemoError> {
    if args.part == Part::Risk {
        signals::install();
        let url = args.nats.as_deref().unwrap_or_default(); // clap requires --nats here
        return nats::serve_risk(args, &pipeline::schema()?, url);
    }
    let mut pipeline = Pipeline::start(args)?;
    signals::install();
    let mut progress = Progress::new(!args.quiet);
    let started = Instant::now();
    let market = Market::spawn(
        pipeline.bus().clone(),
        args.rate,
        Duration::from_secs_f64(args.duration),
        &signals::INTERRUPTED,
    )?;
    while !market.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        progress.update(market.published(), &mut pipeline)?;
    }
    let (market_published, market_failed) = market.join();
    let elapsed = started.elapsed();
    let drain_error = pipeline.drain(DRAIN_PATIENCE).err().map(|e| e.to_string());
    progress.finish();

    // Counted before anything closes: closed subscriptions leave the per-subscriber metrics.
    let facts = RunFacts {
        elapsed,
        market_published,
        market_failed,
        interrupted: signals::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed),
        stages: pipeline.summaries()?,
        approvals: pipeline.book_approvals(),
        snapshot: pipeline.bus().metrics(),
        drain_error,
    };
    pipeline.close()?;
    let problems = report::reconcile(&facts);
    if args.json {
        println!("{}", report::json(&facts, &problems));
    } else {
        print!("{}", report::table(&facts, &problems));
    }
    Ok(problems.is_empty())
}
