//! JSON mapping, error paths and binary round trips of `Value`.

use super::*;
use crate::schema::{FieldType, Scalar, Schema};
use serde_json::json;

fn example() -> Schema {
    Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).unwrap()
}

fn from_json(schema: &Schema, name: &str, j: serde_json::Value) -> Result<Value, ValueError> {
    Value::message_from_json(schema, schema.message_by_name(name).unwrap(), &j)
}

#[test]
fn trade_tick_encodes_to_the_documented_bytes() {
    let schema = example();
    let def = schema.message_by_name("TradeTick").unwrap();
    let value = from_json(
        &schema,
        "TradeTick",
        json!({"symbol": "AB", "price": 1.5, "size": 3, "ts_ns": 4, "side": 1}),
    )
    .unwrap();
    let bytes = encode_value(&schema, def, &value).unwrap();
    let mut expected = vec![2, 0, 0, 0, b'A', b'B'];
    expected.extend_from_slice(&1.5f64.to_le_bytes());
    expected.extend_from_slice(&[3, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(bytes, expected);
    assert_eq!(decode_value(&schema, def, &bytes).unwrap(), value);
    assert_eq!(
        value.to_json(),
        json!({"symbol": "AB", "price": 1.5, "size": 3, "ts_ns": 4, "side": 1})
    );
}

#[test]
fn json_errors_name_the_field_path() {
    let schema = example();
    let tick = json!({"symbol": "S", "price": 1.0, "size": 1, "ts_ns": 1, "side": 0});
    let mut bad_tick = tick.clone();
    bad_tick["price"] = json!("cheap");
    let batch = json!({"venue": "58585858", "seq": 1, "ticks": [tick.clone(), tick.clone(), tick.clone(), bad_tick]});
    let err = from_json(&schema, "TickBatch", batch).unwrap_err();
    assert_eq!(err.path, "TickBatch.ticks[3].price");
    assert_eq!(
        err.to_string(),
        "TickBatch.ticks[3].price: expected a number, \"NaN\", \"inf\" or \"-inf\", found the string \"cheap\""
    );
    let mut bad = tick.clone();
    bad["price"] = json!(true);
    assert_eq!(
        from_json(&schema, "TradeTick", bad)
            .unwrap_err()
            .to_string(),
        "TradeTick.price: expected a number, found true"
    );
}

#[test]
fn integers_are_range_checked() {
    let schema = example();
    let cases = [
        (
            FieldType::Scalar(Scalar::U8),
            json!(256),
            "value: 256 is out of range for u8",
        ),
        (
            FieldType::Scalar(Scalar::U8),
            json!(-1),
            "value: -1 is out of range for u8",
        ),
        (
            FieldType::Scalar(Scalar::I8),
            json!(128),
            "value: 128 is out of range for i8",
        ),
        (
            FieldType::Scalar(Scalar::I8),
            json!(-129),
            "value: -129 is out of range for i8",
        ),
        (
            FieldType::Scalar(Scalar::U32),
            json!(4294967296u64),
            "value: 4294967296 is out of range for u32",
        ),
        (
            FieldType::Scalar(Scalar::I64),
            json!(9223372036854775808u64),
            "value: 9223372036854775808 is out of range for i64",
        ),
        (
            FieldType::Scalar(Scalar::U16),
            json!(1.5),
            "value: expected an integer, found the number 1.5",
        ),
        (
            FieldType::Scalar(Scalar::U16),
            json!("7"),
            "value: expected an integer, found a string",
        ),
        (
            FieldType::Scalar(Scalar::F32),
            json!(1e300),
            "value: 1e+300 is out of range for f32",
        ),
    ];
    for (ty, j, message) in cases {
        assert_eq!(
            Value::from_json(&schema, &ty, &j).unwrap_err().to_string(),
            message
        );
    }
    assert_eq!(
        Value::from_json(&schema, &FieldType::Scalar(Scalar::U8), &json!(255)).unwrap(),
        Value::U8(255)
    );
    assert_eq!(
        Value::from_json(&schema, &FieldType::Scalar(Scalar::I8), &json!(-128)).unwrap(),
        Value::I8(-128)
    );
    assert_eq!(
        Value::from_json(&schema, &FieldType::Scalar(Scalar::U64), &json!(u64::MAX)).unwrap(),
        Value::U64(u64::MAX)
    );
}

#[test]
fn floats_map_special_values_to_strings() {
    assert_eq!(Value::F64(f64::NAN).to_json(), json!("NaN"));
    assert_eq!(Value::F64(f64::INFINITY).to_json(), json!("inf"));
    assert_eq!(Value::F32(f32::NEG_INFINITY).to_json(), json!("-inf"));
    assert_eq!(Value::F32(0.1).to_json(), json!(0.1));
    assert_eq!(Value::F64(-0.0).to_json().to_string(), "-0.0");
    let schema = example();
    let f32_ty = FieldType::Scalar(Scalar::F32);
    for bits in [
        0x3DCC_CCCDu32,
        1,
        0x7F7F_FFFF,
        0x0080_0000,
        0x8000_0000,
        0x4049_0FDB,
    ] {
        let v = Value::F32(f32::from_bits(bits));
        assert_eq!(
            Value::from_json(&schema, &f32_ty, &v.to_json()).unwrap(),
            v,
            "{bits:#x}"
        );
    }
    let nan = Value::from_json(&schema, &FieldType::Scalar(Scalar::F64), &json!("NaN")).unwrap();
    assert!(matches!(nan, Value::F64(v) if v.is_nan()));
}

/// "NaN" is the canonical quiet NaN; any other NaN (signalling, with a payload, negative) keeps
/// its bits through JSON, so decoding to JSON and encoding back changes no byte.
#[test]
fn nans_other_than_the_canonical_one_keep_their_bits() {
    let schema = example();
    let f32_ty = FieldType::Scalar(Scalar::F32);
    let f64_ty = FieldType::Scalar(Scalar::F64);
    assert_eq!(
        Value::F32(f32::from_bits(0x7fc0_0000)).to_json(),
        json!("NaN")
    );
    assert_eq!(
        Value::F32(f32::from_bits(0x7f80_0001)).to_json(),
        json!("NaN:0x7f800001")
    );
    assert_eq!(
        Value::F64(f64::from_bits(0x7ff0_0000_0000_0001)).to_json(),
        json!("NaN:0x7ff0000000000001")
    );
    for bits in [
        0x7f80_0001u32,
        0xff80_0001,
        0x7fc0_0001,
        0xffc0_0000,
        0x7fbf_ffff,
    ] {
        let v = Value::F32(f32::from_bits(bits));
        let back = Value::from_json(&schema, &f32_ty, &v.to_json()).unwrap();
        assert!(
            matches!(back, Value::F32(b) if b.to_bits() == bits),
            "{bits:#x}"
        );
    }
    for bits in [
        0x7ff0_0000_0000_0001u64,
        0xfff8_0000_0000_0000,
        0x7ff4_0000_0000_0000,
    ] {
        let v = Value::F64(f64::from_bits(bits));
        let back = Value::from_json(&schema, &f64_ty, &v.to_json()).unwrap();
        assert!(
            matches!(back, Value::F64(b) if b.to_bits() == bits),
            "{bits:#x}"
        );
    }
    // Not a NaN of that width, or not 8/16 hex digits: refused, naming what was expected.
    for (ty, text) in [
        (&f32_ty, "NaN:0x7f800000"),
        (&f32_ty, "NaN:0x7ff0000000000001"),
        (&f64_ty, "NaN:0x7f800001"),
        (&f32_ty, "NaN:0x7f80000g"),
    ] {
        let err = Value::from_json(&schema, ty, &json!(text)).unwrap_err();
        assert!(
            err.to_string().contains("hex digits of an f"),
            "{text}: {err}"
        );
    }
}

#[test]
fn bytes_are_lowercase_hex_and_arrays_need_exact_length() {
    let schema = example();
    assert_eq!(Value::Bytes(vec![0xAB, 1]).to_json(), json!("ab01"));
    assert_eq!(
        Value::from_json(&schema, &FieldType::Bytes, &json!("AB01")).unwrap(),
        Value::Bytes(vec![0xAB, 1])
    );
    let err = Value::from_json(&schema, &FieldType::Array(4), &json!("0102")).unwrap_err();
    assert_eq!(
        err.kind,
        ValueErrorKind::WrongLength {
            expected: 4,
            found: 2
        }
    );
    let err = Value::from_json(&schema, &FieldType::Bytes, &json!("xyz")).unwrap_err();
    assert!(matches!(err.kind, ValueErrorKind::BadHex(_)));
}

#[test]
fn objects_must_have_exactly_the_fields() {
    let schema = example();
    let err = from_json(&schema, "PriceLevel", json!({"price": 1.0})).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PriceLevel.qty: missing field (the message needs: price, qty)"
    );
    let err = from_json(
        &schema,
        "PriceLevel",
        json!({"price": 1.0, "qty": 1, "size": 2}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "PriceLevel: unknown field 'size' (the message has: price, qty)"
    );
    let err = from_json(
        &schema,
        "Quote",
        json!({"symbol": "S", "bid": [], "ask": {}, "ts_ns": 0}),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Quote.bid: expected an object for message PriceLevel, found an array"
    );
}

#[test]
fn encode_value_checks_variants() {
    let schema = example();
    let def = schema.message_by_name("PriceLevel").unwrap();
    let wrong = Value::Message {
        name: "PriceLevel".into(),
        fields: vec![
            ("price".into(), Value::F32(1.0)),
            ("qty".into(), Value::U32(1)),
        ],
    };
    let err = encode_value(&schema, def, &wrong).unwrap_err();
    assert_eq!(err.to_string(), "PriceLevel.price: expected f64, found f32");
    let other = Value::Message {
        name: "Quote".into(),
        fields: vec![],
    };
    assert!(encode_value(&schema, def, &other).is_err());
    assert!(encode_value(&schema, def, &Value::U8(1)).is_err());
}

#[test]
fn decode_errors_carry_the_full_path() {
    let schema = example();
    let def = schema.message_by_name("TickBatch").unwrap();
    // venue, seq, 1 tick whose symbol has a bad UTF-8 byte.
    let mut bytes = b"XNAS".to_vec();
    bytes.extend_from_slice(&1u64.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 0, 0, 0, 0xFF]);
    bytes.extend_from_slice(&[0; 21]);
    let err = decode_value(&schema, def, &bytes).unwrap_err();
    assert_eq!(
        err,
        crate::DecodeError::InvalidUtf8 {
            offset: 20,
            what: "TickBatch.ticks[0].symbol".into()
        }
    );
}

#[test]
fn documented_example_frame() {
    // docs/wire-format.md; the expected bytes were produced with Python's struct module.
    let schema = example();
    let def = schema.message_by_name("Quote").unwrap();
    let value = from_json(
        &schema,
        "Quote",
        json!({"symbol": "BTC", "bid": {"price": 100.5, "qty": 3}, "ask": {"price": 101.0, "qty": 2}, "ts_ns": 1_700_000_000_000_000_000u64}),
    )
    .unwrap();
    let mut frame = Vec::new();
    crate::codec::encode_frame(6, &encode_value(&schema, def, &value).unwrap(), &mut frame)
        .unwrap();
    assert_eq!(
        hex::encode(&frame),
        "0600270000000300000042544300000000002059400300000000000000004059400200000000002a36fe9c9717"
    );
    let mut bad = frame.clone();
    bad[10] = 0xFF;
    assert!(matches!(
        crate::codec::decode_frame(&bad).and_then(|(_, p)| decode_value(&schema, def, p)),
        Err(crate::DecodeError::InvalidUtf8 { offset: 4, .. })
    ));
}
