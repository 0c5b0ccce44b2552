//! A byte stream read frame by frame as a bridge session reads it, control frames decoded;
//! the first byte picks the payload limit. Also the protocol's own frame header parser.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mycelium_bridge::fuzzing::read_frames;
use mycelium_protocol::{decode_frame, FrameHeader, FRAME_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max_payload = [0, 16, 1 << 10, 1 << 20][usize::from(limit & 3)];
    let seen = read_frames(stream, max_payload);
    assert!(!seen.is_empty());
    if let Ok((_, payload)) = decode_frame(stream) {
        assert_eq!(payload.len() + FRAME_HEADER_LEN, stream.len());
    }
    if stream.len() >= FRAME_HEADER_LEN {
        if let Ok(header) = FrameHeader::parse(&stream[..FRAME_HEADER_LEN]) {
            assert_eq!(header.to_bytes(), stream[..FRAME_HEADER_LEN]);
        }
    }
});
