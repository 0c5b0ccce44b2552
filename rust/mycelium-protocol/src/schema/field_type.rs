//! Field types as written in `contracts.yaml` (`u32`, `bytes[4]`, `list<TradeTick>`, ...) and
//! their parser. The `Display` form is the schema spelling, which for every type except nested
//! messages is also the canonical type name used by the digest.

use std::fmt;

/// Fixed-width primitive types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    F32,
    F64,
    Bool,
}

impl Scalar {
    /// Every scalar, in the order the documentation lists them.
    pub const ALL: [Scalar; 11] = [
        Scalar::U8,
        Scalar::U16,
        Scalar::U32,
        Scalar::U64,
        Scalar::I8,
        Scalar::I16,
        Scalar::I32,
        Scalar::I64,
        Scalar::F32,
        Scalar::F64,
        Scalar::Bool,
    ];

    /// The schema spelling (`u8`, `f64`, `bool`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Scalar::U8 => "u8",
            Scalar::U16 => "u16",
            Scalar::U32 => "u32",
            Scalar::U64 => "u64",
            Scalar::I8 => "i8",
            Scalar::I16 => "i16",
            Scalar::I32 => "i32",
            Scalar::I64 => "i64",
            Scalar::F32 => "f32",
            Scalar::F64 => "f64",
            Scalar::Bool => "bool",
        }
    }

    /// Encoded size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Scalar::U8 | Scalar::I8 | Scalar::Bool => 1,
            Scalar::U16 | Scalar::I16 => 2,
            Scalar::U32 | Scalar::I32 | Scalar::F32 => 4,
            Scalar::U64 | Scalar::I64 | Scalar::F64 => 8,
        }
    }

    /// Looks a scalar up by its schema spelling.
    pub fn from_name(name: &str) -> Option<Scalar> {
        Scalar::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of one field.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldType {
    Scalar(Scalar),
    /// UTF-8 text with a u32 length prefix.
    String,
    /// Raw bytes with a u32 length prefix.
    Bytes,
    /// `bytes[N]`: exactly N raw bytes, no prefix. N is 1..=65535.
    Array(u16),
    /// `list<T>`: u32 element count, then the elements.
    List(Box<FieldType>),
    /// A nested message, by name; its payload is inlined.
    Message(String),
}

impl FieldType {
    /// Parses the schema spelling of a type. Message names are accepted syntactically
    /// (`[A-Z][A-Za-z0-9]*`); whether they exist is checked by schema validation.
    pub fn parse(text: &str) -> Result<FieldType, TypeParseError> {
        parse_at_depth(text.trim(), 0)
    }

    /// The nested message this type refers to, looking through lists.
    pub fn message_name(&self) -> Option<&str> {
        match self {
            FieldType::Message(name) => Some(name),
            FieldType::List(inner) => inner.message_name(),
            _ => None,
        }
    }

    /// How many `list<...>` wrappers and nested types this type spells out (a scalar is 0,
    /// `list<u8>` is 1); message nesting is not followed here.
    pub fn syntactic_depth(&self) -> usize {
        match self {
            FieldType::List(inner) => 1 + inner.syntactic_depth(),
            _ => 0,
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Scalar(s) => f.write_str(s.name()),
            FieldType::String => f.write_str("string"),
            FieldType::Bytes => f.write_str("bytes"),
            FieldType::Array(n) => write!(f, "bytes[{n}]"),
            FieldType::List(inner) => write!(f, "list<{inner}>"),
            FieldType::Message(name) => f.write_str(name),
        }
    }
}

impl std::str::FromStr for FieldType {
    type Err = TypeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::parse(s)
    }
}

/// How deeply `list<...>` may nest inside one type spelling. Real schemas use two or three
/// levels; the bound keeps recursive parsers and decoders far from the stack limit.
pub const MAX_TYPE_NESTING: usize = 32;

/// Why a type spelling was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeParseError {
    #[error("unknown type '{0}' (expected one of u8, u16, u32, u64, i8, i16, i32, i64, f32, f64, bool, string, bytes, bytes[N], list<T>, or a message name){hint}", hint = super::suggest::built_in_hint(.0))]
    Unknown(String),
    #[error(
        "bad fixed-size byte array '{0}': N in bytes[N] must be a whole number from 1 to 65535"
    )]
    BadArrayLength(String),
    #[error("type '{0}' nests list<...> more than {MAX_TYPE_NESTING} levels deep")]
    TooDeep(String),
}

fn parse_at_depth(text: &str, depth: usize) -> Result<FieldType, TypeParseError> {
    if let Some(scalar) = Scalar::from_name(text) {
        return Ok(FieldType::Scalar(scalar));
    }
    match text {
        "string" => return Ok(FieldType::String),
        "bytes" => return Ok(FieldType::Bytes),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix("bytes[") {
        let digits = rest
            .strip_suffix(']')
            .ok_or_else(|| TypeParseError::BadArrayLength(text.to_owned()))?;
        let digits = digits.trim();
        // `parse` alone would accept a leading '+'; the spelling is plain decimal digits.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TypeParseError::BadArrayLength(text.to_owned()));
        }
        return match digits.parse::<u16>() {
            Ok(n) if n >= 1 => Ok(FieldType::Array(n)),
            _ => Err(TypeParseError::BadArrayLength(text.to_owned())),
        };
    }
    if let Some(rest) = text.strip_prefix("list<") {
        let inner = rest
            .strip_suffix('>')
            .ok_or_else(|| TypeParseError::Unknown(text.to_owned()))?;
        if depth + 1 > MAX_TYPE_NESTING {
            return Err(TypeParseError::TooDeep(text.to_owned()));
        }
        return match parse_at_depth(inner.trim(), depth + 1) {
            Ok(inner) => Ok(FieldType::List(Box::new(inner))),
            // Report the whole spelling so the user sees which field's type is wrong.
            Err(TypeParseError::Unknown(_)) => Err(TypeParseError::Unknown(text.to_owned())),
            Err(other) => Err(other),
        };
    }
    if is_message_name(text) {
        return Ok(FieldType::Message(text.to_owned()));
    }
    Err(TypeParseError::Unknown(text.to_owned()))
}

/// `[A-Z][A-Za-z0-9]*`
pub(crate) fn is_message_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z')) && bytes.all(|b| b.is_ascii_alphanumeric())
}

/// `[a-z][a-z0-9_]*`
pub(crate) fn is_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_and_prints_it_back() {
        for text in [
            "u8",
            "u16",
            "u32",
            "u64",
            "i8",
            "i16",
            "i32",
            "i64",
            "f32",
            "f64",
            "bool",
            "string",
            "bytes",
            "bytes[1]",
            "bytes[65535]",
            "list<u8>",
            "list<list<string>>",
            "list<TradeTick>",
            "PriceLevel",
        ] {
            let ty = FieldType::parse(text).unwrap();
            assert_eq!(ty.to_string(), text);
        }
    }

    #[test]
    fn tolerates_spaces_inside_brackets() {
        assert_eq!(
            FieldType::parse(" list< bytes[ 4 ] > ").unwrap(),
            FieldType::List(Box::new(FieldType::Array(4)))
        );
    }

    #[test]
    fn rejects_bad_spellings() {
        for text in [
            "f65",
            "list<f65>",
            "list<u8",
            "tradeTick",
            "",
            "list<>",
            "str",
        ] {
            assert!(
                matches!(FieldType::parse(text), Err(TypeParseError::Unknown(_))),
                "{text}"
            );
        }
        for text in [
            "bytes[0]",
            "bytes[65536]",
            "bytes[]",
            "bytes[+4]",
            "bytes[4",
            "bytes[x]",
        ] {
            assert!(
                matches!(
                    FieldType::parse(text),
                    Err(TypeParseError::BadArrayLength(_))
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn unknown_inner_type_reports_whole_spelling() {
        assert_eq!(
            FieldType::parse("list<list<f65>>"),
            Err(TypeParseError::Unknown("list<list<f65>>".into()))
        );
    }

    #[test]
    fn bounds_list_nesting() {
        let ok = format!(
            "{}u8{}",
            "list<".repeat(MAX_TYPE_NESTING),
            ">".repeat(MAX_TYPE_NESTING)
        );
        assert_eq!(
            FieldType::parse(&ok).unwrap().syntactic_depth(),
            MAX_TYPE_NESTING
        );
        let deep = format!("list<{ok}>");
        assert!(matches!(
            FieldType::parse(&deep),
            Err(TypeParseError::TooDeep(_))
        ));
    }

    #[test]
    fn names() {
        assert!(is_message_name("TradeTick2"));
        assert!(!is_message_name("tradeTick"));
        assert!(!is_message_name("Trade_Tick"));
        assert!(is_field_name("ts_ns"));
        assert!(!is_field_name("_x"));
        assert!(!is_field_name("Price"));
        assert!(!is_field_name("a-b"));
    }
}
