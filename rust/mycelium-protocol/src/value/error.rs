//! Errors from building or encoding a [`Value`](super::Value), located by field path.

use crate::message::EncodeError;

/// A value that does not fit the schema, e.g. `TickBatch.ticks[3].price: expected a number,
/// found a string`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ValueError {
    /// Where, e.g. `TickBatch.ticks[3].price`.
    pub path: String,
    pub kind: ValueErrorKind,
}

/// What is wrong with the value at the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueErrorKind {
    #[error("expected {expected}, found {found}")]
    Expected { expected: String, found: String },
    #[error("{value} is out of range for {ty}")]
    OutOfRange { value: String, ty: &'static str },
    #[error("missing field (the message needs: {needed})")]
    MissingField { needed: String },
    #[error("unknown field '{field}' (the message has: {known})")]
    UnknownField { field: String, known: String },
    #[error("invalid hex string: {0}")]
    BadHex(String),
    #[error("expected exactly {expected} bytes, found {found}")]
    WrongLength { expected: usize, found: usize },
    #[error("message {0} is not defined by the schema")]
    UnknownMessage(String),
    #[error(transparent)]
    Encode(EncodeError),
}
