//! The committed cross-language vectors (tests/vectors/contracts.json) against the
//! generated types: each value, built by hand from its JSON, encodes to exactly the
//! listed frame; each frame decodes to that value and re-encodes to the same bytes;
//! every cut-short payload is an error.

use mycelium_codegen::vectors::{parse_vectors, Vector};
use mycelium_contracts::{
    AllTypes, Heartbeat, Order, OrderDecision, PriceLevel, Quote, TextMessage, TickBatch,
    TradeTick, SCHEMA_CANONICAL, SCHEMA_DIGEST, SCHEMA_PATH,
};
use mycelium_protocol::{
    decode_frame, decode_message, encode_message, DecodeError, Message, Schema,
};
use serde_json::Value as Json;

const VECTORS_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/contracts.json"
);

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(VECTORS_PATH).unwrap();
    let (digest, vectors) = parse_vectors(&text).unwrap();
    assert_eq!(
        digest, SCHEMA_DIGEST,
        "vectors file was generated from another schema"
    );
    vectors
}

// Accessors that fail loudly when the file and the schema disagree on a field.
fn field<'a>(json: &'a Json, name: &str) -> &'a Json {
    json.get(name)
        .unwrap_or_else(|| panic!("missing field {name} in {json}"))
}
fn uint(json: &Json, name: &str) -> u64 {
    field(json, name)
        .as_u64()
        .unwrap_or_else(|| panic!("{name}: not a u64"))
}
fn int(json: &Json, name: &str) -> i64 {
    field(json, name)
        .as_i64()
        .unwrap_or_else(|| panic!("{name}: not an i64"))
}
fn float_of(value: &Json) -> f64 {
    match value {
        Json::String(s) if s == "NaN" => f64::NAN,
        Json::String(s) if s == "inf" => f64::INFINITY,
        Json::String(s) if s == "-inf" => f64::NEG_INFINITY,
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a float: {other}")),
    }
}
/// The bits of a NaN written as "NaN:0x…" (any NaN but the canonical quiet one).
fn nan_bits(value: &Json) -> Option<u64> {
    let hex = value.as_str()?.strip_prefix("NaN:0x")?;
    Some(u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("bad NaN bits: {value}")))
}
fn float(json: &Json, name: &str) -> f64 {
    let value = field(json, name);
    nan_bits(value).map_or_else(|| float_of(value), f64::from_bits)
}
fn float32(json: &Json, name: &str) -> f32 {
    let value = field(json, name);
    match nan_bits(value) {
        Some(bits) => f32::from_bits(u32::try_from(bits).expect("8 hex digits for an f32")),
        None => float_of(value) as f32,
    }
}
fn text(json: &Json, name: &str) -> String {
    field(json, name).as_str().unwrap().to_owned()
}
fn hex_of(value: &Json) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}
fn list<'a>(json: &'a Json, name: &str) -> &'a [Json] {
    field(json, name).as_array().unwrap()
}
fn narrow<T: TryFrom<i128>>(value: i128, name: &str) -> T {
    T::try_from(value).unwrap_or_else(|_| panic!("{name}: {value} out of range"))
}
fn u(json: &Json, name: &str) -> i128 {
    i128::from(uint(json, name))
}
fn i(json: &Json, name: &str) -> i128 {
    i128::from(int(json, name))
}

fn trade_tick(j: &Json) -> TradeTick {
    TradeTick {
        symbol: text(j, "symbol"),
        price: float(j, "price"),
        size: narrow(u(j, "size"), "size"),
        ts_ns: uint(j, "ts_ns"),
        side: narrow(u(j, "side"), "side"),
    }
}
fn text_message(j: &Json) -> TextMessage {
    TextMessage {
        sender: text(j, "sender"),
        body: text(j, "body"),
        sent_at_ns: uint(j, "sent_at_ns"),
    }
}
fn order(j: &Json) -> Order {
    Order {
        order_id: uint(j, "order_id"),
        symbol: text(j, "symbol"),
        side: narrow(u(j, "side"), "side"),
        qty: narrow(u(j, "qty"), "qty"),
        limit_price: float(j, "limit_price"),
        ts_ns: uint(j, "ts_ns"),
    }
}
fn order_decision(j: &Json) -> OrderDecision {
    OrderDecision {
        order_id: uint(j, "order_id"),
        approved: field(j, "approved").as_bool().unwrap(),
        reason: text(j, "reason"),
        ts_ns: uint(j, "ts_ns"),
    }
}
fn price_level(j: &Json) -> PriceLevel {
    PriceLevel {
        price: float(j, "price"),
        qty: narrow(u(j, "qty"), "qty"),
    }
}
fn quote(j: &Json) -> Quote {
    Quote {
        symbol: text(j, "symbol"),
        bid: price_level(field(j, "bid")),
        ask: price_level(field(j, "ask")),
        ts_ns: uint(j, "ts_ns"),
    }
}
fn heartbeat(j: &Json) -> Heartbeat {
    let fields = j
        .as_object()
        .expect("a Heartbeat vector's value is an object");
    assert!(
        fields.is_empty(),
        "Heartbeat has no fields, the vector has {fields:?}"
    );
    Heartbeat {}
}
fn tick_batch(j: &Json) -> TickBatch {
    TickBatch {
        venue: hex_of(field(j, "venue")).try_into().unwrap(),
        seq: uint(j, "seq"),
        ticks: list(j, "ticks").iter().map(trade_tick).collect(),
    }
}
fn all_types(j: &Json) -> AllTypes {
    AllTypes {
        u8_value: narrow(u(j, "u8_value"), "u8_value"),
        u16_value: narrow(u(j, "u16_value"), "u16_value"),
        u32_value: narrow(u(j, "u32_value"), "u32_value"),
        u64_value: uint(j, "u64_value"),
        i8_value: narrow(i(j, "i8_value"), "i8_value"),
        i16_value: narrow(i(j, "i16_value"), "i16_value"),
        i32_value: narrow(i(j, "i32_value"), "i32_value"),
        i64_value: int(j, "i64_value"),
        // The file only holds values exactly representable as f32.
        f32_value: float32(j, "f32_value"),
        f64_value: float(j, "f64_value"),
        bool_value: field(j, "bool_value").as_bool().unwrap(),
        string_value: text(j, "string_value"),
        bytes_value: hex_of(field(j, "bytes_value")),
        fixed_bytes: hex_of(field(j, "fixed_bytes")).try_into().unwrap(),
        u16_list: list(j, "u16_list")
            .iter()
            .map(|v| narrow(i128::from(v.as_u64().unwrap()), "u16_list[]"))
            .collect(),
        string_list: list(j, "string_list")
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect(),
        nested_list: list(j, "nested_list")
            .iter()
            .map(|inner| {
                inner
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| narrow(i128::from(v.as_u64().unwrap()), "nested_list[][]"))
                    .collect()
            })
            .collect(),
        level: price_level(field(j, "level")),
        levels: list(j, "levels").iter().map(price_level).collect(),
        flags: list(j, "flags")
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect(),
    }
}

/// The hand-built value encodes to the listed frame, and the frame decodes to a value
/// that encodes the same way (compared as bytes, since NaN != NaN).
fn check<M: Message + std::fmt::Debug>(vector: &Vector, from_json: fn(&Json) -> M) {
    let built = from_json(&vector.value);
    let encoded = encode_message(&built).unwrap();
    assert!(
        encoded == vector.frame,
        "{}: hand-built {built:?} encodes to {}",
        vector.name,
        hex::encode(&encoded)
    );
    let decoded: M = decode_message(&vector.frame)
        .unwrap_or_else(|e| panic!("{}: typed decode failed: {e}", vector.name));
    assert_eq!(
        format!("{decoded:?}"),
        format!("{built:?}"),
        "{}",
        vector.name
    );
    assert!(
        encode_message(&decoded).unwrap() == vector.frame,
        "{}",
        vector.name
    );
    check_truncation::<M>(vector);
}

fn check_truncation<M: Message + std::fmt::Debug>(vector: &Vector) {
    let (_, payload) = decode_frame(&vector.frame).unwrap();
    let step = (payload.len() / 256).max(1);
    for cut in (0..payload.len()).filter(|&cut| cut < 128 || cut % step == 0) {
        let result = M::decode_payload(&payload[..cut]);
        assert!(
            matches!(
                result,
                Err(DecodeError::Truncated { .. } | DecodeError::CountTooLarge { .. })
            ),
            "{} cut at {cut}: {result:?}",
            vector.name
        );
    }
    // A whole frame cut short fails at the frame layer, before any field is read.
    let short = &vector.frame[..vector.frame.len() - 1];
    assert!(matches!(
        decode_message::<M>(short),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn every_vector_matches_the_generated_types() {
    let vectors = vectors();
    let mut seen = std::collections::BTreeSet::new();
    for vector in &vectors {
        match vector.message.as_str() {
            "TradeTick" => check(vector, trade_tick),
            "TextMessage" => check(vector, text_message),
            "Order" => check(vector, order),
            "OrderDecision" => check(vector, order_decision),
            "PriceLevel" => check(vector, price_level),
            "Quote" => check(vector, quote),
            "TickBatch" => check(vector, tick_batch),
            "Heartbeat" => check(vector, heartbeat),
            "AllTypes" => check(vector, all_types),
            other => panic!("vector {} names unknown message {other}", vector.name),
        }
        seen.insert(vector.message.clone());
    }
    // Every message of the schema is covered by at least one vector.
    let schema = Schema::from_path(SCHEMA_PATH).unwrap();
    let all: std::collections::BTreeSet<_> =
        schema.messages.iter().map(|m| m.name.clone()).collect();
    assert_eq!(seen, all);
}

#[test]
fn generated_constants_match_the_schema_file() {
    let schema = Schema::from_path(SCHEMA_PATH).unwrap();
    assert_eq!(SCHEMA_DIGEST, schema.digest());
    assert_eq!(SCHEMA_CANONICAL, schema.canonical_description());
    assert_eq!(mycelium_contracts::SCHEMA_NAME, schema.name);
    let typed = [
        (TradeTick::TYPE_ID, TradeTick::NAME, TradeTick::FINGERPRINT),
        (
            TextMessage::TYPE_ID,
            TextMessage::NAME,
            TextMessage::FINGERPRINT,
        ),
        (Order::TYPE_ID, Order::NAME, Order::FINGERPRINT),
        (
            OrderDecision::TYPE_ID,
            OrderDecision::NAME,
            OrderDecision::FINGERPRINT,
        ),
        (
            PriceLevel::TYPE_ID,
            PriceLevel::NAME,
            PriceLevel::FINGERPRINT,
        ),
        (Quote::TYPE_ID, Quote::NAME, Quote::FINGERPRINT),
        (TickBatch::TYPE_ID, TickBatch::NAME, TickBatch::FINGERPRINT),
        (Heartbeat::TYPE_ID, Heartbeat::NAME, Heartbeat::FINGERPRINT),
        (AllTypes::TYPE_ID, AllTypes::NAME, AllTypes::FINGERPRINT),
    ];
    assert_eq!(typed.as_slice(), mycelium_contracts::MESSAGE_TYPES);
    for (id, name, fingerprint) in typed {
        let def = schema.message_by_id(id).unwrap();
        assert_eq!(def.name, name);
        assert_eq!(schema.fingerprint(name).as_deref(), Some(fingerprint));
    }
}

#[test]
fn wrong_type_and_huge_counts_are_rejected() {
    let tick = encode_message(&TradeTick::default()).unwrap();
    assert!(matches!(
        decode_message::<Order>(&tick),
        Err(DecodeError::WrongType {
            expected: 3,
            found: 1
        })
    ));
    // A TickBatch payload claiming u32::MAX ticks in a 16-byte payload.
    let mut payload = vec![b'X', b'N', b'A', b'S'];
    payload.extend_from_slice(&7u64.to_le_bytes());
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        TickBatch::decode_payload(&payload),
        Err(DecodeError::CountTooLarge { claimed, .. }) if claimed == u64::from(u32::MAX)
    ));
}
