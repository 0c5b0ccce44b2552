//! `from_bytes` and the module-level `_read_<Message>` functions used for nested messages.
//!
//! The emitted code tracks the read position as `off` plus a constant known at generation
//! time, so a run of fixed-size fields costs one `unpack_from` and no arithmetic. It does
//! not check bounds itself: `unpack_from` raises past the end, a short slice leaves the
//! final offset beyond the input, and list counts are checked against the input before
//! anything is allocated. The caller turns any of these into the walker's precise error.

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};

use super::encode::{is_plain_numbers, pack_code};
use super::{py_kind, py_str, py_type, Structs};
use crate::code_writer::CodeWriter;

/// Where the next byte is read: a constant, or `off` plus a constant.
#[derive(Clone, Copy)]
enum Pos {
    Const(usize),
    Off(usize),
}

impl Pos {
    fn expr(self) -> String {
        match self {
            Pos::Const(k) => k.to_string(),
            Pos::Off(0) => "off".to_owned(),
            Pos::Off(k) => format!("off + {k}"),
        }
    }

    fn advance(self, by: usize) -> Pos {
        match self {
            Pos::Const(k) => Pos::Const(k + by),
            Pos::Off(k) => Pos::Off(k + by),
        }
    }
}

/// The `struct` code of a scalar when unpacking: bools are read as bytes so values other
/// than 0 and 1 can be rejected (`?` would read any non-zero byte as True).
fn unpack_code(scalar: Scalar) -> char {
    match scalar {
        Scalar::Bool => 'B',
        other => pack_code(other),
    }
}

struct Decoder<'s> {
    schema: &'s Schema,
    structs: &'s mut Structs,
    lines: Vec<String>,
    pos: Pos,
    run_codes: String,
    run_vars: Vec<String>,
    run_size: usize,
    vars: usize,
}

impl Decoder<'_> {
    fn fresh(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}{}", self.vars);
        self.vars += 1;
        name
    }

    /// Adds a fixed-size value to the pending run and returns the variable it lands in.
    fn leaf(&mut self, code: &str, size: usize) -> String {
        let var = self.fresh("v");
        self.run_codes.push_str(code);
        self.run_vars.push(var.clone());
        self.run_size += size;
        var
    }

    fn flush(&mut self) {
        if self.run_vars.is_empty() {
            return;
        }
        let name = self.structs.name(&format!("<{}", self.run_codes));
        let targets = if self.run_vars.len() == 1 {
            format!("({},)", self.run_vars[0])
        } else {
            self.run_vars.join(", ")
        };
        self.lines.push(format!(
            "{targets} = {name}.unpack_from(data, {})",
            self.pos.expr()
        ));
        self.pos = self.pos.advance(self.run_size);
        self.run_codes.clear();
        self.run_vars.clear();
        self.run_size = 0;
    }

    fn line(&mut self, text: impl Into<String>) {
        self.lines.push(text.into());
    }

    /// Emits what reads one field and returns the expression of its value.
    fn field(&mut self, ty: &FieldType) -> String {
        match ty {
            FieldType::Scalar(Scalar::Bool) => format!("_BOOLS[{}]", self.leaf("B", 1)),
            // By its bits: `struct`'s "f" would quiet a signalling NaN.
            FieldType::Scalar(Scalar::F32) => format!("_f32_of_bits({})", self.leaf("I", 4)),
            FieldType::Scalar(s) => self.leaf(&unpack_code(*s).to_string(), s.size()),
            FieldType::Array(n) => self.leaf(&format!("{n}s"), usize::from(*n)),
            FieldType::Message(name) => {
                let Some(def) = self.schema.message_by_name(name) else {
                    return "None".to_owned();
                };
                if self.schema.message_fixed_size(def).is_some() {
                    let args: Vec<String> = def.fields.iter().map(|f| self.field(&f.ty)).collect();
                    return format!("{name}({})", args.join(", "));
                }
                self.flush();
                let var = self.fresh("v");
                let at = self.pos.expr();
                self.line(format!("{var}, off = _read_{name}(data, {at})"));
                self.pos = Pos::Off(0);
                var
            }
            FieldType::String => self.sized(|slice| format!("{slice}.decode()")),
            FieldType::Bytes => self.sized(str::to_owned),
            FieldType::List(inner) => self.list(inner),
        }
    }

    /// A u32 length, then that many bytes turned into a value by `convert(slice)`.
    fn sized(&mut self, convert: impl Fn(&str) -> String) -> String {
        let count = self.leaf("I", 4);
        self.flush();
        let at = self.pos.expr();
        let var = self.fresh("v");
        self.line(format!("end = {at} + {count}"));
        self.line(format!("{var} = {}", convert(&format!("data[{at}:end]"))));
        self.line("off = end");
        self.pos = Pos::Off(0);
        var
    }

    fn list(&mut self, inner: &FieldType) -> String {
        match inner {
            FieldType::Scalar(Scalar::U8) => self.sized(|slice| format!("list({slice})")),
            FieldType::Scalar(s) => {
                let size = s.size();
                let count = self.leaf("I", 4);
                self.flush();
                let at = self.pos.expr();
                let var = self.fresh("v");
                self.line(format!("end = {at} + {count} * {size}"));
                self.line("if end > len(data):");
                self.line("    raise ValueError(\"count larger than the input\")");
                if *s == Scalar::Bool {
                    self.line(format!("{var} = [_BOOLS[b] for b in data[{at}:end]]"));
                } else if *s == Scalar::F32 {
                    self.line(format!("{var} = _unpack_f32s(data, {at}, {count})"));
                } else {
                    self.line(format!(
                        "{var} = list(_struct.unpack_from(f\"<{{{count}}}{}\", data, {at}))",
                        unpack_code(*s)
                    ));
                }
                self.line("off = end");
                self.pos = Pos::Off(0);
                var
            }
            FieldType::Message(name)
                if self
                    .schema
                    .message_by_name(name)
                    .is_some_and(is_plain_numbers) =>
            {
                let Some(def) = self.schema.message_by_name(name) else {
                    return "[]".to_owned();
                };
                let codes: String = def
                    .fields
                    .iter()
                    .filter_map(|f| match f.ty {
                        FieldType::Scalar(s) => Some(unpack_code(s)),
                        _ => None,
                    })
                    .collect();
                let size = self.schema.message_min_size(def);
                let unpacker = self.structs.name(&format!("<{codes}"));
                let count = self.leaf("I", 4);
                self.flush();
                let at = self.pos.expr();
                let var = self.fresh("v");
                self.line(format!("end = {at} + {count} * {size}"));
                self.line("if end > len(data):");
                self.line("    raise ValueError(\"count larger than the input\")");
                self.line(format!(
                    "{var} = [{name}(*t) for t in {unpacker}.iter_unpack(data[{at}:end])]"
                ));
                self.line("off = end");
                self.pos = Pos::Off(0);
                var
            }
            FieldType::String | FieldType::Message(_) => {
                let min = self.schema.min_encoded_size(inner).max(1);
                let count = self.leaf("I", 4);
                self.flush();
                let at = self.pos.expr();
                let var = self.fresh("v");
                self.line(format!("if {count} * {min} > len(data) - ({at}):"));
                self.line("    raise ValueError(\"count larger than the input\")");
                if at != "off" {
                    self.line(format!("off = {at}"));
                }
                self.line(format!("{var}: list[{}] = []", py_type(inner, &[])));
                self.line(format!("for _ in range({count}):"));
                if let FieldType::Message(name) = inner {
                    // One name per list: mypy types a variable once per function.
                    let item = self.fresh("item");
                    self.line(format!("    {item}, off = _read_{name}(data, off)"));
                    self.line(format!("    {var}.append({item})"));
                } else {
                    self.line("    (size,) = _U32.unpack_from(data, off)");
                    self.line("    end = off + 4 + size");
                    self.line(format!("    {var}.append(data[off + 4:end].decode())"));
                    self.line("    off = end");
                }
                self.pos = Pos::Off(0);
                var
            }
            other => {
                let count = self.leaf("I", 4);
                self.flush();
                let at = self.pos.expr();
                let var = self.fresh("v");
                self.line(format!(
                    "{var}, off = _unpack_items({}, {}, {count}, data, {at})",
                    py_kind(self.schema, other),
                    self.schema.min_encoded_size(other)
                ));
                self.pos = Pos::Off(0);
                var
            }
        }
    }
}

/// The statements reading every field of `message` from `start`, the constructor
/// arguments, and the final position expression.
fn plan(
    schema: &Schema,
    message: &MessageDef,
    structs: &mut Structs,
    start: Pos,
) -> (Vec<String>, Vec<String>, String) {
    let mut decoder = Decoder {
        schema,
        structs,
        lines: Vec::new(),
        pos: start,
        run_codes: String::new(),
        run_vars: Vec::new(),
        run_size: 0,
        vars: 0,
    };
    let args: Vec<String> = message
        .fields
        .iter()
        .map(|f| decoder.field(&f.ty))
        .collect();
    decoder.flush();
    let end = decoder.pos.expr();
    (decoder.lines, args, end)
}

pub(crate) fn emit_from_bytes(
    w: &mut CodeWriter,
    schema: &Schema,
    message: &MessageDef,
    structs: &mut Structs,
) {
    let (lines, args, end) = plan(schema, message, structs, Pos::Const(0));
    w.line("@classmethod");
    w.nest("def from_bytes(cls, data: _Buffer) -> _te.Self:", |w| {
        w.line("\"\"\"Decodes a whole payload (no frame header; bytes, bytearray or memoryview).");
        w.line("");
        w.line("Raises DecodeError naming what was being read and the byte offset: truncated");
        w.line("input, trailing bytes, invalid UTF-8, a bool byte other than 0 or 1, or a list");
        w.line("count larger than the remaining input could hold.");
        w.line("\"\"\"");
        w.nest("if not isinstance(data, bytes):", |w| {
            // One copy up front is cheaper than wrapping every slice, and lets strings
            // decode with `bytes.decode`, the fastest route.
            w.line("data = bytes(data)");
        });
        w.nest("try:", |w| {
            for line in &lines {
                w.line(line);
            }
            w.nest(format!("if {end} == len(data):"), |w| {
                w.line(format!("return cls({})", args.join(", ")));
            });
        });
        w.nest("except _DECODE_SLIPS:", |w| w.line("pass"));
        w.line(format!(
            "raise _decode_failure({}, data)",
            py_str(&message.name)
        ));
    });
}

/// `_read_<Message>(data, off) -> (message, offset after it)`, for messages nested in
/// others. Errors propagate to the outermost `from_bytes`.
pub(crate) fn emit_reader(
    w: &mut CodeWriter,
    schema: &Schema,
    message: &MessageDef,
    structs: &mut Structs,
) {
    let (lines, args, end) = plan(schema, message, structs, Pos::Off(0));
    let name = &message.name;
    w.nest(
        format!("def _read_{name}(data: bytes, off: int) -> _t.Tuple[{name}, int]:"),
        |w| {
            for line in &lines {
                w.line(line);
            }
            w.line(format!("return {name}({}), {end}", args.join(", ")));
        },
    );
}
