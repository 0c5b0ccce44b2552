//! A Rust service that runs OCaml code in its own process and shares its `MessageBus` with it.
//!
//! The host owns the bus and a `mycelium_ffi::Runtime` over it; it starts the OCaml runtime
//! (linked in as an object built by dune, see `build.rs` and `mycelium-ocaml-guest`) and hands
//! OCaml the runtime's address.
//! The OCaml side (`ocaml/embed/embed_ocaml.ml`) attaches with `Runtime.of_handle`, answers every
//! `TradeTick` with a `TextMessage` "echo:<symbol>", and publishes `TextMessage`s on request.
//!
//! Used by the embedding test (`tests/embed.rs`) and by the sample binary, which also measures
//! OCaml <-> Rust throughput and round-trip latency (`--bench`).

use std::time::{Duration, Instant};

use mycelium_contracts::{TextMessage, TradeTick};
use mycelium_protocol::{DecodeError, Message, Schema};
use mycelium_transport::{
    MessageBus, OverflowPolicy, PublishError, RawSubscription, RecvError, SubscribeOptions,
};

pub use mycelium_ocaml_guest::{Arg, Guest, GuestError};

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error("cannot load the schema {path}: {reason}")]
    Schema { path: String, reason: String },
    #[error("publishing from Rust failed: {0}")]
    Publish(#[from] PublishError),
    #[error("waiting for {what}: {source}")]
    Receive { what: String, source: RecvError },
    #[error("a TextMessage from OCaml does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("{0}")]
    Protocol(String),
}

/// How long any single wait for OCaml may take before the host gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// The Rust side: the bus, the handle OCaml attached to, and the started OCaml runtime.
pub struct Host {
    bus: MessageBus,
    // Kept alive for as long as OCaml may use the address it was given (OCaml cloned it, so it
    // only has to outlive the attach call; holding it makes the lifetime obvious).
    _runtime: mycelium_ffi::Runtime,
    guest: Guest,
}

/// What the message exchange observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Bodies of OCaml's answers to the ticks, in arrival order.
    pub echoes: Vec<String>,
    /// Bodies of the TextMessages OCaml published on request, in arrival order.
    pub texts: Vec<String>,
    /// Ticks the OCaml callback counted.
    pub ticks_seen_by_ocaml: isize,
}

/// Figures of one benchmark run.
#[derive(Debug, Clone)]
pub struct Figures {
    pub messages: usize,
    pub ocaml_to_rust_per_s: f64,
    pub rust_to_ocaml_per_s: f64,
    pub round_trips: usize,
    pub round_trip_p50: Duration,
    pub round_trip_p99: Duration,
    pub round_trip_max: Duration,
    /// Rust `call::<RiskCheck>` answered by the OCaml service, p50 / p99.
    pub request_reply_p50: Duration,
    pub request_reply_p99: Duration,
}

impl Host {
    /// Makes the bus, starts OCaml and lets it attach. Once per process (OCaml starts once).
    pub fn start() -> Result<Host, HostError> {
        let path = mycelium_contracts::SCHEMA_PATH;
        let schema_error = |reason: String| HostError::Schema {
            path: path.to_owned(),
            reason,
        };
        let yaml = std::fs::read_to_string(path).map_err(|e| schema_error(e.to_string()))?;
        let schema = Schema::from_yaml_str(&yaml).map_err(|e| schema_error(e.to_string()))?;
        let bus = MessageBus::new();
        let runtime = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
        let mut guest = Guest::start(mycelium_ocaml_guest::linked_runtime!())?;
        guest.call(
            "mycelium_embed_attach",
            Arg::NativeInt(runtime.address() as isize),
        )?;
        Ok(Host {
            bus,
            _runtime: runtime,
            guest,
        })
    }

    fn subscribe_texts(&self, capacity: usize) -> RawSubscription {
        self.bus.subscribe_raw(
            TextMessage::TYPE_ID,
            SubscribeOptions::new(capacity, OverflowPolicy::Block).with_label("rust:embed-host"),
        )
    }

    fn publish_tick(&self, i: usize) -> Result<(), HostError> {
        let tick = TradeTick {
            symbol: format!("T-{i}"),
            price: i as f64 * 0.5,
            size: i as u32,
            ts_ns: i as u64,
            side: (i % 2) as u8,
        };
        Ok(self.bus.publish(&tick)?)
    }

    fn recv_text(sub: &RawSubscription, what: &str) -> Result<TextMessage, HostError> {
        let env = sub
            .recv_timeout(PATIENCE)
            .map_err(|source| HostError::Receive {
                what: what.to_owned(),
                source,
            })?;
        Ok(TextMessage::decode_payload(&env.payload)?)
    }

    /// Rust publishes `n` ticks and OCaml `n` texts; collects OCaml's 2n messages.
    pub fn exchange(&mut self, n: usize) -> Result<Exchange, HostError> {
        // Big enough for everything OCaml publishes before this thread starts draining.
        let texts = self.subscribe_texts(2 * n + 16);
        self.guest
            .call("mycelium_embed_set_echo", Arg::Bool(true))?;
        self.guest
            .call("mycelium_embed_publish_texts", Arg::Int(n as isize))?;
        for i in 1..=n {
            self.publish_tick(i)?;
        }
        let mut out = Exchange {
            echoes: Vec::new(),
            texts: Vec::new(),
            ticks_seen_by_ocaml: 0,
        };
        for _ in 0..2 * n {
            let t = Self::recv_text(&texts, "OCaml's TextMessages")?;
            if t.body.starts_with("echo:") {
                out.echoes.push(t.body);
            } else {
                out.texts.push(t.body);
            }
        }
        self.guest.call("mycelium_embed_flush", Arg::Unit)?;
        out.ticks_seen_by_ocaml = self
            .guest
            .call("mycelium_embed_ticks_received", Arg::Unit)?;
        Ok(out)
    }

    /// Throughput both ways over `n` messages, and `rounds` round trips.
    pub fn bench(&mut self, n: usize, rounds: usize) -> Result<Figures, HostError> {
        // OCaml publishes, a Rust thread consumes.
        let texts = self.subscribe_texts(4096);
        let consumer = std::thread::spawn(move || -> Result<(), HostError> {
            for _ in 0..n {
                texts
                    .recv_timeout(PATIENCE)
                    .map_err(|source| HostError::Receive {
                        what: "OCaml's TextMessages".into(),
                        source,
                    })?;
            }
            Ok(())
        });
        let t0 = Instant::now();
        self.guest
            .call("mycelium_embed_publish_texts", Arg::Int(n as isize))?;
        let consumed = consumer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        let ocaml_to_rust = t0.elapsed();
        consumed?;

        // Rust publishes, the OCaml callback consumes (no answers).
        self.guest
            .call("mycelium_embed_set_echo", Arg::Bool(false))?;
        let t0 = Instant::now();
        for i in 0..n {
            self.publish_tick(i)?;
        }
        self.guest.call("mycelium_embed_flush", Arg::Unit)?;
        let rust_to_ocaml = t0.elapsed();

        // Round trips: one tick out, wait for its echo.
        self.guest
            .call("mycelium_embed_set_echo", Arg::Bool(true))?;
        let texts = self.subscribe_texts(16);
        let mut rtt = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let t0 = Instant::now();
            self.publish_tick(i)?;
            Self::recv_text(&texts, "an echo")?;
            rtt.push(t0.elapsed());
        }
        rtt.sort();
        let pct = |p: f64| {
            rtt.get(((rtt.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or_default()
        };

        // Request/reply: Rust asks, the OCaml service answers on its responder thread.
        let mut rr = Vec::with_capacity(rounds);
        for i in 0..rounds {
            let order = mycelium_contracts::Order {
                order_id: i as u64,
                symbol: "BTC-USD".into(),
                side: 0,
                qty: 1,
                limit_price: 1.0,
                ts_ns: 0,
            };
            let t0 = Instant::now();
            let decision = self
                .bus
                .call::<mycelium_contracts::RiskCheck>(&order, Duration::from_secs(10))
                .map_err(|e| HostError::Protocol(format!("RiskCheck request {i}: {e}")))?;
            rr.push(t0.elapsed());
            if decision.order_id != i as u64 {
                return Err(HostError::Protocol(format!(
                    "RiskCheck answered order {} for order {i}",
                    decision.order_id
                )));
            }
        }
        rr.sort();
        let rr_pct = |p: f64| {
            rr.get(((rr.len() as f64 - 1.0) * p) as usize)
                .copied()
                .unwrap_or_default()
        };
        Ok(Figures {
            messages: n,
            ocaml_to_rust_per_s: n as f64 / ocaml_to_rust.as_secs_f64(),
            rust_to_ocaml_per_s: n as f64 / rust_to_ocaml.as_secs_f64(),
            round_trips: rounds,
            round_trip_p50: pct(0.5),
            round_trip_p99: pct(0.99),
            round_trip_max: rtt.last().copied().unwrap_or_default(),
            request_reply_p50: rr_pct(0.5),
            request_reply_p99: rr_pct(0.99),
        })
    }

    /// Closes OCaml's subscription and runtime; returns the ticks its callback saw in total.
    pub fn stop(mut self) -> Result<isize, HostError> {
        Ok(self.guest.call("mycelium_embed_stop", Arg::Unit)?)
    }
}
