//! Builds the pipeline on one bus, drains it, and takes it down.

use std::time::{Duration, Instant};

use mycelium_contracts::{Order, OrderDecision, TradeTick};
use mycelium_protocol::{Message, Schema};
use mycelium_transport::{MessageBus, MetricsSnapshot};

use crate::cli::{Args, Part, RiskLang, StrategyLang};
use crate::error::DemoError;
use crate::nats::{NatsJoin, RemoteRisk};
use crate::stages::ocaml::{self, OcamlRisk};
use crate::stages::python::PythonStrategy;
use crate::stages::rust::{self, RustStage};
use crate::stages::{Counts, Language, QueueSettings, Stage};

/// The schema the Rust message types were generated from (mycelium-contracts' build script
/// reads the same file), so the guests are checked against exactly what Rust publishes.
const CONTRACTS_YAML: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml"));

/// A stage's place in the pipeline: what it takes and what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub name: &'static str,
    pub takes: (u16, &'static str),
    pub sends: Option<(u16, &'static str)>,
    /// A stage that answers requests instead of subscribing: the (request, reply) type ids of
    /// its service.
    pub serves: Option<(u16, u16)>,
}

/// The strategy asks the risk service about each order (`RiskCheck`, request/reply) and
/// publishes the decision it got for the book.
pub const STRATEGY: Role = Role {
    name: "strategy",
    takes: (TradeTick::TYPE_ID, TradeTick::NAME),
    sends: Some((OrderDecision::TYPE_ID, OrderDecision::NAME)),
    serves: None,
};
pub const RISK: Role = Role {
    name: "risk",
    takes: (Order::TYPE_ID, Order::NAME),
    sends: None,
    serves: Some((Order::TYPE_ID, OrderDecision::TYPE_ID)),
};
pub const BOOK: Role = Role {
    name: "book",
    takes: (OrderDecision::TYPE_ID, OrderDecision::NAME),
    sends: None,
    serves: None,
};

/// One stage's identity and counters at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageSummary {
    pub role: Role,
    pub label: &'static str,
    pub language: Language,
    pub counts: Counts,
}

// Fields drop in declaration order: the guests detach before the bus handle they attached to.
pub struct Pipeline {
    strategy: Box<dyn Stage>,
    risk: Box<dyn Stage>,
    book: RustStage<OrderDecision>,
    /// `--nats`: the bus's join (closed before the bus).
    nats: Option<NatsJoin>,
    handle: mycelium_ffi::Runtime,
    bus: MessageBus,
}

impl Pipeline {
    /// Starts the stages, downstream first so that nothing is published before its
    /// subscriber exists.
    pub fn start(args: &Args) -> Result<Pipeline, DemoError> {
        // Fail before starting anything when a part is missing from this build.
        if args.risk == RiskLang::Ocaml && args.part == Part::All {
            ocaml::check_linked()?;
        }
        let schema = schema()?;
        let bus = MessageBus::new();
        // The C ABI handle the guests attach to (they clone it, and check their generated code
        // against its schema).
        let handle = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
        let queue = QueueSettings {
            capacity: args.capacity,
            policy: args.policy,
        };
        let book = rust::book(&bus, queue)?;
        // Before the strategy: a front's requests need the join's RiskCheck proxy.
        let nats = match &args.nats {
            Some(url) => Some(NatsJoin::connect(&bus, &schema, url)?),
            None => None,
        };
        let risk: Box<dyn Stage> = match (args.part, &nats, args.risk) {
            (Part::Front, Some(join), _) => Box::new(RemoteRisk::new(join)),
            (_, _, RiskLang::Ocaml) => Box::new(OcamlRisk::start(handle.address(), queue)?),
            (_, _, RiskLang::Rust) => Box::new(rust::risk(&bus)),
        };
        let strategy: Box<dyn Stage> = match args.strategy {
            StrategyLang::Python => Box::new(PythonStrategy::start(
                &args.python_strategy,
                &schema,
                handle.address(),
                queue,
                args.order_every,
            )?),
            StrategyLang::Rust => Box::new(rust::strategy(&bus, queue, args.order_every)?),
        };
        Ok(Pipeline {
            strategy,
            risk,
            book,
            nats,
            handle,
            bus,
        })
    }

    pub fn bus(&self) -> &MessageBus {
        &self.bus
    }

    fn stages(&mut self) -> [(Role, &mut dyn Stage); 3] {
        [
            (STRATEGY, self.strategy.as_mut()),
            (RISK, self.risk.as_mut()),
            (BOOK, &mut self.book),
        ]
    }

    /// Every stage's counters, upstream first.
    pub fn summaries(&mut self) -> Result<Vec<StageSummary>, DemoError> {
        self.stages()
            .into_iter()
            .map(|(role, stage)| {
                Ok(StageSummary {
                    role,
                    label: stage.label(),
                    language: stage.language(),
                    counts: stage.counts()?,
                })
            })
            .collect()
    }

    /// Orders the book saw approved and refused.
    pub fn book_approvals(&self) -> (u64, u64) {
        self.book.approvals()
    }

    /// Waits until each stage, upstream first, has taken every message published to it (once
    /// a stage is done, its own publishes are final). Gives up on a stage that makes no progress
    /// for `patience`.
    pub fn drain(&mut self, patience: Duration) -> Result<(), DemoError> {
        let bus = self.bus.clone();
        for (role, stage) in self.stages() {
            // A service is done when its requesters are: requests are answered synchronously.
            if role.serves.is_none() {
                wait_for(&bus, role, stage, patience)?;
            }
        }
        Ok(())
    }

    /// Closes the guests and the Rust stages, then the bus. Every stage is closed even when one
    /// fails; the first failure is returned.
    pub fn close(mut self) -> Result<(), DemoError> {
        let mut first_error = None;
        for (_, stage) in self.stages() {
            if let Err(e) = stage.close() {
                first_error.get_or_insert(e);
            }
        }
        if let Some(join) = self.nats.as_mut() {
            join.close();
        }
        self.bus.close();
        drop(self.handle);
        first_error.map_or(Ok(()), Err)
    }
}

/// The schema built into the demo (contracts.yaml).
pub fn schema() -> Result<Schema, DemoError> {
    Schema::from_yaml_str(CONTRACTS_YAML).map_err(|e| DemoError::Schema(e.to_string()))
}

/// Messages of the stage's input type it is done with: handled, failed, undecodable or dropped.
fn done_with(snapshot: &MetricsSnapshot, label: &str, handled: u64) -> u64 {
    handled
        + snapshot
            .subscribers
            .iter()
            .filter(|s| s.label.as_deref() == Some(label))
            .map(|s| s.dropped + s.handler_errors + s.decode_errors)
            .sum::<u64>()
}

fn wait_for(
    bus: &MessageBus,
    role: Role,
    stage: &mut dyn Stage,
    patience: Duration,
) -> Result<(), DemoError> {
    let mut last_progress = (u64::MAX, Instant::now());
    loop {
        // Published is read before the stage's counters, so `done >= published` cannot be
        // satisfied by counting a message that was published after the read.
        let snapshot = bus.metrics();
        let published = snapshot
            .type_metrics(role.takes.0)
            .map_or(0, |t| t.published);
        let done = done_with(&snapshot, stage.label(), stage.counts()?.handled);
        if done >= published {
            return Ok(());
        }
        if done != last_progress.0 {
            last_progress = (done, Instant::now());
        } else if last_progress.1.elapsed() >= patience {
            return Err(DemoError::Stalled {
                stage: stage.label(),
                message: role.takes.1,
                done,
                published,
                waited: patience,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
