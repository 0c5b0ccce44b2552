//! The Python generator: one self-contained module per schema (standard library only, plus
//! `mycelium_native.errors` when it is installed), Python >= 3.9, accepted by
//! `mypy --strict`.
//!
//! Every message becomes a slotted dataclass with `to_bytes`/`from_bytes`. Speed comes from
//! doing as little per field as CPython allows: runs of fixed-size fields (including the
//! length prefix of the string that follows them, and nested messages of fixed size) are
//! packed and unpacked by one precompiled `struct.Struct`, and the fast paths carry no
//! per-field checks. Bad input makes `struct`, `str` or slicing raise (or leaves the final
//! offset wrong); only then does a generic, schema-driven walker (in `python_gen/runtime.py`)
//! re-read the input to name the field and offset, in the same words as the Rust decoder.

mod decode;
mod encode;
mod literal;

use std::collections::BTreeMap;

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};

use crate::code_writer::CodeWriter;
use crate::topo::dependency_order;

use literal::{py_docstring, py_str};

/// The helpers every generated module carries, verbatim.
const RUNTIME: &str = include_str!("python_gen/runtime.py");

/// Names the generated module defines at top level (or relies on being builtins) that a
/// message class must not shadow. Lower-case and underscore names cannot clash: message
/// names are `[A-Z][A-Za-z0-9]*`.
const MODULE_NAMES: &[&str] = &[
    "DecodeError",
    "EncodeError",
    "AnyMessage",
    "MESSAGES",
    "FINGERPRINTS",
];

/// Capitalised Python builtins (constants and exception classes); a class with one of these
/// names would shadow the builtin for the whole module.
const PYTHON_BUILTINS: &[&str] = &[
    "True",
    "False",
    "None",
    "Ellipsis",
    "NotImplemented",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BaseException",
    "BaseExceptionGroup",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "EncodingWarning",
    "EnvironmentError",
    "Exception",
    "ExceptionGroup",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
];

/// Names a field cannot take: the methods of every generated class (the field would
/// replace them) and `classmethod`, which the class body uses after the fields.
const METHOD_NAMES: &[&str] = &["to_bytes", "from_bytes", "classmethod"];

/// Reasons `schema` cannot be turned into Python even though it is a valid schema (e.g. a
/// message called `ValueError`, or a field called `to_bytes`). Empty when generation will
/// succeed.
pub fn python_name_problems(schema: &Schema) -> Vec<String> {
    let mut problems = Vec::new();
    for message in &schema.messages {
        let name = message.name.as_str();
        if MODULE_NAMES.contains(&name) {
            problems.push(format!(
                "message {name}: the generated Python module defines '{name}' itself; rename the message in the schema"
            ));
        } else if PYTHON_BUILTINS.contains(&name) {
            problems.push(format!(
                "message {name}: '{name}' is a Python builtin and a class of that name would shadow it; rename the message in the schema"
            ));
        }
        for field in &message.fields {
            if METHOD_NAMES.contains(&field.name.as_str()) {
                problems.push(format!(
                    "message {name}: a field called '{}' would clash with a name the generated class uses; rename the field in the schema",
                    field.name
                ));
            }
        }
    }
    for service in &schema.services {
        let name = service.name.as_str();
        if MODULE_NAMES.contains(&name) || name == "SERVICES" {
            problems.push(format!(
                "service {name}: the generated Python module defines '{name}' itself; rename the service in the schema"
            ));
        } else if PYTHON_BUILTINS.contains(&name) {
            problems.push(format!(
                "service {name}: '{name}' is a Python builtin and a class of that name would shadow it; rename the service in the schema"
            ));
        }
    }
    if !schema.services.is_empty() && schema.message_by_name("SERVICES").is_some() {
        problems.push(
            "message SERVICES: the generated Python module defines 'SERVICES' itself when the schema declares services; rename the message in the schema".to_owned(),
        );
    }
    problems
}

/// Generates the Python module for `schema`.
///
/// The output is deterministic (classes in dependency order, then type-id order; fields in
/// schema order). A schema with [`python_name_problems`] yields a module that raises
/// `ImportError` naming the problems, so nothing silently generates broken code.
pub fn generate_python(schema: &Schema) -> String {
    let mut w = CodeWriter::new();
    emit_header(&mut w, schema);
    let problems = python_name_problems(schema);
    if !problems.is_empty() {
        w.line(format!(
            "raise ImportError({})",
            py_str(&format!(
                "this module cannot be generated from schema {}: {}",
                schema.name,
                problems.join("; ")
            ))
        ));
        return w.finish();
    }
    emit_imports(&mut w);
    for line in RUNTIME.lines() {
        w.line(line);
    }
    w.line("");
    w.line("");
    emit_schema_constants(&mut w, schema);

    let mut structs = Structs::default();
    let mut classes = CodeWriter::new();
    for message in dependency_order(schema) {
        classes.line("");
        classes.line("");
        emit_class(&mut classes, schema, message, &mut structs);
    }
    let nested = nested_messages(schema);
    for message in schema
        .messages
        .iter()
        .filter(|m| nested.contains(&m.name.as_str()))
    {
        classes.line("");
        classes.line("");
        decode::emit_reader(&mut classes, schema, message, &mut structs);
    }

    w.line("");
    w.line("# Precompiled layouts of the fixed-size runs of fields, shared between messages.");
    for (format, name) in structs.iter() {
        w.line(format!("{name} = _struct.Struct({})", py_str(format)));
    }
    w.line(classes.finish().trim_end());
    emit_tables(&mut w, schema, &nested);
    emit_frame_functions(&mut w);
    // Only with services, so the module of a schema without any is unchanged.
    if !schema.services.is_empty() {
        emit_services(&mut w, schema);
    }
    emit_all(&mut w, schema);
    w.finish()
}

/// One descriptor class per service (`RiskCheck.NAME`, `.Request`, `.Reply`), for the typed
/// request/reply calls of a runtime (docs/request-reply.md), and `SERVICES` by name.
fn emit_services(w: &mut CodeWriter, schema: &Schema) {
    for service in &schema.services {
        w.line("");
        w.line("");
        w.line(format!("class {}:", service.name));
        let mut doc = format!(
            "Service {}: requests {}, answered with {}.",
            service.name, service.request, service.reply
        );
        if let Some(text) = &service.doc {
            doc.push_str("\n\n");
            doc.push_str(text.trim_end());
        }
        w.line(format!("    {}", py_docstring(&doc)));
        w.line("");
        w.line(format!("    NAME: _t.Final = {}", py_str(&service.name)));
        w.line(format!("    Request = {}", service.request));
        w.line(format!("    Reply = {}", service.reply));
    }
    w.line("");
    w.line("");
    w.block("SERVICES: _t.Dict[str, _t.Any] = {", "}", |w| {
        for service in &schema.services {
            w.line(format!("{}: {},", py_str(&service.name), service.name));
        }
    });
    w.line("\"\"\"Every service of the schema by name.\"\"\"");
}

fn emit_header(w: &mut CodeWriter, schema: &Schema) {
    w.line(format!(
        "# @generated by mycelium-codegen {} from schema {} version {}.",
        env!("CARGO_PKG_VERSION"),
        py_str(&schema.name),
        schema.version
    ));
    w.line("# Do not edit: change the schema and rerun `mycelium codegen --lang python`.");
    emit_docstring(
        w,
        &format!(
            "Message types of the Mycelium schema ``{}`` (version {}).\n\n\
         Each message class is a dataclass: ``to_bytes()`` encodes the frame payload and\n\
         ``from_bytes()`` decodes one; ``encode_frame``/``decode_frame`` add and strip the\n\
         6-byte frame header. Encoding raises ``EncodeError`` naming the field whose value\n\
         does not fit its schema type; decoding raises ``DecodeError`` naming what was being\n\
         read and the byte offset in the payload. Standard library only; Python >= 3.9.",
            schema.name, schema.version
        ),
    );
    w.line("");
}

/// A docstring at the current indentation, one source line per text line.
fn emit_docstring(w: &mut CodeWriter, text: &str) {
    for line in py_docstring(text.trim_end()).lines() {
        w.line(line.trim_end());
    }
}

fn emit_imports(w: &mut CodeWriter) {
    for line in [
        "from __future__ import annotations",
        "",
        "import builtins as _builtins",
        "import struct as _struct",
        "import sys as _sys",
        "import typing as _t",
        "from dataclasses import dataclass as _dataclass",
        "from dataclasses import field as _field",
        "",
        "if _t.TYPE_CHECKING:",
        "    import typing_extensions as _te",
        "",
        "# The Python adapter (mycelium_native) defines the error classes so that its callers",
        "# catch one type whichever module raised; standalone, this module defines its own.",
        "if _t.TYPE_CHECKING:",
        "",
        "    class DecodeError(ValueError):",
        "        \"\"\"A payload or frame is not a valid encoding of the message.\"\"\"",
        "",
        "    class EncodeError(ValueError):",
        "        \"\"\"A message field holds a value that its schema type cannot carry.\"\"\"",
        "",
        "else:",
        "    try:",
        "        from mycelium_native.errors import DecodeError, EncodeError",
        "    except ImportError:",
        "",
        "        class DecodeError(ValueError):",
        "            \"\"\"A payload or frame is not a valid encoding of the message.\"\"\"",
        "",
        "        class EncodeError(ValueError):",
        "            \"\"\"A message field holds a value that its schema type cannot carry.\"\"\"",
        "",
        "",
        "# Slotted dataclasses are smaller and faster; `slots=` needs Python 3.10.",
        "_DATACLASS_OPTIONS: _t.Dict[str, bool] = (",
        "    {\"slots\": True} if _sys.version_info >= (3, 10) else {}",
        ")",
        "",
    ] {
        w.line(line);
    }
}

fn emit_schema_constants(w: &mut CodeWriter, schema: &Schema) {
    w.line(format!("SCHEMA_NAME: _t.Final = {}", py_str(&schema.name)));
    w.line(
        "\"\"\"Name of the schema this module was generated from (not part of the digest).\"\"\"",
    );
    w.line(format!("SCHEMA_VERSION: _t.Final = {}", schema.version));
    w.line("\"\"\"Version number declared by the schema (not part of the digest).\"\"\"");
    w.line(format!(
        "SCHEMA_DIGEST: _t.Final = {}",
        py_str(&schema.digest())
    ));
    w.line("\"\"\"Lowercase hex SHA-256 of SCHEMA_CANONICAL; peers built from other schemas differ.\"\"\"");
    w.line("SCHEMA_CANONICAL: _t.Final = (");
    let canonical = schema.canonical_description();
    for line in canonical.split_inclusive('\n') {
        w.line(format!("    {}", py_str(line)));
    }
    w.line(")");
    w.line("\"\"\"The canonical description of the schema that SCHEMA_DIGEST hashes.\"\"\"");
}

/// `struct` formats in first-use order, each with the module-level name it is bound to.
#[derive(Default)]
pub(crate) struct Structs {
    by_format: BTreeMap<String, String>,
    order: Vec<String>,
}

impl Structs {
    /// The name of the precompiled `struct.Struct` for `format` (e.g. `"<dI"`).
    pub(crate) fn name(&mut self, format: &str) -> String {
        if format == "<I" {
            return "_U32".to_owned();
        }
        if let Some(name) = self.by_format.get(format) {
            return name.clone();
        }
        let name = format!("_S{}", self.order.len());
        self.by_format.insert(format.to_owned(), name.clone());
        self.order.push(format.to_owned());
        name
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.order.iter().map(|f| (f, &self.by_format[f]))
    }
}

/// Builtin types the annotations use. Inside a class body a field of the same name (a
/// field called `bytes`) would be what the later annotations refer to.
const ANNOTATION_BUILTINS: &[&str] = &["int", "float", "bool", "str", "bytes", "list"];

/// The Python annotation of a field type. Builtins named in `shadowed` are spelled
/// `_builtins.<name>`.
pub(crate) fn py_type(ty: &FieldType, shadowed: &[&str]) -> String {
    let builtin = |name: &str| {
        if shadowed.contains(&name) {
            format!("_builtins.{name}")
        } else {
            name.to_owned()
        }
    };
    match ty {
        FieldType::Scalar(Scalar::F32 | Scalar::F64) => builtin("float"),
        FieldType::Scalar(Scalar::Bool) => builtin("bool"),
        FieldType::Scalar(_) => builtin("int"),
        FieldType::String => builtin("str"),
        FieldType::Bytes | FieldType::Array(_) => builtin("bytes"),
        FieldType::List(inner) => format!("{}[{}]", builtin("list"), py_type(inner, shadowed)),
        FieldType::Message(name) => name.clone(),
    }
}

fn py_default(ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(Scalar::F32 | Scalar::F64) => "0.0".to_owned(),
        FieldType::Scalar(Scalar::Bool) => "False".to_owned(),
        FieldType::Scalar(_) => "0".to_owned(),
        FieldType::String => "\"\"".to_owned(),
        FieldType::Bytes => "b\"\"".to_owned(),
        FieldType::Array(n) => format!("b\"\\x00\" * {n}"),
        FieldType::List(_) => "_field(default_factory=_new_list)".to_owned(),
        FieldType::Message(name) => format!("_field(default_factory={name})"),
    }
}

/// The walker's description of a field type (see `_Kind` in the runtime).
pub(crate) fn py_kind(schema: &Schema, ty: &FieldType) -> String {
    match ty {
        FieldType::Scalar(s) => format!("_K_{}", s.name().to_ascii_uppercase()),
        FieldType::String => "_K_STR".to_owned(),
        FieldType::Bytes => "_K_BYTES".to_owned(),
        FieldType::Array(n) => format!("(\"array\", {n})"),
        FieldType::List(inner) => format!(
            "(\"list\", {}, {})",
            py_kind(schema, inner),
            schema.min_encoded_size(inner)
        ),
        FieldType::Message(name) => format!("(\"msg\", {})", py_str(name)),
    }
}

fn fingerprint(schema: &Schema, message: &MessageDef) -> String {
    // The message comes from this schema, so the lookup cannot miss; an empty string would
    // only ever show up as a fingerprint mismatch, never as a crash.
    schema.fingerprint(&message.name).unwrap_or_default()
}

fn emit_class(w: &mut CodeWriter, schema: &Schema, message: &MessageDef, structs: &mut Structs) {
    let name = &message.name;
    w.line("@_dataclass(**_DATACLASS_OPTIONS)");
    w.nest(format!("class {name}:"), |w| {
        let mut doc = String::new();
        if let Some(text) = message.doc.as_deref().filter(|d| !d.trim().is_empty()) {
            doc.push_str(text.trim());
            doc.push_str("\n\n");
        }
        doc.push_str(&format!(
            "Wire message ``{name}``, type id {}.",
            message.type_id
        ));
        emit_docstring(w, &doc);
        w.line("");
        let shadowed: Vec<&str> = message
            .fields
            .iter()
            .map(|f| f.name.as_str())
            .filter(|name| ANNOTATION_BUILTINS.contains(name))
            .collect();
        let int = py_type(&FieldType::Scalar(Scalar::U8), &shadowed);
        let str = py_type(&FieldType::String, &shadowed);
        w.line(format!("TYPE_ID: _t.ClassVar[{int}] = {}", message.type_id));
        w.line(format!("NAME: _t.ClassVar[{str}] = {}", py_str(name)));
        w.line(format!(
            "FINGERPRINT: _t.ClassVar[{str}] = {}",
            py_str(&fingerprint(schema, message))
        ));
        if let Some(wire) = wire_layout(message) {
            let tokens: Vec<String> = wire.iter().map(|t| format!("{}, ", py_str(t))).collect();
            w.line(format!(
                "_WIRE: _t.ClassVar[_t.Tuple[{str}, ...]] = ({})",
                tokens.concat().trim_end()
            ));
        }
        w.line("");
        for field in &message.fields {
            w.line(format!(
                "{}: {} = {}  # {}",
                field.name,
                py_type(&field.ty, &shadowed),
                py_default(&field.ty),
                field.ty
            ));
        }
        if !message.fields.is_empty() {
            w.line("");
        }
        let bytes = py_type(&FieldType::Bytes, &shadowed);
        encode::emit_to_bytes(w, schema, message, structs, &bytes);
        w.line("");
        decode::emit_from_bytes(w, schema, message, structs);
    });
}

/// Messages that appear inside other messages (directly or in lists); they get a
/// module-level reader function.
fn nested_messages(schema: &Schema) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for message in &schema.messages {
        for field in &message.fields {
            if let Some(name) = field.ty.message_name() {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
    }
    out
}

fn emit_tables(w: &mut CodeWriter, schema: &Schema, nested: &[&str]) {
    w.line("");
    w.line("");
    w.line("AnyMessage = _t.Union[");
    if schema.messages.is_empty() {
        // `Union[()]` is an error; a schema without messages decodes nothing.
        w.line("    _t.NoReturn,");
    }
    for message in &schema.messages {
        w.line(format!("    {},", message.name));
    }
    w.line("]");
    w.line("\"\"\"Any message class of this schema.\"\"\"");
    w.line("");
    w.block(
        "MESSAGES: _t.Dict[int, _t.Type[AnyMessage]] = {",
        "}",
        |w| {
            for message in &schema.messages {
                w.line(format!("{}: {},", message.type_id, message.name));
            }
        },
    );
    w.line("\"\"\"Every message class by type id.\"\"\"");
    w.line("");
    w.block("FINGERPRINTS: _t.Dict[str, str] = {", "}", |w| {
        for message in &schema.messages {
            w.line(format!(
                "{}: {},",
                py_str(&message.name),
                py_str(&fingerprint(schema, message))
            ));
        }
    });
    w.line("\"\"\"The fingerprint of every message by name.\"\"\"");
    w.line("");
    w.line("_CLASSES: _t.Dict[str, _t.Any] = {cls.NAME: cls for cls in MESSAGES.values()}");
    w.block(
        "_READERS: _t.Dict[str, _t.Callable[[bytes, int], _t.Tuple[_t.Any, int]]] = {",
        "}",
        |w| {
            for name in nested {
                w.line(format!("{}: _read_{name},", py_str(name)));
            }
        },
    );
    w.block(
        "_LAYOUTS: _t.Dict[str, _t.Tuple[_t.Tuple[str, _Kind], ...]] = {",
        "}",
        |w| {
            for message in &schema.messages {
                if message.fields.is_empty() {
                    w.line(format!("{}: (),", py_str(&message.name)));
                    continue;
                }
                w.block(format!("{}: (", py_str(&message.name)), "),", |w| {
                    for field in &message.fields {
                        w.line(format!(
                            "({}, {}),",
                            py_str(&field.name),
                            py_kind(schema, &field.ty)
                        ));
                    }
                });
            }
        },
    );
}

fn emit_frame_functions(w: &mut CodeWriter) {
    const FUNCTIONS: &str = r#"

def encode_frame(message: AnyMessage) -> bytes:
    """The complete frame of `message`: type id, payload length, payload.

    Raises EncodeError naming the field that cannot be encoded, or if the payload exceeds
    MAX_PAYLOAD.
    """
    payload = message.to_bytes()
    if len(payload) > MAX_PAYLOAD:
        raise EncodeError(
            f"encoded payload of {len(payload)} bytes exceeds the maximum of {MAX_PAYLOAD} bytes"
        )
    return _HEADER.pack(message.TYPE_ID, len(payload)) + payload


def decode_payload(type_id: int, payload: _Buffer) -> AnyMessage:
    """Decodes the payload of a message of type `type_id` (as delivered with its type id).

    Raises DecodeError for an unknown type id or an invalid payload; offsets in the message
    count from the first payload byte.
    """
    cls = MESSAGES.get(type_id)
    if cls is None:
        raise DecodeError(f"unknown type id {type_id}")
    return cls.from_bytes(payload)


def decode_frame(data: _Buffer) -> AnyMessage:
    """Decodes one complete frame (header and payload, nothing after it).

    Raises DecodeError for a short or over-long frame, a payload length above MAX_PAYLOAD,
    an unknown type id or an invalid payload (offsets then count from the first payload
    byte).
    """
    size = len(data)
    if size < FRAME_HEADER_LEN:
        raise DecodeError(
            f"truncated at byte {size}: needed {FRAME_HEADER_LEN - size} more byte(s) "
            "for frame header"
        )
    type_id, length = _HEADER.unpack_from(data, 0)
    if length > MAX_PAYLOAD:
        raise DecodeError(f"payload of {length} bytes exceeds the maximum of {MAX_PAYLOAD} bytes")
    end = FRAME_HEADER_LEN + length
    if size < end:
        raise DecodeError(
            f"truncated at byte {size}: needed {end - size} more byte(s) for frame payload"
        )
    if size > end:
        raise DecodeError(f"{size - end} trailing byte(s) after the last field at byte {end}")
    return decode_payload(type_id, data[FRAME_HEADER_LEN:])"#;
    for line in FUNCTIONS.lines() {
        w.line(line);
    }
}

fn emit_all(w: &mut CodeWriter, schema: &Schema) {
    w.line("");
    w.line("");
    w.block("__all__ = [", "]", |w| {
        for name in [
            "SCHEMA_NAME",
            "SCHEMA_VERSION",
            "SCHEMA_DIGEST",
            "SCHEMA_CANONICAL",
            "FRAME_HEADER_LEN",
            "MAX_PAYLOAD",
            "MESSAGES",
            "FINGERPRINTS",
            "AnyMessage",
            "DecodeError",
            "EncodeError",
            "encode_frame",
            "decode_frame",
            "decode_payload",
        ] {
            w.line(format!("{},", py_str(name)));
        }
        for message in &schema.messages {
            w.line(format!("{},", py_str(&message.name)));
        }
        if !schema.services.is_empty() {
            w.line(format!("{},", py_str("SERVICES")));
        }
        for service in &schema.services {
            w.line(format!("{},", py_str(&service.name)));
        }
    });
}

#[cfg(test)]
mod tests;

/// The `_WIRE` tokens of a message whose fields are all flat (numbers, bools, strings, byte
/// strings, fixed arrays), one per field in wire order, for the Python adapter's native decoder
/// (`python/src/decoder.rs` reads them); `None` for a message with a nested message or a list,
/// which keeps its generated `from_bytes`. An empty message has nothing to gain.
pub(crate) fn wire_layout(message: &MessageDef) -> Option<Vec<String>> {
    if message.fields.is_empty() {
        return None;
    }
    message
        .fields
        .iter()
        .map(|field| match &field.ty {
            FieldType::Scalar(scalar) => Some(encode::pack_code(*scalar).to_string()),
            FieldType::String => Some("S".to_owned()),
            FieldType::Bytes => Some("Y".to_owned()),
            FieldType::Array(n) => Some(format!("{n}s")),
            FieldType::Message(_) | FieldType::List(_) => None,
        })
        .collect()
}
