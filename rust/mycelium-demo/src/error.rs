//! Why the demo could not run, in terms a user can act on.

use std::path::PathBuf;
use std::time::Duration;

use mycelium_embed_python::EmbedError;
use mycelium_ocaml_guest::GuestError;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the schema built into the demo does not load: {0}")]
    Schema(String),
    #[error("--capacity: {0}")]
    Subscribe(#[from] mycelium_transport::SubscribeError),
    #[error(
        "--strategy python: {0}\n`bash scripts/demo.sh` installs and builds what the Python strategy \
         needs (or run the demo with --strategy rust)"
    )]
    PythonSetup(#[from] EmbedError),
    #[error("--python-strategy {path}: {why}")]
    StrategyFile { path: PathBuf, why: String },
    #[error("the Python strategy failed: {0}")]
    Python(String),
    #[error("--risk ocaml: {0}")]
    Ocaml(#[from] GuestError),
    #[error("{0} was already closed")]
    Closed(&'static str),
    #[error("cannot start the {stage} thread: {source}")]
    Spawn {
        stage: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{stage}: {source}")]
    Topic {
        stage: &'static str,
        #[source]
        source: mycelium_transport::TopicError,
    },
    #[error("--nats: {0}\n(start a server with `nats-server -p 4222`, or run `bash scripts/demo.sh --over-nats`, which starts one)")]
    Nats(#[from] mycelium_nats::NatsError),
    #[error("--nats: {0}")]
    NatsRuntime(String),
    #[error("the {0} thread panicked")]
    StagePanicked(&'static str),
    #[error(
        "{stage} took {done} of {published} {message} messages and made no progress for {waited:?}; \
         its handler may be stuck (the progress line and the metrics below show where)"
    )]
    Stalled {
        stage: &'static str,
        message: &'static str,
        done: u64,
        published: u64,
        waited: Duration,
    },
}
