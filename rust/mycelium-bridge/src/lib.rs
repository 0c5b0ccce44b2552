//! Socket bridges: the [`MessageBus`](mycelium_transport::MessageBus) of one process
//! connected to the bus of another over a Unix socket or TCP.
//!
//! One side [`Bridge::listen`]s, the other [`Bridge::connect`]s; after a handshake
//! (protocol version, optional shared-secret token, schema digest) both are peers:
//!
//! - **Subscriptions propagate.** Each side tells the other which schema types have local
//!   subscribers and sends only those, so a type nobody across the connection wants never
//!   crosses it. A message that arrived from a connection is never sent back to it.
//! - **Frames are the TLV wire format**, control frames use type ids `0xFF00..=0xFFFF`
//!   (`docs/wire-format.md`). Every message received is validated against the schema before
//!   it is published locally.
//! - **Limits.** Per connection and forwarded type, a bounded queue with the bus's overflow
//!   policies; a maximum frame size checked from the header, so a peer can never make this
//!   side allocate more; handshake, idle and write timeouts. A malformed frame, a wrong
//!   digest or a slow peer closes only that connection, and the reason is logged (`tracing`)
//!   and kept in [`BridgeStats`].
//! - **Reconnects** with exponential backoff. Delivery is at most once across a cut: nothing
//!   is replayed after a reconnect, so nothing is delivered twice.
//! - **Security.** Unix sockets are created with mode 0600 unless configured otherwise, TCP
//!   listens on loopback unless `allow_remote` is set, and a token is compared in constant
//!   time. Peers are otherwise trusted: use a Unix socket, or TCP inside a trusted network.
//!
//! Topologies must be trees: a cycle of bridges (A-B, B-C, C-A) would circulate messages.
//! See `docs/bridges.md` for the protocol and when to choose the in-process C ABI instead.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mycelium_bridge::BridgeError> {
//! use mycelium_bridge::{Bridge, ConnectConfig, Endpoint, ListenConfig};
//! use mycelium_protocol::Schema;
//! use mycelium_transport::MessageBus;
//!
//! let schema = Schema::from_path("contracts.yaml").expect("a valid schema");
//! let server_bus = MessageBus::new();
//! let server = Bridge::listen(
//!     &server_bus,
//!     &schema,
//!     ListenConfig::new(["unix:/tmp/mycelium.sock".parse::<Endpoint>()?]),
//! )
//! .await?;
//!
//! let client_bus = MessageBus::new();
//! let client = Bridge::connect(
//!     &client_bus,
//!     &schema,
//!     ConnectConfig::new("unix:/tmp/mycelium.sock".parse()?),
//! )
//! .await?;
//! client.wait_for_sessions(1).await;
//! // Subscribing on client_bus now receives what is published on server_bus, and back.
//! client.close_and_join().await?;
//! server.close_and_join().await?;
//! # Ok(())
//! # }
//! ```

pub mod cli;
mod config;
mod connector;
pub mod control;
mod endpoint;
mod error;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod handle;
mod handshake;
mod listener;
pub mod recording;
pub mod request_tools;
mod session;
mod socket;
mod stats;
pub mod tools;
pub mod topology;

pub use config::{
    Backoff, ConnectConfig, Limits, ListenConfig, Token, DEFAULT_SOCKET_MODE, HANDSHAKE_MAX_FRAME,
    MAX_TOKEN_LEN,
};
pub use control::{RefusalKind, PROTOCOL_VERSION};
pub use endpoint::Endpoint;
pub use error::BridgeError;
pub use handle::{Bridge, BridgeHandle};
pub use stats::{bridges_prometheus, BridgeStats, ClosedSession, Rejection};
pub use topology::{NatsJoinSpec, Topology};
