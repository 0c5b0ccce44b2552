use super::*;

fn schema(messages: &str) -> Schema {
    Schema::from_yaml_str(&format!("schema: t\nversion: 2\nmessages:\n{messages}")).unwrap()
}

const TRADING: &str = "  Level:\n    id: 5\n    fields:\n      - price: f64\n      - qty: u32\n  Book:\n    id: 6\n    doc: \"Top of book.\"\n    fields:\n      - venue: bytes[4]\n      - levels: list<Level>\n      - rows: list<list<u8>>\n      - names: list<string>\n";

#[test]
fn output_is_deterministic_and_in_type_id_order() {
    let s = schema(TRADING);
    let code = generate_rust(&s);
    assert_eq!(code, generate_rust(&s));
    let level = code.find("pub struct Level {").unwrap();
    let book = code.find("pub struct Book {").unwrap();
    assert!(level < book, "messages must follow type-id order");
}

#[test]
fn schema_constants_carry_digest_and_canonical_text() {
    let s = schema(TRADING);
    let code = generate_rust(&s);
    assert!(code.contains(&format!(
        "pub const SCHEMA_DIGEST: &str = \"{}\";",
        s.digest()
    )));
    assert!(code.contains(&format!(
        "pub const SCHEMA_CANONICAL: &str = {:?};",
        s.canonical_description()
    )));
    assert!(code.contains("pub const SCHEMA_NAME: &str = \"t\";"));
    assert!(code.contains("pub const SCHEMA_VERSION: u32 = 2;"));
    let fingerprint = s.fingerprint("Book").unwrap();
    assert!(code.contains(&format!("(6, \"Book\", \"{fingerprint}\"),")));
    assert!(code.contains(&format!(
        "const FINGERPRINT: &'static str = \"{fingerprint}\";"
    )));
}

#[test]
fn field_types_map_to_rust_types() {
    let code = generate_rust(&schema(TRADING));
    for expected in [
        "pub price: f64,",
        "pub qty: u32,",
        "pub venue: [u8; 4],",
        "pub levels: ::std::vec::Vec<Level>,",
        "pub rows: ::std::vec::Vec<::std::vec::Vec<u8>>,",
        "pub names: ::std::vec::Vec<::std::string::String>,",
    ] {
        assert!(code.contains(expected), "missing `{expected}` in\n{code}");
    }
}

#[test]
fn list_counts_are_guarded_with_the_minimal_element_size() {
    let code = generate_rust(&schema(TRADING));
    // Level is an f64 and a u32: 12 bytes; a string is at least its 4-byte length.
    assert!(code.contains("r.get_count(12, \"Book.levels\")?"), "{code}");
    assert!(code.contains("r.get_count(4, \"Book.rows\")?"), "{code}");
    assert!(code.contains("r.get_count(4, \"Book.names\")?"), "{code}");
    // list<u8> shares the `bytes` layout and is read in one bounds-checked step.
    assert!(
        code.contains("r.get_bytes(\"Book.rows[]\")?.to_vec()"),
        "{code}"
    );
}

/// The `#[derive(...)]` line right above `pub struct {name}`.
fn derive_line<'a>(code: &'a str, name: &str) -> &'a str {
    let at = code.find(&format!("pub struct {name} ")).unwrap();
    code[..at]
        .lines()
        .rev()
        .find(|l| l.starts_with("#[derive"))
        .unwrap()
}

#[test]
fn default_is_derived_up_to_32_byte_arrays_and_written_out_beyond() {
    let code = generate_rust(&schema(
        "  Small:\n    id: 1\n    fields:\n      - a: bytes[32]\n  Big:\n    id: 2\n    fields:\n      - a: bytes[33]\n      - b: string\n",
    ));
    assert_eq!(
        derive_line(&code, "Small"),
        "#[derive(Debug, Clone, PartialEq, Default)]"
    );
    assert_eq!(
        derive_line(&code, "Big"),
        "#[derive(Debug, Clone, PartialEq)]"
    );
    assert!(code.contains("impl ::core::default::Default for Big {"));
    assert!(code.contains("a: [0u8; 33],"));
    assert!(code.contains("b: ::core::default::Default::default(),"));
    assert!(!code.contains("impl ::core::default::Default for Small"));
}

#[test]
fn empty_messages_leave_writer_and_reader_unused_without_warnings() {
    let code = generate_rust(&schema("  Ping:\n    id: 1\n    fields: []\n"));
    assert!(code.contains("pub struct Ping {}"));
    assert!(code.contains("_w: &mut ::mycelium_protocol::codec::Writer<'_>"));
    assert!(code.contains("_r: &mut ::mycelium_protocol::codec::Reader<'_>"));
    assert!(code.contains("::core::result::Result::Ok(Self {})"));
}

#[test]
fn docs_are_plain_prose_or_verbatim_text_blocks() {
    let code = generate_rust(&schema(concat!(
        "  A:\n    id: 1\n    doc: \"Plain words.\\nSecond line.\"\n    fields: []\n",
        "  B:\n    id: 2\n    doc: \"Items:\\n- one\\nlazy\\n```rust\\nx\\n```\"\n    fields: []\n",
        "  C:\n    id: 3\n    doc: \"bell\\a and\\rreturn\"\n    fields: []\n",
    )));
    assert!(
        code.contains("/// Plain words.\n/// Second line.\n"),
        "{code}"
    );
    // The fence must be longer than the triple backticks inside the doc.
    assert!(code.contains("/// ````text\n/// Items:\n/// - one\n/// lazy\n/// ```rust\n/// x\n/// ```\n/// ````\n"), "{code}");
    assert!(
        code.contains("#[doc = \" bell\\u{7} and\\rreturn\"]"),
        "{code}"
    );
}

#[test]
fn a_message_named_self_becomes_a_compile_error() {
    let s = schema("  Self:\n    id: 1\n    fields:\n      - a: u8\n");
    assert_eq!(rust_name_problems(&s).len(), 1);
    let code = generate_rust(&s);
    assert!(code.contains("::core::compile_error!("), "{code}");
    assert!(!code.contains("pub struct Self"), "{code}");
    assert!(rust_name_problems(&schema(TRADING)).is_empty());
}

#[test]
fn nested_lists_use_distinct_loop_variables() {
    let code = generate_rust(&schema(
        "  G:\n    id: 1\n    fields:\n      - grid: list<list<list<i16>>>\n",
    ));
    for expected in [
        "let n0 = r.get_count(4, \"G.grid\")?;",
        "let n1 = r.get_count(4, \"G.grid[]\")?;",
        "let n2 = r.get_count(2, \"G.grid[][]\")?;",
        "for e0 in &self.grid {",
        "for e1 in e0 {",
        "for e2 in e1 {",
        "w.put_i16(*e2);",
    ] {
        assert!(code.contains(expected), "missing `{expected}` in\n{code}");
    }
}

#[test]
fn serde_derives_only_when_asked_and_byte_arrays_get_their_adapter() {
    let s = schema("  Blob:\n    id: 1\n    fields:\n      - key: bytes[40]\n      - keys: list<bytes[2]>\n      - text: string\n");
    let plain = generate_rust(&s);
    assert!(!plain.contains("serde"), "no serde without the option");
    let code = generate_rust_with(&s, &RustOptions { serde: true });
    assert!(code.contains("#[derive(::serde::Serialize, ::serde::Deserialize)]"));
    assert!(code.contains(
        "#[serde(with = \"::mycelium_protocol::serde_support::byte_array\")]\n    pub key: [u8; 40],"
    ));
    assert!(code.contains(
        "#[serde(with = \"::mycelium_protocol::serde_support::byte_array_list\")]\n    pub keys:"
    ));
    assert_eq!(code.matches("#[serde(with").count(), 2, "not on the string");
}

#[test]
fn byte_arrays_two_lists_deep_are_refused_for_serde_with_the_field_named() {
    let s = schema("  Grid:\n    id: 1\n    fields:\n      - cells: list<list<bytes[3]>>\n");
    assert!(serde_problems(&s)[0].contains("Grid.cells"));
    let code = generate_rust_with(&s, &RustOptions { serde: true });
    assert!(code.contains("compile_error!"), "{code}");
    assert!(!generate_rust(&s).contains("compile_error!"));
}

#[test]
fn services_become_marker_types_and_leave_other_schemas_alone() {
    let plain = generate_rust(&schema(TRADING));
    assert!(!plain.contains("SERVICES"), "{plain}");
    assert!(!plain.contains("::mycelium_protocol::Service"), "{plain}");
    let with = generate_rust(&schema(&format!(
        "{TRADING}services:\n  Depth:\n    request: Level\n    reply: Book\n    doc: The book under a level.\n"
    )));
    for expected in [
        "pub struct Depth;",
        "impl ::mycelium_protocol::Service for Depth {",
        "const NAME: &'static str = \"Depth\";",
        "type Request = Level;",
        "type Reply = Book;",
        "/// The book under a level.",
        "(\"Depth\", 5, 6),",
    ] {
        assert!(with.contains(expected), "missing `{expected}` in\n{with}");
    }
}
