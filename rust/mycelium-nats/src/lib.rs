//! Mycelium over NATS (issue 15, core NATS mode): joins a [`MessageBus`] to a NATS server.
//!
//! - Local publishes of every schema type go out on `<prefix>.<schema>.<Message>`, with the
//!   message's fingerprint and the schema digest in one NATS header ([`SCHEMA_HEADER`]).
//! - Messages from NATS are validated against the schema and published locally with this
//!   connection's origin, so the forwarder skips them: nothing echoes back to NATS, and two
//!   buses joined through one server never loop. The connection also sets `no_echo`.
//! - Named topics are subject tokens: a publish on `ticks/BTC-USD` goes to
//!   `<prefix>.<schema>.<Message>.ticks.BTC-USD`, and a local subscription's pattern becomes
//!   the subject the join subscribes to, so the server filters (`subjects.rs`).
//! - Interest-based: the bus subscribes to a subject only while it has a local subscriber of
//!   that type (and topic pattern) other than its own forwarders.
//! - A message whose fingerprint in that header differs from ours is refused and counted,
//!   logged once per (peer digest, message). Payloads without it are validated like any
//!   publish.
//! - A payload larger than the server's `max_payload` is refused with
//!   [`NatsError::PayloadTooLarge`] semantics and counted.
//! - JetStream mode ([`NatsConfig::with_jetstream`], at least once): acked publishes with a
//!   stable `Nats-Msg-Id`, a durable consumer per subscribing bus (`jetstream.rs`).
//!
//! See `docs/distributed.md` for what is built and what is not.

mod jetstream;
mod metrics;
mod mismatch;
mod services;
mod stats;
mod subjects;
pub mod url;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use mycelium_protocol::{Schema, Validator};
use mycelium_transport::{Envelope, MessageBus, OverflowPolicy, SubscribeOptions, TopicName};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

pub use jetstream::{DeliverFrom, JetStreamOptions, StreamLimits, MSG_ID_HEADER};
pub use metrics::{nats_prometheus, NatsSnapshot};
pub use services::{DEFAULT_REMOTE_TIMEOUT, ERROR_HEADER, TIMEOUT_HEADER};
pub use stats::NatsStats;
pub use subjects::MAX_PATTERN_SUBJECTS;

/// The NATS header every message, request and reply of ours carries: the message's schema
/// fingerprint and the publishing bus's schema digest, shortened, in one value
/// (`<fingerprint> <digest>`, see [`schema_header_value`]).
///
/// One short header rather than two full-length ones because async-nats builds and parses a
/// header map per message, at a cost that grows with each header and each byte: with the
/// system allocator a bare async-nats pair sending two 64-hex-digit headers used 3.4-4.2 µs of
/// client CPU per 64 B message against 1.8-2.5 µs with this one (0.9 µs without headers);
/// docs/benchmarks.md has the runs.
pub const SCHEMA_HEADER: &str = "Mycelium-Schema";
/// Hex digits of the message fingerprint in [`SCHEMA_HEADER`] (128 bits: enough to tell
/// schema versions apart; a payload is still validated against our definition).
pub const FINGERPRINT_DIGITS: usize = 32;
/// Hex digits of the schema digest in [`SCHEMA_HEADER`] (64 bits: names the peer's schema
/// for logs and for asking its description).
pub const DIGEST_DIGITS: usize = 16;

/// The value of [`SCHEMA_HEADER`] for a message with this fingerprint published by a bus with
/// this schema digest (both lowercase hex SHA-256, as `Schema` gives them):
/// `<first 32 digits of the fingerprint> <first 16 digits of the digest>`.
pub fn schema_header_value(fingerprint: &str, digest: &str) -> String {
    format!(
        "{} {}",
        short(fingerprint, FINGERPRINT_DIGITS),
        short(digest, DIGEST_DIGITS)
    )
}

/// The first `digits` characters of a hex string (all of a shorter one).
fn short(hex: &str, digits: usize) -> &str {
    hex.get(..digits).unwrap_or(hex)
}

/// (fingerprint, digest) of a [`SCHEMA_HEADER`] value; a value without a space is all
/// fingerprint.
fn parse_schema_header(value: &str) -> (&str, &str) {
    value.split_once(' ').unwrap_or((value, ""))
}
/// Default subject prefix.
pub const DEFAULT_PREFIX: &str = "mycelium";

/// Errors of the NATS join.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The server refused the credentials. Not retried: the same credentials would be refused
    /// again. `url` has any credentials replaced by `<redacted>`.
    #[error("the NATS server at {url} refused our credentials: {reason}")]
    Auth { url: String, reason: String },
    /// The TLS handshake failed (e.g. the server's certificate is not signed by a trusted CA,
    /// or the server does not speak TLS). Not retried.
    #[error("TLS with the NATS server at {url} failed: {reason}")]
    Tls { url: String, reason: String },
    #[error("invalid NATS configuration: {0}")]
    Config(String),
    #[error("payload of {size} bytes exceeds the NATS server's max_payload of {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    /// JetStream mode asked of a server (or account) without JetStream.
    #[error("the NATS server at {url} has no JetStream for us (enable it in the server's configuration: jetstream {{ store_dir: ... }}): {reason}")]
    JetStreamNotEnabled { url: String, reason: String },
    /// A JetStream request at connect (stream, consumer) failed.
    #[error("JetStream at {url}: {reason}")]
    JetStream { url: String, reason: String },
}

/// Credentials for the server. Never logged: `Debug` shows the kind and the user, not the
/// secret.
#[derive(Clone, Default)]
pub enum NatsAuth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
    /// An nkey seed (`SU...`): the server knows the public key; the seed signs its challenge
    /// and never leaves the process.
    Nkey(String),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NatsAuth::None => f.write_str("None"),
            NatsAuth::UserPassword { user, .. } => {
                write!(f, "UserPassword {{ user: {user:?}, password: <redacted> }}")
            }
            NatsAuth::Token(_) => f.write_str("Token(<redacted>)"),
            NatsAuth::Nkey(_) => f.write_str("Nkey(<redacted>)"),
        }
    }
}

/// How to join a bus to NATS. `Debug` redacts the credentials, also those in the URL.
#[derive(Clone)]
pub struct NatsConfig {
    /// `nats://host:port`, or a comma-separated list of servers of one cluster.
    /// `nats://user:password@host:port` and `nats://token@host:port` work too (taken out of
    /// the URL and sent as [`NatsAuth`]; %-escape reserved characters); giving credentials
    /// both there and in `auth` is a configuration error.
    pub url: String,
    /// Credentials, if the server wants them.
    pub auth: NatsAuth,
    /// First subject token(s); default [`DEFAULT_PREFIX`].
    pub prefix: String,
    /// Queue capacity of each forwarding subscription on the local bus: the outgoing buffer
    /// per type. While the server is unreachable the client stops taking publishes once its
    /// own buffer is full, and this queue fills; then `queue_overflow` decides.
    pub queue_capacity: usize,
    /// What a full outgoing buffer does while NATS does not take messages: `Block` (the
    /// default: local publishers of that type wait, nothing is lost), `DropOldest` (they go on,
    /// the oldest queued message is dropped) or `FailPublish` (their publish returns
    /// `QueueFull`). Drops are counted on the forwarding subscription (bus metrics, label
    /// `nats:<url>`), as for any subscriber.
    pub queue_overflow: OverflowPolicy,
    /// Messages the NATS client buffers per subscription before it drops them (counted in
    /// `slow_consumer`); async-nats's default is 65 536.
    pub subscription_capacity: usize,
    /// JetStream mode (at least once, durable) instead of core NATS (at most once, the
    /// default).
    pub jetstream: Option<JetStreamOptions>,
    /// TLS: which certificate authorities to trust and our own certificate, if any.
    pub tls: NatsTls,
}

/// TLS settings. A `tls://` URL, or any of these set, makes the connection require TLS;
/// without a CA file the system's roots are trusted.
#[derive(Clone, Debug, Default)]
pub struct NatsTls {
    /// PEM file of the certificate authorities to trust (e.g. a private CA's).
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM certificate and key files of this client, for servers that verify clients.
    pub client_cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Require TLS even with a `nats://` URL.
    pub required: bool,
}

impl NatsTls {
    fn any(&self) -> bool {
        self.required || self.ca_file.is_some() || self.client_cert.is_some()
    }
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            auth: NatsAuth::None,
            prefix: DEFAULT_PREFIX.to_string(),
            queue_capacity: 4096,
            queue_overflow: OverflowPolicy::Block,
            subscription_capacity: 65_536,
            jetstream: None,
            tls: NatsTls::default(),
        }
    }

    /// A configuration from one address string, for callers that have nothing else (the C
    /// ABI's, Python's and OCaml's `connect`, the CLI's `--nats`): options after `?`, e.g.
    /// `nats://host:4222?jetstream=ORDERS&durable=risk&deliver=all`, or
    /// `?outgoing=1024&overflow=drop_oldest&prefix=prod`. See [`url::URL_OPTIONS`]; an unknown
    /// option or a bad value is a [`NatsError::Config`] naming it.
    pub fn from_url(address: &str) -> Result<NatsConfig, NatsError> {
        url::config_from_url(address)
    }

    pub fn with_user_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth = NatsAuth::UserPassword {
            user: user.into(),
            password: password.into(),
        };
        self
    }

    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.auth = NatsAuth::Token(token.into());
        self
    }

    /// Authenticates with an nkey seed (`SU...`; see [`NatsAuth::Nkey`]).
    pub fn with_nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth = NatsAuth::Nkey(seed.into());
        self
    }

    /// Trusts the certificate authorities in this PEM file, and requires TLS.
    pub fn with_tls_ca(mut self, ca_file: impl Into<std::path::PathBuf>) -> Self {
        self.tls.ca_file = Some(ca_file.into());
        self
    }

    /// Presents this client certificate (PEM certificate and key files), and requires TLS.
    pub fn with_client_certificate(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some((cert.into(), key.into()));
        self
    }

    pub fn with_subscription_capacity(mut self, capacity: usize) -> Self {
        self.subscription_capacity = capacity;
        self
    }

    /// The outgoing buffer per type and what it does when full (see `queue_overflow`).
    pub fn with_outgoing_queue(mut self, capacity: usize, overflow: OverflowPolicy) -> Self {
        self.queue_capacity = capacity;
        self.queue_overflow = overflow;
        self
    }

    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// JetStream mode: publishes go to `options.stream` and wait for their acks; with a
    /// durable, the bus consumes the stream through it.
    pub fn with_jetstream(mut self, options: JetStreamOptions) -> Self {
        self.jetstream = Some(options);
        self
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &redact_url(&self.url))
            .field("auth", &self.auth)
            .field("prefix", &self.prefix)
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_overflow", &self.queue_overflow)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("jetstream", &self.jetstream)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The URL with any `user:password@` (or `token@`) replaced by `<redacted>@`, for errors,
/// logs and metric labels.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}<redacted>{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// What a message type goes out with.
struct TypeRoute {
    /// `<prefix>.<schema>.<Message>` (a topic's tokens follow it).
    subject: String,
    /// The fingerprint as the schema header carries it (shortened).
    fingerprint: String,
    /// The schema header of this type, built once: cloning a header map costs a third of
    /// building one (measured 96 vs 284 ns for two headers).
    headers: async_nats::HeaderMap,
}

struct Shared {
    bus: MessageBus,
    client: async_nats::Client,
    validator: Validator,
    /// Our schema digest, shortened as the schema header carries it.
    digest: String,
    origin: u64,
    /// What each message type of the schema goes out with, by type id.
    types: HashMap<u16, TypeRoute>,
    /// `<prefix>.<schema>.`: what every subject of ours starts with.
    subject_root: String,
    /// Message name -> type id, to route a subject back to its type.
    by_name: HashMap<String, u16>,
    /// `<prefix>._svc.<schema>.`: what every service subject starts with (outside the
    /// messages' namespace, so a JetStream stream of them never stores requests).
    service_root: String,
    /// The schema's declared services (those a proxy responder carries to NATS).
    declared: Vec<services::ServiceRoute>,
    /// Label of the join's subscriptions and responders on the bus (`nats:<url>`).
    label: String,
    /// One more than the bus's subscription generation whose subjects the server has (core
    /// mode; 0: none yet). `is_ready` compares it with the bus's current generation.
    handled_generation: AtomicU64,
    stats: Arc<NatsStats>,
    /// (peer digest, message) pairs already logged as mismatching.
    logged: Mutex<HashSet<(String, u16)>>,
    /// What differed, one line per logged mismatch (`mismatch.rs`).
    mismatches: Arc<Mutex<Vec<String>>>,
    /// Our schema's canonical description, for peers that ask (`mismatch.rs`).
    canonical: Arc<str>,
    /// The configured subject prefix.
    prefix: String,
    /// Types already logged as too large for the server (once each, not per message).
    logged_too_large: Mutex<HashSet<u16>>,
    /// JetStream mode's state; `None` in core mode.
    js: Option<jetstream::JetStream>,
}

/// How long [`NatsBridge::connect`] waits for the bus's current interest to be on the server.
const CONNECT_INTEREST_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long [`NatsBridge::close`] keeps sending what local publishers already handed over.
pub const CLOSE_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A running join between a bus and NATS; [`close`](Self::close) ends it.
pub struct NatsBridge {
    shared: Arc<Shared>,
    /// The interest task (and with it the inbound subscriptions).
    tasks: Vec<JoinHandle<()>>,
    /// One per type: local bus -> NATS. Told to finish by `stop` so a close loses nothing.
    forwarders: Vec<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    forwarder_ids: Arc<HashSet<u64>>,
    /// JetStream mode's consumer loop, stopped gracefully by `close`.
    consumer: Option<JoinHandle<()>>,
}

/// How long `flush` waits for JetStream acks.
const FLUSH_ACKS_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long `close` waits for the JetStream consumer's batch and for publish acks.
const CLOSE_CONSUMER_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Origins handed to NATS connections: high range, far from bridge session ids.
static NEXT_ORIGIN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 48);

impl NatsBridge {
    /// Connects to `config.url` and starts forwarding. Must be called inside a tokio runtime.
    pub async fn connect(
        bus: &MessageBus,
        schema: &Schema,
        config: NatsConfig,
    ) -> Result<NatsBridge, NatsError> {
        if config.subscription_capacity == 0 {
            return Err(NatsError::Config(
                "subscription_capacity must be at least 1".to_string(),
            ));
        }
        if config.prefix.is_empty()
            || config
                .prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>', ' ', '\t']))
        {
            return Err(NatsError::Config(format!(
                "prefix {:?} is not a valid subject prefix",
                config.prefix
            )));
        }
        let stats = Arc::new(NatsStats::default());
        let events = Arc::clone(&stats);
        // Moves on every reconnection (not the first connection, which may be reported after
        // JetStream mode's consumer started pulling).
        let (reconnections, reconnections_rx) = tokio::sync::watch::channel(0u64);
        let first_connection = std::sync::atomic::AtomicBool::new(true);
        let shown_url = redact_url(&config.url);
        let (server_url, url_auth) = url::split_credentials(&config.url)?;
        let auth = match (&config.auth, url_auth) {
            (NatsAuth::None, from_url) => from_url,
            (given, NatsAuth::None) => given.clone(),
            _ => {
                return Err(NatsError::Config(format!(
                    "credentials given twice: in the URL {shown_url} and in the configuration"
                )))
            }
        };
        let options = match &auth {
            NatsAuth::None => async_nats::ConnectOptions::new(),
            NatsAuth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            NatsAuth::Token(token) => async_nats::ConnectOptions::with_token(token.clone()),
            NatsAuth::Nkey(seed) => {
                // Checked here: async-nats would only fail at the server's challenge.
                nkeys::KeyPair::from_seed(seed)
                    .map_err(|e| NatsError::Config(format!("the nkey seed is not valid: {e}")))?;
                async_nats::ConnectOptions::with_nkey(seed.clone())
            }
        };
        let mut options = options;
        if config.tls.any() {
            options = options.require_tls(true);
            if let Some(ca) = &config.tls.ca_file {
                if !ca.is_file() {
                    return Err(NatsError::Config(format!(
                        "TLS CA file {} does not exist",
                        ca.display()
                    )));
                }
                options = options.add_root_certificates(ca.clone());
            }
            if let Some((cert, key)) = &config.tls.client_cert {
                options = options.add_client_certificate(cert.clone(), key.clone());
            }
        }
        let client = options
            .no_echo()
            .subscription_capacity(config.subscription_capacity)
            .event_callback(move |event| {
                let stats = Arc::clone(&events);
                if let async_nats::Event::Connected = event {
                    if !first_connection.swap(false, std::sync::atomic::Ordering::Relaxed) {
                        reconnections.send_modify(|n| *n += 1);
                    }
                }
                async move { stats.record_event(&event) }
            })
            .connect(server_url.as_str())
            .await
            .map_err(|e| match e.kind() {
                // async-nats does not retry these either: the same credentials fail again.
                async_nats::ConnectErrorKind::AuthorizationViolation
                | async_nats::ConnectErrorKind::Authentication => NatsError::Auth {
                    url: shown_url.clone(),
                    reason: e.to_string(),
                },
                // async-nats reports a refused server certificate as an I/O error.
                kind if kind == async_nats::ConnectErrorKind::Tls
                    || e.to_string().contains("certificate") =>
                {
                    NatsError::Tls {
                        url: shown_url.clone(),
                        reason: e.to_string(),
                    }
                }
                _ => NatsError::Connect {
                    url: shown_url.clone(),
                    reason: e.to_string(),
                },
            })?;
        // Shortened like the schema header carries it: peers ask for our description by it.
        let digest = short(&schema.digest(), DIGEST_DIGITS).to_owned();
        let types = schema
            .messages
            .iter()
            .map(|m| {
                let subject = format!("{}.{}.{}", config.prefix, schema.name, m.name);
                let fingerprint = schema.fingerprint(&m.name).unwrap_or_default();
                let value = schema_header_value(&fingerprint, &digest);
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(SCHEMA_HEADER, value.as_str());
                let fingerprint = short(&fingerprint, FINGERPRINT_DIGITS).to_owned();
                let route = TypeRoute {
                    subject,
                    fingerprint,
                    headers,
                };
                (m.type_id, route)
            })
            .collect::<HashMap<_, _>>();
        let by_name: HashMap<String, u16> = schema
            .messages
            .iter()
            .map(|m| (m.name.clone(), m.type_id))
            .collect();
        let js = match &config.jetstream {
            Some(options) => Some(
                jetstream::JetStream::setup(
                    &client,
                    options,
                    format!("{}.{}.>", config.prefix, schema.name),
                    &shown_url,
                    reconnections_rx,
                )
                .await?,
            ),
            None => None,
        };
        let service_root = format!("{}._svc.{}.", config.prefix, schema.name);
        let declared = schema
            .services
            .iter()
            .filter_map(|s| {
                Some(services::ServiceRoute {
                    key: (*by_name.get(&s.request)?, *by_name.get(&s.reply)?),
                    name: s.name.clone(),
                    subject: format!("{service_root}{}.{}", s.request, s.reply),
                })
            })
            .collect();
        let shared = Arc::new(Shared {
            bus: bus.clone(),
            client,
            validator: Validator::new(schema),
            digest,
            origin: NEXT_ORIGIN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            types,
            subject_root: format!("{}.{}.", config.prefix, schema.name),
            by_name,
            service_root,
            declared,
            label: format!("nats:{shown_url}"),
            handled_generation: AtomicU64::new(0),
            stats,
            logged: Mutex::new(HashSet::new()),
            mismatches: Arc::new(Mutex::new(Vec::new())),
            canonical: schema.canonical_description().into(),
            prefix: config.prefix.clone(),
            logged_too_large: Mutex::new(HashSet::new()),
            js,
        });
        let mut forwarders = Vec::new();
        let mut ids = HashSet::new();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        for &type_id in shared.types.keys() {
            let options = SubscribeOptions::new(config.queue_capacity, config.queue_overflow)
                .with_label(shared.label.clone());
            let sub = bus.subscribe_raw(type_id, options);
            ids.insert(sub.id());
            let shared = Arc::clone(&shared);
            let mut stopping = stopping.clone();
            forwarders.push(tokio::spawn(async move {
                if shared.js.is_some() {
                    return jetstream::forward(shared, sub, stopping).await;
                }
                loop {
                    tokio::select! {
                        biased;
                        envelope = sub.recv() => match envelope {
                            Some(envelope) => shared.send(envelope).await,
                            None => break,
                        },
                        // Only ever set to true (or the sender dropped): either way, stop.
                        _ = stopping.changed() => {
                            // Closing: what local publishers already handed over still goes.
                            while let Ok(envelope) = sub.try_recv() {
                                shared.send(envelope).await;
                            }
                            break;
                        }
                    }
                }
            }));
        }
        let forwarder_ids = Arc::new(ids);
        let mut tasks = Vec::new();
        let mut consumer = None;
        if shared.js.is_some() {
            consumer = Some(tokio::spawn(jetstream::consume(
                Arc::clone(&shared),
                Arc::clone(&forwarder_ids),
            )));
        }
        // Our schema's description, for peers explaining a mismatch (both modes).
        let describe = shared
            .client
            .subscribe(mismatch::subject(&shared.prefix, &shared.digest))
            .await
            .map_err(|e| NatsError::Connect {
                url: shown_url.clone(),
                reason: format!("cannot subscribe: {e}"),
            })?;
        tasks.push(tokio::spawn(mismatch::describe(
            describe,
            Arc::clone(&shared),
        )));
        // Services in both modes; message subscriptions in core mode only.
        tasks.push(tokio::spawn(interest(
            Arc::clone(&shared),
            Arc::clone(&forwarder_ids),
        )));
        // Return with the bus's current interest (and the service proxies) in place, so a
        // request made right after connect finds its proxy; bounded: a lost connection
        // catches up by itself later.
        let deadline = tokio::time::Instant::now() + CONNECT_INTEREST_LIMIT;
        while !shared.interest_is_current() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Ok(NatsBridge {
            shared,
            tasks,
            forwarders,
            stop,
            forwarder_ids,
            consumer,
        })
    }

    /// Counters of this connection.
    pub fn stats(&self) -> &NatsStats {
        &self.shared.stats
    }

    /// The same counters, shared: they outlive the join, for the final figures after
    /// [`close`](Self::close).
    pub fn stats_handle(&self) -> Arc<NatsStats> {
        Arc::clone(&self.shared.stats)
    }

    /// The origin messages from NATS carry on the local bus.
    pub fn origin(&self) -> u64 {
        self.shared.origin
    }

    /// Whether the client is connected to a server at this moment (it reconnects by itself
    /// after a loss).
    pub fn is_connected(&self) -> bool {
        self.shared.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Connected, and the join has caught up with every subscription change of the bus: the
    /// server has the subscriptions for every type and topic pattern the bus has a local
    /// subscriber of (other than this join's forwarders) and for every service served here,
    /// and the proxies of the services nobody here serves exist. From then on a message
    /// published (or a request made) elsewhere on NATS reaches them. `connect` returns in
    /// this state (unless catching up took over 10 s).
    pub fn is_ready(&self) -> bool {
        if !self.is_connected() || !self.shared.interest_is_current() {
            return false;
        }
        if let Some(js) = &self.shared.js {
            // One durable consumer carries every type (and keeps what arrives meanwhile);
            // without a durable the join only publishes: nothing to wait for.
            let bus = &self.shared.bus;
            let wanted = self.shared.types.keys().any(|&t| {
                bus.subscriber_ids(t)
                    .iter()
                    .any(|id| !self.forwarder_ids.contains(id))
            });
            return !js.consumes() || !wanted || self.shared.stats.subscribed.get() > 0;
        }
        true
    }

    /// Waits until [`is_ready`](Self::is_ready), up to `timeout`; false if it never was.
    pub async fn wait_ready(&self, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready() {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        true
    }

    /// Why messages from peers were refused, one line per (peer schema, message), naming the
    /// fields that differ when the peer could describe its schema, e.g. `TradeTick: field
    /// size u32 -> u64`. Logged once each as well; the last 64 are kept.
    pub fn schema_mismatches(&self) -> Vec<String> {
        self.shared.mismatches.lock().clone()
    }

    /// Ids of this join's own forwarding subscriptions on the bus.
    pub fn forwarder_ids(&self) -> &HashSet<u64> {
        &self.forwarder_ids
    }

    /// Waits until everything published so far reached the server; in JetStream mode, also
    /// until every message handed to NATS is acked (retries included; up to the ack timeout
    /// per message in flight, then an error).
    pub async fn flush(&self) -> Result<(), NatsError> {
        self.shared
            .client
            .flush()
            .await
            .map_err(|e| NatsError::Connect {
                url: String::new(),
                reason: e.to_string(),
            })?;
        if let Some(js) = &self.shared.js {
            if !js.wait_for_acks(FLUSH_ACKS_LIMIT).await {
                return Err(NatsError::JetStream {
                    url: String::new(),
                    reason: "publishes still not acked".to_string(),
                });
            }
        }
        Ok(())
    }

    /// Stops forwarding both ways and drains the connection. Messages local publishers had
    /// already handed to the join are sent first, for up to [`CLOSE_DRAIN`] (a server that is
    /// gone must not hold a close forever; what is left then is counted in `send_failed`). In
    /// JetStream mode it also lets the consumer finish its pull in progress (so nothing handed
    /// to us is left unacked, to come back only after `ack_wait`) and waits for the acks of
    /// what was sent, each bounded.
    pub async fn close(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let _ = self.stop.send(true);
        let deadline = tokio::time::Instant::now() + CLOSE_DRAIN;
        for forwarder in std::mem::take(&mut self.forwarders) {
            let abort = forwarder.abort_handle();
            if tokio::time::timeout_at(deadline, forwarder).await.is_err() {
                abort.abort();
                self.shared.stats.send_failed.inc();
            }
        }
        if let Some(js) = &self.shared.js {
            js.stop();
            if let Some(consumer) = &mut self.consumer {
                let _ = tokio::time::timeout(CLOSE_CONSUMER_LIMIT, consumer).await;
            }
            js.wait_for_acks(CLOSE_CONSUMER_LIMIT).await;
        }
        if let Some(consumer) = &self.consumer {
            consumer.abort();
        }
        let _ = tokio::time::timeout_at(deadline, self.shared.client.flush()).await;
        tracing::debug!("NATS join closing: forwarders done, draining the connection");
        // Bounded too: dropping the client closes the connection anyway.
        if tokio::time::timeout(CLOSE_DRAIN, self.shared.client.drain())
            .await
            .is_err()
        {
            tracing::warn!("NATS connection drain took over {CLOSE_DRAIN:?}; closed without it");
        }
    }
}

impl Shared {
    /// Whether the interest task has handled every subscription change of the bus so far:
    /// the server has the subscriptions (messages, patterns, services) and the proxies exist.
    fn interest_is_current(&self) -> bool {
        let current = *self.bus.watch_subscriptions().borrow();
        self.handled_generation.load(Ordering::Acquire) == current.wrapping_add(1)
    }

    /// The header every message, request and reply of `type_id` carries (empty for a type
    /// outside the schema, which never goes out).
    fn schema_headers(&self, type_id: u16) -> async_nats::HeaderMap {
        self.types
            .get(&type_id)
            .map(|t| t.headers.clone())
            .unwrap_or_default()
    }

    /// (ours, theirs, their digest) when `message` carries a fingerprint for `type_id` that
    /// is not ours; a message without one (a non-Mycelium publisher) is validated instead.
    fn fingerprint_mismatch<'m>(
        &'m self,
        type_id: u16,
        message: &'m async_nats::Message,
    ) -> Option<(&'m str, &'m str, &'m str)> {
        let value = message.headers.as_ref()?.get(SCHEMA_HEADER)?.as_str();
        let (theirs, digest) = parse_schema_header(value);
        let ours = self.types.get(&type_id)?.fingerprint.as_str();
        (theirs != ours).then_some((ours, theirs, digest))
    }

    async fn send(&self, envelope: Envelope) {
        let Some(subject) = self.outgoing(&envelope) else {
            return;
        };
        let headers = self.schema_headers(envelope.type_id);
        match self
            .client
            .publish_with_headers(subject.into_owned(), headers, envelope.payload)
            .await
        {
            Ok(()) => self.stats.sent.inc(),
            Err(_) => self.stats.send_failed.inc(),
        }
    }

    /// The subject (its topic's tokens included) a local message goes out with, or `None` when
    /// it must not go out: it came from NATS through this join (no echo), its type is not the
    /// schema's, or it is larger than the server takes (counted and logged once per type).
    fn outgoing(&self, envelope: &Envelope) -> Option<Cow<'_, str>> {
        if envelope.origin == self.origin {
            return None; // came from NATS through this connection: no echo
        }
        let subject = &self.types.get(&envelope.type_id)?.subject;
        let limit = self.client.max_payload();
        if envelope.payload.len() > limit {
            self.stats.too_large.inc();
            let error = NatsError::PayloadTooLarge {
                size: envelope.payload.len(),
                limit,
            };
            if self.logged_too_large.lock().insert(envelope.type_id) {
                tracing::warn!(
                    %error,
                    subject = %subject,
                    "message not sent to NATS (logged once per type; counted in too_large)"
                );
            }
            return None;
        }
        Some(subjects::subject_for(subject, envelope.topic.as_ref()))
    }

    /// The type and topic a subject of ours carries: `<root><Message>[.<topic tokens>]`.
    /// `None` for a subject outside our namespace, an unknown message (another schema
    /// version) or a tail that is no valid topic.
    fn route(&self, subject: &str) -> Option<(u16, Option<TopicName>)> {
        let rest = subject.strip_prefix(self.subject_root.as_str())?;
        let (name, tail) = match rest.split_once('.') {
            Some((name, tail)) => (name, Some(tail)),
            None => (rest, None),
        };
        let type_id = *self.by_name.get(name)?;
        match tail {
            None => Some((type_id, None)),
            Some(tail) => Some((type_id, Some(subjects::topic_of_tail(tail)?))),
        }
    }

    /// A message from NATS (core or JetStream): routed by its subject to a type and topic,
    /// checked against the schema (fingerprint header, else validation), then published
    /// locally on its topic; every refusal is counted.
    async fn receive(&self, message: &async_nats::Message) {
        let Some((type_id, topic)) = self.route(message.subject.as_str()) else {
            // A subject of the namespace we cannot read: another schema version's message,
            // or a topic no bus could have published.
            self.stats.refused.inc();
            tracing::debug!(subject = %message.subject, "refused a NATS message whose subject names no type and topic of ours");
            return;
        };
        if let Some((ours, theirs, peer)) = self.fingerprint_mismatch(type_id, message) {
            self.stats.refused.inc();
            let peer = peer.to_owned();
            if self.logged.lock().insert((peer.clone(), type_id)) {
                mismatch::explain(self, &peer, type_id, ours, theirs);
            }
            return;
        }
        let payload: Bytes = message.payload.clone();
        if self.validator.validate(type_id, &payload).is_err() {
            self.stats.invalid.inc();
            return;
        }
        self.stats.received.inc();
        // Async: a full Block queue on the local bus must not block a tokio worker.
        if self
            .bus
            .publish_raw_on_from_async(self.origin, type_id, topic, payload)
            .await
            .is_err()
        {
            self.stats.publish_failed.inc();
        }
    }
}

/// What one NATS subscription of the join is for.
enum Wanted {
    /// Messages of the schema (core mode).
    Messages,
    /// Requests of a service a local responder serves.
    Service(services::ServiceRoute),
}

/// Keeps the join's NATS subscriptions and proxy responders in step with the bus:
/// - core mode: the subjects the local subscribers want (their types, and their topic
///   patterns as NATS wildcards: `subjects::filters`), other than our forwarders;
/// - both modes: the subject of each service a local responder serves, and a proxy
///   responder for each declared service nobody here serves (`services.rs`).
async fn interest(shared: Arc<Shared>, forwarders: Arc<HashSet<u64>>) {
    let mut changes = shared.bus.watch_subscriptions();
    // Aborted when dropped, also when this task itself is aborted by `close`: a receiver
    // blocked on a full local queue must not outlive the join. Keyed by subject.
    let mut active: HashMap<String, AbortOnDrop> = HashMap::new();
    let mut proxies: HashMap<(u16, u16), services::Proxy> = HashMap::new();
    loop {
        let generation = *changes.borrow_and_update();
        let mut wanted: HashMap<String, Wanted> = HashMap::new();
        if shared.js.is_none() {
            for (&type_id, TypeRoute { subject: base, .. }) in &shared.types {
                let patterns: Vec<_> = shared
                    .bus
                    .subscriber_patterns(type_id)
                    .into_iter()
                    .filter(|(id, _)| !forwarders.contains(id))
                    .map(|(_, pattern)| pattern)
                    .collect();
                for subject in subjects::filters(base, &patterns) {
                    wanted.insert(subject, Wanted::Messages);
                }
            }
        }
        // Served here by anyone but our own proxies.
        let served: HashSet<(u16, u16)> = shared.bus.served(shared.origin).into_iter().collect();
        for route in served.iter().filter_map(|&key| shared.service_route(key)) {
            wanted.insert(route.subject.clone(), Wanted::Service(route));
        }
        proxies.retain(|key, _| !served.contains(key));
        for route in &shared.declared {
            if !served.contains(&route.key) && !proxies.contains_key(&route.key) {
                let proxy = services::proxy(&shared, route.clone(), shared.label.clone());
                proxies.insert(route.key, proxy);
            }
        }
        // Dropping a task (and its subscriber) unsubscribes from the server.
        active.retain(|subject, _| wanted.contains_key(subject));
        let mut complete = true;
        for (subject, what) in wanted {
            if active.contains_key(&subject) {
                continue;
            }
            let Ok(mut nats_sub) = shared.client.subscribe(subject.clone()).await else {
                complete = false;
                continue;
            };
            let task = match what {
                Wanted::Messages => {
                    let inner = Arc::clone(&shared);
                    AbortOnDrop(tokio::spawn(async move {
                        while let Some(message) = nats_sub.next().await {
                            inner.receive(&message).await;
                        }
                    }))
                }
                Wanted::Service(route) => services::serve_on_nats(&shared, route, nats_sub),
            };
            active.insert(subject, task);
        }
        // Make sure the server has our subscriptions before `is_ready` says so.
        server_round_trip(&shared.client).await;
        if shared.js.is_none() {
            shared.stats.subscribed.set(active.len() as u64);
        }
        if complete {
            shared
                .handled_generation
                .store(generation.wrapping_add(1), Ordering::Release);
        }
        if changes.changed().await.is_err() {
            break;
        }
    }
}

/// Returns once the server has processed everything this connection sent before, e.g. new
/// subscriptions. async-nats's `flush` only empties the socket buffer: a peer publishing
/// through another connection right after it could still reach the server first and find
/// nobody subscribed (seen: one run in 40 under load lost every message). The server handles
/// a connection's commands in order, and answers a request to a subject nobody serves with
/// "no responders" at once: that answer is the round trip. Bounded, in case the connection
/// is down (then async-nats subscribes again itself after reconnecting).
async fn server_round_trip(client: &async_nats::Client) {
    let subject = format!("_MYCELIUM.ping.{}", nuid::next());
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.request(subject, Bytes::new()),
    )
    .await;
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
