//! The wire codec: frame helpers plus the [`Writer`] and [`Reader`] that generated code uses
//! to encode and decode payloads. See `docs/wire-format.md` for the layout.

mod frame;
mod reader;
mod writer;

pub use frame::{
    decode_frame, decode_message, encode_frame, encode_message, encode_message_into, FrameHeader,
    FRAME_HEADER_LEN, MAX_PAYLOAD,
};
pub use reader::Reader;
pub use writer::Writer;

#[cfg(test)]
mod tests;
