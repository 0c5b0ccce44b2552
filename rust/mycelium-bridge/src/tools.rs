//! `mycelium echo`, `hz`, `record` and `replay`: the tools users of ROS 2 (`ros2 topic echo/hz`,
//! `ros2 bag`) and NATS (`nats sub`) reach for, against a running bus through a socket bridge.
//! Each one joins the bus like any peer (`--connect` to a process's listener, or `--listen` for
//! processes to connect to), so nothing in the observed program changes.
//!
//! Standard output carries only the tool's data (JSON lines, or `hz`'s lines); notices and
//! errors go to standard error. Exit codes are those of `mycelium bridge` (docs/cli.md): 3 when
//! stopped before `--count` messages arrived.

use std::collections::BTreeSet;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mycelium_protocol::digest::diff_canonical;
use mycelium_protocol::{decode_value, MessageDef, Schema, Validator, Value};
use mycelium_transport::{MessageBus, OverflowPolicy, SubscribeOptions};

use crate::cli::{interrupted, CliError, EXIT_UNMET};
use crate::endpoint::Endpoint;
use crate::handle::BridgeHandle;
use crate::recording::{self, Header, Record};
use crate::topology::Topology;

/// Queue of each tool subscription: large, and blocking, so a tool loses nothing it was sent.
const TOOL_QUEUE: usize = 8192;

/// How a tool reaches the bus.
#[derive(Debug, Clone, clap::Args)]
pub struct PeerArgs {
    /// The schema the bus uses (contracts.yaml).
    #[arg(long)]
    pub schema: PathBuf,
    /// Connect to a bridge listening at unix:PATH or tcp:HOST:PORT (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub connect: Vec<Endpoint>,
    /// Listen at unix:PATH or tcp:HOST:PORT for bridges to connect (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<Endpoint>,
    /// File holding the shared-secret token.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// `mycelium echo MESSAGE`: every message of that type as a JSON line.
#[derive(Debug, Clone, clap::Args)]
pub struct EchoArgs {
    /// The message type, e.g. TradeTick.
    pub message: String,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Only messages whose topic matches (e.g. ticks/*; docs/topics.md).
    #[arg(long, value_name = "PATTERN", value_parser = crate::cli::parse_pattern)]
    pub pattern: Option<mycelium_transport::TopicPattern>,
}

/// `mycelium hz MESSAGE`: the rate of a message type, and its latency if it carries a time.
#[derive(Debug, Clone, clap::Args)]
pub struct HzArgs {
    /// The message type, e.g. TradeTick.
    pub message: String,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Seconds per printed line.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub window: f64,
    /// A u64 field holding the publish time in ns since the Unix epoch (e.g. ts_ns): adds
    /// end-to-end latency (now minus that time) to each line.
    #[arg(long, value_name = "FIELD")]
    pub stamp_field: Option<String>,
    /// Exit after this many messages, with a summary line.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Print JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `mycelium record --out FILE [MESSAGE...]`: messages as they arrive, to a file.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// Message types to record (default: every type of the schema).
    pub messages: Vec<String>,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// The recording to write (format in docs/cli.md).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Stop after this many messages.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
}

/// `mycelium replay FILE`: publishes a recording's messages with their original timing.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// A recording made by `mycelium record`.
    pub file: PathBuf,
    #[command(flatten)]
    pub peer: PeerArgs,
    /// Playback speed: 2 is twice as fast; 0 publishes as fast as the bus takes them.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// Before publishing, wait until every recorded type has this many subscribers.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub wait_subscribers: usize,
}

/// Runs `echo`.
pub fn echo(args: EchoArgs) -> Result<(), CliError> {
    let schema = Schema::from_path(&args.peer.schema)?;
    let message = message_def(&schema, &args.message)?;
    let type_id = message.type_id;
    let schema = &schema;
    with_bus(
        &args.peer,
        schema,
        |bus| {
            let mut opts = options("mycelium echo");
            opts.pattern = args.pattern.clone();
            bus.subscribe_raw(type_id, opts)
        },
        |_, sub| async move {
            let mut seen = 0u64;
            while args.count.is_none_or(|n| seen < n) {
                let Some(env) = sub.recv().await else { break };
                seen += 1;
                let value = decode_value(schema, message, &env.payload)
                    .map(|v| v.to_json())
                    .unwrap_or_default();
                let mut line = serde_json::json!({ "message": message.name, "value": value });
                if let Some(topic) = &env.topic {
                    line["topic"] = topic.as_str().into();
                }
                say(&line.to_string())?;
            }
            Ok(seen)
        },
        args.count,
    )
}

/// Runs `hz`.
pub fn hz(args: HzArgs) -> Result<(), CliError> {
    if !(args.window.is_finite() && args.window > 0.0 && args.window <= 3600.0) {
        return Err(CliError::Usage(format!(
            "--window {}: give seconds above 0 and at most 3600",
            args.window
        )));
    }
    let schema = Schema::from_path(&args.peer.schema)?;
    let message = message_def(&schema, &args.message)?;
    if let Some(field) = &args.stamp_field {
        let ok = message.fields.iter().any(|f| {
            &f.name == field
                && f.ty == mycelium_protocol::FieldType::Scalar(mycelium_protocol::Scalar::U64)
        });
        if !ok {
            return Err(CliError::Usage(format!(
                "--stamp-field {field}: {} has no u64 field of that name",
                message.name
            )));
        }
    }
    let type_id = message.type_id;
    let schema = &schema;
    with_bus(
        &args.peer,
        schema,
        |bus| bus.subscribe_raw(type_id, options("mycelium hz")),
        |_, sub| async move {
            let window = Duration::from_secs_f64(args.window);
            let mut total = Window::default();
            let mut current = Window::default();
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
            let mut seen = 0u64;
            while args.count.is_none_or(|n| seen < n) {
                tokio::select! {
                    env = sub.recv() => {
                        let Some(env) = env else { break };
                        seen += 1;
                        let latency = args.stamp_field.as_deref().and_then(|f| stamp_latency(schema, message, &env.payload, f));
                        let now = Instant::now();
                        current.add(now, env.payload.len(), latency);
                        total.add(now, env.payload.len(), latency);
                    }
                    _ = ticker.tick() => {
                        say(&current.line(&message.name, args.window, args.json))?;
                        current = Window::default();
                    }
                }
            }
            let elapsed = total.span().max(f64::MIN_POSITIVE);
            say(&total.line(&format!("{} (all)", message.name), elapsed, args.json))?;
            Ok(seen)
        },
        args.count,
    )
}

/// Runs `record`.
pub fn record(args: RecordArgs) -> Result<(), CliError> {
    let schema = Schema::from_path(&args.peer.schema)?;
    let types: Vec<u16> = if args.messages.is_empty() {
        schema.messages.iter().map(|m| m.type_id).collect()
    } else {
        args.messages
            .iter()
            .map(|name| message_def(&schema, name).map(|m| m.type_id))
            .collect::<Result<_, _>>()?
    };
    let file = std::fs::File::create(&args.out)
        .map_err(|e| CliError::Usage(format!("--out {}: {e}", args.out.display())))?;
    let mut out = BufWriter::new(file);
    let started_unix_ns = unix_ns();
    recording::write_header(
        &mut out,
        &Header {
            schema_digest: schema.digest(),
            schema_canonical: schema.canonical_description(),
            started_unix_ns,
        },
    )?;
    let deadline = match args.duration {
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(CliError::Usage(format!(
                "--duration {s}: give seconds above 0 and at most 86400"
            )))
        }
        None => None,
    };
    let count = args.count;
    with_bus(
        &args.peer,
        &schema,
        |bus| {
            types
                .iter()
                .map(|&t| bus.subscribe_raw(t, options("mycelium record")))
                .collect::<Vec<_>>()
        },
        |_, subs| async move {
            let (tx, mut rx) =
                tokio::sync::mpsc::channel::<mycelium_transport::Envelope>(TOOL_QUEUE);
            for sub in subs {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(env) = sub.recv().await {
                        if tx.send(env).await.is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            let start = Instant::now();
            let stop = async {
                match deadline {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(stop);
            let mut seen = 0u64;
            while count.is_none_or(|n| seen < n) {
                let env = tokio::select! {
                    env = rx.recv() => env,
                    _ = &mut stop => None,
                };
                let Some(env) = env else { break };
                seen += 1;
                recording::write_record(
                    &mut out,
                    &Record {
                        offset_ns: start.elapsed().as_nanos().min(u64::MAX as u128) as u64,
                        type_id: env.type_id,
                        payload: env.payload.to_vec(),
                    },
                )?;
                // Written out whenever nothing else waits, so a killed recorder loses little.
                if rx.is_empty() {
                    out.flush()?;
                }
            }
            out.flush()?;
            eprintln!("recorded {seen} messages to {}", args.out.display());
            Ok(seen)
        },
        count.filter(|_| deadline.is_none()),
    )
}

/// Runs `replay`.
pub fn replay(args: ReplayArgs) -> Result<(), CliError> {
    if !(args.speed.is_finite() && args.speed >= 0.0) {
        return Err(CliError::Usage(format!(
            "--speed {}: give a factor of 0 (as fast as possible) or more",
            args.speed
        )));
    }
    let schema = Schema::from_path(&args.peer.schema)?;
    let file = std::fs::File::open(&args.file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.file.display())))?;
    let mut reader = recording::Reader::new(BufReader::new(file))?;
    if reader.header().schema_digest != schema.digest() {
        let diffs = diff_canonical(
            &schema.canonical_description(),
            &reader.header().schema_canonical,
        );
        return Err(CliError::Usage(format!(
            "{} was recorded with another schema: {}",
            args.file.display(),
            diffs.join("; ")
        )));
    }
    let validator = Validator::new(&schema);
    let mut records = Vec::new();
    while let Some(r) = reader.next_record()? {
        validator.validate(r.type_id, &r.payload).map_err(|e| {
            CliError::Usage(format!(
                "{}: record {} (type id {}) is not valid: {e}",
                args.file.display(),
                records.len(),
                r.type_id
            ))
        })?;
        records.push(r);
    }
    let types: BTreeSet<u16> = records.iter().map(|r| r.type_id).collect();
    let total = records.len() as u64;
    with_bus(
        &args.peer,
        &schema,
        |_| (),
        |bus, ()| async move {
            let mut watch = bus.watch_subscriptions();
            while types
                .iter()
                .any(|t| bus.subscriber_count(*t) < args.wait_subscribers)
            {
                if watch.changed().await.is_err() {
                    break;
                }
            }
            let start = tokio::time::Instant::now();
            let mut sent = 0u64;
            for r in records {
                if args.speed > 0.0 {
                    let at = Duration::from_nanos(r.offset_ns).div_f64(args.speed);
                    tokio::time::sleep_until(start + at).await;
                }
                bus.publish_raw_async(r.type_id, Bytes::from(r.payload))
                    .await
                    .map_err(|e| CliError::Usage(format!("publishing failed: {e}")))?;
                sent += 1;
            }
            eprintln!("replayed {sent} messages from {}", args.file.display());
            Ok(sent)
        },
        Some(total),
    )
}

/// Starts the bridges of `peer` around a fresh bus, subscribes (`subscribe`, before the
/// bridges start so the first handshake carries the interest), runs `body` until it ends or
/// the program is interrupted, then closes the bridges gracefully. `expect` is the count
/// whose shortfall makes the exit code [`EXIT_UNMET`].
pub(crate) fn with_bus<S, F, Fut>(
    peer: &PeerArgs,
    schema: &Schema,
    subscribe: impl FnOnce(&MessageBus) -> S,
    body: F,
    expect: Option<u64>,
) -> Result<(), CliError>
where
    F: FnOnce(MessageBus, S) -> Fut,
    Fut: std::future::Future<Output = Result<u64, CliError>>,
{
    if peer.connect.is_empty() && peer.listen.is_empty() {
        return Err(CliError::Usage(
            "nothing to join: give --connect ADDR (a process's bridge) or --listen ADDR".into(),
        ));
    }
    let topology = Topology {
        listen: peer.listen.clone(),
        connect: peer.connect.clone(),
        token_file: peer.token_file.clone(),
        ..Topology::default()
    };
    crate::cli::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let interrupt = interrupted();
        let bus = MessageBus::new();
        let subs = subscribe(&bus);
        let handles = topology.start(&bus, schema).await?;
        if let Some(listener) = handles.first().filter(|_| !topology.listen.is_empty()) {
            for endpoint in listener.endpoints() {
                eprintln!("listening {endpoint}");
            }
        }
        let outcome = tokio::select! {
            result = body(bus.clone(), subs) => result.map(Some),
            _ = interrupt => Ok(None),
        };
        close_all(handles).await;
        match (outcome?, expect) {
            (Some(done), Some(n)) if done < n => Err(CliError::Unmet(format!(
                "the bus ended after {done} of {n} messages (exit code {EXIT_UNMET})"
            ))),
            (None, Some(n)) => Err(CliError::Unmet(format!(
                "stopped before {n} messages (exit code {EXIT_UNMET})"
            ))),
            _ => Ok(()),
        }
    })
}

async fn close_all(handles: Vec<BridgeHandle>) {
    for handle in handles {
        handle.close();
        handle.wait_stopped().await;
        let _ = handle.join().await;
    }
}

fn options(label: &str) -> SubscribeOptions {
    SubscribeOptions::new(TOOL_QUEUE, OverflowPolicy::Block).with_label(label)
}

pub(crate) fn message_def<'s>(schema: &'s Schema, name: &str) -> Result<&'s MessageDef, CliError> {
    schema.message_by_name(name).ok_or_else(|| {
        let known: Vec<&str> = schema.messages.iter().map(|m| m.name.as_str()).collect();
        CliError::Usage(format!(
            "no message named '{name}' in the schema (it defines: {})",
            known.join(", ")
        ))
    })
}

pub(crate) fn say(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// End-to-end latency from a u64 field holding ns since the Unix epoch.
fn stamp_latency(
    schema: &Schema,
    message: &MessageDef,
    payload: &[u8],
    field: &str,
) -> Option<Duration> {
    match decode_value(schema, message, payload).ok()?.field(field)? {
        Value::U64(stamp) => Some(Duration::from_nanos(unix_ns().saturating_sub(*stamp))),
        _ => None,
    }
}

/// Arrival statistics over a window.
#[derive(Default)]
struct Window {
    count: u64,
    bytes: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    gaps: Vec<f64>,
    latencies: Vec<f64>,
}

impl Window {
    fn add(&mut self, now: Instant, bytes: usize, latency: Option<Duration>) {
        if let Some(last) = self.last {
            self.gaps.push(now.duration_since(last).as_secs_f64());
        }
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.count += 1;
        self.bytes += bytes as u64;
        if let Some(l) = latency {
            self.latencies.push(l.as_secs_f64());
        }
    }

    /// Seconds from the first to the last arrival.
    fn span(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        }
    }

    fn line(&self, name: &str, seconds: f64, json: bool) -> String {
        let rate = self.count as f64 / seconds;
        let (mean, min, max, std) = stats(&self.gaps);
        let latency = (!self.latencies.is_empty()).then(|| stats(&self.latencies));
        if json {
            let mut v = serde_json::json!({
                "message": name, "count": self.count, "seconds": seconds, "rate_hz": rate,
                "bytes_per_s": self.bytes as f64 / seconds,
                "period_ms": {"mean": mean * 1e3, "min": min * 1e3, "max": max * 1e3, "std": std * 1e3},
            });
            if let Some((lmean, lmin, lmax, _)) = latency {
                v["latency_ms"] =
                    serde_json::json!({"mean": lmean * 1e3, "min": lmin * 1e3, "max": lmax * 1e3});
            }
            v.to_string()
        } else {
            let mut line = format!(
                "{name}: {rate:.1} msg/s ({} in {seconds:.2} s)  period mean {:.3} ms min {:.3} max {:.3} std {:.3}",
                self.count,
                mean * 1e3,
                min * 1e3,
                max * 1e3,
                std * 1e3
            );
            if let Some((lmean, lmin, lmax, _)) = latency {
                line.push_str(&format!(
                    "  latency mean {:.3} ms min {:.3} max {:.3}",
                    lmean * 1e3,
                    lmin * 1e3,
                    lmax * 1e3
                ));
            }
            line
        }
    }
}

/// (mean, min, max, standard deviation); zeros when empty.
fn stats(xs: &[f64]) -> (f64, f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, min, max, var.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_statistics() {
        let mut w = Window::default();
        let t0 = Instant::now();
        for i in 0..5u64 {
            w.add(
                t0 + Duration::from_millis(10 * i),
                100,
                Some(Duration::from_millis(2)),
            );
        }
        let (mean, min, max, std) = stats(&w.gaps);
        assert!((mean - 0.010).abs() < 1e-9 && (min - 0.010).abs() < 1e-9);
        assert!((max - 0.010).abs() < 1e-9 && std < 1e-9);
        let line = w.line("TradeTick", 1.0, false);
        assert!(
            line.starts_with("TradeTick: 5.0 msg/s (5 in 1.00 s)"),
            "{line}"
        );
        assert!(line.contains("latency mean 2.000 ms"), "{line}");
        let json: serde_json::Value = serde_json::from_str(&w.line("T", 0.5, true)).unwrap();
        assert_eq!(json["rate_hz"], 10.0);
        assert_eq!(json["bytes_per_s"], 1000.0);
        assert_eq!(
            Window::default()
                .line("T", 1.0, false)
                .split(':')
                .nth(1)
                .unwrap()
                .trim()
                .split(' ')
                .next(),
            Some("0.0")
        );
    }
}
