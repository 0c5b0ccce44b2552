//! The JSON mapping of values (see `docs/wire-format.md`): integers and floats as numbers,
//! non-finite floats as "NaN", "inf", "-inf" (a NaN other than the canonical quiet one with
//! its bits, "NaN:0x7f800001"), bytes as lowercase hex, lists as arrays, messages as objects
//! keyed by field name.

use serde_json::{Map, Number, Value as Json};

use crate::schema::{FieldType, MessageDef, Scalar, Schema, MAX_NESTING_DEPTH};

use super::binary::field_list;
use super::error::{ValueError, ValueErrorKind};
use super::path::{Path, Segment};
use super::Value;

impl Value {
    /// The JSON form of this value.
    pub fn to_json(&self) -> Json {
        match self {
            Value::U8(v) => Json::from(*v),
            Value::U16(v) => Json::from(*v),
            Value::U32(v) => Json::from(*v),
            Value::U64(v) => Json::from(*v),
            Value::I8(v) => Json::from(*v),
            Value::I16(v) => Json::from(*v),
            Value::I32(v) => Json::from(*v),
            Value::I64(v) => Json::from(*v),
            Value::F32(v) => f32_to_json(*v),
            Value::F64(v) => f64_to_json(*v),
            Value::Bool(v) => Json::Bool(*v),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) | Value::Array(b) => Json::String(hex::encode(b)),
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Message { fields, .. } => Json::Object(
                fields
                    .iter()
                    .map(|(name, value)| (name.clone(), value.to_json()))
                    .collect::<Map<String, Json>>(),
            ),
        }
    }

    /// Reads a value of type `ty` from its JSON form. Error paths start at `value`.
    pub fn from_json(schema: &Schema, ty: &FieldType, json: &Json) -> Result<Value, ValueError> {
        JsonReader {
            schema,
            path: Path::root("value"),
        }
        .value(ty, json, 0)
    }

    /// Reads a message value from a JSON object. Error paths start at the message name, e.g.
    /// `TickBatch.ticks[3].price: expected a number, found a string`.
    pub fn message_from_json(
        schema: &Schema,
        message: &MessageDef,
        json: &Json,
    ) -> Result<Value, ValueError> {
        JsonReader {
            schema,
            path: Path::root(&message.name),
        }
        .message(message, json, 0)
    }
}

/// The NaN written as plain "NaN" (and read from it): the quiet NaN with no payload.
const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;
const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// Any other NaN is written as this prefix and its bits in hex (16 digits for an f64, 8 for an
/// f32), so that JSON carries every float bit-exactly: a relay that decodes to JSON and encodes
/// back must not quiet a signalling NaN or drop a payload.
const NAN_BITS_PREFIX: &str = "NaN:0x";

fn non_finite(v: f64) -> Option<&'static str> {
    if v.is_nan() {
        Some("NaN")
    } else if v == f64::INFINITY {
        Some("inf")
    } else if v == f64::NEG_INFINITY {
        Some("-inf")
    } else {
        None
    }
}

fn f64_to_json(v: f64) -> Json {
    if v.is_nan() && v.to_bits() != F64_CANONICAL_NAN {
        return Json::String(format!("{NAN_BITS_PREFIX}{:016x}", v.to_bits()));
    }
    match (non_finite(v), Number::from_f64(v)) {
        (None, Some(n)) => Json::Number(n),
        (special, _) => Json::String(special.unwrap_or("NaN").to_owned()),
    }
}

/// Prints the shortest decimal that reads back as the same f32 (`0.1`, not
/// `0.10000000149011612`), provided a reader that parses it as f64 and then rounds to f32
/// gets the same bits; otherwise the exact f64 value of the f32 is printed.
fn f32_to_json(v: f32) -> Json {
    if v.is_nan() && v.to_bits() != F32_CANONICAL_NAN {
        return Json::String(format!("{NAN_BITS_PREFIX}{:08x}", v.to_bits()));
    }
    if let Some(special) = non_finite(f64::from(v)) {
        return Json::String(special.to_owned());
    }
    let short: f64 = v.to_string().parse().unwrap_or(f64::from(v));
    let chosen = if (short as f32).to_bits() == v.to_bits() {
        short
    } else {
        f64::from(v)
    };
    f64_to_json(chosen)
}

fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".into(),
        Json::Bool(b) => format!("{b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(_) => "a string".into(),
        Json::Array(_) => "an array".into(),
        Json::Object(_) => "an object".into(),
    }
}

struct JsonReader<'s> {
    schema: &'s Schema,
    path: Path<'s>,
}

impl<'s> JsonReader<'s> {
    fn fail(&self, kind: ValueErrorKind) -> ValueError {
        ValueError {
            path: self.path.render(),
            kind,
        }
    }

    fn expected(&self, expected: &str, found: &Json) -> ValueError {
        self.fail(ValueErrorKind::Expected {
            expected: expected.to_owned(),
            found: describe(found),
        })
    }

    fn message(
        &mut self,
        message: &'s MessageDef,
        json: &Json,
        depth: usize,
    ) -> Result<Value, ValueError> {
        let Json::Object(object) = json else {
            return Err(self.expected(&format!("an object for message {}", message.name), json));
        };
        if let Some(extra) = object.keys().find(|k| message.field(k).is_none()) {
            return Err(self.fail(ValueErrorKind::UnknownField {
                field: extra.clone(),
                known: field_list(message),
            }));
        }
        let mut fields = Vec::with_capacity(message.fields.len());
        for field in &message.fields {
            self.path.push(Segment::Name(&field.name));
            let Some(item) = object.get(&field.name) else {
                return Err(self.fail(ValueErrorKind::MissingField {
                    needed: field_list(message),
                }));
            };
            let value = self.value(&field.ty, item, depth)?;
            self.path.pop();
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Message {
            name: message.name.clone(),
            fields,
        })
    }

    fn value(&mut self, ty: &'s FieldType, json: &Json, depth: usize) -> Result<Value, ValueError> {
        match ty {
            FieldType::Scalar(scalar) => self.scalar(*scalar, json),
            FieldType::String => match json {
                Json::String(s) => Ok(Value::String(s.clone())),
                other => Err(self.expected("a string", other)),
            },
            FieldType::Bytes => Ok(Value::Bytes(self.hex(json)?)),
            FieldType::Array(n) => {
                let bytes = self.hex(json)?;
                if bytes.len() != usize::from(*n) {
                    return Err(self.fail(ValueErrorKind::WrongLength {
                        expected: usize::from(*n),
                        found: bytes.len(),
                    }));
                }
                Ok(Value::Array(bytes))
            }
            FieldType::List(inner) => {
                let Json::Array(items) = json else {
                    return Err(self.expected("an array", json));
                };
                if depth >= MAX_NESTING_DEPTH {
                    return Err(self.fail(ValueErrorKind::UnknownMessage(ty.to_string())));
                }
                let mut out = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    self.path.push(Segment::Index(index));
                    out.push(self.value(inner, item, depth + 1)?);
                    self.path.pop();
                }
                Ok(Value::List(out))
            }
            FieldType::Message(name) => match self.schema.message_by_name(name) {
                Some(def) if depth < MAX_NESTING_DEPTH => self.message(def, json, depth + 1),
                _ => Err(self.fail(ValueErrorKind::UnknownMessage(name.clone()))),
            },
        }
    }

    fn hex(&self, json: &Json) -> Result<Vec<u8>, ValueError> {
        let Json::String(text) = json else {
            return Err(self.expected("a hex string", json));
        };
        hex::decode(text).map_err(|e| self.fail(ValueErrorKind::BadHex(e.to_string())))
    }

    fn scalar(&self, scalar: Scalar, json: &Json) -> Result<Value, ValueError> {
        match scalar {
            Scalar::Bool => match json {
                Json::Bool(b) => Ok(Value::Bool(*b)),
                other => Err(self.expected("true or false", other)),
            },
            Scalar::F32 => {
                if let Some(bits) = self.nan_bits(json, 8, "f32")? {
                    // Exact: `bits` fits 8 hex digits.
                    return Ok(Value::F32(f32::from_bits(bits as u32)));
                }
                let v = self.float(json)?;
                let narrowed = v as f32;
                if v.is_finite() && !narrowed.is_finite() {
                    return Err(self.fail(ValueErrorKind::OutOfRange {
                        value: json.to_string(),
                        ty: "f32",
                    }));
                }
                Ok(Value::F32(narrowed))
            }
            Scalar::F64 => match self.nan_bits(json, 16, "f64")? {
                Some(bits) => Ok(Value::F64(f64::from_bits(bits))),
                None => Ok(Value::F64(self.float(json)?)),
            },
            Scalar::U8 => self
                .unsigned(json, "u8", u64::from(u8::MAX))
                .map(|v| Value::U8(v as u8)),
            Scalar::U16 => self
                .unsigned(json, "u16", u64::from(u16::MAX))
                .map(|v| Value::U16(v as u16)),
            Scalar::U32 => self
                .unsigned(json, "u32", u64::from(u32::MAX))
                .map(|v| Value::U32(v as u32)),
            Scalar::U64 => self.unsigned(json, "u64", u64::MAX).map(Value::U64),
            Scalar::I8 => self
                .signed(json, "i8", i64::from(i8::MIN), i64::from(i8::MAX))
                .map(|v| Value::I8(v as i8)),
            Scalar::I16 => self
                .signed(json, "i16", i64::from(i16::MIN), i64::from(i16::MAX))
                .map(|v| Value::I16(v as i16)),
            Scalar::I32 => self
                .signed(json, "i32", i64::from(i32::MIN), i64::from(i32::MAX))
                .map(|v| Value::I32(v as i32)),
            Scalar::I64 => self.signed(json, "i64", i64::MIN, i64::MAX).map(Value::I64),
        }
    }

    /// The bits of a NaN written as "NaN:0x" and exactly `digits` hex digits, `None` for any
    /// other JSON; an error when the prefix is there but the rest is not a NaN of this width.
    fn nan_bits(&self, json: &Json, digits: usize, ty: &str) -> Result<Option<u64>, ValueError> {
        let Json::String(s) = json else {
            return Ok(None);
        };
        let Some(hex) = s.strip_prefix(NAN_BITS_PREFIX) else {
            return Ok(None);
        };
        let bits = (hex.len() == digits && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex, 16).ok())
            .flatten();
        let is_nan = |bits: u64| {
            if digits == 8 {
                f32::from_bits(bits as u32).is_nan()
            } else {
                f64::from_bits(bits).is_nan()
            }
        };
        match bits {
            Some(bits) if is_nan(bits) => Ok(Some(bits)),
            _ => Err(self.fail(ValueErrorKind::Expected {
                expected: format!("\"NaN:0x\" and the {digits} hex digits of an {ty} NaN"),
                found: format!("the string {s:?}"),
            })),
        }
    }

    fn float(&self, json: &Json) -> Result<f64, ValueError> {
        match json {
            Json::Number(n) => n.as_f64().ok_or_else(|| self.expected("a number", json)),
            Json::String(s) => match s.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                _ => Err(self.fail(ValueErrorKind::Expected {
                    expected: "a number, \"NaN\", \"inf\" or \"-inf\"".into(),
                    found: format!("the string {s:?}"),
                })),
            },
            other => Err(self.expected("a number", other)),
        }
    }

    /// The ranges are checked here; the narrowing casts at the call sites are then exact.
    fn unsigned(&self, json: &Json, ty: &'static str, max: u64) -> Result<u64, ValueError> {
        let Json::Number(n) = json else {
            return Err(self.expected("an integer", json));
        };
        match n.as_u64() {
            Some(v) if v <= max => Ok(v),
            _ if n.is_f64() => Err(self.expected("an integer", json)),
            _ => Err(self.fail(ValueErrorKind::OutOfRange {
                value: n.to_string(),
                ty,
            })),
        }
    }

    fn signed(&self, json: &Json, ty: &'static str, min: i64, max: i64) -> Result<i64, ValueError> {
        let Json::Number(n) = json else {
            return Err(self.expected("an integer", json));
        };
        match n.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            _ if n.is_f64() => Err(self.expected("an integer", json)),
            _ => Err(self.fail(ValueErrorKind::OutOfRange {
                value: n.to_string(),
                ty,
            })),
        }
    }
}
