//! The OCaml generator: one `.ml` and its `.mli` per schema, for OCaml >= 4.13 with no
//! library beyond the standard one.
//!
//! Each message is a submodule (`TradeTick.t`, `TradeTick.encode`, ...): two messages with a
//! field of the same name would otherwise make record labels ambiguous. Integers up to 32
//! bits are `int` and range-checked on encode; `u64`/`i64` are `Int64.t` (a `u64` carries its
//! bit pattern: values above `Int64.max_int` read as negative). Encoding raises
//! `Invalid_argument "Msg.field: ..."`; decoding returns `Error` and never raises. The
//! private `Wire_` module (`ocaml_gen/runtime.ml`) holds the shared helpers.

mod literal;

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};

use crate::code_writer::CodeWriter;
use crate::topo::dependency_order;

use literal::{ml_comment, ml_str};

/// The helpers every generated `.ml` carries, verbatim.
const RUNTIME: &str = include_str!("ocaml_gen/runtime.ml");

/// Message names the generated code cannot use as module names: it names the standard
/// library as `Stdlib` so that messages called `String` or `List` are harmless.
const RESERVED_MODULES: &[&str] = &["Stdlib"];

/// Reasons `schema` cannot be turned into OCaml even though it is a valid schema (a message
/// called `Stdlib`). Empty when generation will succeed.
pub fn ocaml_name_problems(schema: &Schema) -> Vec<String> {
    let messages = schema
        .messages
        .iter()
        .filter(|m| RESERVED_MODULES.contains(&m.name.as_str()))
        .map(|m| {
            format!(
                "message {0}: the generated OCaml refers to the standard library as '{0}', so no module may take that name; rename the message in the schema",
                m.name
            )
        });
    let services = schema
        .services
        .iter()
        .filter(|s| RESERVED_MODULES.contains(&s.name.as_str()))
        .map(|s| {
            format!(
                "service {0}: the generated OCaml refers to the standard library as '{0}', so no module may take that name; rename the service in the schema",
                s.name
            )
        });
    messages.chain(services).collect()
}

/// One module per service naming its messages, for the typed request/reply calls of a
/// runtime (docs/request-reply.md), and `services`; only when the schema declares services,
/// so other files are unchanged.
fn emit_services(w: &mut CodeWriter, schema: &Schema, interface: bool) {
    if schema.services.is_empty() {
        return;
    }
    for service in &schema.services {
        w.line("");
        let mut doc = format!(
            "Service {}: requests [{}.t], answered with [{}.t].",
            service.name, service.request, service.reply
        );
        if let Some(text) = &service.doc {
            doc.push(' ');
            doc.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        w.line(format!("(** {} *)", ml_comment(&doc)));
        if interface {
            w.line(format!("module {} : sig", service.name));
            w.line("  val name : string");
            w.line(format!("  module Request = {}", service.request));
            w.line(format!("  module Reply = {}", service.reply));
        } else {
            w.line(format!("module {} = struct", service.name));
            w.line(format!("  let name = {}", ml_str(&service.name)));
            w.line(format!("  module Request = {}", service.request));
            w.line(format!("  module Reply = {}", service.reply));
        }
        w.line("end");
    }
    w.line("");
    if interface {
        w.line("(** [(name, request type id, reply type id)] of every service, by name. *)");
        w.line("val services : (string * int * int) list");
    } else {
        w.block("let services = [", "]", |w| {
            for service in &schema.services {
                let id = |name: &str| schema.message_by_name(name).map_or(0, |m| m.type_id);
                w.line(format!(
                    "({}, {}, {});",
                    ml_str(&service.name),
                    id(&service.request),
                    id(&service.reply)
                ));
            }
        });
    }
}

/// Generates the OCaml implementation (`.ml`) for `schema`; see
/// [`generate_ocaml_interface`] for its `.mli`.
///
/// Deterministic: message modules in dependency order, then type-id order. A schema with
/// [`ocaml_name_problems`] yields a file that fails to compile with the problems in the
/// error, so nothing silently generates broken code.
pub fn generate_ocaml(schema: &Schema) -> String {
    let mut w = CodeWriter::new();
    emit_header(&mut w, schema);
    let problems = ocaml_name_problems(schema);
    if !problems.is_empty() {
        w.line(format!(
            "[%%ocaml.error {}]",
            ml_str(&format!("cannot generate OCaml: {}", problems.join("; ")))
        ));
        return w.finish();
    }
    // The .mli hides the helpers; a schema that needs only some of them must still build
    // under warnings-as-errors.
    w.line("[@@@ocaml.warning \"-32\"]");
    w.line("");
    emit_schema_constants(&mut w, schema);
    w.line("");
    for line in RUNTIME.lines() {
        w.line(line);
    }
    for message in dependency_order(schema) {
        w.line("");
        emit_module(&mut w, schema, message);
    }
    w.line("");
    emit_any(&mut w, schema);
    emit_services(&mut w, schema, false);
    w.finish()
}

/// Generates the OCaml interface (`.mli`) matching [`generate_ocaml`].
pub fn generate_ocaml_interface(schema: &Schema) -> String {
    let mut w = CodeWriter::new();
    emit_header(&mut w, schema);
    if !ocaml_name_problems(schema).is_empty() {
        // The .ml carries the error; an empty interface keeps the report to one place.
        return w.finish();
    }
    for line in [
        "(** Name of the schema this module was generated from (not part of the digest). *)",
        "val schema_name : string",
        "",
        "(** Version number declared by the schema (not part of the digest). *)",
        "val schema_version : int",
        "",
        "(** Lowercase hex SHA-256 of [schema_canonical]; peers built from other schemas differ. *)",
        "val schema_digest : string",
        "",
        "(** The canonical description of the schema that [schema_digest] hashes. *)",
        "val schema_canonical : string",
    ] {
        w.line(line);
    }
    for message in dependency_order(schema) {
        w.line("");
        emit_signature(&mut w, message);
    }
    w.line("");
    w.line("(** Any message of this schema. *)");
    emit_any_type(&mut w, schema);
    for line in [
        "",
        "(** The type id of the message. *)",
        "val type_id_of_any : any -> int",
        "",
        "(** The payload (no frame header). Raises [Invalid_argument] as the message's [encode]. *)",
        "val encode_any : any -> string",
        "",
        "(** The complete frame: u16 type id, u32 payload length, payload (little-endian).",
        "    Raises [Invalid_argument] as [encode_any], or if the payload exceeds 16 MiB. *)",
        "val encode_frame : any -> string",
        "",
        "(** Decodes the payload of a message of the given type id (as delivered by the bus).",
        "    [Error] for an unknown type id or an invalid payload; never raises. *)",
        "val decode_payload : int -> string -> (any, string) result",
        "",
        "(** Decodes one complete frame (header and payload, nothing after it); never raises. *)",
        "val decode_frame : string -> (any, string) result",
        "",
        "(** The message in the JSON mapping of docs/wire-format.md. *)",
        "val json_of_any : any -> string",
        "",
        "(** [(type_id, name, fingerprint)] of every message, in type-id order. *)",
        "val messages : (int * string * string) list",
    ] {
        w.line(line);
    }
    emit_services(&mut w, schema, true);
    w.finish()
}

fn emit_header(w: &mut CodeWriter, schema: &Schema) {
    w.line(format!(
        "(* @generated by mycelium-codegen {} from schema {} version {}.",
        env!("CARGO_PKG_VERSION"),
        ml_comment(&schema.name),
        schema.version
    ));
    w.line("   Do not edit: change the schema and rerun `mycelium codegen --lang ocaml`.");
    w.line("   Needs OCaml >= 4.13 and nothing beyond the standard library. *)");
    w.line("");
}

fn emit_schema_constants(w: &mut CodeWriter, schema: &Schema) {
    w.line(format!("let schema_name = {}", ml_str(&schema.name)));
    w.line(format!("let schema_version = {}", schema.version));
    w.line(format!("let schema_digest = {}", ml_str(&schema.digest())));
    w.line(format!(
        "let schema_canonical = {}",
        ml_str(&schema.canonical_description())
    ));
}

fn fingerprint(schema: &Schema, message: &MessageDef) -> String {
    // The message comes from this schema, so the lookup cannot miss; an empty string would
    // only ever show up as a fingerprint mismatch, never as a crash.
    schema.fingerprint(&message.name).unwrap_or_default()
}

fn ml_type(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(Scalar::U64 | Scalar::I64) => "int64".to_owned(),
        FieldType::Scalar(Scalar::F32 | Scalar::F64) => "float".to_owned(),
        FieldType::Scalar(Scalar::Bool) => "bool".to_owned(),
        FieldType::Scalar(_) => "int".to_owned(),
        FieldType::String | FieldType::Bytes | FieldType::Array(_) => "string".to_owned(),
        FieldType::List(inner) => format!("{} list", ml_type(inner)),
        FieldType::Message(name) => format!("{name}.t"),
    }
}

fn ml_default(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(Scalar::U64 | Scalar::I64) => "0L".to_owned(),
        FieldType::Scalar(Scalar::F32 | Scalar::F64) => "0.0".to_owned(),
        FieldType::Scalar(Scalar::Bool) => "false".to_owned(),
        FieldType::Scalar(_) => "0".to_owned(),
        FieldType::String | FieldType::Bytes => "\"\"".to_owned(),
        FieldType::Array(n) => format!("Stdlib.String.make {n} '\\000'"),
        FieldType::List(_) => "[]".to_owned(),
        FieldType::Message(name) => format!("{name}.default"),
    }
}

/// What the field's type means beyond its OCaml type (ranges, encodings).
fn ml_type_note(ty: &FieldType) -> String {
    let range = |lo: &str, hi: &str| format!("{ty}: {lo} .. {hi}");
    match ty {
        FieldType::Scalar(Scalar::U8) => range("0", "255"),
        FieldType::Scalar(Scalar::U16) => range("0", "65535"),
        FieldType::Scalar(Scalar::U32) => range("0", "4294967295"),
        FieldType::Scalar(Scalar::I8) => range("-128", "127"),
        FieldType::Scalar(Scalar::I16) => range("-32768", "32767"),
        FieldType::Scalar(Scalar::I32) => range("-2147483648", "2147483647"),
        FieldType::Scalar(Scalar::U64) => format!("{ty}, as its bit pattern"),
        FieldType::String => format!("{ty}: UTF-8"),
        FieldType::Array(n) => format!("{ty}: exactly {n} bytes"),
        _ => ty.to_string(),
    }
}

/// A function writing one value: `Stdlib.Buffer.t -> <type> -> unit`.
fn writer(ty: &FieldType, what: &str) -> String {
    let what_lit = ml_str(what);
    match ty {
        FieldType::Scalar(s) => format!("Wire_.put_{} {what_lit}", s.name()),
        FieldType::String => format!("Wire_.put_string {what_lit}"),
        FieldType::Bytes => format!("Wire_.put_bytes {what_lit}"),
        FieldType::Array(n) => format!("Wire_.put_array {what_lit} {n}"),
        FieldType::List(inner) if **inner == FieldType::Scalar(Scalar::U8) => {
            format!("Wire_.put_u8_list {what_lit}")
        }
        FieldType::List(inner) => format!(
            "Wire_.put_list {what_lit} ({})",
            writer(inner, &format!("{what}[]"))
        ),
        FieldType::Message(name) => format!("{name}.write"),
    }
}

/// A function reading one value: `string -> int ref -> <type>`.
fn reader(schema: &Schema, ty: &FieldType, what: &str) -> String {
    let what_lit = ml_str(what);
    match ty {
        FieldType::Scalar(s) => format!("Wire_.get_{} {what_lit}", s.name()),
        FieldType::String => format!("Wire_.get_string {what_lit}"),
        FieldType::Bytes => format!("Wire_.get_bytes {what_lit}"),
        FieldType::Array(n) => format!("Wire_.get_array {what_lit} {n}"),
        // Read as a byte string, as the Rust decoder does.
        FieldType::List(inner) if **inner == FieldType::Scalar(Scalar::U8) => {
            format!("Wire_.get_u8_list {what_lit}")
        }
        FieldType::List(inner) => format!(
            "Wire_.get_list {what_lit} {} ({})",
            schema.min_encoded_size(inner),
            reader(schema, inner, &format!("{what}[]"))
        ),
        FieldType::Message(name) => format!("{name}.read"),
    }
}

/// A function writing one value as JSON: `Stdlib.Buffer.t -> <type> -> unit`.
fn json_writer(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(Scalar::U64) => "Wire_.json_u64".to_owned(),
        FieldType::Scalar(Scalar::I64) => "Wire_.json_i64".to_owned(),
        FieldType::Scalar(Scalar::F32) => "Wire_.json_f32".to_owned(),
        FieldType::Scalar(Scalar::F64) => "Wire_.json_f64".to_owned(),
        FieldType::Scalar(Scalar::Bool) => "Wire_.json_bool".to_owned(),
        FieldType::Scalar(_) => "Wire_.json_int".to_owned(),
        FieldType::String => "Wire_.json_string".to_owned(),
        FieldType::Bytes | FieldType::Array(_) => "Wire_.json_hex".to_owned(),
        FieldType::List(inner) => format!("Wire_.json_list ({})", json_writer(inner)),
        FieldType::Message(name) => format!("{name}.json"),
    }
}

fn emit_record_type(w: &mut CodeWriter, message: &MessageDef, doc_comments: bool) {
    if message.fields.is_empty() {
        w.line("type t = unit");
        return;
    }
    w.block("type t = {", "}", |w| {
        for field in &message.fields {
            let note = ml_comment(&ml_type_note(&field.ty));
            let comment = if doc_comments {
                format!("(** {note} *)")
            } else {
                format!("(* {note} *)")
            };
            w.line(format!(
                "{} : {};  {comment}",
                field.name,
                ml_type(&field.ty)
            ));
        }
    });
}

fn emit_module(w: &mut CodeWriter, schema: &Schema, message: &MessageDef) {
    let name = &message.name;
    w.block(format!("module {name} = struct"), "end", |w| {
        emit_record_type(w, message, false);
        w.line("");
        w.line(format!("let type_id = {}", message.type_id));
        w.line(format!("let name = {}", ml_str(name)));
        w.line(format!(
            "let fingerprint = {}",
            ml_str(&fingerprint(schema, message))
        ));
        if message.fields.is_empty() {
            for line in [
                "let default = ()",
                "let write (_ : Stdlib.Buffer.t) (() : t) : unit = ()",
                "let read (_ : string) (_ : int ref) : t = ()",
                "let json (b : Stdlib.Buffer.t) (() : t) : unit = Wire_.json_raw b \"{}\"",
            ] {
                w.line(line);
            }
        } else {
            emit_codec(w, schema, message);
        }
        w.line("let encode (v : t) : string = Wire_.encode write v");
        w.line("let decode (s : string) : (t, string) result = Wire_.decode read s");
        w.line("let to_json (v : t) : string = Wire_.to_json json v");
    });
}

fn emit_codec(w: &mut CodeWriter, schema: &Schema, message: &MessageDef) {
    let name = &message.name;
    let fields = &message.fields;
    let defaults: Vec<String> = fields
        .iter()
        .map(|f| format!("{} = {}", f.name, ml_default(&f.ty)))
        .collect();
    w.line(format!("let default = {{ {} }}", defaults.join("; ")));
    w.line("");
    w.block(
        "let write (b : Stdlib.Buffer.t) (v : t) : unit =",
        "",
        |w| {
            for (i, field) in fields.iter().enumerate() {
                let what = format!("{name}.{}", field.name);
                let end = if i + 1 == fields.len() { "" } else { ";" };
                w.line(format!(
                    "{} b v.{}{end}",
                    writer(&field.ty, &what),
                    field.name
                ));
            }
        },
    );
    w.block("let read (s : string) (p : int ref) : t =", "", |w| {
        // `let ... in` fixes the evaluation order, which is the wire order.
        for field in fields {
            let what = format!("{name}.{}", field.name);
            w.line(format!(
                "let f_{} = {} s p in",
                field.name,
                reader(schema, &field.ty, &what)
            ));
        }
        let inits: Vec<String> = fields
            .iter()
            .map(|f| format!("{0} = f_{0}", f.name))
            .collect();
        w.line(format!("{{ {} }}", inits.join("; ")));
    });
    w.block("let json (b : Stdlib.Buffer.t) (v : t) : unit =", "", |w| {
        for (i, field) in fields.iter().enumerate() {
            let open = if i == 0 { "{" } else { ", " };
            w.line(format!(
                "Wire_.json_raw b {};",
                ml_str(&format!("{open}\"{}\": ", field.name))
            ));
            w.line(format!("{} b v.{};", json_writer(&field.ty), field.name));
        }
        w.line("Wire_.json_raw b \"}\"");
    });
}

fn emit_signature(w: &mut CodeWriter, message: &MessageDef) {
    let name = &message.name;
    w.block(format!("module {name} : sig"), "end", |w| {
        let mut doc = String::new();
        if let Some(text) = message.doc.as_deref().filter(|d| !d.trim().is_empty()) {
            doc.push_str(text.trim());
            doc.push_str("\n\n");
        }
        doc.push_str(&format!("Wire message [{name}], type id {}.", message.type_id));
        let doc = ml_comment(&doc);
        let mut lines = doc.lines();
        if let Some(first) = lines.next() {
            w.line(format!("(** {first}"));
            for line in lines {
                w.line(format!("    {line}").trim_end());
            }
            w.line("*)");
        }
        emit_record_type(w, message, true);
        for line in [
            "",
            "val type_id : int",
            "val name : string",
            "",
            "(** Hex SHA-256 of this message's canonical description. *)",
            "val fingerprint : string",
            "",
            "(** Zeros, empty strings and lists, [false]. *)",
            "val default : t",
            "",
            "(** The payload (no frame header). Raises [Invalid_argument \"Msg.field: ...\"] when a",
            "    value does not fit its schema type (integer range, UTF-8, [bytes[N]] size). *)",
            "val encode : t -> string",
            "",
            "(** Decodes a whole payload; [Error] names what was being read and the byte offset",
            "    (truncation, trailing bytes, invalid UTF-8 or bool, impossible counts). Never raises. *)",
            "val decode : string -> (t, string) result",
            "",
            "(** The value in the JSON mapping of docs/wire-format.md. *)",
            "val to_json : t -> string",
        ] {
            w.line(line);
        }
    });
}

fn emit_any_type(w: &mut CodeWriter, schema: &Schema) {
    if schema.messages.is_empty() {
        w.line("type any = |");
        return;
    }
    w.line("type any =");
    for message in &schema.messages {
        w.line(format!("  | {0} of {0}.t", message.name));
    }
}

fn emit_any(w: &mut CodeWriter, schema: &Schema) {
    emit_any_type(w, schema);
    // From here on a message called `Ok` or `Error` would shadow the result constructors,
    // hence `Stdlib.Ok` and `Stdlib.Error`.
    let each = |w: &mut CodeWriter, header: &str, arm: &dyn Fn(&MessageDef) -> String| {
        w.line("");
        w.line(header);
        if schema.messages.is_empty() {
            w.line("  | _ -> .");
        }
        for message in &schema.messages {
            w.line(format!("  | {} v -> {}", message.name, arm(message)));
        }
    };
    w.line("");
    w.line("let type_id_of_any : any -> int = function");
    if schema.messages.is_empty() {
        w.line("  | _ -> .");
    }
    for message in &schema.messages {
        w.line(format!("  | {} _ -> {}", message.name, message.type_id));
    }
    each(w, "let encode_any : any -> string = function", &|m| {
        format!("{}.encode v", m.name)
    });
    each(w, "let json_of_any : any -> string = function", &|m| {
        format!("{}.to_json v", m.name)
    });
    w.line("");
    w.line("let encode_frame (m : any) : string = Wire_.frame (type_id_of_any m) (encode_any m)");
    w.line("");
    w.line("let decode_payload (type_id : int) (payload : string) : (any, string) result =");
    w.line("  match type_id with");
    for message in &schema.messages {
        w.line(format!(
            "  | {} -> Stdlib.Result.map (fun v -> {1} v) ({1}.decode payload)",
            message.type_id, message.name
        ));
    }
    w.line("  | other -> Stdlib.Error (Stdlib.Printf.sprintf \"unknown type id %d\" other)");
    w.line("");
    w.line("let decode_frame (s : string) : (any, string) result =");
    w.line("  match Wire_.split_frame s with");
    w.line("  | Stdlib.Ok (type_id, payload) -> decode_payload type_id payload");
    w.line("  | Stdlib.Error e -> Stdlib.Error e");
    w.line("");
    w.block("let messages = [", "]", |w| {
        for message in &schema.messages {
            w.line(format!(
                "({}, {}, {});",
                message.type_id,
                ml_str(&message.name),
                ml_str(&fingerprint(schema, message))
            ));
        }
    });
}

#[cfg(test)]
mod tests;
