//! `mycelium bridge`: runs a process's bridges from flags and/or a topology file. Without
//! `--publish-json`/`--subscribe` it relays between its peers until interrupted (Ctrl-C or
//! SIGTERM close it gracefully); with them it is also a small test and debugging client.
//! The `mycelium` CLI and the crate's own `mycelium-bridge` binary share this code.
//!
//! Standard output carries machine-readable lines: `listening <endpoint>` per bound
//! endpoint, `joined <url>` per extra join (`mycelium bridge --nats`) once the server has the
//! `--subscribe` subscription, one JSON object per received message (unless `--quiet`),
//! `published N`, `received N`, and with `--stats` one `stats <json>` line per bridge and join
//! at exit. With `--json` every line is a JSON object with an `event` field instead
//! (`listening`, `joined`, `message`, `published`, `received`, `stats`).
//!
//! Exit codes: 0 done (or a relay interrupted), 1 an error, 2 bad arguments (clap), 3 an
//! expectation not met: interrupted, or a bridge stopped, before `--count` messages were
//! published or `--expect` messages received.

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use mycelium_protocol::{decode_value, encode_value, MessageDef, Schema, SchemaError, Value};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

use crate::endpoint::Endpoint;
use crate::error::BridgeError;
use crate::handle::BridgeHandle;
use crate::topology::{parse_mode, parse_overflow, Topology};

/// Queue of the `--subscribe` subscription.
const SUBSCRIBER_QUEUE: usize = 4096;

/// Arguments of `mycelium bridge`.
#[derive(Debug, Clone, clap::Args)]
pub struct BridgeArgs {
    /// The schema both sides use (contracts.yaml); overrides the topology file's `schema`.
    #[arg(long)]
    pub schema: Option<PathBuf>,
    /// A topology file (format in docs/bridges.md); the flags below add to it or override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Listen on unix:PATH or tcp:HOST:PORT (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<Endpoint>,
    /// Connect to a listening bridge at unix:PATH or tcp:HOST:PORT (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub connect: Vec<Endpoint>,
    /// File holding the shared-secret token (both listening and connecting).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Mode of created Unix sockets, in octal (default 0600).
    #[arg(long, value_parser = parse_mode, value_name = "MODE")]
    pub socket_mode: Option<u32>,
    /// Allow listening on TCP addresses other than loopback.
    #[arg(long)]
    pub allow_remote: bool,
    /// Name sent to peers and shown in their logs.
    #[arg(long)]
    pub name: Option<String>,
    /// Largest payload accepted in one frame, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_frame: Option<usize>,
    /// Messages queued per forwarded type and connection.
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<usize>,
    /// What a full per-connection queue does: block, drop_oldest or fail.
    #[arg(long, value_parser = parse_overflow, value_name = "POLICY")]
    pub overflow: Option<OverflowPolicy>,
    /// Handshake timeout in milliseconds.
    #[arg(long, value_name = "MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Idle timeout in milliseconds (no complete frame from a peer for this long closes it).
    #[arg(long, value_name = "MS")]
    pub idle_timeout_ms: Option<u64>,
    /// Write timeout in milliseconds (a peer that takes no data for this long is cut).
    #[arg(long, value_name = "MS")]
    pub write_timeout_ms: Option<u64>,
    /// First reconnect delay in milliseconds.
    #[arg(long, value_name = "MS")]
    pub backoff_min_ms: Option<u64>,
    /// Largest reconnect delay in milliseconds.
    #[arg(long, value_name = "MS")]
    pub backoff_max_ms: Option<u64>,
    /// Keep reconnecting after a peer refused the handshake (schema, token, version).
    #[arg(long)]
    pub retry_refused: bool,
    /// Publish MESSAGE with the JSON value; "{i}" in the JSON is replaced by a counter.
    #[arg(long, num_args = 2, value_names = ["MESSAGE", "JSON"])]
    pub publish_json: Option<Vec<String>>,
    /// Publish --publish-json's messages under this topic (e.g. ticks/BTC-USD; docs/topics.md).
    #[arg(long, value_name = "TOPIC", value_parser = parse_topic)]
    pub topic: Option<mycelium_transport::TopicName>,
    /// With --subscribe: only messages whose topic matches (e.g. ticks/*; docs/topics.md).
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub pattern: Option<mycelium_transport::TopicPattern>,
    /// How many messages --publish-json publishes.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub count: u64,
    /// First value of the "{i}" counter.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub start: u64,
    /// Before publishing, wait until this many subscribers (usually peers) want the message.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub wait_subscribers: usize,
    /// Subscribe to MESSAGE and print each one received as a JSON line.
    #[arg(long, value_name = "MESSAGE")]
    pub subscribe: Option<String>,
    /// With --subscribe: exit after this many messages.
    #[arg(long, value_name = "N")]
    pub expect: Option<u64>,
    /// Do not print received messages (only the final count).
    #[arg(long)]
    pub quiet: bool,
    /// Keep bridging after --publish-json/--subscribe are done, until interrupted.
    #[arg(long)]
    pub stay: bool,
    /// Print each bridge's statistics as a JSON line at exit.
    #[arg(long)]
    pub stats: bool,
    /// Print only JSON objects on standard output, one per line, each with an `event` field.
    #[arg(long)]
    pub json: bool,
}

/// A join to something other than a socket peer that `mycelium bridge` runs beside its bridges.
/// The `mycelium` CLI adds NATS joins through this (`--nats URL`), so this crate stays free of
/// the NATS client and the layering stays one-way.
pub trait ExtraJoin: Send {
    /// Where it is joined, for the `joined` line (no credentials).
    fn name(&self) -> String;
    /// Stops it (sending what it was handed first) and returns its final counters, which
    /// `--stats` prints.
    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send>>;
}

/// What [`ExtraJoins::start`] returns.
pub type ExtraJoinsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Box<dyn ExtraJoin>>, CliError>> + Send + 'a>>;

/// The extra joins of one `mycelium bridge` run (see [`ExtraJoin`]).
pub trait ExtraJoins: Sync {
    /// Whether there is anything to join (then bridges are not required).
    fn is_empty(&self) -> bool;
    /// Whether it makes the topology file's `nats:` joins (the mycelium CLI's does).
    fn joins_nats(&self) -> bool {
        false
    }
    /// Joins `bus`; resolves once each join is ready to carry the bus's subscriptions (the
    /// `--subscribe` one is made before this is called).
    fn start<'a>(&'a self, bus: &'a MessageBus, schema: &'a Schema) -> ExtraJoinsFuture<'a>;
}

/// No extra joins: plain `mycelium-bridge`.
pub struct NoExtraJoins;

impl ExtraJoins for NoExtraJoins {
    fn is_empty(&self) -> bool {
        true
    }
    fn start<'a>(&'a self, _: &'a MessageBus, _: &'a Schema) -> ExtraJoinsFuture<'a> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Exit code of `mycelium bridge` when `--count` or `--expect` was not reached.
pub const EXIT_UNMET: u8 = 3;

/// Why `mycelium bridge` failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bridge could not start, or a connector was refused.
    #[error("{0}")]
    Bridge(#[from] BridgeError),
    /// The schema could not be loaded.
    #[error("{0}")]
    Schema(#[from] SchemaError),
    /// Something in the arguments does not fit together.
    #[error("{0}")]
    Usage(String),
    /// A --publish-json value is not valid for its message.
    #[error("--publish-json {message}: {reason}")]
    Value {
        /// The message name.
        message: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// The runtime could not start or stdout failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Interrupted, or a bridge stopped, before `--count`/`--expect` was reached.
    #[error("{0}")]
    Unmet(String),
    /// A request was not answered (`mycelium request`): no responder, a timeout, or the
    /// responder failed; the text says which.
    #[error("{0}")]
    Request(String),
    /// A recording could not be read or written (`mycelium record`/`replay`).
    #[error("{0}")]
    Recording(#[from] crate::recording::RecordingError),
    /// An [`ExtraJoin`] could not start (e.g. the NATS server is down or refused us).
    #[error("{0}")]
    Join(String),
}

impl CliError {
    /// The process exit code for this error: [`EXIT_UNMET`] for an unmet expectation, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Unmet(_) => EXIT_UNMET,
            _ => 1,
        }
    }
}

/// Variable holding the log filter of the command-line programs (`RUST_LOG` works too).
pub const LOG_ENV: &str = "MYCELIUM_LOG";

/// Logs to standard error, filtered by `MYCELIUM_LOG`, else `RUST_LOG` (tracing's filter
/// syntax: `debug`, `mycelium_bridge=trace,warn`, ...), else `info`. A filter that does not
/// parse is reported and the default used, so a typo never silences the program.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let (source, text) = match std::env::var(LOG_ENV) {
        Ok(text) => (LOG_ENV, text),
        Err(_) => ("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_default()),
    };
    let filter = if text.trim().is_empty() {
        EnvFilter::new("info")
    } else {
        EnvFilter::try_new(&text).unwrap_or_else(|e| {
            eprintln!("warning: {source}={text:?} is not a log filter ({e}); using info");
            EnvFilter::new("info")
        })
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Runs `mycelium bridge` to completion.
pub fn run(args: BridgeArgs) -> Result<(), CliError> {
    run_with(args, &NoExtraJoins)
}

/// Runs `mycelium bridge` with joins a crate above this one adds (see [`ExtraJoin`]).
pub fn run_with(args: BridgeArgs, extra: &dyn ExtraJoins) -> Result<(), CliError> {
    init_logging();
    let topology = topology_from(&args)?;
    let schema_path = args
        .schema
        .clone()
        .or_else(|| topology.schema.clone())
        .ok_or_else(|| {
            CliError::Usage(
                "no schema: pass --schema contracts.yaml or set `schema:` in the topology file"
                    .into(),
            )
        })?;
    let schema = Schema::from_path(&schema_path)?;
    if !topology.nats.is_empty() && !extra.joins_nats() {
        return Err(CliError::Usage(
            "the topology file has `nats:` joins, which this binary cannot make: run `mycelium bridge --config FILE` (the mycelium CLI has the NATS client)".into(),
        ));
    }
    if topology.listen.is_empty() && topology.connect.is_empty() && extra.is_empty() {
        return Err(CliError::Usage(
            "nothing to bridge: give --listen and/or --connect (or --nats), or a --config that has them".into(),
        ));
    }
    let publish = match &args.publish_json {
        Some(pair) => Some(Publisher::new(&schema, &pair[0], &pair[1])?),
        None => None,
    };
    let subscribe = match &args.subscribe {
        Some(name) => Some(message(&schema, name)?.clone()),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async_main(
        args, topology, schema, publish, subscribe, extra,
    ))
}

fn topology_from(args: &BridgeArgs) -> Result<Topology, CliError> {
    let mut t = match &args.config {
        Some(path) => Topology::from_path(path)?,
        None => Topology::default(),
    };
    t.listen.extend(args.listen.iter().cloned());
    t.connect.extend(args.connect.iter().cloned());
    let l = &mut t.limits;
    let set_ms = |slot: &mut Duration, ms: Option<u64>| {
        if let Some(ms) = ms {
            *slot = Duration::from_millis(ms);
        }
    };
    set_ms(&mut l.handshake_timeout, args.handshake_timeout_ms);
    set_ms(&mut l.idle_timeout, args.idle_timeout_ms);
    set_ms(&mut l.write_timeout, args.write_timeout_ms);
    set_ms(&mut t.backoff.min, args.backoff_min_ms);
    set_ms(&mut t.backoff.max, args.backoff_max_ms);
    if let Some(v) = args.max_frame {
        t.limits.max_frame = v;
    }
    if let Some(v) = args.queue_capacity {
        t.limits.queue_capacity = v;
    }
    if let Some(v) = args.overflow {
        t.limits.overflow = v;
    }
    if let Some(v) = args.socket_mode {
        t.socket_mode = v;
    }
    if let Some(v) = &args.token_file {
        t.token_file = Some(v.clone());
    }
    if let Some(v) = &args.name {
        t.name = Some(v.clone());
    }
    t.allow_remote |= args.allow_remote;
    t.retry_refused |= args.retry_refused;
    Ok(t)
}

fn message<'s>(schema: &'s Schema, name: &str) -> Result<&'s MessageDef, CliError> {
    schema.message_by_name(name).ok_or_else(|| {
        let known: Vec<&str> = schema.messages.iter().map(|m| m.name.as_str()).collect();
        CliError::Usage(format!(
            "no message named '{name}' in the schema (it defines: {})",
            known.join(", ")
        ))
    })
}

/// Encodes the `--publish-json` template, once if it has no counter.
struct Publisher {
    schema: Schema,
    message: MessageDef,
    template: String,
    fixed: Option<Bytes>,
}

impl Publisher {
    fn new(schema: &Schema, name: &str, template: &str) -> Result<Publisher, CliError> {
        let message = message(schema, name)?.clone();
        let mut publisher = Publisher {
            schema: schema.clone(),
            message,
            template: template.to_owned(),
            fixed: None,
        };
        // Checks the value up front, with the counter at 0.
        let first = publisher.payload(0)?;
        if !template.contains("{i}") {
            publisher.fixed = Some(first);
        }
        Ok(publisher)
    }

    fn payload(&self, i: u64) -> Result<Bytes, CliError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let bad = |reason: String| CliError::Value {
            message: self.message.name.clone(),
            reason,
        };
        let text = self.template.replace("{i}", &i.to_string());
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let value = Value::message_from_json(&self.schema, &self.message, &json)
            .map_err(|e| bad(e.to_string()))?;
        let payload =
            encode_value(&self.schema, &self.message, &value).map_err(|e| bad(e.to_string()))?;
        Ok(Bytes::from(payload))
    }
}

fn say(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// One stdout line: `text` plus `value` as plain text, or `{"event": ..., key: value}` with
/// `--json`.
fn report(json: bool, event: &str, key: &str, value: serde_json::Value) -> Result<(), CliError> {
    if json {
        say(&serde_json::json!({ "event": event, key: value }).to_string())
    } else {
        match value {
            serde_json::Value::String(text) => say(&format!("{event} {text}")),
            other => say(&format!("{event} {other}")),
        }
    }
}

async fn async_main(
    args: BridgeArgs,
    topology: Topology,
    schema: Schema,
    publish: Option<Publisher>,
    subscribe: Option<MessageDef>,
    extra: &dyn ExtraJoins,
) -> Result<(), CliError> {
    let interrupt = interrupted();
    let bus = MessageBus::new();
    // Subscribed before the bridges start, so the first handshake already carries the interest.
    let subscription = subscribe.as_ref().map(|m| {
        let mut options = SubscribeOptions::new(SUBSCRIBER_QUEUE, OverflowPolicy::Block)
            .with_label("mycelium bridge --subscribe");
        options.pattern = args.pattern.clone();
        bus.subscribe_raw(m.type_id, options)
    });
    let handles = topology.start(&bus, &schema).await?;
    let extras = match extra.start(&bus, &schema).await {
        Ok(extras) => extras,
        Err(e) => {
            for handle in handles {
                handle.close();
                let _ = handle.join().await;
            }
            return Err(e);
        }
    };
    // Topology::start puts the listener, if any, first.
    if let Some(listener) = handles.first().filter(|_| !topology.listen.is_empty()) {
        for endpoint in listener.endpoints() {
            report(
                args.json,
                "listening",
                "endpoint",
                endpoint.to_string().into(),
            )?;
        }
    }
    // Printed once the join carries the bus's subscriptions: a peer may start publishing.
    for join in &extras {
        report(args.json, "joined", "endpoint", join.name().into())?;
    }
    // Counted outside the tasks, so an interruption still reports how far they got.
    let published = Progress::default();
    let received = Progress::default();
    let work = async {
        let publishing = async {
            if let Some(publisher) = &publish {
                publish_all(&bus, publisher, &args, &published).await?;
            }
            Ok::<(), CliError>(())
        };
        let receiving = async {
            if let (Some(sub), Some(message)) = (&subscription, &subscribe) {
                receive(&schema, sub, message, &args, &received).await?;
            }
            Ok::<(), CliError>(())
        };
        let (p, r) = tokio::join!(publishing, receiving);
        p.and(r)
    };
    // A plain relay, or --stay, runs until interrupted; otherwise the program ends when its
    // publishing and receiving are done.
    let exit_when_done = !args.stay && (publish.is_some() || subscribe.is_some());
    let work = async {
        let result = work.await;
        if result.is_ok() && !exit_when_done {
            std::future::pending::<()>().await;
        }
        result
    };
    let outcome = tokio::select! {
        result = work => result,
        _ = interrupt => Ok(()),
        _ = any_stopped(&handles) => Ok(()),
    };
    // A task that finished has printed its count; one cut short prints how far it got.
    if publish.is_some() && !published.finished() {
        report(args.json, "published", "count", published.count().into())?;
    }
    if subscribe.is_some() && !received.finished() {
        report(args.json, "received", "count", received.count().into())?;
    }
    let (published, received) = (published.count(), received.count());
    let mut unmet = Vec::new();
    if publish.is_some() && published < args.count {
        unmet.push(format!("published {published} of --count {}", args.count));
    }
    if let Some(expect) = args.expect.filter(|n| subscribe.is_some() && received < *n) {
        unmet.push(format!("received {received} of --expect {expect}"));
    }
    let mut failure = outcome.err();
    if failure.is_none() && !unmet.is_empty() {
        failure = Some(CliError::Unmet(format!(
            "stopped before the expected messages: {} (exit code {EXIT_UNMET})",
            unmet.join(", ")
        )));
    }
    for handle in handles {
        handle.close();
        handle.wait_stopped().await;
        let stats = handle.stats();
        let result = handle.join().await;
        if args.stats {
            let stats = serde_json::to_value(&stats).unwrap_or_default();
            if args.json {
                report(true, "stats", "stats", stats)?;
            } else {
                say(&format!("stats {stats}"))?;
            }
        }
        if let Err(e) = result {
            failure.get_or_insert(e.into());
        }
    }
    for join in extras {
        let stats = join.close().await;
        if args.stats {
            if args.json {
                report(true, "stats", "stats", stats)?;
            } else {
                say(&format!("stats {stats}"))?;
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn publish_all(
    bus: &MessageBus,
    publisher: &Publisher,
    args: &BridgeArgs,
    published: &Progress,
) -> Result<(), CliError> {
    let type_id = publisher.message.type_id;
    let mut watch = bus.watch_subscriptions();
    while bus.subscriber_count(type_id) < args.wait_subscribers {
        if watch.changed().await.is_err() {
            return Ok(());
        }
    }
    for i in 0..args.count {
        let payload = publisher.payload(args.start + i)?;
        let sent = match &args.topic {
            Some(topic) => {
                bus.publish_raw_on_from_async(
                    mycelium_transport::Envelope::LOCAL_ORIGIN,
                    type_id,
                    Some(topic.clone()),
                    payload,
                )
                .await
            }
            None => bus.publish_raw_async(type_id, payload).await,
        };
        if let Err(e) = sent {
            return Err(CliError::Usage(format!("publishing failed: {e}")));
        }
        published.add();
    }
    published.finish();
    report(args.json, "published", "count", published.count().into())
}

async fn receive(
    schema: &Schema,
    sub: &mycelium_transport::RawSubscription,
    message: &MessageDef,
    args: &BridgeArgs,
    received: &Progress,
) -> Result<(), CliError> {
    while args.expect.is_none_or(|n| received.count() < n) {
        let Some(envelope) = sub.recv().await else {
            break;
        };
        received.add();
        if !args.quiet {
            // Inbound payloads were validated by the bridge, so this decodes.
            if let Ok(value) = decode_value(schema, message, &envelope.payload) {
                let mut line = if args.json {
                    serde_json::json!({ "event": "message", "message": message.name, "value": value.to_json() })
                } else {
                    serde_json::json!({ "message": message.name, "value": value.to_json() })
                };
                if let Some(topic) = &envelope.topic {
                    line["topic"] = topic.as_str().into();
                }
                say(&line.to_string())?;
            }
        }
    }
    received.finish();
    report(args.json, "received", "count", received.count().into())
}

/// `--topic`: a topic name, refused with the reason (clap prints it as a usage error).
pub(crate) fn parse_topic(text: &str) -> Result<mycelium_transport::TopicName, String> {
    mycelium_transport::TopicName::new(text).map_err(|e| e.to_string())
}

/// `--pattern`: a topic pattern, refused with the reason.
pub(crate) fn parse_pattern(text: &str) -> Result<mycelium_transport::TopicPattern, String> {
    mycelium_transport::TopicPattern::new(text).map_err(|e| e.to_string())
}

/// How far `--publish-json` or `--subscribe` got, readable after an interruption.
#[derive(Default)]
struct Progress {
    count: std::sync::atomic::AtomicU64,
    finished: std::sync::atomic::AtomicBool,
}

impl Progress {
    fn add(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn finish(&self) {
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn finished(&self) -> bool {
        self.finished.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// SIGINT and SIGTERM, caught from the moment this is made: made before anything is printed,
/// so a supervisor that stops the program as soon as it says `listening` gets a graceful stop
/// (and the exit code that says whether expectations were met), not the default signal death.
pub(crate) fn interrupted() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut streams: Vec<_> = [SignalKind::interrupt(), SignalKind::terminate()]
        .into_iter()
        .filter_map(|kind| signal(kind).ok())
        .collect();
    async move {
        if streams.is_empty() {
            return std::future::pending().await;
        }
        std::future::poll_fn(|cx| {
            if streams.iter_mut().any(|s| s.poll_recv(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}

/// Completes when any bridge has stopped by itself (e.g. a connector refused by its peer).
async fn any_stopped(handles: &[BridgeHandle]) {
    let mut waits: Vec<Pin<Box<dyn Future<Output = ()> + Send + '_>>> = handles
        .iter()
        .map(|h| Box::pin(h.wait_stopped()) as Pin<Box<_>>)
        .collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    std::future::poll_fn(|cx| {
        if waits.iter_mut().any(|w| w.as_mut().poll(cx).is_ready()) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}
