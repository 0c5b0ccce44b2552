//! The canonical description of a schema, message fingerprints, the schema digest, and a
//! diff of two descriptions. The algorithm is specified in `docs/schema.md` precisely enough
//! for the Python and OCaml bindings to recompute the same digests:
//!
//! - canonical type names are the schema spellings (`u32`, `bytes[4]`, `list<T>`), except that
//!   a nested message is written `Name#<fingerprint of Name>`;
//! - a message's canonical text is `message <Name> <id>\n` then `field <name> <type>\n` per field;
//! - its fingerprint is the lowercase hex SHA-256 of that text;
//! - the description is [`CANONICAL_HEADER`] followed by every message's text in ascending
//!   type-id order, then one line `service <Name> <Request> <Reply>\n` per declared service in
//!   ascending name order (none when the schema declares no services, so the description and
//!   digest of such a schema are what they were before services existed), and the schema
//!   digest is the lowercase hex SHA-256 of the description.

use std::collections::HashMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::schema::{FieldType, MessageDef, Schema, MAX_NESTING_DEPTH};

/// First line of every canonical description, newline included. Bumped if the canonical
/// form ever changes, so old and new peers never compare digests of different algorithms.
pub const CANONICAL_HEADER: &str = "mycelium-schema/1\n";

/// Lowercase hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Schema {
    /// The canonical description: [`CANONICAL_HEADER`] plus each message's canonical text in
    /// ascending type-id order, then each service's line in ascending name order. Schema name,
    /// version, docs and YAML layout do not enter it.
    pub fn canonical_description(&self) -> String {
        let mut canon = Canonicalizer::new(self);
        let mut ordered: Vec<&MessageDef> = self.messages.iter().collect();
        ordered.sort_by_key(|m| m.type_id);
        let mut out = String::from(CANONICAL_HEADER);
        for message in ordered {
            out.push_str(&canon.text(message));
        }
        let mut services: Vec<_> = self.services.iter().collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        for service in services {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "service {} {} {}",
                service.name, service.request, service.reply
            );
        }
        out
    }

    /// Lowercase hex SHA-256 of [`Schema::canonical_description`] (64 characters).
    pub fn digest(&self) -> String {
        sha256_hex(&self.canonical_description())
    }

    /// The canonical text of one message, e.g. `message PriceLevel 5\nfield price f64\n...`.
    pub fn canonical_text(&self, message: &str) -> Option<String> {
        let def = self.message_by_name(message)?;
        Some(Canonicalizer::new(self).text(def))
    }

    /// Lowercase hex SHA-256 of the message's canonical text (the `Message::FINGERPRINT`
    /// of generated code). `None` if no such message exists.
    pub fn fingerprint(&self, message: &str) -> Option<String> {
        let def = self.message_by_name(message)?;
        Some(Canonicalizer::new(self).fingerprint(def))
    }

    /// The canonical type name of `ty` (`list<PriceLevel#9f2c...>` for nested messages).
    pub fn canonical_type_name(&self, ty: &FieldType) -> String {
        Canonicalizer::new(self).type_name(ty, 0)
    }
}

/// Computes texts and fingerprints with memoization, so a message nested in many places is
/// hashed once.
struct Canonicalizer<'s> {
    schema: &'s Schema,
    fingerprints: HashMap<&'s str, String>,
}

impl<'s> Canonicalizer<'s> {
    fn new(schema: &'s Schema) -> Self {
        Canonicalizer {
            schema,
            fingerprints: HashMap::new(),
        }
    }

    fn text(&mut self, message: &'s MessageDef) -> String {
        self.text_at(message, 0)
    }

    fn fingerprint(&mut self, message: &'s MessageDef) -> String {
        self.fingerprint_at(message, 0)
    }

    fn text_at(&mut self, message: &'s MessageDef, depth: usize) -> String {
        let mut out = format!("message {} {}\n", message.name, message.type_id);
        for field in &message.fields {
            let ty = self.type_name(&field.ty, depth);
            // Writing to a String cannot fail.
            let _ = writeln!(out, "field {} {}", field.name, ty);
        }
        out
    }

    fn fingerprint_at(&mut self, message: &'s MessageDef, depth: usize) -> String {
        if let Some(known) = self.fingerprints.get(message.name.as_str()) {
            return known.clone();
        }
        let fingerprint = sha256_hex(&self.text_at(message, depth));
        self.fingerprints
            .insert(message.name.as_str(), fingerprint.clone());
        fingerprint
    }

    fn type_name(&mut self, ty: &FieldType, depth: usize) -> String {
        match ty {
            FieldType::List(inner) => format!("list<{}>", self.type_name(inner, depth)),
            FieldType::Message(name) => {
                // Validated schemas always resolve and never exceed the depth bound; a
                // hand-built broken schema gets a marker instead of endless recursion.
                match self.schema.message_by_name(name) {
                    Some(def) if depth < MAX_NESTING_DEPTH => {
                        format!("{name}#{}", self.fingerprint_at(def, depth + 1))
                    }
                    _ => format!("{name}#?"),
                }
            }
            other => other.to_string(),
        }
    }
}

/// One message as read back from a canonical description.
struct ParsedMessage<'a> {
    name: &'a str,
    id: &'a str,
    fields: Vec<(&'a str, &'a str)>,
}

struct ParsedDescription<'a> {
    header: &'a str,
    messages: Vec<ParsedMessage<'a>>,
    /// (name, request, reply)
    services: Vec<(&'a str, &'a str, &'a str)>,
    problems: Vec<String>,
}

fn parse_description<'a>(text: &'a str, side: &str) -> ParsedDescription<'a> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let mut messages: Vec<ParsedMessage<'a>> = Vec::new();
    let mut services = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in lines.enumerate() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["message", name, id] => messages.push(ParsedMessage {
                name,
                id,
                fields: Vec::new(),
            }),
            ["service", name, request, reply] => services.push((*name, *request, *reply)),
            ["field", name, ty] => match messages.last_mut() {
                Some(message) => message.fields.push((name, ty)),
                None => problems.push(format!(
                    "{side}, line {}: field before any message: '{line}'",
                    index + 2
                )),
            },
            _ => problems.push(format!(
                "{side}, line {}: not a canonical line: '{line}'",
                index + 2
            )),
        }
    }
    ParsedDescription {
        header,
        messages,
        services,
        problems,
    }
}

/// Removes `#<fingerprint>` suffixes so a type reads like the schema spelling.
fn schema_spelling(canonical_type: &str) -> String {
    let mut out = String::with_capacity(canonical_type.len());
    let mut skipping = false;
    for c in canonical_type.chars() {
        if c == '#' {
            skipping = true;
        } else if skipping && (c.is_ascii_hexdigit() || c == '?') {
            continue;
        } else {
            skipping = false;
            out.push(c);
        }
    }
    out
}

/// What differs between two canonical descriptions, one line per difference, empty when they
/// are equal. Read each line as "ours -> theirs": `Order: type id 3 -> 4`,
/// `CounterUpdate: field delta i32 -> i64`, `Order: field qty added` (only theirs has it),
/// `Order: field qty removed` (only ours has it), `TradeTick missing on the other side`,
/// `TradeTick missing on this side`.
pub fn diff_canonical(ours: &str, theirs: &str) -> Vec<String> {
    if ours == theirs {
        return Vec::new();
    }
    let a = parse_description(ours, "this side");
    let b = parse_description(theirs, "other side");
    let mut out = Vec::new();
    if a.header != b.header {
        out.push(format!("canonical format '{}' -> '{}'", a.header, b.header));
    }
    out.extend(a.problems.iter().cloned());
    out.extend(b.problems.iter().cloned());
    for message in &a.messages {
        match b.messages.iter().find(|m| m.name == message.name) {
            None => out.push(format!("{} missing on the other side", message.name)),
            Some(other) => diff_message(message, other, &mut out),
        }
    }
    for message in &b.messages {
        if !a.messages.iter().any(|m| m.name == message.name) {
            out.push(format!("{} missing on this side", message.name));
        }
    }
    for &(name, request, reply) in &a.services {
        match b.services.iter().find(|s| s.0 == name) {
            None => out.push(format!("service {name} missing on the other side")),
            Some(&(_, their_request, their_reply)) => {
                if request != their_request {
                    out.push(format!(
                        "service {name}: request {request} -> {their_request}"
                    ));
                }
                if reply != their_reply {
                    out.push(format!("service {name}: reply {reply} -> {their_reply}"));
                }
            }
        }
    }
    for &(name, ..) in &b.services {
        if !a.services.iter().any(|s| s.0 == name) {
            out.push(format!("service {name} missing on this side"));
        }
    }
    if out.is_empty() {
        // Same messages and fields, different bytes: at least one side is not canonical.
        out.push(
            "descriptions list the same messages but differ in layout (order or spacing); \
             at least one is not canonical"
                .to_owned(),
        );
    }
    out
}

fn diff_message(ours: &ParsedMessage<'_>, theirs: &ParsedMessage<'_>, out: &mut Vec<String>) {
    let name = ours.name;
    if ours.id != theirs.id {
        out.push(format!("{name}: type id {} -> {}", ours.id, theirs.id));
    }
    for (field, ty) in &ours.fields {
        match theirs.fields.iter().find(|(f, _)| f == field) {
            None => out.push(format!("{name}: field {field} removed")),
            Some((_, their_ty)) if their_ty != ty => {
                let (a, b) = (schema_spelling(ty), schema_spelling(their_ty));
                if a == b {
                    out.push(format!(
                        "{name}: field {field} {a} differs (the nested message changed)"
                    ));
                } else {
                    out.push(format!("{name}: field {field} {a} -> {b}"));
                }
            }
            Some(_) => {}
        }
    }
    for (field, _) in &theirs.fields {
        if !ours.fields.iter().any(|(f, _)| f == field) {
            out.push(format!("{name}: field {field} added"));
        }
    }
    let common = |x: &ParsedMessage<'_>, y: &ParsedMessage<'_>| -> Vec<String> {
        x.fields
            .iter()
            .filter(|(f, _)| y.fields.iter().any(|(g, _)| g == f))
            .map(|(f, _)| (*f).to_owned())
            .collect()
    };
    let (order_a, order_b) = (common(ours, theirs), common(theirs, ours));
    if order_a != order_b {
        out.push(format!(
            "{name}: field order {} -> {}",
            order_a.join(", "),
            order_b.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests;
