//! Schema text loaded as contracts.yaml: refused with an error or loaded; a loaded schema
//! must describe, digest, build a validator and generate code in every language.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mycelium_codegen::{generate, Lang};
use mycelium_protocol::{diff_canonical, Schema, Validator};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(schema) = Schema::from_yaml_str(text) else {
        return;
    };
    let canonical = schema.canonical_description();
    assert_eq!(schema.digest().len(), 64);
    assert!(diff_canonical(&canonical, &canonical).is_empty());
    let validator = Validator::new(&schema);
    for message in &schema.messages {
        assert!(validator.knows(message.type_id));
    }
    for lang in [Lang::Rust, Lang::Python, Lang::OCaml] {
        let _ = generate(lang, &schema);
    }
});
