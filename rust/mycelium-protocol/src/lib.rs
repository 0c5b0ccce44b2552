//! Mycelium protocol: the schema model (`contracts.yaml`), canonical schema digests,
//! the TLV wire codec and the [`Message`] trait implemented by generated types.
//!
//! - [`schema`]: load and validate a schema ([`Schema::from_path`]).
//! - [`digest`]: canonical description, per-message fingerprints, schema digest and diff.
//! - [`codec`]: frames plus the [`Writer`]/[`Reader`] generated code is written against.
//! - [`validate`]: a precomputed, allocation-free payload checker ([`Validator`]).
//! - [`value`]: a dynamic [`Value`] tree with JSON conversion, for tools and test vectors.

pub mod codec;
pub mod digest;
pub mod message;
pub mod schema;
pub mod serde_support;
pub mod validate;
pub mod value;

pub use codec::{
    decode_frame, decode_message, encode_frame, encode_message, encode_message_into, FrameHeader,
    Reader, Writer, FRAME_HEADER_LEN, MAX_PAYLOAD,
};
pub use digest::{diff_canonical, sha256_hex, CANONICAL_HEADER};
pub use message::{DecodeError, EncodeError, Message, Service};
pub use schema::{
    is_reserved_type_id, FieldDef, FieldType, MessageDef, Position, Scalar, Schema, SchemaError,
    ServiceDef, TypeParseError, ValidationError, MAX_NESTING_DEPTH,
};
pub use validate::Validator;
pub use value::{decode_value, encode_value, encode_value_into, Value, ValueError, ValueErrorKind};
