use super::*;

fn schema(yaml: &str) -> Schema {
    Schema::from_yaml_str(yaml).unwrap()
}

const TRADING: &str = concat!(
    "schema: trading\nversion: 2\nmessages:\n",
    "  Quote:\n    id: 6\n    doc: \"Best (* bid *) and \\\"offer\\\".\"\n    fields:\n",
    "      - symbol: string\n      - bid: PriceLevel\n      - levels: list<PriceLevel>\n      - ts_ns: u64\n",
    "  PriceLevel:\n    id: 5\n    fields:\n      - price: f64\n      - qty: u32\n",
    "  Ping:\n    id: 8\n    fields: []\n",
    "  Grid:\n    id: 9\n    fields:\n      - rows: list<list<u8>>\n      - code: bytes[2]\n      - f: f32\n",
);

/// The text of `module <name> ...` up to its `end`.
fn module_text<'a>(code: &'a str, name: &str, header: &str) -> &'a str {
    let start = code
        .find(&format!("module {name} {header}"))
        .unwrap_or_else(|| panic!("no module {name}"));
    let rest = &code[start..];
    &rest[..rest.find("\nend\n").map_or(rest.len(), |i| i + 5)]
}

#[test]
fn output_is_deterministic() {
    let s = schema(TRADING);
    assert_eq!(generate_ocaml(&s), generate_ocaml(&s));
    assert_eq!(generate_ocaml_interface(&s), generate_ocaml_interface(&s));
}

#[test]
fn every_message_is_a_submodule_with_its_identity_in_both_files() {
    let s = schema(TRADING);
    let ml = generate_ocaml(&s);
    let mli = generate_ocaml_interface(&s);
    for message in &s.messages {
        let body = module_text(&ml, &message.name, "= struct");
        let fingerprint = s.fingerprint(&message.name).unwrap();
        assert!(body.contains(&format!("let type_id = {}\n", message.type_id)));
        assert!(body.contains(&format!("let name = \"{}\"\n", message.name)));
        assert!(body.contains(&format!("let fingerprint = \"{fingerprint}\"\n")));
        let sig = module_text(&mli, &message.name, ": sig");
        for item in [
            "val encode : t -> string",
            "val decode : string -> (t, string) result",
            "val fingerprint : string",
            "val default : t",
        ] {
            assert!(sig.contains(item), "{}: {item}", message.name);
        }
        assert!(ml.contains(&format!("  | {0} of {0}.t\n", message.name)));
        assert!(ml.contains(&format!(
            "({}, \"{}\", \"{fingerprint}\");",
            message.type_id, message.name
        )));
    }
    assert!(ml.contains(&format!("let schema_digest = \"{}\"", s.digest())));
    assert!(mli.contains("val decode_frame : string -> (any, string) result"));
}

#[test]
fn record_types_match_between_implementation_and_interface() {
    let s = schema(TRADING);
    let ml = generate_ocaml(&s);
    let mli = generate_ocaml_interface(&s);
    let quote = module_text(&ml, "Quote", "= struct");
    for field in [
        "symbol : string;",
        "bid : PriceLevel.t;",
        "levels : PriceLevel.t list;",
        "ts_ns : int64;",
    ] {
        assert!(quote.contains(field), "{field}");
        assert!(
            module_text(&mli, "Quote", ": sig").contains(field),
            "{field}"
        );
    }
    assert!(module_text(&ml, "Grid", "= struct").contains("rows : int list list;"));
    assert!(module_text(&ml, "Ping", "= struct").contains("type t = unit"));
}

#[test]
fn nested_modules_come_first() {
    let ml = generate_ocaml(&schema(TRADING));
    assert!(
        ml.find("module PriceLevel = struct").unwrap() < ml.find("module Quote = struct").unwrap()
    );
}

#[test]
fn fields_are_read_in_wire_order_and_named_in_errors() {
    let ml = generate_ocaml(&schema(TRADING));
    let quote = module_text(&ml, "Quote", "= struct");
    let order: Vec<usize> = ["let f_symbol", "let f_bid", "let f_levels", "let f_ts_ns"]
        .iter()
        .map(|needle| quote.find(needle).unwrap_or_else(|| panic!("{needle}")))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{quote}");
    assert!(
        quote.contains("Wire_.get_string \"Quote.symbol\" s p"),
        "{quote}"
    );
    // 12 is PriceLevel's size: the count guard's minimum element size.
    assert!(
        quote.contains("Wire_.get_list \"Quote.levels\" 12 (PriceLevel.read) s p"),
        "{quote}"
    );
    assert!(
        quote.contains("Wire_.put_u64 \"Quote.ts_ns\" b v.ts_ns"),
        "{quote}"
    );
    let grid = module_text(&ml, "Grid", "= struct");
    assert!(
        grid.contains("Wire_.get_list \"Grid.rows\" 4 (Wire_.get_u8_list \"Grid.rows[]\")"),
        "{grid}"
    );
    assert!(
        grid.contains("Wire_.put_array \"Grid.code\" 2 b v.code"),
        "{grid}"
    );
}

#[test]
fn docs_cannot_break_out_of_comments() {
    let mli = generate_ocaml_interface(&schema(TRADING));
    assert!(mli.contains("(** Best ( * bid * ) and 'offer'."), "{mli}");
}

#[test]
fn stdlib_is_the_only_reserved_module_name() {
    let s = schema("schema: t\nversion: 1\nmessages:\n  Stdlib:\n    id: 1\n    fields: []\n  String:\n    id: 2\n    fields: []\n");
    let problems = ocaml_name_problems(&s);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("message Stdlib:"));
    assert!(generate_ocaml(&s).contains("[%%ocaml.error \"cannot generate OCaml: message Stdlib:"));
    assert!(ocaml_name_problems(&schema(TRADING)).is_empty());
}

#[test]
fn generated_code_names_the_standard_library_explicitly() {
    // A message called String or List must not capture the code's own uses.
    let mut ml = generate_ocaml(&schema(TRADING));
    // Comments may mention modules freely; the generated ones never nest.
    while let Some(start) = ml.find("(*") {
        let end = ml[start..].find("*)").map_or(ml.len(), |i| start + i + 2);
        ml.replace_range(start..end, "");
    }
    for shadowable in ["String.", "List.", "Buffer.", "Int32.", "Int64.", "Printf."] {
        for (i, _) in ml.match_indices(shadowable) {
            let before = &ml[..i];
            assert!(
                before.ends_with("Stdlib.")
                    || before.ends_with('_')
                    || before.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "unqualified {shadowable} at byte {i}: {}",
                &ml[i.saturating_sub(40)..i + 20]
            );
        }
    }
}

#[test]
fn services_become_modules_naming_their_messages_only_when_declared() {
    let plain = schema(TRADING);
    assert!(!generate_ocaml(&plain).contains("services"));
    assert!(!generate_ocaml_interface(&plain).contains("services"));
    let s = schema(&format!(
        "{TRADING}services:\n  Quoting:\n    request: PriceLevel\n    reply: Quote\n    doc: \"Quotes (* a *) level.\"\n"
    ));
    let ml = generate_ocaml(&s);
    let mli = generate_ocaml_interface(&s);
    for expected in [
        "module Quoting = struct",
        "  let name = \"Quoting\"",
        "  module Request = PriceLevel",
        "  module Reply = Quote",
        "(\"Quoting\", 5, 6);",
    ] {
        assert!(ml.contains(expected), "missing `{expected}` in\n{ml}");
    }
    for expected in [
        "module Quoting : sig",
        "  val name : string",
        "  module Request = PriceLevel",
        "val services : (string * int * int) list",
        "Quotes ( * a * ) level.",
    ] {
        assert!(mli.contains(expected), "missing `{expected}` in\n{mli}");
    }
    let stdlib = schema(&format!(
        "{TRADING}services:\n  Stdlib: {{request: Ping, reply: Ping}}\n"
    ));
    assert!(ocaml_name_problems(&stdlib)[0].contains("service Stdlib"));
}
