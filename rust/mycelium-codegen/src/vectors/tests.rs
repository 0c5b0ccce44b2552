use super::*;

fn schema(yaml: &str) -> Schema {
    Schema::from_yaml_str(yaml).unwrap()
}

const FLOATS: &str = "schema: t\nversion: 1\nmessages:\n  F:\n    id: 9\n    fields:\n      - a: f64\n      - b: f32\n";

fn vector<'a>(vectors: &'a [Vector], name: &str) -> &'a Vector {
    vectors
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

#[test]
fn nan_vectors_use_the_canonical_quiet_nan() {
    let vectors = build_vectors(&schema(FLOATS)).unwrap();
    let nan = vector(&vectors, "F-nan");
    let mut expected = vec![9, 0, 12, 0, 0, 0];
    expected.extend_from_slice(&0x7ff8_0000_0000_0000u64.to_le_bytes());
    expected.extend_from_slice(&0x7fc0_0000u32.to_le_bytes());
    assert_eq!(nan.frame, expected);
    assert_eq!(nan.value, serde_json::json!({"a": "NaN", "b": "NaN"}));
}

#[test]
fn special_float_cases_carry_their_bits() {
    let vectors = build_vectors(&schema(FLOATS)).unwrap();
    let bits = |name: &str| {
        let frame = &vector(&vectors, name).frame;
        let a = u64::from_le_bytes(frame[6..14].try_into().unwrap());
        let b = u32::from_le_bytes(frame[14..18].try_into().unwrap());
        (a, b)
    };
    assert_eq!(
        bits("F-inf"),
        (f64::INFINITY.to_bits(), f32::INFINITY.to_bits())
    );
    assert_eq!(
        bits("F-neg-inf"),
        (f64::NEG_INFINITY.to_bits(), f32::NEG_INFINITY.to_bits())
    );
    assert_eq!(bits("F-neg-zero"), (1 << 63, 1 << 31));
    assert_eq!(bits("F-subnormal"), (1, 1));
    assert_eq!(bits("F-max"), (f64::MAX.to_bits(), f32::MAX.to_bits()));
    assert_eq!(bits("F-snan"), (0x7ff0_0000_0000_0001, 0x7f80_0001));
    assert_eq!(bits("F-nan-payload"), (0xfff8_0000_0000_0001, 0xffc0_0001));
    assert_eq!(
        vector(&vectors, "F-snan").value,
        serde_json::json!({"a": "NaN:0x7ff0000000000001", "b": "NaN:0x7f800001"})
    );
}

#[test]
fn every_message_gets_zeros_and_every_vector_checks_out() {
    let s = schema(concat!(
        "schema: t\nversion: 1\nmessages:\n",
        "  E:\n    id: 1\n    fields: []\n",
        "  L:\n    id: 2\n    fields:\n      - xs: list<list<u8>>\n      - t: string\n      - e: E\n",
    ));
    let vectors = build_vectors(&s).unwrap();
    // An empty message has exactly one distinct value.
    let empty: Vec<_> = vectors.iter().filter(|v| v.message == "E").collect();
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].frame, [1, 0, 0, 0, 0, 0]);
    assert!(vectors.iter().any(|v| v.name == "L-unicode"));
    // No floats in L, so no float cases.
    assert!(!vectors.iter().any(|v| v.name == "L-nan"));
    for v in &vectors {
        check_vector(&s, v).unwrap();
    }
}

#[test]
fn long_list_case_holds_a_thousand_elements() {
    let s = schema(
        "schema: t\nversion: 1\nmessages:\n  L:\n    id: 2\n    fields:\n      - xs: list<u16>\n",
    );
    let vectors = build_vectors(&s).unwrap();
    let long = vector(&vectors, "L-long-lists");
    assert_eq!(
        long.value["xs"].as_array().unwrap().len(),
        cases::LONG_LIST_LEN
    );
    assert_eq!(long.frame.len(), 6 + 4 + 2 * cases::LONG_LIST_LEN);
}

#[test]
fn long_lists_of_big_elements_stay_small() {
    let s = schema("schema: t\nversion: 1\nmessages:\n  L:\n    id: 2\n    fields:\n      - xs: list<bytes[65535]>\n");
    let vectors = build_vectors(&s).unwrap();
    let long = vector(&vectors, "L-long-lists");
    assert_eq!(long.value["xs"].as_array().unwrap().len(), 2);
}

#[test]
fn generation_is_deterministic_and_round_trips_through_the_file_format() {
    let s = schema(FLOATS);
    let text = vectors_json(&s).unwrap();
    assert_eq!(text, vectors_json(&s).unwrap());
    let (digest, parsed) = parse_vectors(&text).unwrap();
    assert_eq!(digest, s.digest());
    assert_eq!(parsed, build_vectors(&s).unwrap());
    assert_eq!(render_vectors(&digest, &parsed), text);
}

#[test]
fn check_vector_catches_a_wrong_frame_and_a_wrong_value() {
    let s = schema(FLOATS);
    let good = build_vectors(&s).unwrap().remove(1);
    let mut bad_frame = good.clone();
    let last = bad_frame.frame.len() - 1;
    bad_frame.frame[last] ^= 0x01;
    assert!(check_vector(&s, &bad_frame).is_err());
    let mut bad_value = good.clone();
    bad_value.value["a"] = serde_json::json!(-0.0);
    let err = check_vector(&s, &bad_value).unwrap_err().to_string();
    assert!(err.contains(&good.name), "{err}");
    let mut neg_zero = vector(&build_vectors(&s).unwrap(), "F-neg-zero").clone();
    neg_zero.value["a"] = serde_json::json!(0.0);
    assert!(
        check_vector(&s, &neg_zero).is_err(),
        "sign of zero must count"
    );
}

#[test]
fn parse_vectors_reports_missing_keys() {
    let err = parse_vectors(r#"{"schema_digest": "x", "vectors": [{"name": "n"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("type_id"), "{err}");
    assert!(parse_vectors("not json").is_err());
}
