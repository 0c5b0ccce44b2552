//! Frames: `type_id u16 | payload_len u32 | payload`, little-endian, and the typed
//! encode/decode helpers built on them.

use crate::message::{DecodeError, EncodeError, Message};

use super::reader::truncated;

/// Bytes in a frame header: a u16 type id and a u32 payload length.
pub const FRAME_HEADER_LEN: usize = 6;

/// The largest payload a frame may carry: 16 MiB.
pub const MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub type_id: u16,
    /// At most [`MAX_PAYLOAD`].
    pub payload_len: u32,
}

impl FrameHeader {
    /// Parses the first [`FRAME_HEADER_LEN`] bytes of `bytes` (the rest is ignored, so a
    /// stream reader can call this as soon as 6 bytes arrived) and checks the length limit.
    pub fn parse(bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
        let Some(header) = bytes.first_chunk::<FRAME_HEADER_LEN>() else {
            return Err(truncated(
                bytes.len(),
                FRAME_HEADER_LEN - bytes.len(),
                "frame header",
            ));
        };
        let type_id = u16::from_le_bytes([header[0], header[1]]);
        let payload_len = u32::from_le_bytes([header[2], header[3], header[4], header[5]]);
        if payload_len as usize > MAX_PAYLOAD {
            return Err(DecodeError::TooLarge {
                len: payload_len as usize,
                max: MAX_PAYLOAD,
            });
        }
        Ok(FrameHeader {
            type_id,
            payload_len,
        })
    }

    /// The 6 header bytes.
    pub fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let [a, b] = self.type_id.to_le_bytes();
        let [c, d, e, f] = self.payload_len.to_le_bytes();
        [a, b, c, d, e, f]
    }

    /// Header plus payload length.
    pub fn frame_len(self) -> usize {
        FRAME_HEADER_LEN + self.payload_len as usize
    }
}

/// Appends a frame holding `payload` to `out`.
pub fn encode_frame(type_id: u16, payload: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let payload_len = checked_payload_len(payload.len())?;
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(
        &FrameHeader {
            type_id,
            payload_len,
        }
        .to_bytes(),
    );
    out.extend_from_slice(payload);
    Ok(())
}

/// Splits one complete frame into its type id and payload. The slice must be exactly one
/// frame: shorter is [`DecodeError::Truncated`], longer is [`DecodeError::TrailingBytes`].
/// Offsets in these errors count from the start of the frame.
pub fn decode_frame(bytes: &[u8]) -> Result<(u16, &[u8]), DecodeError> {
    let header = FrameHeader::parse(bytes)?;
    let end = header.frame_len();
    match bytes.len() {
        len if len < end => Err(truncated(len, end - len, "frame payload")),
        len if len > end => Err(DecodeError::TrailingBytes {
            offset: end,
            count: len - end,
        }),
        _ => Ok((header.type_id, &bytes[FRAME_HEADER_LEN..])),
    }
}

/// Encodes `message` as a complete frame.
pub fn encode_message<M: Message>(message: &M) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(64);
    encode_message_into(message, &mut out)?;
    Ok(out)
}

/// Appends `message` as a complete frame to `out` (to reuse a buffer). On error `out` is
/// left as it was.
pub fn encode_message_into<M: Message>(message: &M, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    // The payload is written in place after a placeholder header that is patched once the
    // length is known, so the payload is never copied.
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    let result = message
        .encode_payload(out)
        .and_then(|()| checked_payload_len(out.len() - start - FRAME_HEADER_LEN));
    match result {
        Ok(payload_len) => {
            let header = FrameHeader {
                type_id: M::TYPE_ID,
                payload_len,
            };
            out[start..start + FRAME_HEADER_LEN].copy_from_slice(&header.to_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Decodes a complete frame as `M`, checking the type id. Offsets in payload errors count
/// from the start of the payload.
pub fn decode_message<M: Message>(frame: &[u8]) -> Result<M, DecodeError> {
    let (type_id, payload) = decode_frame(frame)?;
    if type_id != M::TYPE_ID {
        return Err(DecodeError::WrongType {
            expected: M::TYPE_ID,
            found: type_id,
        });
    }
    M::decode_payload(payload)
}

fn checked_payload_len(len: usize) -> Result<u32, EncodeError> {
    if len > MAX_PAYLOAD {
        return Err(EncodeError::TooLarge {
            len,
            max: MAX_PAYLOAD,
        });
    }
    // MAX_PAYLOAD < u32::MAX, so this cannot fail after the check above.
    u32::try_from(len).map_err(|_| EncodeError::TooLarge {
        len,
        max: MAX_PAYLOAD,
    })
}
