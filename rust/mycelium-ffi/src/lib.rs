//! The C ABI of the Mycelium native host.
//!
//! Python, OCaml and C code reach a Rust `MessageBus` in the same process through the
//! functions in `include/mycelium.h` (generated from [`exports`] by cbindgen). See
//! `docs/c-abi.md` for the contract; the short version:
//!
//! - a [`mycelium_runtime_t`] handle is one schema-bound view of a bus; Rust services make one
//!   from their own bus with [`Runtime::from_bus`] and hand its address to foreign code;
//! - handles carry a versioned function table, so a separately built copy of this library (the
//!   pip-installed Python extension, say) can use a handle made by the host's copy;
//! - publishes are validated against the schema before any subscriber sees them;
//! - callbacks run on one delivery thread per subscription, never inside `mycelium_publish`;
//! - no panic crosses the boundary: every entry point and every callback dispatch catches them.

pub mod bridge;
pub mod exports;
mod log;
pub mod log_forward;
pub mod message_topic;
pub mod metrics;
mod nats;
pub mod receiver;
pub mod runtime;
pub mod service;
mod sized;
pub mod status;
pub mod subscription;
pub mod subscription_stats;
pub mod version;
mod vtable;
pub use vtable::MYCELIUM_MAX_TEXT_LEN;
pub mod wait_hooks;

pub use bridge::mycelium_bridge_options;
pub use metrics::mycelium_type_metrics;
pub use receiver::MYCELIUM_WAIT_FOREVER;
pub use runtime::{mycelium_runtime_t, Runtime};
pub use service::{mycelium_reply_writer, mycelium_service_closure};
pub use status::mycelium_status;
pub use subscription::{
    mycelium_closure, mycelium_message, mycelium_overflow_policy, mycelium_subscribe_options,
};
pub use subscription_stats::mycelium_subscription_stats;
pub use version::{MYCELIUM_ABI_VERSION_MAJOR, MYCELIUM_ABI_VERSION_MINOR};
pub use wait_hooks::mycelium_wait_hooks;
