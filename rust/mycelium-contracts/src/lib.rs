//! The example schema's messages (`contracts.yaml` at the workspace root) as Rust types,
//! generated at build time by `mycelium-codegen`.
//!
//! ```
//! use mycelium_contracts::TradeTick;
//! use mycelium_protocol::{decode_message, encode_message};
//!
//! let tick = TradeTick { symbol: "BTC-USD".into(), price: 64_000.5, size: 3, ts_ns: 1, side: 0 };
//! let frame = encode_message(&tick).unwrap();
//! assert_eq!(decode_message::<TradeTick>(&frame).unwrap(), tick);
//! ```
//!
//! Besides one struct per message, the module holds `SCHEMA_NAME`, `SCHEMA_VERSION`,
//! `SCHEMA_DIGEST`, `SCHEMA_CANONICAL` and `MESSAGE_TYPES`.

include!(concat!(env!("OUT_DIR"), "/contracts.rs"));

/// Where `contracts.yaml` was when this crate was built, for tools that load the schema
/// at run time (validators, the dynamic codec) next to the generated types.
pub const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml");
