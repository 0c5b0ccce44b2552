//! The pipeline's stages after the market: strategy (TradeTick -> asks risk about an Order ->
//! publishes the OrderDecision), risk (the RiskCheck service: Order -> OrderDecision) and book
//! (receives OrderDecision), each in one of the languages.

pub mod ocaml;
pub mod python;
pub mod rust;

use serde::Serialize;

use crate::error::DemoError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    #[serde(rename = "ocaml")]
    OCaml,
    /// Served by another process, over NATS (`--part front`).
    Remote,
}

impl Language {
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::OCaml => "ocaml",
            Language::Remote => "remote",
        }
    }
}

/// What a stage reports about itself (its own counters, not the bus's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Messages whose handler finished without error.
    pub handled: u64,
    /// Messages it published.
    pub sent: u64,
}

/// Queue settings every stage subscribes with.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    pub capacity: u32,
    pub policy: crate::cli::Policy,
}

/// One subscriber of the pipeline.
pub trait Stage {
    /// Its subscription's label on the bus, e.g. `python-strategy`.
    fn label(&self) -> &'static str;
    fn language(&self) -> Language;
    fn counts(&mut self) -> Result<Counts, DemoError>;
    /// Ends its subscription, waiting for a running handler. Idempotent.
    fn close(&mut self) -> Result<(), DemoError>;
}
