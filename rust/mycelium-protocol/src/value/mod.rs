//! A dynamic value tree for any message of a schema, used by the CLI (`encode`/`decode`) and
//! the cross-language test vectors. Generated types are the fast path; this is the
//! schema-driven one.

mod binary;
mod error;
mod json;
mod path;

pub use binary::{decode_value, encode_value, encode_value_into};
pub use error::{ValueError, ValueErrorKind};

#[cfg(test)]
mod tests;

/// One value of a field type. Floats compare by their bits (so a NaN equals the same NaN and
/// `0.0 != -0.0`), which is what "the same bytes on the wire" means.
#[derive(Debug, Clone)]
pub enum Value {
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    /// A `bytes` field.
    Bytes(Vec<u8>),
    /// A `bytes[N]` field (exactly N bytes).
    Array(Vec<u8>),
    List(Vec<Value>),
    /// A message: its name and its fields in schema order.
    Message {
        name: String,
        fields: Vec<(String, Value)>,
    },
}

impl Value {
    /// A short description of the variant for error messages (`u32`, `string`, `message Quote`).
    pub fn kind(&self) -> String {
        match self {
            Value::U8(_) => "u8".into(),
            Value::U16(_) => "u16".into(),
            Value::U32(_) => "u32".into(),
            Value::U64(_) => "u64".into(),
            Value::I8(_) => "i8".into(),
            Value::I16(_) => "i16".into(),
            Value::I32(_) => "i32".into(),
            Value::I64(_) => "i64".into(),
            Value::F32(_) => "f32".into(),
            Value::F64(_) => "f64".into(),
            Value::Bool(_) => "bool".into(),
            Value::String(_) => "string".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Array(b) => format!("bytes[{}]", b.len()),
            Value::List(_) => "list".into(),
            Value::Message { name, .. } => format!("message {name}"),
        }
    }

    /// The field called `name` of a message value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Message { fields, .. } => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (U8(a), U8(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (F32(a), F32(b)) => a.to_bits() == b.to_bits(),
            (F64(a), F64(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (String(a), String(b)) => a == b,
            (Bytes(a), Bytes(b)) | (Array(a), Array(b)) => a == b,
            (List(a), List(b)) => a == b,
            (
                Message {
                    name: n1,
                    fields: f1,
                },
                Message {
                    name: n2,
                    fields: f2,
                },
            ) => n1 == n2 && f1 == f2,
            _ => false,
        }
    }
}
