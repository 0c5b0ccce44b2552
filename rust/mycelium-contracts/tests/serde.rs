//! With the `serde` feature, every generated type serializes and deserializes back to the same
//! value: each vector of both schemas is decoded into its type, written to JSON with serde,
//! read back, and re-encoded to exactly the vector's bytes. Run by `scripts/test-rust.sh` with
//! `--features serde`.
#![cfg(feature = "serde")]

#[allow(dead_code)]
mod edge {
    include!(concat!(env!("OUT_DIR"), "/edge_cases.rs"));
}

use mycelium_codegen::vectors::{build_vectors, Vector};
use mycelium_protocol::{decode_frame, encode_message, Message, Schema};

/// `None` when the value holds a non-finite float, which JSON cannot carry (serde_json writes
/// it as null); otherwise the re-encoded frame after a trip through JSON.
fn serde_round_trip<M>(vector: &Vector) -> Option<Vec<u8>>
where
    M: Message + serde::Serialize + serde::de::DeserializeOwned,
{
    let (_, payload) = decode_frame(&vector.frame).unwrap();
    let value = M::decode_payload(payload).unwrap();
    let text = serde_json::to_string(&value).unwrap();
    if text.contains("null") {
        return None;
    }
    let back: M = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e} reading back {text}", vector.name));
    Some(encode_message(&back).unwrap())
}

fn check(schema_path: &str, round_trip: impl Fn(&Vector) -> Option<Vec<u8>>) {
    let vectors = build_vectors(&Schema::from_path(schema_path).unwrap()).unwrap();
    let mut checked = std::collections::BTreeSet::new();
    for vector in &vectors {
        if let Some(frame) = round_trip(vector) {
            assert!(frame == vector.frame, "{}: differs after JSON", vector.name);
            checked.insert(vector.type_id);
        }
    }
    let all: std::collections::BTreeSet<u16> = vectors.iter().map(|v| v.type_id).collect();
    assert_eq!(
        checked, all,
        "every message type went through JSON at least once"
    );
}

macro_rules! by_type_id {
    ($vector:expr, [$($ty:ty),*]) => {
        match $vector.type_id {
            $(id if id == <$ty as Message>::TYPE_ID => serde_round_trip::<$ty>($vector),)*
            other => panic!("no generated type for id {other}"),
        }
    };
}

#[test]
fn the_example_schema_round_trips_through_json() {
    use mycelium_contracts::*;
    check(SCHEMA_PATH, |v| {
        by_type_id!(
            v,
            [
                AllTypes,
                Heartbeat,
                Order,
                OrderDecision,
                PriceLevel,
                Quote,
                TextMessage,
                TickBatch,
                TradeTick
            ]
        )
    });
}

#[test]
fn long_byte_arrays_and_hostile_names_round_trip_through_json() {
    // Serde moves a `bytes[65535]` field by value several times per struct: an unoptimised
    // build needs more than a test thread's 2 MiB of stack for it (documented in docs/schema.md).
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(edge_cases_round_trip)
        .unwrap()
        .join()
        .unwrap();
}

fn edge_cases_round_trip() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemas/edge_cases.yaml");
    check(path, |v| {
        by_type_id!(
            v,
            [
                edge::Empty,
                edge::String,
                edge::Vec,
                edge::Result,
                edge::Option,
                edge::Ok,
                edge::Default,
                edge::ToOwned,
                edge::Message
            ]
        )
    });
}
