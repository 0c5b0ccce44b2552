//! Which edge cases exist, and the JSON value of a message for each of them.
//!
//! Values are built as JSON (the documented mapping) rather than as `Value`s so the
//! vectors exercise the same path other languages take: JSON in, bytes out.

use mycelium_protocol::{FieldType, MessageDef, Scalar, Schema};
use serde_json::{json, Map, Number, Value as Json};

use super::rng::SplitMix64;

/// Elements in the "long list" case, unless the elements are so big that the frame
/// would dwarf the rest of the file (see [`LONG_LIST_BYTE_BUDGET`]).
pub(crate) const LONG_LIST_LEN: usize = 1000;
/// Upper bound on the minimal encoded size of one long list.
const LONG_LIST_BYTE_BUDGET: usize = 64 * 1024;
/// Length of the strings and byte strings in the "max" case: 256 needs both low
/// bytes of the u32 length prefix.
const MAX_CASE_LEN: usize = 256;
/// Exercises multi-byte UTF-8 of every length, an embedded NUL and JSON escapes.
const UNICODE_TEXT: &str = "mycélium 🍄 日本語 Ωμέγα \u{0} tab\t \"quoted\" back\\slash";
/// Characters for random strings: 1-, 2-, 3- and 4-byte UTF-8.
const RANDOM_CHARS: &[char] = &['a', 'Z', '0', ' ', '_', 'é', 'ß', '日', '🍄'];
/// Random cases per message.
pub(crate) const RANDOM_CASES: u64 = 3;

/// A special float value, applied to every float of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Special {
    /// The canonical quiet NaN (f64 `0x7ff8000000000000`, f32 `0x7fc00000`).
    Nan,
    /// A signalling NaN with the smallest payload (f64 `0x7ff0000000000001`, f32
    /// `0x7f800001`): converting it through the other width, as an f32 held in a double
    /// (OCaml, Python) is, quiets it unless done by hand, and the bytes must not change.
    SignallingNan,
    /// A negative quiet NaN with a payload (f64 `0xfff8000000000001`, f32 `0xffc00001`): sign
    /// and payload must survive too.
    NanPayload,
    Inf,
    NegInf,
    NegZero,
    /// The smallest positive subnormal.
    Subnormal,
}

/// One family of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    /// Zero, false, empty: what a default-constructed message holds.
    Zeros,
    /// Largest integers and floats, long strings, lists of two.
    Max,
    /// Smallest integers and floats, one-element lists.
    Min,
    /// Every float set to one special value; the rest ordinary.
    Float(Special),
    /// Every string set to non-ASCII text; the rest ordinary.
    Unicode,
    /// Every top-level list holds [`LONG_LIST_LEN`] elements.
    LongLists,
    /// Pseudo-random values from a fixed seed.
    Random(u64),
}

impl Case {
    /// The suffix of the vector name, e.g. `neg-inf` in `Quote-neg-inf`.
    pub(crate) fn label(self) -> String {
        match self {
            Case::Zeros => "zeros".into(),
            Case::Max => "max".into(),
            Case::Min => "min".into(),
            Case::Float(Special::Nan) => "nan".into(),
            Case::Float(Special::SignallingNan) => "snan".into(),
            Case::Float(Special::NanPayload) => "nan-payload".into(),
            Case::Float(Special::Inf) => "inf".into(),
            Case::Float(Special::NegInf) => "neg-inf".into(),
            Case::Float(Special::NegZero) => "neg-zero".into(),
            Case::Float(Special::Subnormal) => "subnormal".into(),
            Case::Unicode => "unicode".into(),
            Case::LongLists => "long-lists".into(),
            Case::Random(n) => format!("random-{n}"),
        }
    }
}

/// What a message contains anywhere inside it (through nested messages and lists).
#[derive(Debug, Default, Clone, Copy)]
struct Contents {
    float: bool,
    string: bool,
}

fn contents(schema: &Schema, message: &MessageDef) -> Contents {
    let mut found = Contents::default();
    let mut pending: Vec<&FieldType> = message.fields.iter().map(|f| &f.ty).collect();
    // A validated schema has no recursion; the visit budget only guards hand-built ones.
    let mut budget = 100_000usize;
    while let Some(ty) = pending.pop() {
        budget = match budget.checked_sub(1) {
            Some(left) => left,
            None => break,
        };
        match ty {
            FieldType::Scalar(Scalar::F32 | Scalar::F64) => found.float = true,
            FieldType::String => found.string = true,
            FieldType::List(inner) => pending.push(inner),
            FieldType::Message(name) => {
                if let Some(def) = schema.message_by_name(name) {
                    pending.extend(def.fields.iter().map(|f| &f.ty));
                }
            }
            _ => {}
        }
    }
    found
}

/// The cases worth generating for `message`, in file order.
pub(crate) fn cases_for(schema: &Schema, message: &MessageDef) -> Vec<Case> {
    if message.fields.is_empty() {
        return vec![Case::Zeros];
    }
    let found = contents(schema, message);
    let mut cases = vec![Case::Zeros, Case::Max, Case::Min];
    if found.float {
        cases.extend(
            [
                Special::Nan,
                Special::SignallingNan,
                Special::NanPayload,
                Special::Inf,
                Special::NegInf,
                Special::NegZero,
                Special::Subnormal,
            ]
            .map(Case::Float),
        );
    }
    if found.string {
        cases.push(Case::Unicode);
    }
    if message
        .fields
        .iter()
        .any(|f| matches!(f.ty, FieldType::List(_)))
    {
        cases.push(Case::LongLists);
    }
    cases.extend((1..=RANDOM_CASES).map(Case::Random));
    cases
}

/// Builds JSON values for one (message, case) pair.
pub(crate) struct ValueBuilder<'s> {
    schema: &'s Schema,
    case: Case,
    rng: SplitMix64,
}

impl<'s> ValueBuilder<'s> {
    /// The seed depends only on the message name and the case, so adding a message to
    /// the schema leaves every other message's vectors unchanged.
    pub(crate) fn new(schema: &'s Schema, message: &MessageDef, case: Case) -> Self {
        let seed = fnv1a(message.name.as_bytes()) ^ fnv1a(case.label().as_bytes()).rotate_left(17);
        ValueBuilder {
            schema,
            case,
            rng: SplitMix64::new(seed),
        }
    }

    pub(crate) fn message(&mut self, message: &MessageDef) -> Json {
        self.message_at(message, 0)
    }

    fn message_at(&mut self, message: &MessageDef, depth: usize) -> Json {
        let mut object = Map::new();
        for field in &message.fields {
            let value = self.field(&field.ty, depth);
            object.insert(field.name.clone(), value);
        }
        Json::Object(object)
    }

    fn field(&mut self, ty: &FieldType, depth: usize) -> Json {
        match ty {
            FieldType::Scalar(s) => self.scalar(*s),
            FieldType::String => Json::String(self.string()),
            FieldType::Bytes => Json::String(hex::encode(self.bytes())),
            FieldType::Array(n) => Json::String(hex::encode(self.array(usize::from(*n)))),
            FieldType::List(inner) => {
                let len = self.list_len(inner, depth);
                Json::Array((0..len).map(|_| self.field(inner, depth + 1)).collect())
            }
            FieldType::Message(name) => match self.schema.message_by_name(name) {
                Some(def) => self.message_at(def, depth + 1),
                // Unreachable for a validated schema; encoding reports the bad value.
                None => Json::Null,
            },
        }
    }

    fn list_len(&mut self, element: &FieldType, depth: usize) -> usize {
        match self.case {
            Case::Zeros => 0,
            Case::Min => 1,
            Case::Max | Case::Float(_) | Case::Unicode => 2,
            Case::LongLists if depth == 0 => {
                let element_size = self.schema.min_encoded_size(element).max(1);
                (LONG_LIST_BYTE_BUDGET / element_size).clamp(2, LONG_LIST_LEN)
            }
            Case::LongLists | Case::Random(_) => self.rng.below(4) as usize,
        }
    }

    fn scalar(&mut self, scalar: Scalar) -> Json {
        match scalar {
            Scalar::F32 | Scalar::F64 => self.float(scalar == Scalar::F32),
            Scalar::Bool => Json::Bool(match self.case {
                Case::Zeros | Case::Min => false,
                Case::Max => true,
                _ => self.rng.below(2) == 1,
            }),
            _ => self.integer(scalar),
        }
    }

    fn integer(&mut self, scalar: Scalar) -> Json {
        let (min, max): (i128, i128) = match scalar {
            Scalar::U8 => (0, u8::MAX.into()),
            Scalar::U16 => (0, u16::MAX.into()),
            Scalar::U32 => (0, u32::MAX.into()),
            Scalar::U64 => (0, u64::MAX.into()),
            Scalar::I8 => (i8::MIN.into(), i8::MAX.into()),
            Scalar::I16 => (i16::MIN.into(), i16::MAX.into()),
            Scalar::I32 => (i32::MIN.into(), i32::MAX.into()),
            _ => (i64::MIN.into(), i64::MAX.into()),
        };
        let value = match self.case {
            Case::Zeros => 0,
            Case::Max => max,
            Case::Min => min,
            Case::Random(_) => {
                // Full-width bits, truncated to the type: covers sign bits and high bytes.
                let bits = i128::from(self.rng.next_u64());
                min + bits.rem_euclid(max - min + 1)
            }
            // Small ordinary values keep the special-purpose cases readable.
            _ => (i128::from(self.rng.below(200)) + min.max(-100)).min(max),
        };
        integer_json(value)
    }

    fn float(&mut self, is_f32: bool) -> Json {
        let value: f64 = match self.case {
            Case::Zeros => 0.0,
            Case::Max if is_f32 => f64::from(f32::MAX),
            Case::Max => f64::MAX,
            Case::Min if is_f32 => f64::from(f32::MIN),
            Case::Min => f64::MIN,
            Case::Float(Special::Nan) => return json!("NaN"),
            // The JSON mapping's spelling of a NaN other than the canonical one: its bits.
            Case::Float(Special::SignallingNan) if is_f32 => return json!("NaN:0x7f800001"),
            Case::Float(Special::SignallingNan) => return json!("NaN:0x7ff0000000000001"),
            Case::Float(Special::NanPayload) if is_f32 => return json!("NaN:0xffc00001"),
            Case::Float(Special::NanPayload) => return json!("NaN:0xfff8000000000001"),
            Case::Float(Special::Inf) => return json!("inf"),
            Case::Float(Special::NegInf) => return json!("-inf"),
            Case::Float(Special::NegZero) => -0.0,
            Case::Float(Special::Subnormal) if is_f32 => f64::from(f32::from_bits(1)),
            Case::Float(Special::Subnormal) => f64::from_bits(1),
            // Dyadic fractions with few significant bits are exact in f32 and f64 alike,
            // so the JSON number, the wire bits and the decoded value all agree.
            _ if is_f32 => f64::from(self.rng.next_u64() as i16) / 16.0,
            _ => (self.rng.next_u64() as i32) as f64 / 1024.0,
        };
        let value = if is_f32 {
            shortest_f32_decimal(value)
        } else {
            value
        };
        // Only NaN and the infinities have no JSON number, and they returned above.
        Number::from_f64(value).map_or(Json::Null, Json::Number)
    }

    fn string(&mut self) -> String {
        match self.case {
            Case::Zeros => String::new(),
            Case::Max => "0123456789abcdef".repeat(MAX_CASE_LEN / 16),
            Case::Min => "a".into(),
            Case::Unicode => UNICODE_TEXT.into(),
            _ => {
                let len = self.rng.below(12) as usize;
                (0..len)
                    .map(|_| RANDOM_CHARS[self.rng.below(RANDOM_CHARS.len() as u64) as usize])
                    .collect()
            }
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        match self.case {
            Case::Zeros => Vec::new(),
            Case::Max => vec![0xff; MAX_CASE_LEN],
            Case::Min => vec![0],
            _ => {
                let len = self.rng.below(9) as usize;
                self.random_bytes(len)
            }
        }
    }

    fn array(&mut self, len: usize) -> Vec<u8> {
        match self.case {
            Case::Zeros => vec![0; len],
            Case::Max => vec![0xff; len],
            // Counting bytes make an off-by-one in a decoder visible.
            Case::Min => (0..len).map(|i| i as u8).collect(),
            _ => self.random_bytes(len),
        }
    }

    fn random_bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.rng.next_u64() as u8).collect()
    }
}

/// An f32 is written as the shortest decimal that reads back as the same f32
/// (`3.4028235e38`, not `3.4028234663852886e38`), the form the protocol's JSON mapping
/// prints, so decoding a frame reproduces the listed value exactly.
fn shortest_f32_decimal(value: f64) -> f64 {
    let single = value as f32;
    single.to_string().parse().unwrap_or(value)
}

fn integer_json(value: i128) -> Json {
    if let Ok(v) = u64::try_from(value) {
        Json::from(v)
    } else if let Ok(v) = i64::try_from(value) {
        Json::from(v)
    } else {
        // Callers only pass values inside the u64 or i64 range.
        Json::Null
    }
}

/// 64-bit FNV-1a: a stable, dependency-free hash for seeds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
