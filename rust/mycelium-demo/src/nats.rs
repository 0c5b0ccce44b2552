//! The demo in two processes joined over NATS (`--nats URL --part front|risk`): the front runs
//! the market, the strategy and the book, and asks the `RiskCheck` service over NATS; the risk
//! process serves it (in OCaml or Rust). The request/reply code of the strategy and the risk
//! engine is the same as in one process: the NATS join carries requests for a declared service
//! nobody serves locally (docs/distributed.md, "Request/reply").
//! `bash scripts/demo.sh --over-nats` starts a server and both processes.

use std::sync::Arc;
use std::time::Duration;

use mycelium_nats::{NatsBridge, NatsConfig, NatsStats};
use mycelium_protocol::Schema;
use mycelium_transport::MessageBus;

use crate::cli::{Args, RiskLang};
use crate::error::DemoError;
use crate::stages::ocaml::{self, OcamlRisk};
use crate::stages::rust;
use crate::stages::{Counts, Language, QueueSettings, Stage};

/// A bus's join to NATS, with the async runtime it runs on.
pub struct NatsJoin {
    io: tokio::runtime::Runtime,
    join: Option<NatsBridge>,
}

impl NatsJoin {
    /// Joins `bus` to the server at `url`; returns once the bus's current subscriptions,
    /// services and service proxies are in place on the server.
    pub fn connect(bus: &MessageBus, schema: &Schema, url: &str) -> Result<NatsJoin, DemoError> {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("demo-nats")
            .enable_all()
            .build()
            .map_err(|e| DemoError::NatsRuntime(e.to_string()))?;
        let config = NatsConfig::from_url(url)?;
        let join = io.block_on(NatsBridge::connect(bus, schema, config))?;
        Ok(NatsJoin {
            io,
            join: Some(join),
        })
    }

    pub fn stats(&self) -> Arc<NatsStats> {
        self.join
            .as_ref()
            .map(NatsBridge::stats_handle)
            .unwrap_or_default()
    }

    /// Sends what is queued and closes the connection (bounded). Idempotent.
    pub fn close(&mut self) {
        if let Some(join) = self.join.take() {
            self.io.block_on(join.close());
        }
    }
}

impl Drop for NatsJoin {
    fn drop(&mut self) {
        self.close();
    }
}

/// The risk stage of the front: the `RiskCheck` service answered by another process over NATS.
/// Its counts are the join's: requests sent, and those that came back answered.
pub struct RemoteRisk {
    stats: Arc<NatsStats>,
}

impl RemoteRisk {
    pub fn new(join: &NatsJoin) -> RemoteRisk {
        RemoteRisk {
            stats: join.stats(),
        }
    }
}

impl Stage for RemoteRisk {
    fn label(&self) -> &'static str {
        "risk-over-nats"
    }

    fn language(&self) -> Language {
        Language::Remote
    }

    fn counts(&mut self) -> Result<Counts, DemoError> {
        let sent = self.stats.requests_sent.get();
        Ok(Counts {
            handled: sent,
            sent: sent.saturating_sub(self.stats.request_failures.get()),
        })
    }

    fn close(&mut self) -> Result<(), DemoError> {
        Ok(())
    }
}

/// `--part risk`: serves `RiskCheck` over NATS until Ctrl-C or SIGTERM, then prints what it
/// answered. Prints `ready` once the server has its service subscription, so a launcher can
/// start the front then.
pub fn serve_risk(args: &Args, schema: &Schema, url: &str) -> Result<bool, DemoError> {
    if args.risk == RiskLang::Ocaml {
        ocaml::check_linked()?;
    }
    let bus = MessageBus::new();
    let handle = mycelium_ffi::Runtime::from_bus(bus.clone(), schema);
    let queue = QueueSettings {
        capacity: args.capacity,
        policy: args.policy,
    };
    let mut risk: Box<dyn Stage> = match args.risk {
        RiskLang::Ocaml => Box::new(OcamlRisk::start(handle.address(), queue)?),
        RiskLang::Rust => Box::new(rust::risk(&bus)),
    };
    let mut join = NatsJoin::connect(&bus, schema, url)?;
    println!(
        "ready: {} ({}) serves RiskCheck over {}; Ctrl-C ends it",
        risk.label(),
        risk.language().name(),
        mycelium_nats::redact_url(url)
    );
    while !crate::signals::INTERRUPTED.load(std::sync::atomic::Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let counts = risk.counts()?;
    let stats = join.stats();
    let closed = risk.close();
    join.close();
    bus.close();
    drop(handle);
    closed?;
    println!(
        "risk: answered {} orders ({} over NATS, {} failed there)",
        counts.handled,
        stats.requests_served.get(),
        stats.request_failures.get()
    );
    Ok(counts.handled == stats.requests_served.get() && stats.request_failures.get() == 0)
}
