//! Loading and every validation rule.

use super::*;

fn load(yaml: &str) -> Result<Schema, SchemaError> {
    Schema::from_yaml_str(yaml)
}

/// A schema with one message `M` (id 1) holding the given field lines, plus `extra`
/// message definitions.
fn with_fields(fields: &str, extra: &str) -> String {
    format!("schema: s\nversion: 1\nmessages:\n  M:\n    id: 1\n    fields:\n{fields}{extra}")
}

fn errors(yaml: &str) -> Vec<ValidationError> {
    match load(yaml) {
        Err(SchemaError::Located { errors, .. }) => errors,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn only_error(yaml: &str) -> ValidationError {
    let mut all = errors(yaml);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn loads_fields_in_order_and_sorts_messages_by_id() {
    let schema = load(
        "schema: s\nversion: 7\nmessages:\n  B:\n    id: 9\n    doc: two\n    fields:\n      - z: u8\n      - a: list<A>\n  A:\n    id: 3\n    fields:\n      - x: bytes[4]\n",
    )
    .unwrap();
    assert_eq!(schema.name, "s");
    assert_eq!(schema.version, 7);
    let ids: Vec<u16> = schema.messages.iter().map(|m| m.type_id).collect();
    assert_eq!(ids, [3, 9]);
    let b = schema.message_by_id(9).unwrap();
    assert_eq!(b.name, "B");
    assert_eq!(b.doc.as_deref(), Some("two"));
    let names: Vec<&str> = b.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["z", "a"]);
    assert_eq!(
        b.fields[1].ty,
        FieldType::List(Box::new(FieldType::Message("A".into())))
    );
    assert_eq!(schema.message_by_name("A").unwrap().type_id, 3);
    assert!(schema.message_by_id(4).is_none());
    assert!(schema.message_by_name("C").is_none());
}

#[test]
fn example_schema_is_valid() {
    let schema =
        Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).unwrap();
    let names: Vec<&str> = schema.messages.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "TradeTick",
            "TextMessage",
            "Order",
            "OrderDecision",
            "PriceLevel",
            "Quote",
            "TickBatch",
            "Heartbeat",
            "AllTypes"
        ]
    );
}

#[test]
fn message_without_fields_is_allowed() {
    let schema = load("schema: s\nversion: 1\nmessages:\n  Ping:\n    id: 1\n    fields: []\n  Pong:\n    id: 2\n").unwrap();
    assert!(schema.messages.iter().all(|m| m.fields.is_empty()));
}

#[test]
fn unknown_scalar_type_message_reads_as_documented() {
    let e = only_error(&with_fields("      - price: f65\n", ""));
    assert_eq!(
        e.to_string(),
        "message M, field price: unknown type 'f65' (expected one of u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool, string, bytes, bytes[N], list<T>, or a message name); did you mean f64?"
    );
    assert_eq!((e.message(), e.field()), (Some("M"), Some("price")));
}

#[test]
fn bad_array_length() {
    let e = only_error(&with_fields("      - v: bytes[0]\n", ""));
    assert!(matches!(
        e,
        ValidationError::BadType {
            source: TypeParseError::BadArrayLength(_),
            ..
        }
    ));
}

#[test]
fn unknown_message_reference() {
    let e = only_error(&with_fields("      - t: list<Missing>\n", ""));
    assert_eq!(
        e,
        ValidationError::UnknownMessage {
            message: "M".into(),
            field: "t".into(),
            ty: "list<Missing>".into(),
            name: "Missing".into(),
            suggestion: None,
        }
    );
    assert!(e.to_string().contains("no message named Missing"));
    assert!(
        !e.to_string().contains("did you mean"),
        "nothing is close to Missing"
    );
}

#[test]
fn a_misspelt_type_gets_the_nearest_name() {
    let e = only_error(&with_fields("      - a: u8\n      - t: Mm\n", ""));
    assert!(
        matches!(&e, ValidationError::UnknownMessage { suggestion: Some(s), .. } if s == "M"),
        "{e}"
    );
    assert!(e.to_string().ends_with("; did you mean M?"), "{e}");
    let err = load(&with_fields("      - s: strng\n", ""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean string?"), "{err}");
}

#[test]
fn duplicate_type_id() {
    let e = only_error(&with_fields(
        "      - a: u8\n",
        "  N:\n    id: 1\n    fields: []\n",
    ));
    assert_eq!(
        e,
        ValidationError::DuplicateTypeId {
            message: "N".into(),
            other: "M".into(),
            id: 1
        }
    );
}

#[test]
fn duplicate_message_name_is_not_silently_merged() {
    let e = only_error(&with_fields(
        "      - a: u8\n",
        "  M:\n    id: 2\n    fields: []\n",
    ));
    assert_eq!(
        e,
        ValidationError::DuplicateMessageName {
            message: "M".into()
        }
    );
}

#[test]
fn reserved_type_ids() {
    for id in ["0", "65280", "65535"] {
        let yaml =
            format!("schema: s\nversion: 1\nmessages:\n  M:\n    id: {id}\n    fields: []\n");
        assert!(
            matches!(only_error(&yaml), ValidationError::ReservedTypeId { .. }),
            "{id}"
        );
    }
    let ok = "schema: s\nversion: 1\nmessages:\n  M:\n    id: 65279\n    fields: []\n";
    assert!(load(ok).is_ok());
}

#[test]
fn type_id_outside_u16_is_a_yaml_error_with_location() {
    let e = load("schema: s\nversion: 1\nmessages:\n  M:\n    id: 70000\n    fields: []\n")
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, SchemaError::Yaml(_)), "{text}");
    assert!(text.contains("line 5"), "{text}");
}

#[test]
fn bad_message_name() {
    let e =
        only_error("schema: s\nversion: 1\nmessages:\n  trade_tick:\n    id: 1\n    fields: []\n");
    assert_eq!(
        e,
        ValidationError::BadMessageName {
            message: "trade_tick".into()
        }
    );
}

#[test]
fn bad_field_name() {
    for name in ["Price", "_x", "a-b", "9lives"] {
        let e = only_error(&with_fields(&format!("      - \"{name}\": u8\n"), ""));
        assert_eq!(
            e,
            ValidationError::BadFieldName {
                message: "M".into(),
                field: name.into()
            }
        );
    }
}

#[test]
fn keyword_field_names_in_each_language() {
    for (word, language) in [
        ("fn", "Rust"),
        ("lambda", "Python"),
        ("val", "OCaml"),
        ("end", "OCaml"),
        ("self", "Rust"),
    ] {
        let e = only_error(&with_fields(&format!("      - {word}: u8\n"), ""));
        match e {
            ValidationError::KeywordFieldName {
                field, languages, ..
            } => {
                assert_eq!(field, word);
                assert!(languages.contains(language), "{word}: {languages}");
            }
            other => panic!("{word}: {other:?}"),
        }
    }
}

#[test]
fn duplicate_field_name() {
    let e = only_error(&with_fields("      - a: u8\n      - a: u16\n", ""));
    assert_eq!(
        e,
        ValidationError::DuplicateFieldName {
            message: "M".into(),
            field: "a".into()
        }
    );
}

#[test]
fn field_entry_must_be_a_one_key_map_with_a_text_type() {
    for (entry, needle) in [
        ("      - a: u8\n        b: u8\n", "a map with 2 keys"),
        ("      - just_a_name\n", "the text 'just_a_name'"),
        ("      - a: 5\n", "`a` with the number 5 as its type"),
        ("      - a:\n", "`a` with nothing (null) as its type"),
    ] {
        let e = only_error(&with_fields(entry, ""));
        assert!(
            matches!(e, ValidationError::BadFieldEntry { position: 1, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[test]
fn direct_recursion() {
    let e = only_error(&with_fields("      - child: M\n", ""));
    assert_eq!(
        e,
        ValidationError::RecursiveNesting {
            message: "M".into(),
            field: "child".into(),
            cycle: vec!["M".into(), "M".into()]
        }
    );
}

#[test]
fn recursion_through_a_list_is_still_recursion() {
    let e = only_error(&with_fields("      - children: list<M>\n", ""));
    assert!(matches!(e, ValidationError::RecursiveNesting { .. }));
}

#[test]
fn indirect_recursion_names_the_cycle() {
    let e = only_error(&with_fields(
        "      - a: u8\n      - b: B\n",
        "  B:\n    id: 2\n    fields:\n      - cs: list<C>\n  C:\n    id: 3\n    fields:\n      - m: M\n",
    ));
    assert_eq!(
        e.to_string(),
        "message M, field b: recursive nesting M -> B -> C -> M"
    );
}

#[test]
fn list_of_empty_message_is_rejected() {
    let e = only_error(&with_fields(
        "      - items: list<E>\n",
        "  E:\n    id: 2\n    fields: []\n",
    ));
    assert_eq!(
        e,
        ValidationError::ZeroSizedListElement {
            message: "M".into(),
            field: "items".into(),
            element: "E".into()
        }
    );
}

#[test]
fn list_of_message_holding_only_empty_messages_is_rejected() {
    let e = only_error(&with_fields(
        "      - items: list<list<W>>\n",
        "  E:\n    id: 2\n    fields: []\n  W:\n    id: 3\n    fields:\n      - e: E\n",
    ));
    assert!(
        matches!(e, ValidationError::ZeroSizedListElement { ref element, .. } if element == "W")
    );
}

#[test]
fn empty_message_may_be_nested_directly() {
    assert!(load(&with_fields(
        "      - e: E\n",
        "  E:\n    id: 2\n    fields: []\n"
    ))
    .is_ok());
}

#[test]
fn nesting_deeper_than_the_bound_is_rejected_once() {
    // Chain of messages N0 <- N1 <- ... each holding the previous one.
    let mut yaml = String::from(
        "schema: s\nversion: 1\nmessages:\n  N0:\n    id: 1\n    fields:\n      - v: u8\n",
    );
    for i in 1..=MAX_NESTING_DEPTH + 2 {
        yaml.push_str(&format!(
            "  N{i}:\n    id: {}\n    fields:\n      - inner: N{}\n",
            i + 1,
            i - 1
        ));
    }
    let e = only_error(&yaml);
    assert_eq!(
        e,
        ValidationError::TooDeep {
            message: format!("N{}", MAX_NESTING_DEPTH + 1),
            depth: MAX_NESTING_DEPTH + 1
        }
    );
}

#[test]
fn empty_schema_name() {
    let e = only_error("schema: ''\nversion: 1\nmessages: {}\n");
    assert_eq!(e, ValidationError::EmptySchemaName);
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    let all = errors(
        "schema: s\nversion: 1\nmessages:\n  M:\n    id: 0\n    fields:\n      - type: u8\n      - p: f65\n  N:\n    id: 2\n    fields:\n      - x: Nope\n",
    );
    assert_eq!(all.len(), 4, "{all:?}");
    let text = SchemaError::Invalid(all).to_string();
    assert!(text.starts_with("invalid schema (4 errors):"), "{text}");
    for needle in ["type id 0 is reserved", "field type", "field p", "field x"] {
        assert!(text.contains(needle), "{needle} missing in {text}");
    }
}

#[test]
fn unknown_keys_are_yaml_errors() {
    let e =
        load("schema: s\nversion: 1\nmessages:\n  M:\n    id: 1\n    feilds: []\n").unwrap_err();
    assert!(matches!(e, SchemaError::Yaml(_)));
    assert!(e.to_string().contains("feilds"), "{e}");
}

#[test]
fn yaml_syntax_errors_keep_line_and_column() {
    let e = load("schema: s\nversion: 1\nmessages:\n  M: {id: 1,\n").unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, SchemaError::Yaml(_)), "{text}");
    assert!(text.contains("line"), "{text}");
}

#[test]
fn from_path_errors_name_the_file() {
    let missing = std::env::temp_dir().join("mycelium-no-such-dir/contracts.yaml");
    let e = Schema::from_path(&missing).unwrap_err();
    assert!(matches!(e, SchemaError::Io { .. }));
    assert!(e.to_string().contains("mycelium-no-such-dir"), "{e}");

    let dir = std::env::temp_dir().join(format!("mycelium-schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    std::fs::write(&path, with_fields("      - p: f65\n", "")).unwrap();
    let e = Schema::from_path(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(e.to_string().contains("bad.yaml"), "{e}");
    assert_eq!(e.validation_errors().len(), 1);
}

#[test]
fn hand_built_schemas_are_validated_and_sorted() {
    let def = |name: &str, id: u16, fields: Vec<FieldDef>| MessageDef {
        name: name.into(),
        type_id: id,
        doc: None,
        fields,
    };
    let schema = Schema::new(
        "s",
        1,
        vec![
            def(
                "B",
                2,
                vec![FieldDef::new("a", FieldType::Message("A".into()))],
            ),
            def(
                "A",
                1,
                vec![FieldDef::new("x", FieldType::Scalar(Scalar::U8))],
            ),
        ],
    )
    .unwrap();
    assert_eq!(schema.messages[0].name, "A");

    let cyclic = Schema::new(
        "s",
        1,
        vec![def(
            "A",
            1,
            vec![FieldDef::new("a", FieldType::Message("A".into()))],
        )],
    );
    assert!(matches!(cyclic, Err(SchemaError::Invalid(_))));
}

#[test]
fn sizes() {
    let schema =
        Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).unwrap();
    let level = schema.message_by_name("PriceLevel").unwrap();
    assert_eq!(schema.message_fixed_size(level), Some(12));
    assert_eq!(schema.message_min_size(level), 12);
    let tick = schema.message_by_name("TradeTick").unwrap();
    assert_eq!(schema.message_fixed_size(tick), None);
    assert_eq!(schema.message_min_size(tick), 4 + 8 + 4 + 8 + 1);
    let quote = schema.message_by_name("Quote").unwrap();
    assert_eq!(schema.message_min_size(quote), 4 + 12 + 12 + 8);
    assert_eq!(
        schema.min_encoded_size(&FieldType::Message("TradeTick".into())),
        25
    );
    assert_eq!(schema.min_encoded_size(&FieldType::Array(16)), 16);
    assert_eq!(
        schema.fixed_size(&FieldType::Message("PriceLevel".into())),
        Some(12)
    );
}

/// Issue 12, item 4: libyaml takes time quadratic in nesting depth, so deep text is refused
/// by a linear scan before it is parsed, with where it went too deep.
#[test]
fn deeply_nested_text_is_refused_before_parsing() {
    let hostile = [
        "[".repeat(1 << 20),
        "{a: ".repeat(100_000),
        "- ".repeat(100_000),
        "- [".repeat(100_000),
        with_fields(&format!("      - a: {}", "[".repeat(100_000)), ""),
    ];
    for text in &hostile {
        match load(text) {
            Err(SchemaError::NestingTooDeep { limit, .. }) => assert_eq!(limit, MAX_NESTING_DEPTH),
            other => panic!("expected NestingTooDeep, got {other:?}"),
        }
    }
    let error = load(&format!(
        "schema: s\nversion: 1\nmessages: {}",
        "[".repeat(100)
    ))
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "schema text nests deeper than 64 levels at line 3, column 74"
    );
}

#[test]
fn nesting_up_to_the_limit_is_left_to_the_parser() {
    // 63 flow levels inside the root mapping: within the limit, so the parser decides (the
    // shape is wrong, which is a YAML error, not a nesting error).
    let text = format!(
        "schema: s\nversion: 1\nmessages: {}{}",
        "[".repeat(MAX_NESTING_DEPTH - 1),
        "]".repeat(MAX_NESTING_DEPTH - 1)
    );
    assert!(
        matches!(load(&text), Err(SchemaError::Yaml(_))),
        "{:?}",
        load(&text)
    );
}

#[test]
fn brackets_in_docs_and_comments_do_not_count_as_nesting() {
    let many = "[{".repeat(5_000);
    let text = format!(
        "# {many}\nschema: s\nversion: 1\nmessages:\n  A:\n    id: 1\n    doc: \"{many}\"\n    fields:\n      - a: u8 # {many}\n  B:\n    id: 2\n    doc: '{many}'\n  C:\n    id: 3\n    doc: |\n      {many}\n      {many}\n  D:\n    id: 4\n    doc: plain {many}\n"
    );
    let schema = load(&text).unwrap();
    assert_eq!(schema.messages.len(), 4);
    assert_eq!(
        schema.message_by_id(1).unwrap().doc.as_deref(),
        Some(&*many)
    );
}

/// Every schema and YAML file in the repository nests far below the limit.
#[test]
fn the_repository_schemas_are_far_from_the_nesting_limit() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    for path in [
        "contracts.yaml",
        "rust/mycelium-codegen/tests/fixtures/exotic.yaml",
        "rust/mycelium-contracts/tests/schemas/edge_cases.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{path}")).unwrap();
        let depth = super::nesting::max_depth(&text);
        assert!((3..=8).contains(&depth), "{path}: depth {depth}");
    }
    // The deepest valid schema: messages nested to the bound, each a list of lists.
    let mut messages = String::new();
    for level in 1..=MAX_NESTING_DEPTH {
        let inner = if level == MAX_NESTING_DEPTH {
            "u8".to_owned()
        } else {
            format!("M{}", level + 1)
        };
        messages.push_str(&format!(
            "  M{level}:\n    id: {level}\n    fields:\n      - x: {inner}\n"
        ));
    }
    let schema = load(&format!("schema: s\nversion: 1\nmessages:\n{messages}")).unwrap();
    assert_eq!(schema.messages.len(), MAX_NESTING_DEPTH);
}

#[test]
fn services_load_sorted_and_their_rules_are_checked() {
    let base = "schema: s\nversion: 1\nmessages:\n  Order:\n    id: 1\n  Decision:\n    id: 2\n";
    let ok = Schema::from_yaml_str(&format!(
        "{base}services:\n  Risk:\n    request: Order\n    reply: Decision\n    doc: checks limits\n  Audit: {{request: Decision, reply: Order}}\n"
    ))
    .unwrap();
    let names: Vec<&str> = ok.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Audit", "Risk"]);
    let risk = ok.service_by_name("Risk").unwrap();
    assert_eq!(
        (
            risk.request.as_str(),
            risk.reply.as_str(),
            risk.doc.as_deref()
        ),
        ("Order", "Decision", Some("checks limits"))
    );
    let bad = Schema::from_yaml_str(&format!(
        "{base}services:\n  Order: {{request: Order, reply: Decision}}\n  Risk: {{request: Order, reply: Decision}}\n  Risk: {{request: Ordr, reply: Decision}}\n"
    ))
    .unwrap_err();
    let errors = bad.validation_errors();
    assert!(errors.contains(&ValidationError::ServiceNamedLikeMessage {
        service: "Order".into()
    }));
    assert!(errors.contains(&ValidationError::DuplicateServiceName {
        service: "Risk".into()
    }));
    assert!(errors.contains(&ValidationError::UnknownServiceMessage {
        service: "Risk".into(),
        role: "request",
        name: "Ordr".into(),
        suggestion: Some("Order".into()),
    }));
    assert_eq!(errors.len(), 3, "{errors:?}");
    // Unknown keys in a service are refused by the YAML shape check.
    assert!(Schema::from_yaml_str(&format!(
        "{base}services:\n  Risk: {{request: Order, reply: Decision, timeout: 5}}\n"
    ))
    .is_err());
    // Built by hand.
    let schema = Schema::from_yaml_str(base)
        .unwrap()
        .with_services(vec![crate::schema::ServiceDef::new(
            "Risk", "Order", "Decision",
        )])
        .unwrap();
    assert_eq!(schema.services.len(), 1);
}
