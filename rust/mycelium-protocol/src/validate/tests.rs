//! The validator against hand-made payloads and against `decode_value`.

use super::*;
use crate::value::{decode_value, encode_value, Value};
use std::mem::discriminant;

fn example() -> Schema {
    Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).unwrap()
}

fn payload(schema: &Schema, name: &str, json: serde_json::Value) -> Vec<u8> {
    let def = schema.message_by_name(name).unwrap();
    let value = Value::message_from_json(schema, def, &json).unwrap();
    encode_value(schema, def, &value).unwrap()
}

fn samples(schema: &Schema) -> Vec<(u16, Vec<u8>)> {
    use serde_json::json;
    let level = json!({"price": 101.5, "qty": 3});
    let tick = json!({"symbol": "BTC-USD", "price": 64000.25, "size": 2, "ts_ns": 1_700_000_000_000_000_000u64, "side": 1});
    [
        ("TradeTick", tick.clone()),
        ("TextMessage", json!({"sender": "ana", "body": "héllo ✓", "sent_at_ns": 5})),
        ("Order", json!({"order_id": 9, "symbol": "ETH", "side": 0, "qty": 10, "limit_price": 3000.0, "ts_ns": 1})),
        ("OrderDecision", json!({"order_id": 9, "approved": true, "reason": "", "ts_ns": 2})),
        ("PriceLevel", level.clone()),
        ("Quote", json!({"symbol": "X", "bid": level, "ask": {"price": 102.0, "qty": 4}, "ts_ns": 3})),
        ("TickBatch", json!({"venue": "584e4153", "seq": 77, "ticks": [tick.clone(), tick]})),
        ("AllTypes", json!({
            "u8_value": 255, "u16_value": 65535, "u32_value": 1, "u64_value": 18446744073709551615u64,
            "i8_value": -128, "i16_value": -2, "i32_value": -3, "i64_value": -9223372036854775808i64,
            "f32_value": 0.1, "f64_value": "NaN", "bool_value": false, "string_value": "s",
            "bytes_value": "00ff", "fixed_bytes": "000102030405060708090a0b0c0d0e0f",
            "u16_list": [1, 2], "string_list": ["a", ""], "nested_list": [[1], [], [2, 3]],
            "level": {"price": "-inf", "qty": 0}, "levels": [{"price": 1.0, "qty": 1}],
            "flags": [true, false]
        })),
    ]
    .into_iter()
    .map(|(name, json)| (schema.message_by_name(name).unwrap().type_id, payload(schema, name, json)))
    .collect()
}

/// Same variant and offset: the validator and the decoder agree on where and why.
fn same_failure(a: &DecodeError, b: &DecodeError) -> bool {
    let offset = |e: &DecodeError| match e {
        DecodeError::Truncated { offset, .. }
        | DecodeError::TrailingBytes { offset, .. }
        | DecodeError::InvalidUtf8 { offset, .. }
        | DecodeError::InvalidBool { offset, .. }
        | DecodeError::CountTooLarge { offset, .. } => Some(*offset),
        _ => None,
    };
    discriminant(a) == discriminant(b) && offset(a) == offset(b)
}

#[test]
fn accepts_every_sample_and_knows_the_names() {
    let schema = example();
    let validator = Validator::new(&schema);
    for (id, bytes) in samples(&schema) {
        validator.validate(id, &bytes).unwrap();
        assert_eq!(
            validator.message_name(id),
            schema.message_by_id(id).map(|m| m.name.as_str())
        );
    }
    assert!(validator.knows(100));
    assert!(!validator.knows(9));
    assert_eq!(
        validator.type_ids().collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6, 7, 8, 100]
    );
    // Heartbeat has no fields: the empty payload is its only valid encoding.
    assert_eq!(validator.validate(8, &[]), Ok(()));
    assert!(validator.validate(8, &[0]).is_err());
    assert_eq!(validator.validate(9, &[]), Err(DecodeError::UnknownType(9)));
    assert_eq!(
        validator.validate(u16::MAX, &[]),
        Err(DecodeError::UnknownType(u16::MAX))
    );
}

#[test]
fn every_truncation_and_extension_fails_like_the_decoder() {
    let schema = example();
    let validator = Validator::new(&schema);
    for (id, bytes) in samples(&schema) {
        let def = schema.message_by_id(id).unwrap();
        for len in 0..bytes.len() {
            let v = validator.validate(id, &bytes[..len]).unwrap_err();
            let d = decode_value(&schema, def, &bytes[..len]).unwrap_err();
            assert!(
                same_failure(&v, &d),
                "{} cut at {len}: {v:?} vs {d:?}",
                def.name
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            validator.validate(id, &longer).unwrap_err(),
            DecodeError::TrailingBytes {
                offset: bytes.len(),
                count: 1
            }
        );
    }
}

#[test]
fn truncation_inside_a_fixed_run_names_the_field() {
    let schema = example();
    let validator = Validator::new(&schema);
    // Quote: symbol "X" (5 bytes), then bid (price, qty), ask, ts_ns as one fixed run.
    let bytes = payload(
        &schema,
        "Quote",
        serde_json::json!({"symbol": "X", "bid": {"price": 1.0, "qty": 2}, "ask": {"price": 3.0, "qty": 4}, "ts_ns": 5}),
    );
    let err = validator.validate(6, &bytes[..5 + 8 + 2]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            offset: 13,
            needed: 2,
            what: "Quote.bid.qty".into()
        }
    );
    let err = validator.validate(6, &bytes[..5 + 24 + 7]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            offset: 29,
            needed: 1,
            what: "Quote.ts_ns".into()
        }
    );
}

#[test]
fn rejects_bad_bools_and_utf8_and_counts() {
    let schema = example();
    let validator = Validator::new(&schema);
    let decision = payload(
        &schema,
        "OrderDecision",
        serde_json::json!({"order_id": 1, "approved": true, "reason": "ok", "ts_ns": 2}),
    );
    let mut bad = decision.clone();
    bad[8] = 2;
    assert_eq!(
        validator.validate(4, &bad).unwrap_err(),
        DecodeError::InvalidBool {
            offset: 8,
            value: 2,
            what: "OrderDecision.approved".into()
        }
    );
    let mut bad = decision.clone();
    bad[13] = 0xC0; // first byte of "ok"
    assert!(matches!(
        validator.validate(4, &bad).unwrap_err(),
        DecodeError::InvalidUtf8 { offset: 13, .. }
    ));

    // AllTypes.flags is the last field: a list<bool> checked byte by byte.
    let all = samples(&schema).pop().unwrap().1;
    let mut bad = all.clone();
    let last = bad.len() - 1;
    bad[last] = 7;
    assert!(matches!(
        validator.validate(100, &bad).unwrap_err(),
        DecodeError::InvalidBool { value: 7, .. }
    ));

    // TickBatch claiming 4e9 ticks.
    let mut batch = vec![0u8; 4 + 8];
    batch.extend_from_slice(&4_000_000_000u32.to_le_bytes());
    assert!(matches!(
        validator.validate(7, &batch).unwrap_err(),
        DecodeError::CountTooLarge {
            claimed: 4_000_000_000,
            ..
        }
    ));
}

#[test]
fn fixed_size_messages_take_the_length_shortcut_but_still_fail_precisely() {
    let schema = example();
    let validator = Validator::new(&schema);
    validator.validate(5, &[0; 12]).unwrap();
    assert!(matches!(
        validator.validate(5, &[0; 13]).unwrap_err(),
        DecodeError::TrailingBytes {
            offset: 12,
            count: 1
        }
    ));
    assert_eq!(
        validator.validate(5, &[0; 9]).unwrap_err(),
        DecodeError::Truncated {
            offset: 8,
            needed: 3,
            what: "PriceLevel.qty".into()
        }
    );
}

#[test]
fn validates_frames_and_refuses_oversized_payloads() {
    let schema = example();
    let validator = Validator::new(&schema);
    let mut frame = Vec::new();
    crate::codec::encode_frame(5, &[0; 12], &mut frame).unwrap();
    assert_eq!(validator.validate_frame(&frame).unwrap(), 5);
    let huge = vec![0u8; MAX_PAYLOAD + 1];
    assert!(matches!(
        validator.validate(7, &huge).unwrap_err(),
        DecodeError::TooLarge { .. }
    ));
}

#[test]
fn hand_built_broken_schema_leaves_broken_messages_out() {
    use crate::schema::{FieldDef, MessageDef};
    let schema = Schema {
        name: "s".into(),
        version: 1,
        services: Vec::new(),
        messages: vec![
            MessageDef {
                name: "Ok".into(),
                type_id: 1,
                doc: None,
                fields: vec![FieldDef::new("a", FieldType::Scalar(Scalar::U8))],
            },
            MessageDef {
                name: "Loop".into(),
                type_id: 2,
                doc: None,
                fields: vec![FieldDef::new("a", FieldType::Message("Loop".into()))],
            },
            MessageDef {
                name: "Dangling".into(),
                type_id: 3,
                doc: None,
                fields: vec![FieldDef::new(
                    "a",
                    FieldType::List(Box::new(FieldType::Message("Nope".into()))),
                )],
            },
        ],
    };
    let validator = Validator::new(&schema);
    assert!(validator.knows(1));
    assert!(!validator.knows(2));
    assert!(!validator.knows(3));
    assert!(Validator::try_new(&schema).is_err());
}
