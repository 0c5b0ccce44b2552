use super::*;

fn schema(yaml: &str) -> Schema {
    Schema::from_yaml_str(yaml).unwrap()
}

const TRADING: &str = concat!(
    "schema: trading\nversion: 2\nmessages:\n",
    "  Quote:\n    id: 6\n    doc: \"Best \\\"bid\\\" and offer.\"\n    fields:\n",
    "      - symbol: string\n      - bid: PriceLevel\n      - levels: list<PriceLevel>\n",
    "  PriceLevel:\n    id: 5\n    fields:\n      - price: f64\n      - qty: u32\n",
    "  Flag:\n    id: 7\n    fields:\n      - on: bool\n      - code: bytes[4]\n",
    "  Ping:\n    id: 8\n    fields: []\n",
);

/// The lines of the class body of `name` in `code`.
fn class_body<'a>(code: &'a str, name: &str) -> &'a str {
    let start = code
        .find(&format!("class {name}:"))
        .unwrap_or_else(|| panic!("no class {name}"));
    let rest = &code[start..];
    let end = rest[1..]
        .find("\n@_dataclass")
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

#[test]
fn output_is_deterministic() {
    let s = schema(TRADING);
    assert_eq!(generate_python(&s), generate_python(&s));
}

#[test]
fn every_message_gets_a_slotted_dataclass_with_its_identity() {
    let s = schema(TRADING);
    let code = generate_python(&s);
    for message in &s.messages {
        let body = class_body(&code, &message.name);
        assert!(
            code.contains(&format!(
                "@_dataclass(**_DATACLASS_OPTIONS)\nclass {}:",
                message.name
            )),
            "{}",
            message.name
        );
        assert!(body.contains(&format!("TYPE_ID: _t.ClassVar[int] = {}", message.type_id)));
        assert!(body.contains(&format!("NAME: _t.ClassVar[str] = \"{}\"", message.name)));
        let fingerprint = s.fingerprint(&message.name).unwrap();
        assert!(body.contains(&format!(
            "FINGERPRINT: _t.ClassVar[str] = \"{fingerprint}\""
        )));
        assert!(body.contains("def to_bytes(self) -> bytes:"));
        assert!(body.contains("def from_bytes(cls, data: _Buffer) -> _te.Self:"));
        assert!(code.contains(&format!("    {}: {},\n", message.type_id, message.name)));
        assert!(code.contains(&format!("    \"{}\": \"{fingerprint}\",\n", message.name)));
    }
    assert!(code.contains("{\"slots\": True} if _sys.version_info >= (3, 10) else {}"));
}

#[test]
fn fields_have_annotations_and_defaults() {
    let code = generate_python(&schema(TRADING));
    let quote = class_body(&code, "Quote");
    assert!(quote.contains("    symbol: str = \"\"  # string\n"));
    assert!(
        quote.contains("    bid: PriceLevel = _field(default_factory=PriceLevel)  # PriceLevel\n")
    );
    assert!(quote.contains("    levels: list[PriceLevel] = _field(default_factory=_new_list)"));
    let flag = class_body(&code, "Flag");
    assert!(flag.contains("    on: bool = False  # bool\n"));
    assert!(flag.contains("    code: bytes = b\"\\x00\" * 4  # bytes[4]\n"));
    assert!(class_body(&code, "PriceLevel").contains("    qty: int = 0  # u32\n"));
}

#[test]
fn schema_identity_is_embedded() {
    let s = schema(TRADING);
    let code = generate_python(&s);
    assert!(code.contains(&format!("SCHEMA_DIGEST: _t.Final = \"{}\"", s.digest())));
    assert!(code.contains("SCHEMA_NAME: _t.Final = \"trading\""));
    assert!(code.contains("SCHEMA_VERSION: _t.Final = 2"));
    // The canonical description, one string literal per line.
    for line in s.canonical_description().lines() {
        assert!(code.contains(&format!("    \"{line}\\n\"\n")), "{line}");
    }
}

#[test]
fn nested_classes_are_defined_before_their_users() {
    let code = generate_python(&schema(TRADING));
    let level = code.find("class PriceLevel:").unwrap();
    let quote = code.find("class Quote:").unwrap();
    assert!(level < quote);
    assert!(
        code.contains("def _read_PriceLevel(data: bytes, off: int) -> _t.Tuple[PriceLevel, int]:")
    );
}

#[test]
fn fixed_size_runs_share_one_struct_and_nested_fixed_messages_are_inlined() {
    let code = generate_python(&schema(TRADING));
    let quote = class_body(&code, "Quote");
    // After the symbol, bid.price, bid.qty and the list count are read by one unpack, and
    // bid is rebuilt from the run rather than read by a function call.
    assert!(code.contains("= _struct.Struct(\"<dII\")"), "{code}");
    assert!(
        quote.contains("v2, v3, v4 = _S1.unpack_from(data, off)"),
        "{quote}"
    );
    assert!(
        quote.contains("return cls(v1, PriceLevel(v2, v3), v5)"),
        "{quote}"
    );
    assert!(
        quote.contains("_S0.pack(self.bid.price, self.bid.qty)"),
        "{quote}"
    );
    // Lists of number-only messages unpack with iter_unpack.
    assert!(quote.contains(".iter_unpack("), "{quote}");
}

#[test]
fn bools_are_checked_and_arrays_sized() {
    let code = generate_python(&schema(TRADING));
    let flag = class_body(&code, "Flag");
    assert!(flag.contains("_BOOLS[v0]"), "{flag}");
    assert!(flag.contains("if len(self.code) != 4:"), "{flag}");
}

#[test]
fn a_message_without_fields_encodes_to_nothing() {
    let code = generate_python(&schema(TRADING));
    let ping = class_body(&code, "Ping");
    assert!(ping.contains("return b\"\""), "{ping}");
    assert!(ping.contains("if 0 == len(data):"), "{ping}");
}

#[test]
fn docs_become_escaped_docstrings() {
    let code = generate_python(&schema(TRADING));
    assert!(class_body(&code, "Quote").contains("\"\"\"Best \\\"bid\\\" and offer."));
}

#[test]
fn names_python_cannot_use_are_reported_and_the_module_refuses_to_import() {
    let s = schema(concat!(
        "schema: t\nversion: 1\nmessages:\n",
        "  ValueError:\n    id: 1\n    fields:\n      - to_bytes: u8\n",
        "  MESSAGES:\n    id: 2\n    fields: []\n",
    ));
    let problems = python_name_problems(&s);
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("'ValueError' is a Python builtin"));
    assert!(problems[1].contains("field called 'to_bytes'"));
    assert!(problems[2].contains("defines 'MESSAGES' itself"));
    let code = generate_python(&s);
    assert!(code.contains("raise ImportError("), "{code}");
    assert!(!code.contains("\nclass "));
    assert!(python_name_problems(&schema(TRADING)).is_empty());
}

#[test]
fn builtins_shadowed_by_field_names_are_spelled_through_builtins() {
    let s = schema("schema: t\nversion: 1\nmessages:\n  M:\n    id: 1\n    fields:\n      - bytes: bytes\n      - str: string\n      - n: u8\n");
    let code = generate_python(&s);
    let body = class_body(&code, "M");
    assert!(
        body.contains("    bytes: _builtins.bytes = b\"\""),
        "{body}"
    );
    assert!(body.contains("    str: _builtins.str = \"\""), "{body}");
    assert!(body.contains("    n: int = 0"), "{body}");
    assert!(
        body.contains("def to_bytes(self) -> _builtins.bytes:"),
        "{body}"
    );
}

#[test]
fn services_become_descriptor_classes_that_import_and_name_their_messages() {
    assert!(!generate_python(&schema(TRADING)).contains("SERVICES"));
    let s = schema(&format!(
        "{TRADING}services:\n  Quoting:\n    request: PriceLevel\n    reply: Quote\n    doc: \"Quotes \\\"a\\\" level.\"\n  Pinging: {{request: Ping, reply: Ping}}\n"
    ));
    let code = generate_python(&s);
    let checks = r#"
assert SERVICES == {"Pinging": Pinging, "Quoting": Quoting}, SERVICES
assert Quoting.NAME == "Quoting" and Quoting.Request is PriceLevel and Quoting.Reply is Quote
assert Pinging.Request is Ping and Pinging.Reply is Ping
assert 'Quotes "a" level.' in Quoting.__doc__, Quoting.__doc__
assert "SERVICES" in __all__ and "Quoting" in __all__
assert SCHEMA_CANONICAL.endswith("service Pinging Ping Ping\nservice Quoting PriceLevel Quote\n")
print("ok")
"#;
    // The interpreter the conformance tests use (tests/python_conformance.rs).
    let python = std::env::var_os("MYCELIUM_PYTHON").unwrap_or_else(|| "python3".into());
    let mut child = std::process::Command::new(python)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{code}\n{checks}").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A service may not take a name the module defines.
    let clash = schema(&format!(
        "{TRADING}services:\n  FINGERPRINTS: {{request: Ping, reply: Ping}}\n"
    ));
    assert!(python_name_problems(&clash)[0].contains("service FINGERPRINTS"));
}

#[test]
fn flat_messages_carry_their_wire_layout_and_nested_ones_do_not() {
    let s = schema(TRADING);
    let code = generate_python(&s);
    assert!(class_body(&code, "PriceLevel")
        .contains("_WIRE: _t.ClassVar[_t.Tuple[str, ...]] = (\"d\", \"I\",)"));
    assert!(class_body(&code, "Flag")
        .contains("_WIRE: _t.ClassVar[_t.Tuple[str, ...]] = (\"?\", \"4s\",)"));
    // A nested message or a list: the native decoder cannot read it, from_bytes does.
    assert!(!class_body(&code, "Quote").contains("_WIRE"));
    assert!(!class_body(&code, "Ping").contains("_WIRE"));
}
