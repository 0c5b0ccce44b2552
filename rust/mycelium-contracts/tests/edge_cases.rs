//! Generated code for a hostile schema (tests/schemas/edge_cases.yaml) compiles cleanly
//! and agrees byte for byte with the protocol crate's dynamic codec.

#[allow(dead_code)]
mod edge {
    include!(concat!(env!("OUT_DIR"), "/edge_cases.rs"));
}

use mycelium_codegen::vectors::{build_vectors, Vector};
use mycelium_protocol::{decode_frame, encode_message, DecodeError, Message, Schema};

fn schema() -> Schema {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemas/edge_cases.yaml");
    Schema::from_path(path).unwrap()
}

/// Typed decode of the vector's payload, then typed encode; returns the new frame.
fn typed_round_trip<M: Message>(vector: &Vector) -> Vec<u8> {
    let (_, payload) = decode_frame(&vector.frame).unwrap();
    let value = M::decode_payload(payload)
        .unwrap_or_else(|e| panic!("{}: typed decode failed: {e}", vector.name));
    encode_message(&value).unwrap()
}

macro_rules! dispatch {
    ($type_id:expr, $generic:ident, $arg:expr, [$($ty:ty),*]) => {
        match $type_id {
            $(id if id == <$ty as Message>::TYPE_ID => $generic::<$ty>($arg),)*
            other => panic!("no generated type for id {other}"),
        }
    };
}

macro_rules! all_types {
    ($type_id:expr, $generic:ident, $arg:expr) => {
        dispatch!(
            $type_id,
            $generic,
            $arg,
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
    };
}

#[test]
fn constants_match_the_schema() {
    let schema = schema();
    assert_eq!(edge::SCHEMA_DIGEST, schema.digest());
    assert_eq!(edge::SCHEMA_CANONICAL, schema.canonical_description());
    assert_eq!(edge::SCHEMA_NAME, "edge_cases");
    assert_eq!(edge::SCHEMA_VERSION, 3);
    assert_eq!(edge::MESSAGE_TYPES.len(), schema.messages.len());
    for ((id, name, fingerprint), def) in edge::MESSAGE_TYPES.iter().zip(&schema.messages) {
        assert_eq!((*id, *name), (def.type_id, def.name.as_str()));
        assert_eq!(Some(*fingerprint), schema.fingerprint(name).as_deref());
    }
    assert_eq!(<edge::Message as Message>::TYPE_ID, 0xFEFF);
    assert_eq!(<edge::Vec as Message>::NAME, "Vec");
}

#[test]
fn every_generated_vector_round_trips_through_the_typed_code() {
    let vectors = build_vectors(&schema()).unwrap();
    assert!(vectors.len() > 30, "only {} vectors", vectors.len());
    for vector in &vectors {
        let frame = all_types!(vector.type_id, typed_round_trip, vector);
        assert!(
            frame == vector.frame,
            "{}: typed re-encoding differs",
            vector.name
        );
    }
}

fn payload_prefixes_fail<M: Message + std::fmt::Debug>(vector: &Vector) -> usize {
    let (_, payload) = decode_frame(&vector.frame).unwrap();
    // Every cut in the first bytes, then a sample across the rest: enough to hit each
    // field boundary of these messages without quadratic work on the 64 KiB ones.
    let step = (payload.len() / 512).max(1);
    let cuts = (0..payload.len()).filter(|&cut| cut < 256 || cut % step == 0);
    let mut checked = 0;
    for cut in cuts {
        match M::decode_payload(&payload[..cut]) {
            Err(DecodeError::Truncated { .. } | DecodeError::CountTooLarge { .. }) => checked += 1,
            other => panic!(
                "{} cut at {cut}: expected truncation, got {other:?}",
                vector.name
            ),
        }
    }
    let mut longer = payload.to_vec();
    longer.push(0);
    assert!(
        matches!(
            M::decode_payload(&longer),
            Err(DecodeError::TrailingBytes { count: 1, .. })
        ),
        "{}: a trailing byte must be rejected",
        vector.name
    );
    checked
}

#[test]
fn truncated_payloads_and_trailing_bytes_are_errors() {
    let mut checked = 0;
    for vector in &build_vectors(&schema()).unwrap() {
        checked += all_types!(vector.type_id, payload_prefixes_fail, vector);
    }
    assert!(checked > 1000, "only {checked} truncations checked");
}

#[test]
fn default_values_encode_like_the_zeros_vectors() {
    let vectors = build_vectors(&schema()).unwrap();
    let zeros = |name: &str| {
        vectors
            .iter()
            .find(|v| v.name == format!("{name}-zeros"))
            .unwrap()
            .frame
            .clone()
    };
    // `Vec` holds arrays longer than 32 bytes, so its Default is hand-written.
    assert_eq!(encode_message(&edge::Vec::default()).unwrap(), zeros("Vec"));
    assert_eq!(
        encode_message(&edge::Result::default()).unwrap(),
        zeros("Result")
    );
    assert_eq!(
        encode_message(&edge::String::default()).unwrap(),
        zeros("String")
    );
    assert_eq!(
        encode_message(&edge::Empty::default()).unwrap(),
        zeros("Empty")
    );
    assert_eq!(edge::Vec::default().huge.len(), 65535);
}

#[test]
fn field_names_that_match_generated_locals_keep_their_values() {
    let value = edge::String {
        r: "r".into(),
        w: vec![1, 2],
        out: 3,
        payload: vec![4],
        value: -5,
        n0: 6,
        v0: vec![vec![7], vec![]],
        e0: vec![8.5],
        f_r: true,
    };
    let frame = encode_message(&value).unwrap();
    let back = mycelium_protocol::decode_message::<edge::String>(&frame).unwrap();
    assert_eq!(back, value);
}
