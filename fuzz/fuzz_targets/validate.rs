//! A whole frame (type id, length, payload) checked by the validator of contracts.yaml or of
//! the edge-case schema (first byte), against the dynamic decoder: the validator must accept
//! exactly what decodes, and never panic or allocate in proportion to a claimed length.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use mycelium_protocol::{decode_frame, decode_value, encode_value, DecodeError, Schema, Validator};

static SCHEMAS: LazyLock<[(Schema, Validator); 2]> = LazyLock::new(|| {
    [
        include_str!("../../contracts.yaml"),
        include_str!("../../rust/mycelium-contracts/tests/schemas/edge_cases.yaml"),
    ]
    .map(|text| {
        let schema = Schema::from_yaml_str(text).expect("schema");
        let validator = Validator::new(&schema);
        (schema, validator)
    })
});

fuzz_target!(|data: &[u8]| {
    let Some((&which, frame)) = data.split_first() else {
        return;
    };
    let (schema, validator) = &SCHEMAS[usize::from(which & 1)];
    let checked = validator.validate_frame(frame);
    let decoded = decode_frame(frame).and_then(|(type_id, payload)| {
        let def = schema
            .message_by_id(type_id)
            .ok_or(DecodeError::UnknownType(type_id))?;
        decode_value(schema, def, payload).map(|value| (type_id, def, payload, value))
    });
    match (&checked, &decoded) {
        (Ok(type_id), Ok((decoded_id, def, payload, value))) => {
            assert_eq!(type_id, decoded_id);
            let again = encode_value(schema, def, value).expect("a decoded value encodes");
            assert_eq!(&again, payload, "{}: re-encoding differs", def.name);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("validator {checked:?} but decoder {decoded:?}"),
    }
    // The payload-only entry point agrees with the frame one.
    if let Ok((type_id, payload)) = decode_frame(frame) {
        assert_eq!(
            validator.validate(type_id, payload).is_ok(),
            checked.is_ok(),
            "validate and validate_frame disagree"
        );
    }
});
