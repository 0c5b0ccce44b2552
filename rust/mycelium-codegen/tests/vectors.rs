//! The committed vectors file (tests/vectors/contracts.json) is exactly what the
//! generator produces for contracts.yaml, and every frame in it decodes to its value.

use mycelium_codegen::vectors::{check_vector, parse_vectors, vectors_json};
use mycelium_protocol::Schema;
use serde_json::Value as Json;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml");
const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/vectors/contracts.json"
);
const REGENERATE: &str = "cargo run -p mycelium-codegen -- vectors --schema contracts.yaml --out tests/vectors/contracts.json";

fn committed() -> String {
    std::fs::read_to_string(VECTORS).unwrap()
}

#[test]
fn committed_file_equals_a_fresh_regeneration() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let fresh = vectors_json(&schema).unwrap();
    let committed = committed();
    if fresh != committed {
        let line = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "the line count".to_owned(),
                |i| format!("line {}", i + 1),
            );
        panic!("tests/vectors/contracts.json is out of date (first difference at {line}); regenerate it with `{REGENERATE}`");
    }
}

#[test]
fn every_committed_frame_decodes_to_its_listed_value() {
    let schema = Schema::from_path(SCHEMA).unwrap();
    let (digest, vectors) = parse_vectors(&committed()).unwrap();
    assert_eq!(digest, schema.digest());
    let mut names = std::collections::HashSet::new();
    for vector in &vectors {
        assert!(
            names.insert(vector.name.clone()),
            "duplicate vector name {}",
            vector.name
        );
        check_vector(&schema, vector).unwrap();
    }
    assert!(vectors.len() >= schema.messages.len() * 3);
}

/// Whether any value anywhere inside `json` satisfies `pred`.
fn any_value(json: &Json, pred: &dyn Fn(&Json) -> bool) -> bool {
    pred(json)
        || match json {
            Json::Array(items) => items.iter().any(|v| any_value(v, pred)),
            Json::Object(map) => map.values().any(|v| any_value(v, pred)),
            _ => false,
        }
}

#[test]
fn committed_file_covers_the_required_edge_cases() {
    let (_, vectors) = parse_vectors(&committed()).unwrap();
    let has = |what: &str, pred: &dyn Fn(&Json) -> bool| {
        assert!(
            vectors.iter().any(|v| any_value(&v.value, pred)),
            "no vector holds {what}"
        );
    };
    has("NaN", &|v| v == "NaN");
    has("inf", &|v| v == "inf");
    has("-inf", &|v| v == "-inf");
    has("-0.0", &|v| {
        v.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative())
    });
    has("u64::MAX", &|v| v.as_u64() == Some(u64::MAX));
    has("i64::MIN", &|v| v.as_i64() == Some(i64::MIN));
    has("an empty string", &|v| v.as_str() == Some(""));
    has("a 4-byte UTF-8 character", &|v| {
        v.as_str().is_some_and(|s| s.contains('🍄'))
    });
    has("an empty list", &|v| {
        v.as_array().is_some_and(Vec::is_empty)
    });
    has("a 1000-element list", &|v| {
        v.as_array().is_some_and(|a| a.len() >= 1000)
    });
    has("a nested message", &|v| {
        v.get("bid").is_some_and(Json::is_object)
    });
    has("a non-empty list<list<u8>>", &|v| {
        v.get("nested_list")
            .and_then(Json::as_array)
            .is_some_and(|outer| {
                outer
                    .iter()
                    .any(|inner| inner.as_array().is_some_and(|i| !i.is_empty()))
            })
    });
}
