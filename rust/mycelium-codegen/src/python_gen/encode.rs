//! `to_bytes`: the fields as one expression of precompiled `struct` packs and byte strings.

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};

use super::{py_kind, py_str, Structs};
use crate::code_writer::CodeWriter;

/// The `struct` code of a scalar when packing (`?` packs any truth value as 0 or 1).
pub(crate) fn pack_code(scalar: Scalar) -> char {
    match scalar {
        Scalar::U8 => 'B',
        Scalar::U16 => 'H',
        Scalar::U32 => 'I',
        Scalar::U64 => 'Q',
        Scalar::I8 => 'b',
        Scalar::I16 => 'h',
        Scalar::I32 => 'i',
        Scalar::I64 => 'q',
        Scalar::F32 => 'f',
        Scalar::F64 => 'd',
        Scalar::Bool => '?',
    }
}

/// Whether every field of `message` is a number (no bool, no f32, no nesting): a list of such
/// messages packs and unpacks each element with one struct and no conversion. An f32 needs
/// one (`_f32_bits` / `_f32_of_bits` in python_gen/runtime.py: `struct` quiets NaNs).
pub(crate) fn is_plain_numbers(message: &MessageDef) -> bool {
    !message.fields.is_empty()
        && message
            .fields
            .iter()
            .all(|f| matches!(f.ty, FieldType::Scalar(s) if s != Scalar::Bool && s != Scalar::F32))
}

/// Collects the pieces of one `to_bytes` body.
struct Encoder<'s> {
    schema: &'s Schema,
    structs: &'s mut Structs,
    /// Statements before the final expression (string encodes, length checks).
    pre: Vec<String>,
    /// The pending run of fixed-size values: struct codes and argument expressions.
    run_codes: String,
    run_args: Vec<String>,
    /// Byte-string expressions concatenated into the payload.
    parts: Vec<String>,
    temps: usize,
}

impl Encoder<'_> {
    fn flush(&mut self) {
        if self.run_args.is_empty() {
            return;
        }
        let name = self.structs.name(&format!("<{}", self.run_codes));
        self.parts
            .push(format!("{name}.pack({})", self.run_args.join(", ")));
        self.run_codes.clear();
        self.run_args.clear();
    }

    fn push_fixed(&mut self, code: &str, arg: String) {
        self.run_codes.push_str(code);
        self.run_args.push(arg);
    }

    fn field(&mut self, ty: &FieldType, expr: &str) {
        match ty {
            // By its bits: `struct`'s "f" would quiet a signalling NaN.
            FieldType::Scalar(Scalar::F32) => self.push_fixed("I", format!("_f32_bits({expr})")),
            FieldType::Scalar(s) => self.push_fixed(&pack_code(*s).to_string(), expr.to_owned()),
            FieldType::Array(n) => {
                // `struct`'s `Ns` pads or cuts silently; the exact size is part of the type.
                self.pre.push(format!("if len({expr}) != {n}:"));
                self.pre
                    .push("    raise ValueError(\"wrong length\")".to_owned());
                self.push_fixed(&format!("{n}s"), expr.to_owned());
            }
            FieldType::Message(name) if self.is_fixed(name) => {
                let Some(def) = self.schema.message_by_name(name) else {
                    return;
                };
                if def.fields.is_empty() {
                    // Nothing of it is read below, so nothing else would notice a wrong value.
                    self.pre.push(format!("if not isinstance({expr}, {name}):"));
                    self.pre
                        .push("    raise TypeError(\"wrong type\")".to_owned());
                }
                for field in &def.fields {
                    self.field(&field.ty, &format!("{expr}.{}", field.name));
                }
            }
            FieldType::Message(name) => {
                self.flush();
                self.parts.push(format!("{name}.to_bytes({expr})"));
            }
            FieldType::String => {
                let temp = format!("b{}", self.temps);
                self.temps += 1;
                self.pre.push(format!("{temp} = {expr}.encode()"));
                self.push_fixed("I", format!("len({temp})"));
                self.flush();
                self.parts.push(temp);
            }
            FieldType::Bytes => {
                self.push_fixed("I", format!("len({expr})"));
                self.flush();
                self.parts.push(expr.to_owned());
            }
            FieldType::List(inner) => {
                self.list(inner, expr);
            }
        }
    }

    fn list(&mut self, inner: &FieldType, expr: &str) {
        match inner {
            FieldType::Scalar(Scalar::U8) => {
                // `len` first: `bytes(5)` would silently give five zero bytes.
                self.push_fixed("I", format!("len({expr})"));
                self.flush();
                self.parts.push(format!("bytes({expr})"));
            }
            FieldType::Scalar(Scalar::F32) => {
                self.flush();
                self.parts.push(format!("_pack_f32s({expr})"));
            }
            FieldType::Scalar(s) => {
                self.flush();
                self.parts.push(format!(
                    "_pack_scalars({}, {expr})",
                    py_str(&pack_code(*s).to_string())
                ));
            }
            FieldType::String => {
                self.flush();
                self.parts.push(format!("_pack_strs({expr})"));
            }
            FieldType::Message(name) => {
                self.flush();
                let element = match self.schema.message_by_name(name) {
                    Some(def) if is_plain_numbers(def) => {
                        let codes: String = def
                            .fields
                            .iter()
                            .filter_map(|f| match f.ty {
                                FieldType::Scalar(s) => Some(pack_code(s)),
                                _ => None,
                            })
                            .collect();
                        let args: Vec<String> =
                            def.fields.iter().map(|f| format!("x.{}", f.name)).collect();
                        let packer = self.structs.name(&format!("<{codes}"));
                        format!("{packer}.pack({})", args.join(", "))
                    }
                    _ => format!("{name}.to_bytes(x)"),
                };
                self.parts.push(format!(
                    "_U32.pack(len({expr})) + b\"\".join([{element} for x in {expr}])"
                ));
            }
            other => {
                self.flush();
                let kind = py_kind(self.schema, &FieldType::List(Box::new(other.clone())));
                self.parts.push(format!("_pack_list({kind}, {expr})"));
            }
        }
    }

    fn is_fixed(&self, name: &str) -> bool {
        self.schema
            .message_by_name(name)
            .is_some_and(|def| self.schema.message_fixed_size(def).is_some())
    }
}

/// The payload expression and the statements it needs, for the fields of `message` read
/// from `receiver` (`self`).
fn plan(schema: &Schema, message: &MessageDef, structs: &mut Structs) -> (Vec<String>, String) {
    let mut encoder = Encoder {
        schema,
        structs,
        pre: Vec::new(),
        run_codes: String::new(),
        run_args: Vec::new(),
        parts: Vec::new(),
        temps: 0,
    };
    for field in &message.fields {
        encoder.field(&field.ty, &format!("self.{}", field.name));
    }
    encoder.flush();
    let expr = match encoder.parts.len() {
        0 => "b\"\"".to_owned(),
        1..=4 => encoder.parts.join(" + "),
        _ => format!("b\"\".join(({},))", encoder.parts.join(", ")),
    };
    (encoder.pre, expr)
}

pub(crate) fn emit_to_bytes(
    w: &mut CodeWriter,
    schema: &Schema,
    message: &MessageDef,
    structs: &mut Structs,
    bytes_type: &str,
) {
    let (pre, expr) = plan(schema, message, structs);
    w.nest(format!("def to_bytes(self) -> {bytes_type}:"), |w| {
        w.line("\"\"\"The payload (no frame header).");
        w.line("");
        w.line("Raises EncodeError naming the field whose value does not fit its schema type.");
        w.line("\"\"\"");
        w.nest("try:", |w| {
            for line in &pre {
                w.line(line);
            }
            w.line(format!("return {expr}"));
        });
        w.nest("except _ENCODE_SLIPS as error:", |w| {
            w.line(format!(
                "raise _encode_failure({}, self, error) from None",
                py_str(&message.name)
            ));
        });
    });
}
