//! The trait every generated message type implements.

/// Why a payload could not be decoded. Never a panic, never an unbounded allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before `what` could be read.
    #[error("truncated at byte {offset}: needed {needed} more byte(s) for {what}")]
    Truncated {
        offset: usize,
        needed: usize,
        what: String,
    },
    /// Bytes left after the last field.
    #[error("{count} trailing byte(s) after the last field at byte {offset}")]
    TrailingBytes { offset: usize, count: usize },
    /// A string field is not valid UTF-8.
    #[error("invalid UTF-8 in {what} at byte {offset}")]
    InvalidUtf8 { offset: usize, what: String },
    /// A bool byte other than 0 or 1.
    #[error("invalid bool value {value} in {what} at byte {offset}")]
    InvalidBool {
        offset: usize,
        value: u8,
        what: String,
    },
    /// A length or element count claims more bytes than the input holds.
    #[error(
        "{what} at byte {offset} claims {claimed} element(s); only {available} byte(s) remain"
    )]
    CountTooLarge {
        offset: usize,
        claimed: u64,
        available: usize,
        what: String,
    },
    /// The payload exceeds the maximum payload size.
    #[error("payload of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The frame names another type id than the one expected.
    #[error("type id {found} where {expected} was expected")]
    WrongType { expected: u16, found: u16 },
    /// The type id is not part of the schema.
    #[error("unknown type id {0}")]
    UnknownType(u16),
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded payload would exceed the maximum payload size.
    #[error("encoded payload of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// A value does not fit its field (e.g. a list longer than u32::MAX).
    #[error("{field}: {reason}")]
    OutOfRange { field: String, reason: String },
    /// A string, byte string or list is longer than its u32 length prefix can express.
    #[error("length {len} does not fit the u32 length prefix (at most 4294967295)")]
    LengthOverflow { len: usize },
}

/// A typed message generated from `contracts.yaml`.
pub trait Message: Sized + Send + Sync + 'static {
    /// The schema's numeric type id for this message.
    const TYPE_ID: u16;
    /// The message name as written in the schema.
    const NAME: &'static str;
    /// Hex SHA-256 fingerprint of this message's canonical description.
    const FINGERPRINT: &'static str;

    /// Appends the TLV payload (no frame header) to `out`.
    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Decodes a whole payload (no frame header); trailing bytes are an error.
    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError>;
}

/// A request/reply service declared in `contracts.yaml` (`services:`); generated code defines
/// one marker type per service implementing this trait, so a bus can offer typed client and
/// server calls for it (`MessageBus::call::<RiskCheck>` / `serve_service::<RiskCheck, _>`).
pub trait Service: 'static {
    /// The service's name in the schema.
    const NAME: &'static str;
    /// The message a client sends.
    type Request: Message;
    /// The message a server answers with.
    type Reply: Message;
}
