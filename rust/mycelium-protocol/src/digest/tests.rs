//! Digest stability and the diff.

use super::*;
use crate::schema::Schema;

const BASE: &str = "schema: trading
version: 1
messages:
  PriceLevel:
    id: 5
    fields:
      - price: f64
      - qty: u32
  Quote:
    id: 6
    doc: best bid and offer
    fields:
      - symbol: string
      - bid: PriceLevel
      - ask: PriceLevel
  Batch:
    id: 7
    fields:
      - venue: bytes[4]
      - levels: list<list<PriceLevel>>
";

fn schema(yaml: &str) -> Schema {
    Schema::from_yaml_str(yaml).unwrap()
}

#[test]
fn canonical_text_follows_the_specification() {
    let s = schema(BASE);
    let level_text = "message PriceLevel 5\nfield price f64\nfield qty u32\n";
    assert_eq!(s.canonical_text("PriceLevel").unwrap(), level_text);
    let level_fp = sha256_hex(level_text);
    assert_eq!(s.fingerprint("PriceLevel").unwrap(), level_fp);
    let quote_text = format!(
        "message Quote 6\nfield symbol string\nfield bid PriceLevel#{level_fp}\nfield ask PriceLevel#{level_fp}\n"
    );
    assert_eq!(s.canonical_text("Quote").unwrap(), quote_text);
    let batch_text = format!(
        "message Batch 7\nfield venue bytes[4]\nfield levels list<list<PriceLevel#{level_fp}>>\n"
    );
    let description = format!("mycelium-schema/1\n{level_text}{quote_text}{batch_text}");
    assert_eq!(s.canonical_description(), description);
    assert_eq!(s.digest(), sha256_hex(&description));
    assert_eq!(s.digest().len(), 64);
    assert!(s
        .digest()
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(s.fingerprint("Nope").is_none());
}

#[test]
fn sha256_matches_a_known_answer() {
    // FIPS 180-2 test vector.
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn layout_and_metadata_do_not_change_the_digest() {
    let reference = schema(BASE).digest();
    let reordered = "# a comment
version: 2            # version is not part of the digest
messages:
  Batch:
    fields:
      - venue:    bytes[4]
      - levels: list<list<PriceLevel>>
    id: 7
  Quote: {doc: 'other text', id: 6, fields: [{symbol: string}, {bid: PriceLevel}, {ask: PriceLevel}]}


  PriceLevel:
    fields: [ {price: f64}, {qty: u32} ]
    id: 5
schema: renamed
";
    assert_eq!(schema(reordered).digest(), reference);
}

#[test]
fn changing_a_field_type_changes_digest_and_fingerprints_of_containers() {
    let a = schema(BASE);
    let b = schema(&BASE.replace("qty: u32", "qty: u64"));
    assert_ne!(a.digest(), b.digest());
    assert_ne!(a.fingerprint("PriceLevel"), b.fingerprint("PriceLevel"));
    // Quote nests PriceLevel, so its fingerprint changes too.
    assert_ne!(a.fingerprint("Quote"), b.fingerprint("Quote"));
    let diff = diff_canonical(&a.canonical_description(), &b.canonical_description());
    assert_eq!(
        diff,
        [
            "PriceLevel: field qty u32 -> u64",
            "Quote: field bid PriceLevel differs (the nested message changed)",
            "Quote: field ask PriceLevel differs (the nested message changed)",
            "Batch: field levels list<list<PriceLevel>> differs (the nested message changed)",
        ]
    );
}

#[test]
fn field_order_enters_the_digest() {
    let a = schema(BASE);
    let b = schema(&BASE.replace(
        "      - price: f64\n      - qty: u32\n",
        "      - qty: u32\n      - price: f64\n",
    ));
    assert_ne!(a.digest(), b.digest());
    let diff = diff_canonical(&a.canonical_description(), &b.canonical_description());
    assert_eq!(diff[0], "PriceLevel: field order price, qty -> qty, price");
}

#[test]
fn diff_reports_ids_added_removed_and_missing() {
    let ours = "mycelium-schema/1\nmessage TradeTick 1\nfield price f64\nmessage Order 3\nfield qty u32\nfield ts u64\nmessage CounterUpdate 8\nfield delta i32\n";
    let theirs = "mycelium-schema/1\nmessage Order 4\nfield ts u64\nfield qty u32\nfield note string\nmessage CounterUpdate 8\nfield delta i64\nmessage Extra 9\n";
    assert_eq!(
        diff_canonical(ours, theirs),
        [
            "TradeTick missing on the other side",
            "Order: type id 3 -> 4",
            "Order: field note added",
            "Order: field order qty, ts -> ts, qty",
            "CounterUpdate: field delta i32 -> i64",
            "Extra missing on this side",
        ]
    );
    assert_eq!(
        diff_canonical(theirs, ours)[..2],
        [
            "Order: type id 4 -> 3".to_owned(),
            "Order: field note removed".to_owned()
        ]
    );
}

#[test]
fn diff_is_empty_only_for_equal_descriptions() {
    let s = schema(BASE).canonical_description();
    assert!(diff_canonical(&s, &s).is_empty());
    // Same content, messages out of id order: not canonical, still reported.
    let mut lines: Vec<&str> = s.lines().collect();
    let header = lines.remove(0);
    let split = lines
        .iter()
        .position(|l| l.starts_with("message Quote"))
        .unwrap();
    lines.rotate_left(split);
    let shuffled = format!("{header}\n{}\n", lines.join("\n"));
    let diff = diff_canonical(&s, &shuffled);
    assert_eq!(diff.len(), 1);
    assert!(diff[0].contains("not canonical"), "{diff:?}");
}

#[test]
fn diff_reports_header_and_garbage() {
    let diff = diff_canonical("mycelium-schema/1\n", "mycelium-schema/2\nhello world\n");
    assert_eq!(
        diff,
        [
            "canonical format 'mycelium-schema/1' -> 'mycelium-schema/2'",
            "other side, line 2: not a canonical line: 'hello world'",
        ]
    );
}

#[test]
fn example_schema_digest_is_stable_across_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml");
    let a = Schema::from_path(path).unwrap();
    let b = Schema::from_yaml_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(a.digest(), b.digest());
    assert!(a.canonical_description().starts_with(CANONICAL_HEADER));
    assert_eq!(a.canonical_description().matches("\nmessage ").count(), 9);
}

#[test]
fn documented_worked_example() {
    // docs/schema.md; the expected values come from an independent Python implementation.
    let s = schema(
        "schema: trading\nversion: 1\nmessages:\n  PriceLevel:\n    id: 5\n    fields:\n      - price: f64\n      - qty: u32\n  Quote:\n    id: 6\n    fields:\n      - symbol: string\n      - bid: PriceLevel\n      - ask: PriceLevel\n      - ts_ns: u64\n",
    );
    assert_eq!(
        s.fingerprint("PriceLevel").unwrap(),
        "8cd148dfa93cf2075908f9b5f4fd57729a143aa87ca218978ffb69f680e3ed76"
    );
    assert_eq!(
        s.fingerprint("Quote").unwrap(),
        "aa0ae08811aa4fc52b010522ac2d30ffeaa06e0fbcb9878ffa06a534a95ba6cc"
    );
    assert_eq!(
        s.digest(),
        "80ea143f35ac86d8696b5c2a5195748f6fbd07629d417439fb53fa876b173fa7"
    );
}

/// Services entered the canonical description after digests were in use: a schema that
/// declares none must keep the digest it always had.
#[test]
fn schemas_without_services_keep_their_digest() {
    // The example schema's digest as recorded in the golden vectors before services existed
    // (contracts.yaml declared its first service, RiskCheck, later: its messages alone must
    // still give this digest).
    const RECORDED: &str = "fbe5518b8327c57b21adf54f987b213f83e1d224eeb3500d4245439f697682b9";
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let text = std::fs::read_to_string(format!("{root}/contracts.yaml")).unwrap();
    let messages_only = &text[..text
        .find("\nservices:")
        .expect("contracts.yaml declares services")];
    let example = schema(messages_only);
    assert!(example.services.is_empty());
    assert_eq!(example.digest(), RECORDED);
    let with_services = schema(&text);
    assert!(!with_services.services.is_empty());
    assert_ne!(with_services.digest(), RECORDED);
    // An empty `services:` map is the same as none.
    let empty = schema(&format!("{BASE}services: {{}}\n"));
    assert_eq!(
        empty.canonical_description(),
        schema(BASE).canonical_description()
    );
    assert!(!empty.canonical_description().contains("service"));
}

const WITH_SERVICES: &str = "services:
  Quoting:
    request: PriceLevel
    reply: Quote
    doc: a quote for a level
  Batching:
    request: Quote
    reply: Batch
";

#[test]
fn services_enter_the_description_and_digest() {
    let base = schema(BASE);
    let with = schema(&format!("{BASE}{WITH_SERVICES}"));
    let description = with.canonical_description();
    assert_eq!(
        description,
        format!(
            "{}service Batching Quote Batch\nservice Quoting PriceLevel Quote\n",
            base.canonical_description()
        )
    );
    assert_ne!(with.digest(), base.digest());
    // Messages keep their fingerprints: services do not enter them.
    assert_eq!(with.fingerprint("Quote"), base.fingerprint("Quote"));
    // Docs and declaration order do not matter; request/reply do.
    let reordered = schema(&format!(
        "{BASE}services:\n  Batching: {{request: Quote, reply: Batch}}\n  Quoting: {{request: PriceLevel, reply: Quote}}\n"
    ));
    assert_eq!(reordered.digest(), with.digest());
    let swapped = schema(&format!(
        "{BASE}services:\n  Batching: {{request: Batch, reply: Quote}}\n  Quoting: {{request: PriceLevel, reply: Quote}}\n"
    ));
    assert_ne!(swapped.digest(), with.digest());
}

#[test]
fn diff_reports_service_changes() {
    let ours = schema(&format!("{BASE}{WITH_SERVICES}")).canonical_description();
    let theirs = schema(&format!(
        "{BASE}services:\n  Batching: {{request: Quote, reply: Quote}}\n  Levels: {{request: Quote, reply: PriceLevel}}\n"
    ))
    .canonical_description();
    assert_eq!(
        diff_canonical(&ours, &theirs),
        vec![
            "service Batching: reply Batch -> Quote".to_owned(),
            "service Quoting missing on the other side".to_owned(),
            "service Levels missing on this side".to_owned(),
        ]
    );
}
