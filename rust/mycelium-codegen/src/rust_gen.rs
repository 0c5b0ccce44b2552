//! The Rust generator: one plain struct per message plus its
//! `mycelium_protocol::Message` impl, written against the protocol crate's
//! `Writer`/`Reader`.
//!
//! Generated code names everything outside itself by absolute path
//! (`::std::vec::Vec`, `::core::result::Result`, ...), so a schema message called
//! `String`, `Vec` or `Result` cannot shadow what the code relies on, and the file
//! can be `include!`d into any module of a crate that depends on
//! `mycelium-protocol`. `include!` forbids inner attributes, so any lint
//! allowance has to sit on the item that needs it.

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};

use crate::code_writer::CodeWriter;

const ENCODE_ERROR: &str = "::mycelium_protocol::EncodeError";
const DECODE_ERROR: &str = "::mycelium_protocol::DecodeError";
const WRITER: &str = "::mycelium_protocol::codec::Writer";
const READER: &str = "::mycelium_protocol::codec::Reader";
const RESULT: &str = "::core::result::Result";
const OK: &str = "::core::result::Result::Ok";

/// `Default` is only implemented for arrays of up to 32 elements, so structs holding
/// a longer `bytes[N]` get a hand-written impl instead of the derive.
const MAX_DERIVABLE_ARRAY_DEFAULT: u16 = 32;

/// Message names that match the schema's name rule but cannot name a Rust type.
const RUST_RESERVED_TYPE_NAMES: &[&str] = &["Self"];

/// Choices for [`generate_rust_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RustOptions {
    /// Derive `serde::Serialize` and `serde::Deserialize` on every message, so users can log
    /// and store them. The including crate must depend on `serde` (with `derive`). `bytes[N]`
    /// fields go through `mycelium_protocol::serde_support` (serde's own arrays stop at 32).
    pub serde: bool,
}

/// Generates the Rust module for `schema` with the default [`RustOptions`].
///
/// The output is deterministic (messages in type-id order, fields in schema order)
/// and compiles without warnings under `clippy -D warnings`. A schema that cannot be
/// expressed in Rust (see [`rust_name_problems`]) yields a `compile_error!` naming
/// the problem, so a build never silently produces something else.
pub fn generate_rust(schema: &Schema) -> String {
    generate_rust_with(schema, &RustOptions::default())
}

/// [`generate_rust`] with explicit options.
pub fn generate_rust_with(schema: &Schema, options: &RustOptions) -> String {
    let mut w = CodeWriter::new();
    emit_header(&mut w, schema);
    let mut problems = rust_name_problems(schema);
    if options.serde {
        problems.extend(serde_problems(schema));
    }
    if !problems.is_empty() {
        for problem in &problems {
            w.line(format!("::core::compile_error!({problem:?});"));
        }
        return w.finish();
    }
    emit_schema_constants(&mut w, schema);
    // Only with services, so the output for schemas without any is unchanged.
    if !schema.services.is_empty() {
        emit_services_constant(&mut w, schema);
    }
    for message in &schema.messages {
        w.line("");
        emit_struct(&mut w, message, options);
        w.line("");
        emit_default_impl(&mut w, message);
        emit_field_codec(&mut w, schema, message);
        w.line("");
        emit_message_impl(&mut w, schema, message);
    }
    for service in &schema.services {
        w.line("");
        emit_service(&mut w, service);
    }
    w.finish()
}

/// A marker type per service: `bus.call::<RiskCheck>(&order, timeout)` is the typed client,
/// `bus.serve_service::<RiskCheck, _>(handler)` the typed server (`mycelium-transport`).
fn emit_service(w: &mut CodeWriter, service: &mycelium_protocol::ServiceDef) {
    if let Some(doc) = &service.doc {
        emit_doc(w, doc);
        w.line("///");
    }
    w.line(format!(
        "/// Service `{}`: requests [`{}`], replies [`{}`]. Client: `bus.call::<{}>(&request, timeout)`;",
        service.name, service.request, service.reply, service.name
    ));
    w.line(format!(
        "/// server: `bus.serve_service::<{}, _>(|request| Ok(reply))` (`mycelium_transport::MessageBus`).",
        service.name
    ));
    w.line("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]");
    w.line(format!("pub struct {};", service.name));
    w.line("");
    w.block(
        format!("impl ::mycelium_protocol::Service for {} {{", service.name),
        "}",
        |w| {
            w.line(format!("const NAME: &'static str = {:?};", service.name));
            w.line(format!("type Request = {};", service.request));
            w.line(format!("type Reply = {};", service.reply));
        },
    );
}

/// Reasons `schema` cannot be turned into Rust even though it is a valid schema
/// (e.g. a message called `Self`). Empty when generation will succeed.
pub fn rust_name_problems(schema: &Schema) -> Vec<String> {
    let messages = schema
        .messages
        .iter()
        .filter(|m| RUST_RESERVED_TYPE_NAMES.contains(&m.name.as_str()))
        .map(|m| {
            format!(
                "message {}: '{}' is reserved in Rust and cannot name a struct; rename the message in the schema",
                m.name, m.name
            )
        });
    let services = schema
        .services
        .iter()
        .filter(|s| RUST_RESERVED_TYPE_NAMES.contains(&s.name.as_str()))
        .map(|s| {
            format!(
                "service {}: '{}' is reserved in Rust and cannot name a struct; rename the service in the schema",
                s.name, s.name
            )
        });
    messages.chain(services).collect()
}

fn emit_header(w: &mut CodeWriter, schema: &Schema) {
    w.line(format!(
        "// @generated by mycelium-codegen {} from schema `{}` version {}.",
        env!("CARGO_PKG_VERSION"),
        schema.name.escape_default(),
        schema.version
    ));
    w.line(
        "// Do not edit: change the schema and rebuild (or rerun `mycelium codegen --lang rust`).",
    );
    w.line("// Requires the `mycelium-protocol` crate as a dependency of the including crate.");
    w.line("");
}

fn emit_schema_constants(w: &mut CodeWriter, schema: &Schema) {
    w.line("/// Name of the schema this code was generated from (not part of the digest).");
    w.line(format!("pub const SCHEMA_NAME: &str = {:?};", schema.name));
    w.line("/// Version number declared by the schema (not part of the digest).");
    w.line(format!(
        "pub const SCHEMA_VERSION: u32 = {};",
        schema.version
    ));
    w.line("/// Lowercase hex SHA-256 of [`SCHEMA_CANONICAL`]; peers compare digests to detect");
    w.line("/// that they were built from different schemas.");
    w.line(format!(
        "pub const SCHEMA_DIGEST: &str = {:?};",
        schema.digest()
    ));
    w.line("/// The canonical description of the schema that [`SCHEMA_DIGEST`] hashes.");
    w.line(format!(
        "pub const SCHEMA_CANONICAL: &str = {:?};",
        schema.canonical_description()
    ));
    w.line("/// `(type id, name, fingerprint)` of every message, in type-id order.");
    w.block(
        "pub const MESSAGE_TYPES: &[(u16, &str, &str)] = &[",
        "];",
        |w| {
            for message in &schema.messages {
                w.line(format!(
                    "({}, {:?}, {:?}),",
                    message.type_id,
                    message.name,
                    fingerprint(schema, message)
                ));
            }
        },
    );
}

fn emit_services_constant(w: &mut CodeWriter, schema: &Schema) {
    w.line("/// `(name, request type id, reply type id)` of every service, by name.");
    w.block("pub const SERVICES: &[(&str, u16, u16)] = &[", "];", |w| {
        for service in &schema.services {
            let id = |name: &str| schema.message_by_name(name).map_or(0, |m| m.type_id);
            w.line(format!(
                "({:?}, {}, {}),",
                service.name,
                id(&service.request),
                id(&service.reply)
            ));
        }
    });
}

fn fingerprint(schema: &Schema, message: &MessageDef) -> String {
    // The message comes from this schema, so the lookup cannot miss; an empty string
    // would only ever show up as a fingerprint mismatch, never as a crash.
    schema.fingerprint(&message.name).unwrap_or_default()
}

/// Emits a schema doc string. Plain prose becomes ordinary doc text; anything with
/// Markdown structure (list items, headings, quotes, indented blocks, fences) goes into
/// a ```` ```text ```` block, shown verbatim. Schema docs are written as plain text, and
/// reading them as Markdown both garbles them and trips rustdoc/clippy doc lints
/// (e.g. `doc_lazy_continuation`) in the crate that includes the generated file.
fn emit_doc(w: &mut CodeWriter, text: &str) {
    let lines: Vec<&str> = text.trim_end().lines().map(str::trim_end).collect();
    if lines.iter().all(|line| is_plain_prose(line)) {
        for line in lines {
            emit_doc_line(w, line.trim_start());
        }
        return;
    }
    // A fence longer than any backtick run inside cannot be closed early by the text.
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    emit_doc_line(w, &format!("{fence}text"));
    for line in lines {
        emit_doc_line(w, line);
    }
    emit_doc_line(w, &fence);
}

fn emit_doc_line(w: &mut CodeWriter, line: &str) {
    // `///` cannot carry a bare carriage return or other control characters; an
    // escaped `#[doc]` string can carry anything.
    if line.chars().any(char::is_control) {
        w.line(format!("#[doc = {:?}]", format!(" {line}")));
    } else if line.is_empty() {
        w.line("///");
    } else {
        w.line(format!("/// {line}"));
    }
}

fn is_plain_prose(line: &str) -> bool {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    let numbered = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&end| end > 0)
        .is_some_and(|end| trimmed[end..].starts_with(['.', ')']));
    indent < 4
        && !numbered
        && !trimmed.starts_with(['-', '*', '+', '#', '>', '|', '`', '~', '=', '<', '['])
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

fn needs_manual_default(message: &MessageDef) -> bool {
    message
        .fields
        .iter()
        .any(|f| matches!(f.ty, FieldType::Array(n) if n > MAX_DERIVABLE_ARRAY_DEFAULT))
}

/// Reasons the serde derives cannot be generated for `schema`: `bytes[N]` nested in lists
/// more than one level deep has no serde adapter. Empty when they can.
pub fn serde_problems(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for m in &schema.messages {
        for f in &m.fields {
            if let FieldType::List(inner) = &f.ty {
                if matches!(&**inner, FieldType::List(x) if contains_array(x)) {
                    out.push(format!(
                        "{}.{}: serde derives support bytes[N] alone or in one list, not `{}`",
                        m.name, f.name, f.ty
                    ));
                }
            }
        }
    }
    out
}

fn contains_array(ty: &FieldType) -> bool {
    match ty {
        FieldType::Array(_) => true,
        FieldType::List(inner) => contains_array(inner),
        _ => false,
    }
}

/// The serde adapter a field needs, if any.
fn serde_with(ty: &FieldType) -> Option<&'static str> {
    match ty {
        FieldType::Array(_) => Some("::mycelium_protocol::serde_support::byte_array"),
        FieldType::List(inner) if matches!(**inner, FieldType::Array(_)) => {
            Some("::mycelium_protocol::serde_support::byte_array_list")
        }
        _ => None,
    }
}

fn emit_struct(w: &mut CodeWriter, message: &MessageDef, options: &RustOptions) {
    if let Some(doc) = message.doc.as_deref().filter(|d| !d.trim().is_empty()) {
        emit_doc(w, doc);
        w.line("///");
    }
    w.line(format!(
        "/// Wire message `{}`, type id {}.",
        message.name, message.type_id
    ));
    if needs_manual_default(message) {
        w.line("#[derive(Debug, Clone, PartialEq)]");
    } else {
        w.line("#[derive(Debug, Clone, PartialEq, Default)]");
    }
    if options.serde {
        w.line("#[derive(::serde::Serialize, ::serde::Deserialize)]");
    }
    if message.fields.is_empty() {
        w.line(format!("pub struct {} {{}}", message.name));
        return;
    }
    w.block(format!("pub struct {} {{", message.name), "}", |w| {
        for field in &message.fields {
            w.line(format!("/// Schema type `{}`.", field.ty));
            if let Some(with) = serde_with(&field.ty).filter(|_| options.serde) {
                w.line(format!("#[serde(with = \"{with}\")]"));
            }
            w.line(format!("pub {}: {},", field.name, rust_type(&field.ty)));
        }
    });
}

fn emit_default_impl(w: &mut CodeWriter, message: &MessageDef) {
    if !needs_manual_default(message) {
        return;
    }
    w.block(
        format!("impl ::core::default::Default for {} {{", message.name),
        "}",
        |w| {
            w.block("fn default() -> Self {", "}", |w| {
                w.block("Self {", "}", |w| {
                    for field in &message.fields {
                        let value = match field.ty {
                            FieldType::Array(n) => format!("[0u8; {n}]"),
                            _ => "::core::default::Default::default()".to_owned(),
                        };
                        w.line(format!("{}: {value},", field.name));
                    }
                });
            });
        },
    );
    w.line("");
}

fn rust_type(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(s) => s.name().to_owned(),
        FieldType::String => "::std::string::String".to_owned(),
        FieldType::Bytes => "::std::vec::Vec<u8>".to_owned(),
        FieldType::Array(n) => format!("[u8; {n}]"),
        FieldType::List(inner) => format!("::std::vec::Vec<{}>", rust_type(inner)),
        FieldType::Message(name) => name.clone(),
    }
}

fn emit_field_codec(w: &mut CodeWriter, schema: &Schema, message: &MessageDef) {
    let empty = message.fields.is_empty();
    // A message without fields never touches the writer or reader; the underscore keeps
    // rustc's unused-variable lint quiet without an `#[allow]`.
    let (wv, rv) = if empty { ("_w", "_r") } else { ("w", "r") };
    w.block(format!("impl {} {{", message.name), "}", |w| {
        w.line("/// Appends the fields in schema order (no frame header). Nested messages are");
        w.line("/// written inline through this method.");
        w.line("///");
        w.line("/// # Errors");
        w.line("/// A string, byte string or list longer than `u32::MAX`.");
        w.block(
            format!(
                "pub fn write_fields(&self, {wv}: &mut {WRITER}<'_>) -> {RESULT}<(), {ENCODE_ERROR}> {{"
            ),
            "}",
            |w| {
                for field in &message.fields {
                    emit_write(w, &field.ty, &Access::Field(&field.name), 0);
                }
                w.line(format!("{OK}(())"));
            },
        );
        w.line("");
        w.line("/// Reads the fields in schema order. Bytes left over are the caller's concern,");
        w.line("/// since a nested message is followed by its parent's remaining fields.");
        w.line("///");
        w.line("/// # Errors");
        w.line("/// Truncated input, invalid UTF-8 or bool bytes, and element counts that the");
        w.line("/// remaining input could not possibly hold.");
        w.block(
            format!("pub fn read_fields({rv}: &mut {READER}<'_>) -> {RESULT}<Self, {DECODE_ERROR}> {{"),
            "}",
            |w| {
                for field in &message.fields {
                    let what = format!("{}.{}", message.name, field.name);
                    emit_read(w, schema, &field.ty, &format!("f_{}", field.name), &what, 0);
                }
                if empty {
                    w.line(format!("{OK}(Self {{}})"));
                } else {
                    w.block(format!("{OK}(Self {{"), "})", |w| {
                        for field in &message.fields {
                            w.line(format!("{0}: f_{0},", field.name));
                        }
                    });
                }
            },
        );
    });
}

/// How generated code reaches the value being written.
enum Access<'a> {
    /// A field of `self`: a place expression.
    Field(&'a str),
    /// A loop variable bound by `for eN in ...`: already a reference.
    Element(String),
}

impl Access<'_> {
    /// The value itself (for `Copy` scalars).
    fn value(&self) -> String {
        match self {
            Access::Field(name) => format!("self.{name}"),
            Access::Element(var) => format!("*{var}"),
        }
    }

    /// A shared reference to the value.
    fn reference(&self) -> String {
        match self {
            Access::Field(name) => format!("&self.{name}"),
            Access::Element(var) => var.clone(),
        }
    }

    /// A receiver for method calls (auto-referencing handles both forms).
    fn receiver(&self) -> String {
        match self {
            Access::Field(name) => format!("self.{name}"),
            Access::Element(var) => var.clone(),
        }
    }
}

fn emit_write(w: &mut CodeWriter, ty: &FieldType, access: &Access<'_>, depth: usize) {
    match ty {
        FieldType::Scalar(s) => w.line(format!("w.put_{}({});", s.name(), access.value())),
        FieldType::String => w.line(format!("w.put_str({})?;", access.reference())),
        // `list<u8>` has the same layout as `bytes` (u32 count, then one byte each).
        FieldType::Bytes => w.line(format!("w.put_bytes({})?;", access.reference())),
        FieldType::List(inner) if **inner == FieldType::Scalar(Scalar::U8) => {
            w.line(format!("w.put_bytes({})?;", access.reference()));
        }
        FieldType::Array(_) => w.line(format!("w.put_array({});", access.reference())),
        FieldType::Message(_) => w.line(format!("{}.write_fields(w)?;", access.receiver())),
        FieldType::List(inner) => {
            w.line(format!("w.put_count({}.len())?;", access.receiver()));
            let var = format!("e{depth}");
            w.block(
                format!("for {var} in {} {{", access.reference()),
                "}",
                |w| emit_write(w, inner, &Access::Element(var.clone()), depth + 1),
            );
        }
    }
}

/// An expression reading one value of `ty`, or `None` for lists that need a loop
/// (and so statements; see [`emit_read`]).
fn read_expr(ty: &FieldType, what: &str) -> Option<String> {
    Some(match ty {
        FieldType::Scalar(s) => format!("r.get_{}({what:?})?", s.name()),
        FieldType::String => format!("::std::borrow::ToOwned::to_owned(r.get_str({what:?})?)"),
        FieldType::Bytes => format!("r.get_bytes({what:?})?.to_vec()"),
        FieldType::List(inner) if **inner == FieldType::Scalar(Scalar::U8) => {
            format!("r.get_bytes({what:?})?.to_vec()")
        }
        FieldType::Array(n) => format!("r.get_array::<{n}>({what:?})?"),
        FieldType::Message(name) => format!("{name}::read_fields(r)?"),
        FieldType::List(_) => return None,
    })
}

/// Emits statements that bind `var` to one decoded value of `ty`.
fn emit_read(
    w: &mut CodeWriter,
    schema: &Schema,
    ty: &FieldType,
    var: &str,
    what: &str,
    depth: usize,
) {
    if let Some(expr) = read_expr(ty, what) {
        w.line(format!("let {var} = {expr};"));
        return;
    }
    let FieldType::List(inner) = ty else {
        return;
    };
    let count = format!("n{depth}");
    // The reader rejects counts whose minimal encoding exceeds the remaining input, so
    // the capacity below is bounded by the payload size.
    w.line(format!(
        "let {count} = r.get_count({}, {what:?})?;",
        schema.min_encoded_size(inner)
    ));
    w.line(format!(
        "let mut {var} = ::std::vec::Vec::with_capacity({count});"
    ));
    let element_what = format!("{what}[]");
    w.block(format!("for _ in 0..{count} {{"), "}", |w| {
        if let Some(expr) = read_expr(inner, &element_what) {
            w.line(format!("{var}.push({expr});"));
        } else {
            let element = format!("v{}", depth + 1);
            emit_read(w, schema, inner, &element, &element_what, depth + 1);
            w.line(format!("{var}.push({element});"));
        }
    });
}

fn emit_message_impl(w: &mut CodeWriter, schema: &Schema, message: &MessageDef) {
    w.block(
        format!("impl ::mycelium_protocol::Message for {} {{", message.name),
        "}",
        |w| {
            w.line(format!("const TYPE_ID: u16 = {};", message.type_id));
            w.line(format!("const NAME: &'static str = {:?};", message.name));
            w.line(format!(
                "const FINGERPRINT: &'static str = {:?};",
                fingerprint(schema, message)
            ));
            w.line("");
            w.line("#[inline]");
            w.block(
                format!(
                    "fn encode_payload(&self, out: &mut ::std::vec::Vec<u8>) -> {RESULT}<(), {ENCODE_ERROR}> {{"
                ),
                "}",
                |w| w.line(format!("self.write_fields(&mut {WRITER}::new(out))")),
            );
            w.line("");
            w.block(
                format!("fn decode_payload(payload: &[u8]) -> {RESULT}<Self, {DECODE_ERROR}> {{"),
                "}",
                |w| {
                    w.line(format!("let mut r = {READER}::new(payload);"));
                    w.line("let value = Self::read_fields(&mut r)?;");
                    w.line("r.finish()?;");
                    w.line(format!("{OK}(value)"));
                },
            );
        },
    );
}

#[cfg(test)]
mod tests;
