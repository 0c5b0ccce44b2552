//! The shared test vectors (`tests/vectors/contracts.json`) agree with this crate: the schema
//! digest matches the example schema, every `value` encodes to exactly `frame_hex`, and every
//! frame decodes, validates and maps back to the same value.

use mycelium_protocol::{
    decode_frame, decode_value, encode_frame, encode_value, Schema, Validator, Value,
};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn vectors_match_the_example_schema_and_codec() {
    let schema = Schema::from_path(format!("{ROOT}/contracts.yaml")).expect("example schema");
    let text = std::fs::read_to_string(format!("{ROOT}/tests/vectors/contracts.json")).expect(
        "tests/vectors/contracts.json exists (generate it with the `mycelium vectors` CLI)",
    );
    let file: serde_json::Value = serde_json::from_str(&text).expect("vectors file is JSON");
    assert_eq!(
        file["schema_digest"].as_str(),
        Some(schema.digest().as_str()),
        "digest"
    );
    let validator = Validator::new(&schema);
    let vectors = file["vectors"].as_array().expect("a vectors array");
    assert!(!vectors.is_empty());
    for vector in vectors {
        let name = vector["name"].as_str().expect("name");
        let message = vector["message"].as_str().expect("message");
        let def = schema.message_by_name(message).expect("known message");
        assert_eq!(
            vector["type_id"].as_u64(),
            Some(u64::from(def.type_id)),
            "{name}"
        );
        let frame = hex::decode(vector["frame_hex"].as_str().expect("frame_hex")).expect("hex");

        let value = Value::message_from_json(&schema, def, &vector["value"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let payload = encode_value(&schema, def, &value).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut expected = Vec::new();
        encode_frame(def.type_id, &payload, &mut expected).expect("frame");
        assert_eq!(
            hex::encode(&expected),
            hex::encode(&frame),
            "{name}: encoding"
        );

        let (type_id, body) = decode_frame(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(type_id, def.type_id, "{name}");
        validator
            .validate(type_id, body)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let decoded = decode_value(&schema, def, body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, value, "{name}: decoding");
        assert_eq!(decoded.to_json(), vector["value"], "{name}: JSON form");
    }
}
