//! tests/conformance/decode_errors.json lists bad payloads with the exact error message the
//! Python and OCaml bindings must give. This pins those messages to the Rust decoder's
//! wording: every case marked `same_in_decode_value` must fail `decode_value` with exactly
//! that text (the others differ only in how a nested field is named).

mod support;

use mycelium_protocol::decode_value;

#[test]
fn listed_messages_are_the_rust_decoders_words() {
    let case = support::contracts();
    let text = std::fs::read_to_string(support::decode_errors_path()).expect("read cases");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("cases are JSON");
    let cases = cases["cases"].as_array().expect("a \"cases\" array");
    assert!(cases.len() >= 5, "the table lost its cases");
    let mut compared = 0;
    for item in cases {
        let name = item["message"].as_str().expect("message");
        let expected = item["error"].as_str().expect("error");
        let payload = hex::decode(item["payload_hex"].as_str().expect("payload_hex")).expect("hex");
        let message = case.schema.message_by_name(name).expect("known message");
        let error = decode_value(&case.schema, message, &payload)
            .expect_err("every listed payload is invalid");
        if item["same_in_decode_value"].as_bool() == Some(true) {
            assert_eq!(error.to_string(), expected);
            compared += 1;
        }
    }
    assert!(compared >= 5, "only {compared} cases compared");
}
