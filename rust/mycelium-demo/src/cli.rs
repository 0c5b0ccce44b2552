//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use mycelium_transport::OverflowPolicy;

/// A Rust service owns a message bus and runs, in its own process, a Python trading strategy and
/// OCaml risk logic on it.
///
/// Rust publishes trade ticks; the Python strategy (examples/python/strategy.py) sends orders when
/// a price crosses its moving average; the OCaml risk engine (ocaml/demo/risk.ml) answers each
/// order with an approval or a refusal; a Rust order book receives the answers. A live line shows
/// messages/s per stage and language; at the end a table shows, per message type and subscriber,
/// what was published, delivered, dropped, failed, and the delivery latency.
///
/// Run it with `bash scripts/demo.sh [FLAGS]`, which installs and builds what the Python and OCaml
/// parts need first.
#[derive(Parser, Debug, Clone)]
#[command(name = "mycelium-demo", version, verbatim_doc_comment)]
pub struct Args {
    /// How long the market publishes, in seconds.
    #[arg(long, default_value_t = 5.0, value_parser = parse_duration)]
    pub duration: f64,
    /// Trade ticks per second the market publishes (0 = as fast as the pipeline takes them),
    /// at most 10000000.
    #[arg(long, default_value_t = 50_000, value_parser = parse_rate, allow_hyphen_values = true)]
    pub rate: u64,
    /// Which language runs the strategy.
    #[arg(long, value_enum, default_value_t = StrategyLang::Python)]
    pub strategy: StrategyLang,
    /// Which language runs the risk check.
    #[arg(long, value_enum, default_value_t = RiskLang::Ocaml)]
    pub risk: RiskLang,
    /// Besides orders on moving-average crossings, the strategy sends one after this many ticks
    /// of a symbol without an order (0 = crossings only).
    #[arg(long, default_value_t = 50)]
    pub order_every: u64,
    /// Queue capacity of every subscriber.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub capacity: u32,
    /// What a full subscriber queue does to its publisher: block (wait, lose nothing) or
    /// drop_oldest (evict the oldest queued message, counted as dropped).
    #[arg(long, default_value = "block", value_parser = parse_policy)]
    pub policy: Policy,
    /// The Python strategy module to load (default: examples/python/strategy.py of the
    /// checkout the demo runs from: $MYCELIUM_ROOT, else the one holding the binary, else the
    /// current directory).
    #[arg(long, value_name = "FILE", default_value_os_t = default_strategy_file())]
    pub python_strategy: PathBuf,
    /// Print the final report as JSON (on stdout) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Join this demo's bus to a NATS server (e.g. nats://127.0.0.1:4222; docs/distributed.md),
    /// for running its parts in two processes with --part. `bash scripts/demo.sh --over-nats`
    /// starts a server and both processes.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// Which part of the pipeline this process runs: all of it (default); front (market,
    /// strategy and book, the RiskCheck service asked over --nats); risk (only the risk
    /// service, answering over --nats until Ctrl-C or SIGTERM).
    #[arg(long, value_enum, default_value_t = Part::All, requires_if("front", "nats"), requires_if("risk", "nats"))]
    pub part: Part,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    Front,
    Risk,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyLang {
    Python,
    Rust,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskLang {
    Ocaml,
    Rust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Block,
    DropOldest,
}

impl Policy {
    pub fn overflow(self) -> OverflowPolicy {
        match self {
            Policy::Block => OverflowPolicy::Block,
            Policy::DropOldest => OverflowPolicy::DropOldest,
        }
    }

    /// The name `mycelium_native` (Python) accepts: the one name of the policy everywhere.
    pub fn python_name(self) -> &'static str {
        self.overflow().as_str()
    }
}

const STRATEGY: &str = "examples/python/strategy.py";

/// Found when the demo starts, not where it was built: a binary copied to another machine or
/// checkout must not look for the build machine's file.
fn default_strategy_file() -> PathBuf {
    let root = std::env::var_os("MYCELIUM_ROOT").map(PathBuf::from);
    let exe_dirs = std::env::current_exe().ok().into_iter().flat_map(|exe| {
        exe.ancestors()
            .skip(1)
            .map(PathBuf::from)
            .collect::<Vec<_>>()
    });
    root.into_iter()
        .chain(exe_dirs)
        .map(|dir| dir.join(STRATEGY))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(STRATEGY))
}

/// Largest `--rate`: far above what one market thread publishes, low enough to be a rate.
const MAX_RATE: u64 = 10_000_000;

/// The bus's policy names (`OverflowPolicy::from_name`, old spellings such as `drop-oldest`
/// with a warning); `fail` is refused: a market whose publishes fail is not a demo.
fn parse_policy(s: &str) -> Result<Policy, String> {
    let (policy, note) = OverflowPolicy::from_name(s)?;
    let policy = match policy {
        OverflowPolicy::Block => Policy::Block,
        OverflowPolicy::DropOldest => Policy::DropOldest,
        OverflowPolicy::FailPublish => {
            return Err("fail is not offered by the demo: use block or drop_oldest".into())
        }
    };
    if let Some(note) = note {
        eprintln!("warning: {note}");
    }
    Ok(policy)
}

fn parse_rate(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(rate) if rate <= MAX_RATE => Ok(rate),
        _ => Err(format!(
            "'{s}' is not a rate: give ticks per second as a whole number from 0 (as fast as \
             the pipeline takes them) to {MAX_RATE}"
        )),
    }
}

fn parse_duration(s: &str) -> Result<f64, String> {
    let seconds: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    // Duration::from_secs_f64 panics past u64::MAX seconds; a day is more than a demo needs.
    if seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0 {
        Ok(seconds)
    } else {
        Err(format!(
            "{s}: give a number of seconds above 0 and at most 86400"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_python_and_ocaml_with_blocking_queues() {
        let args = Args::try_parse_from(["mycelium-demo"]).expect("defaults parse");
        assert_eq!(args.strategy, StrategyLang::Python);
        assert_eq!(args.risk, RiskLang::Ocaml);
        assert_eq!(args.policy, Policy::Block);
        assert!(args
            .python_strategy
            .ends_with("examples/python/strategy.py"));
        assert_eq!((args.part, args.nats), (Part::All, None));
    }

    #[test]
    fn flags_are_parsed() {
        let args = Args::try_parse_from([
            "mycelium-demo",
            "--duration",
            "0.5",
            "--rate",
            "0",
            "--strategy",
            "rust",
            "--risk",
            "rust",
            "--policy",
            "drop_oldest",
            "--capacity",
            "8",
            "--json",
        ])
        .expect("flags parse");
        assert_eq!(args.duration, 0.5);
        assert_eq!(args.rate, 0);
        assert_eq!(
            (args.strategy, args.risk),
            (StrategyLang::Rust, RiskLang::Rust)
        );
        assert_eq!(args.policy.overflow(), OverflowPolicy::DropOldest);
        assert_eq!(args.capacity, 8);
        assert!(args.json);
    }

    #[test]
    fn the_default_strategy_is_found_from_the_running_binary_not_the_build_tree() {
        // The test binary lives in target/debug/deps of this checkout: walking up from it finds
        // the checkout's strategy, with no MYCELIUM_ROOT needed.
        let found = default_strategy_file();
        assert!(found.is_file(), "{}", found.display());
        assert!(found.ends_with(STRATEGY));
    }

    #[test]
    fn bad_rates_are_refused_with_a_reason() {
        for bad in ["-5", "1e9", "10000001", "fast", ""] {
            let err = Args::try_parse_from(["mycelium-demo", "--rate", bad])
                .expect_err("an invalid rate");
            let text = err.to_string();
            assert!(text.contains("ticks per second"), "{bad}: {text}");
            assert!(
                !text.contains("invalid digit"),
                "{bad}: raw parser text: {text}"
            );
        }
        let args = Args::try_parse_from(["mycelium-demo", "--rate", "10000000"]).unwrap();
        assert_eq!(args.rate, 10_000_000);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        for bad in ["0", "nan", "inf", "1e9", "soon"] {
            let err = Args::try_parse_from(["mycelium-demo", "--duration", bad])
                .expect_err("an invalid duration");
            assert!(err.to_string().contains("seconds"), "{bad}: {err}");
        }
        assert!(Args::try_parse_from(["mycelium-demo", "--duration", "-1"]).is_err());
        assert!(Args::try_parse_from(["mycelium-demo", "--capacity", "0"]).is_err());
        assert!(Args::try_parse_from(["mycelium-demo", "--policy", "fail"]).is_err());
        assert!(Args::try_parse_from(["mycelium-demo", "--policy", "newest"]).is_err());
        // the old spelling is still accepted
        let args = Args::try_parse_from(["mycelium-demo", "--policy", "drop-oldest"]).unwrap();
        assert_eq!(args.policy, Policy::DropOldest);
        assert!(Args::try_parse_from(["mycelium-demo", "--risk", "python"]).is_err());
    }
}
