//! Errors from loading and validating a schema. Every validation error names the message
//! (and field) it is about, so a user can find the line to fix.

use std::fmt;
use std::path::PathBuf;

use super::field_type::TypeParseError;
use super::model::MAX_NESTING_DEPTH;

/// Why a schema could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file could not be read.
    #[error("cannot read schema file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Any other error, wrapped with the file it came from.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: Box<SchemaError>,
    },
    /// The text nests collections deeper than any schema can (refused before parsing, in
    /// linear time: the YAML parser's time grows with the square of the depth).
    #[error("schema text nests deeper than {limit} levels at line {line}, column {column}")]
    NestingTooDeep {
        limit: usize,
        line: usize,
        column: usize,
    },
    /// The text is not YAML of the expected shape; serde's message keeps line and column.
    #[error("invalid schema YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// The YAML parsed but breaks one or more rules; all of them are listed.
    #[error("{}", InvalidList(.0, &[]))]
    Invalid(Vec<ValidationError>),
    /// As [`SchemaError::Invalid`], for schema text: each error with the place it points at
    /// (`positions[i]` for `errors[i]`; `None` where it could not be found).
    #[error("{}", InvalidList(errors, positions))]
    Located {
        /// Every broken rule.
        errors: Vec<ValidationError>,
        /// Where each one is in the text.
        positions: Vec<Option<Position>>,
    },
}

/// A place in the schema text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The line itself, as written.
    pub snippet: String,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}:\n      | {}",
            self.line, self.column, self.snippet
        )
    }
}

impl SchemaError {
    /// The validation errors, looking through a [`SchemaError::File`] wrapper; empty for
    /// I/O and YAML errors.
    pub fn validation_errors(&self) -> &[ValidationError] {
        match self {
            SchemaError::Invalid(errors) | SchemaError::Located { errors, .. } => errors,
            SchemaError::File { source, .. } => source.validation_errors(),
            _ => &[],
        }
    }

    /// Where each of [`validation_errors`](Self::validation_errors) is in the schema text, in
    /// the same order; empty when the schema did not come from text.
    pub fn positions(&self) -> &[Option<Position>] {
        match self {
            SchemaError::Located { positions, .. } => positions,
            SchemaError::File { source, .. } => source.positions(),
            _ => &[],
        }
    }
}

struct InvalidList<'a>(&'a [ValidationError], &'a [Option<Position>]);

impl fmt::Display for InvalidList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |i: usize| self.1.get(i).and_then(Option::as_ref);
        match self.0 {
            [one] => {
                write!(f, "invalid schema: {one}")?;
                if let Some(p) = at(0) {
                    write!(f, "\n    at {p}")?;
                }
                Ok(())
            }
            many => {
                write!(f, "invalid schema ({} errors):", many.len())?;
                for (i, error) in many.iter().enumerate() {
                    write!(f, "\n  - {error}")?;
                    if let Some(p) = at(i) {
                        write!(f, "\n    at {p}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A type id as a reader finds it in the schema: in hex (as ids near the reserved range are
/// usually written) with the decimal beside it, plain decimal for small ids.
pub(crate) struct ShownId(pub u16);

impl fmt::Display for ShownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 0x100 {
            write!(f, "0x{:04X} ({})", self.0, self.0)
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("schema name is empty")]
    EmptySchemaName,
    #[error("message {message}: bad name (message names match [A-Z][A-Za-z0-9]*, e.g. TradeTick)")]
    BadMessageName { message: String },
    #[error("message {message}: defined more than once")]
    DuplicateMessageName { message: String },
    #[error(
        "message {message}: type id {} is reserved (0 and 0xFF00..=0xFFFF are control frames)",
        ShownId(*.id)
    )]
    ReservedTypeId { message: String, id: u16 },
    #[error("message {message}: type id {} is already used by message {other}", ShownId(*.id))]
    DuplicateTypeId {
        message: String,
        other: String,
        id: u16,
    },
    /// A `fields` item that is not a one-key map `name: type` with a text type.
    #[error(
        "message {message}, field #{position}: expected a one-key map `name: type`, found {found}"
    )]
    BadFieldEntry {
        message: String,
        /// 1-based position in the `fields` list.
        position: usize,
        found: String,
    },
    #[error("message {message}, field {field}: bad name (field names match [a-z][a-z0-9_]*, e.g. ts_ns)")]
    BadFieldName { message: String, field: String },
    #[error("message {message}, field {field}: '{field}' is a keyword in {languages}; pick another name")]
    KeywordFieldName {
        message: String,
        field: String,
        languages: String,
    },
    #[error("message {message}, field {field}: defined more than once")]
    DuplicateFieldName { message: String, field: String },
    /// The type spelling is not a type (`f65`, `bytes[0]`, ...).
    #[error("message {message}, field {field}: {source}")]
    BadType {
        message: String,
        field: String,
        source: TypeParseError,
    },
    #[error("message {message}, field {field}: unknown type '{ty}' (not a built-in type, and no message named {name} is defined){}", .suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    UnknownMessage {
        message: String,
        field: String,
        ty: String,
        name: String,
        /// The nearest message or built-in type name, when one is close.
        suggestion: Option<String>,
    },
    /// A message contains itself, directly or through other messages or lists.
    #[error("message {message}, field {field}: recursive nesting {}", .cycle.join(" -> "))]
    RecursiveNesting {
        message: String,
        field: String,
        /// The messages on the cycle, starting and ending with `message`.
        cycle: Vec<String>,
    },
    /// `list<M>` where M encodes to zero bytes, so a count could not be bounded by the input.
    #[error("message {message}, field {field}: list element type {element} encodes to zero bytes (it has no fields, or only fields of such messages), so its count could not be checked against the input; add a field to {element}")]
    ZeroSizedListElement {
        message: String,
        field: String,
        element: String,
    },
    #[error("message {message}: messages and lists nest {depth} levels deep (at most {MAX_NESTING_DEPTH} allowed)")]
    TooDeep { message: String, depth: usize },
    #[error("service {service}: bad name (service names match [A-Z][A-Za-z0-9]*, e.g. RiskCheck)")]
    BadServiceName { service: String },
    #[error("service {service}: defined more than once")]
    DuplicateServiceName { service: String },
    /// Generated code names a service's helpers after it, next to the message types.
    #[error("service {service}: a message has the same name; pick another name for the service")]
    ServiceNamedLikeMessage { service: String },
    /// `request:` or `reply:` names no message of the schema.
    #[error("service {service}, {role}: no message named {name} is defined{}", .suggestion.as_ref().map(|s| format!("; did you mean {s}?")).unwrap_or_default())]
    UnknownServiceMessage {
        service: String,
        /// `request` or `reply`.
        role: &'static str,
        name: String,
        /// The nearest message name, when one is close.
        suggestion: Option<String>,
    },
}

impl ValidationError {
    /// The message the error is about, if any.
    pub fn message(&self) -> Option<&str> {
        use ValidationError::*;
        match self {
            EmptySchemaName => None,
            BadMessageName { message }
            | DuplicateMessageName { message }
            | ReservedTypeId { message, .. }
            | DuplicateTypeId { message, .. }
            | BadFieldEntry { message, .. }
            | BadFieldName { message, .. }
            | KeywordFieldName { message, .. }
            | DuplicateFieldName { message, .. }
            | BadType { message, .. }
            | UnknownMessage { message, .. }
            | RecursiveNesting { message, .. }
            | ZeroSizedListElement { message, .. }
            | TooDeep { message, .. } => Some(message),
            BadServiceName { .. }
            | DuplicateServiceName { .. }
            | ServiceNamedLikeMessage { .. }
            | UnknownServiceMessage { .. } => None,
        }
    }

    /// The service the error is about, if any.
    pub fn service(&self) -> Option<&str> {
        use ValidationError::*;
        match self {
            BadServiceName { service }
            | DuplicateServiceName { service }
            | ServiceNamedLikeMessage { service }
            | UnknownServiceMessage { service, .. } => Some(service),
            _ => None,
        }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        use ValidationError::*;
        match self {
            BadFieldName { field, .. }
            | KeywordFieldName { field, .. }
            | DuplicateFieldName { field, .. }
            | BadType { field, .. }
            | UnknownMessage { field, .. }
            | RecursiveNesting { field, .. }
            | ZeroSizedListElement { field, .. } => Some(field),
            _ => None,
        }
    }
}
