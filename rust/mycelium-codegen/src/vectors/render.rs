//! Deterministic JSON text for the vectors file: object keys sorted, one vector per
//! line. The layout is fixed here rather than left to serde_json's pretty printer so
//! that the output does not change when some crate in the build enables serde_json's
//! `preserve_order` feature.

use serde_json::Value as Json;

/// Appends `value` as compact JSON with object keys in sorted order.
pub(crate) fn write_sorted(out: &mut String, value: &Json) {
    match value {
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_sorted(out, item);
            }
            out.push(']');
        }
        Json::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_string(out, key);
                out.push_str(": ");
                write_sorted(out, item);
            }
            out.push('}');
        }
        Json::String(text) => push_string(out, text),
        // Null, bool and number have a single serde_json spelling.
        scalar => out.push_str(&scalar.to_string()),
    }
}

pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push_str(&Json::String(text.to_owned()).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_at_every_level_and_escapes_strings() {
        let value = json!({"b": [1, {"z": null, "a": -0.0}], "a": "q\"\u{0}"});
        let mut out = String::new();
        write_sorted(&mut out, &value);
        assert_eq!(
            out,
            r#"{"a": "q\"\u0000", "b": [1, {"a": -0.0, "z": null}]}"#
        );
        let back: Json = serde_json::from_str(&out).unwrap();
        assert_eq!(back, value);
    }
}
