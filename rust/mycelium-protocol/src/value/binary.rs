//! Schema-driven encoding and decoding of [`Value`] trees. Accepts exactly what the
//! [`Validator`](crate::validate::Validator) accepts; decode errors name the full field path.

use crate::codec::{Reader, Writer, MAX_PAYLOAD};
use crate::message::{DecodeError, EncodeError};
use crate::schema::{FieldType, MessageDef, Scalar, Schema, MAX_NESTING_DEPTH};

use super::error::{ValueError, ValueErrorKind};
use super::path::{Path, Segment};
use super::Value;

/// Decodes a whole payload (no frame header) of `message`. A message of a hand-built schema
/// that refers to an undefined message is reported as [`DecodeError::UnknownType`] with
/// `message`'s id, as the validator does.
pub fn decode_value(
    schema: &Schema,
    message: &MessageDef,
    payload: &[u8],
) -> Result<Value, DecodeError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(DecodeError::TooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD,
        });
    }
    let mut decoder = Decoder {
        schema,
        root_id: message.type_id,
        path: Path::root(&message.name),
    };
    let mut reader = Reader::new(payload);
    let value = decoder.message(message, &mut reader, 0)?;
    reader.finish()?;
    Ok(value)
}

struct Decoder<'s> {
    schema: &'s Schema,
    root_id: u16,
    path: Path<'s>,
}

impl<'s> Decoder<'s> {
    fn message(
        &mut self,
        message: &'s MessageDef,
        reader: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Value, DecodeError> {
        let mut fields = Vec::with_capacity(message.fields.len());
        for field in &message.fields {
            self.path.push(Segment::Name(&field.name));
            let value = self.value(&field.ty, reader, depth)?;
            self.path.pop();
            fields.push((field.name.clone(), value));
        }
        Ok(Value::Message {
            name: message.name.clone(),
            fields,
        })
    }

    fn value(
        &mut self,
        ty: &'s FieldType,
        reader: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Value, DecodeError> {
        if let Some(leaf) = read_leaf(ty, reader) {
            // `what` is filled in from the path only if something fails.
            return leaf.map_err(|e| locate(e, &self.path));
        }
        let value = match ty {
            FieldType::List(inner) => {
                if depth >= MAX_NESTING_DEPTH {
                    return Err(DecodeError::UnknownType(self.root_id));
                }
                let min = self.schema.min_encoded_size(inner);
                let count = reader
                    .get_count(min, "")
                    .map_err(|e| locate(e, &self.path))?;
                // Safe to reserve: get_count bounded count by the bytes left.
                let mut items = Vec::with_capacity(count);
                for index in 0..count {
                    self.path.push(Segment::Index(index));
                    items.push(self.value(inner, reader, depth + 1)?);
                    self.path.pop();
                }
                Value::List(items)
            }
            FieldType::Message(name) => match self.schema.message_by_name(name) {
                Some(def) if depth < MAX_NESTING_DEPTH => self.message(def, reader, depth + 1)?,
                _ => return Err(DecodeError::UnknownType(self.root_id)),
            },
            // Every other type is a leaf, handled above.
            _ => return Err(DecodeError::UnknownType(self.root_id)),
        };
        Ok(value)
    }
}

/// Reads a value that contains no other values; `None` for lists and messages.
fn read_leaf(ty: &FieldType, reader: &mut Reader<'_>) -> Option<Result<Value, DecodeError>> {
    Some(match ty {
        FieldType::Scalar(scalar) => match scalar {
            Scalar::U8 => reader.get_u8("").map(Value::U8),
            Scalar::U16 => reader.get_u16("").map(Value::U16),
            Scalar::U32 => reader.get_u32("").map(Value::U32),
            Scalar::U64 => reader.get_u64("").map(Value::U64),
            Scalar::I8 => reader.get_i8("").map(Value::I8),
            Scalar::I16 => reader.get_i16("").map(Value::I16),
            Scalar::I32 => reader.get_i32("").map(Value::I32),
            Scalar::I64 => reader.get_i64("").map(Value::I64),
            Scalar::F32 => reader.get_f32("").map(Value::F32),
            Scalar::F64 => reader.get_f64("").map(Value::F64),
            Scalar::Bool => reader.get_bool("").map(Value::Bool),
        },
        FieldType::String => reader.get_str("").map(|s| Value::String(s.to_owned())),
        FieldType::Bytes => reader.get_bytes("").map(|b| Value::Bytes(b.to_vec())),
        FieldType::Array(n) => reader
            .take(usize::from(*n), "")
            .map(|b| Value::Array(b.to_vec())),
        FieldType::List(_) | FieldType::Message(_) => return None,
    })
}

/// Puts the rendered field path into the error's `what`.
#[cold]
fn locate(mut error: DecodeError, path: &Path<'_>) -> DecodeError {
    match &mut error {
        DecodeError::Truncated { what, .. }
        | DecodeError::InvalidUtf8 { what, .. }
        | DecodeError::InvalidBool { what, .. }
        | DecodeError::CountTooLarge { what, .. } => *what = path.render(),
        _ => {}
    }
    error
}

/// Encodes a message value as a payload (no frame header). The value must be a
/// [`Value::Message`] with every field of `message`, each of the matching variant
/// (`bytes` and `bytes[N]` fields accept either [`Value::Bytes`] or [`Value::Array`]).
pub fn encode_value(
    schema: &Schema,
    message: &MessageDef,
    value: &Value,
) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::new();
    encode_value_into(schema, message, value, &mut out)?;
    Ok(out)
}

/// Like [`encode_value`], appending to `out`; on error `out` is left as it was.
pub fn encode_value_into(
    schema: &Schema,
    message: &MessageDef,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), ValueError> {
    let start = out.len();
    let mut encoder = Encoder {
        schema,
        path: Path::root(&message.name),
    };
    let result = encoder
        .message(message, value, &mut Writer::new(out), 0)
        .and_then(|()| {
            let len = out.len() - start;
            if len > MAX_PAYLOAD {
                Err(ValueError {
                    path: message.name.clone(),
                    kind: ValueErrorKind::Encode(EncodeError::TooLarge {
                        len,
                        max: MAX_PAYLOAD,
                    }),
                })
            } else {
                Ok(())
            }
        });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

struct Encoder<'s> {
    schema: &'s Schema,
    path: Path<'s>,
}

impl<'s> Encoder<'s> {
    fn fail(&self, kind: ValueErrorKind) -> ValueError {
        ValueError {
            path: self.path.render(),
            kind,
        }
    }

    fn message(
        &mut self,
        message: &'s MessageDef,
        value: &Value,
        w: &mut Writer<'_>,
        depth: usize,
    ) -> Result<(), ValueError> {
        let Value::Message { name, fields } = value else {
            return Err(self.fail(ValueErrorKind::Expected {
                expected: format!("message {}", message.name),
                found: value.kind(),
            }));
        };
        if *name != message.name {
            return Err(self.fail(ValueErrorKind::Expected {
                expected: format!("message {}", message.name),
                found: format!("message {name}"),
            }));
        }
        if let Some((extra, _)) = fields.iter().find(|(n, _)| message.field(n).is_none()) {
            return Err(self.fail(ValueErrorKind::UnknownField {
                field: extra.clone(),
                known: field_list(message),
            }));
        }
        for field in &message.fields {
            self.path.push(Segment::Name(&field.name));
            let Some((_, field_value)) = fields.iter().find(|(n, _)| *n == field.name) else {
                return Err(self.fail(ValueErrorKind::MissingField {
                    needed: field_list(message),
                }));
            };
            self.value(&field.ty, field_value, w, depth)?;
            self.path.pop();
        }
        Ok(())
    }

    fn value(
        &mut self,
        ty: &'s FieldType,
        value: &Value,
        w: &mut Writer<'_>,
        depth: usize,
    ) -> Result<(), ValueError> {
        match (ty, value) {
            (FieldType::Scalar(scalar), value) => self.scalar(*scalar, value, w),
            (FieldType::String, Value::String(s)) => w.put_str(s).map_err(|e| self.encode_error(e)),
            (FieldType::Bytes, Value::Bytes(b) | Value::Array(b)) => {
                w.put_bytes(b).map_err(|e| self.encode_error(e))
            }
            (FieldType::Array(n), Value::Bytes(b) | Value::Array(b)) => {
                if b.len() != usize::from(*n) {
                    return Err(self.fail(ValueErrorKind::WrongLength {
                        expected: usize::from(*n),
                        found: b.len(),
                    }));
                }
                w.put_array(b);
                Ok(())
            }
            (FieldType::List(inner), Value::List(items)) => {
                if depth >= MAX_NESTING_DEPTH {
                    return Err(self.fail(ValueErrorKind::UnknownMessage(ty.to_string())));
                }
                w.put_count(items.len()).map_err(|e| self.encode_error(e))?;
                for (index, item) in items.iter().enumerate() {
                    self.path.push(Segment::Index(index));
                    self.value(inner, item, w, depth + 1)?;
                    self.path.pop();
                }
                Ok(())
            }
            (FieldType::Message(name), value) => match self.schema.message_by_name(name) {
                Some(def) if depth < MAX_NESTING_DEPTH => self.message(def, value, w, depth + 1),
                _ => Err(self.fail(ValueErrorKind::UnknownMessage(name.clone()))),
            },
            (ty, value) => Err(self.fail(ValueErrorKind::Expected {
                expected: ty.to_string(),
                found: value.kind(),
            })),
        }
    }

    fn scalar(&self, scalar: Scalar, value: &Value, w: &mut Writer<'_>) -> Result<(), ValueError> {
        match (scalar, value) {
            (Scalar::U8, Value::U8(v)) => w.put_u8(*v),
            (Scalar::U16, Value::U16(v)) => w.put_u16(*v),
            (Scalar::U32, Value::U32(v)) => w.put_u32(*v),
            (Scalar::U64, Value::U64(v)) => w.put_u64(*v),
            (Scalar::I8, Value::I8(v)) => w.put_i8(*v),
            (Scalar::I16, Value::I16(v)) => w.put_i16(*v),
            (Scalar::I32, Value::I32(v)) => w.put_i32(*v),
            (Scalar::I64, Value::I64(v)) => w.put_i64(*v),
            (Scalar::F32, Value::F32(v)) => w.put_f32(*v),
            (Scalar::F64, Value::F64(v)) => w.put_f64(*v),
            (Scalar::Bool, Value::Bool(v)) => w.put_bool(*v),
            (scalar, value) => {
                return Err(self.fail(ValueErrorKind::Expected {
                    expected: scalar.name().to_owned(),
                    found: value.kind(),
                }))
            }
        }
        Ok(())
    }

    fn encode_error(&self, error: EncodeError) -> ValueError {
        self.fail(ValueErrorKind::Encode(error))
    }
}

pub(super) fn field_list(message: &MessageDef) -> String {
    if message.fields.is_empty() {
        return "no fields".to_owned();
    }
    message
        .fields
        .iter()
        .map(|f| f.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
