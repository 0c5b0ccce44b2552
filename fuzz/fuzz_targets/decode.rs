//! A payload decoded as each message type of contracts.yaml, three ways: the generated Rust
//! type, the dynamic decoder and the validator. They must agree on whether it is valid, and
//! a valid payload must encode back to the very same bytes.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mycelium_contracts::{
    AllTypes, Heartbeat, Order, OrderDecision, PriceLevel, Quote, TextMessage, TickBatch, TradeTick,
};
use mycelium_protocol::{decode_value, encode_value, DecodeError, Message, Schema, Validator};

type RoundTrip = fn(&[u8]) -> Result<Vec<u8>, DecodeError>;

fn round_trip<M: Message>(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let message = M::decode_payload(payload)?;
    let mut out = Vec::new();
    message
        .encode_payload(&mut out)
        .expect("a decoded message encodes");
    Ok(out)
}

struct Setup {
    schema: Schema,
    validator: Validator,
    generated: Vec<(u16, RoundTrip)>,
}

static SETUP: LazyLock<Setup> = LazyLock::new(|| {
    let schema = Schema::from_yaml_str(include_str!("../../contracts.yaml")).expect("schema");
    let generated: Vec<(u16, RoundTrip)> = vec![
        (TradeTick::TYPE_ID, round_trip::<TradeTick>),
        (TextMessage::TYPE_ID, round_trip::<TextMessage>),
        (Order::TYPE_ID, round_trip::<Order>),
        (OrderDecision::TYPE_ID, round_trip::<OrderDecision>),
        (PriceLevel::TYPE_ID, round_trip::<PriceLevel>),
        (Quote::TYPE_ID, round_trip::<Quote>),
        (TickBatch::TYPE_ID, round_trip::<TickBatch>),
        (Heartbeat::TYPE_ID, round_trip::<Heartbeat>),
        (AllTypes::TYPE_ID, round_trip::<AllTypes>),
    ];
    assert_eq!(
        generated.len(),
        schema.messages.len(),
        "every message of contracts.yaml has its generated type here"
    );
    Setup {
        validator: Validator::new(&schema),
        schema,
        generated,
    }
});

fuzz_target!(|payload: &[u8]| {
    let setup = &*SETUP;
    for &(type_id, generated) in &setup.generated {
        let def = setup
            .schema
            .message_by_id(type_id)
            .expect("generated type in schema");
        let valid = setup.validator.validate(type_id, payload);
        let dynamic = decode_value(&setup.schema, def, payload);
        let typed = generated(payload);
        assert_eq!(
            valid.is_ok(),
            dynamic.is_ok(),
            "{}: validator {valid:?}, dynamic decoder {dynamic:?}",
            def.name
        );
        assert_eq!(
            valid.is_ok(),
            typed.is_ok(),
            "{}: validator {valid:?}, generated decoder {typed:?}",
            def.name
        );
        if let Ok(value) = dynamic {
            let again = encode_value(&setup.schema, def, &value).expect("a decoded value encodes");
            assert_eq!(again, payload, "{}: dynamic re-encoding differs", def.name);
        }
        if let Ok(again) = typed {
            assert_eq!(
                again, payload,
                "{}: generated re-encoding differs",
                def.name
            );
        }
    }
});
