//! Writer/Reader round trips, every decode error, and frame handling.

use super::*;
use crate::message::{DecodeError, EncodeError, Message};

/// A hand-written message the way generated code would look: u32, string, list<u16>, bool.
#[derive(Debug, PartialEq)]
struct Sample {
    id: u32,
    name: String,
    values: Vec<u16>,
    flag: bool,
}

impl Message for Sample {
    const TYPE_ID: u16 = 42;
    const NAME: &'static str = "Sample";
    const FINGERPRINT: &'static str = "";

    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut w = Writer::new(out);
        w.put_u32(self.id);
        w.put_str(&self.name)?;
        w.put_count(self.values.len())?;
        for v in &self.values {
            w.put_u16(*v);
        }
        w.put_bool(self.flag);
        Ok(())
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let id = r.get_u32("Sample.id")?;
        let name = r.get_str("Sample.name")?.to_owned();
        let count = r.get_count(2, "Sample.values")?;
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            values.push(r.get_u16("Sample.values[]")?);
        }
        let flag = r.get_bool("Sample.flag")?;
        r.finish()?;
        Ok(Sample {
            id,
            name,
            values,
            flag,
        })
    }
}

fn sample() -> Sample {
    Sample {
        id: 7,
        name: "héllo".into(),
        values: vec![1, 0xBEEF],
        flag: true,
    }
}

#[test]
fn every_put_has_the_documented_layout_and_reads_back() {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    w.put_u8(0xAB);
    w.put_u16(0x0102);
    w.put_u32(0x0304_0506);
    w.put_u64(0x0708_090A_0B0C_0D0E);
    w.put_i8(-2);
    w.put_i16(-3);
    w.put_i32(-4);
    w.put_i64(-5);
    w.put_f32(-0.0);
    w.put_f64(f64::from_bits(0x7FF8_0000_0000_0001));
    w.put_bool(false);
    w.put_str("ok").unwrap();
    w.put_bytes(&[9, 8]).unwrap();
    w.put_array(&[1, 2, 3, 4]);
    w.put_count(3).unwrap();
    assert_eq!(&buf[..3], [0xAB, 0x02, 0x01]);
    assert_eq!(&buf[3..7], [0x06, 0x05, 0x04, 0x03]);
    assert_eq!(&buf[15..16], [0xFE]);
    assert_eq!(&buf[16..18], [0xFD, 0xFF]);

    let mut r = Reader::new(&buf);
    assert_eq!(r.get_u8("a").unwrap(), 0xAB);
    assert_eq!(r.get_u16("a").unwrap(), 0x0102);
    assert_eq!(r.get_u32("a").unwrap(), 0x0304_0506);
    assert_eq!(r.get_u64("a").unwrap(), 0x0708_090A_0B0C_0D0E);
    assert_eq!(r.get_i8("a").unwrap(), -2);
    assert_eq!(r.get_i16("a").unwrap(), -3);
    assert_eq!(r.get_i32("a").unwrap(), -4);
    assert_eq!(r.get_i64("a").unwrap(), -5);
    assert_eq!(r.get_f32("a").unwrap().to_bits(), (-0.0f32).to_bits());
    assert_eq!(r.get_f64("a").unwrap().to_bits(), 0x7FF8_0000_0000_0001);
    assert!(!r.get_bool("a").unwrap());
    assert_eq!(r.get_str("a").unwrap(), "ok");
    assert_eq!(r.get_bytes("a").unwrap(), [9, 8]);
    assert_eq!(r.get_array::<4>("a").unwrap(), [1, 2, 3, 4]);
    assert_eq!(r.remaining(), 4);
    assert!(matches!(
        r.finish(),
        Err(DecodeError::TrailingBytes { count: 4, .. })
    ));
    assert_eq!(r.get_u32("a").unwrap(), 3);
    r.finish().unwrap();
}

#[test]
fn message_round_trips_through_a_frame() {
    let frame = encode_message(&sample()).unwrap();
    assert_eq!(&frame[..2], 42u16.to_le_bytes());
    assert_eq!(
        frame.len(),
        FRAME_HEADER_LEN + u32::from_le_bytes(frame[2..6].try_into().unwrap()) as usize
    );
    assert_eq!(decode_message::<Sample>(&frame).unwrap(), sample());

    // encode_message_into appends after existing content.
    let mut buf = vec![0xEE];
    encode_message_into(&sample(), &mut buf).unwrap();
    assert_eq!(&buf[1..], frame);
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let frame = encode_message(&sample()).unwrap();
    for len in 0..frame.len() {
        assert!(decode_frame(&frame[..len]).is_err(), "frame cut at {len}");
        let (_, payload) = decode_frame(&frame).unwrap();
        if len < payload.len() {
            let err = Sample::decode_payload(&payload[..len]).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::Truncated { .. } | DecodeError::CountTooLarge { .. }
                ),
                "payload cut at {len}: {err:?}"
            );
        }
    }
}

#[test]
fn truncation_error_names_offset_and_field() {
    let err = Reader::new(&[1, 2, 3]).get_u64("Tick.ts_ns").unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            offset: 0,
            needed: 5,
            what: "Tick.ts_ns".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "truncated at byte 0: needed 5 more byte(s) for Tick.ts_ns"
    );
    // A length prefix that claims more than is there.
    let err = Reader::new(&[10, 0, 0, 0, b'a'])
        .get_str("M.s")
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::Truncated {
            offset: 4,
            needed: 9,
            what: "M.s".into()
        }
    );
}

#[test]
fn trailing_bytes_are_an_error() {
    let mut frame = encode_message(&sample()).unwrap();
    let (_, payload) = decode_frame(&frame).unwrap();
    let mut longer = payload.to_vec();
    longer.push(0);
    let err = Sample::decode_payload(&longer).unwrap_err();
    assert_eq!(
        err,
        DecodeError::TrailingBytes {
            offset: payload.len(),
            count: 1
        }
    );
    frame.extend_from_slice(&[1, 2]);
    assert_eq!(
        decode_frame(&frame).unwrap_err(),
        DecodeError::TrailingBytes {
            offset: frame.len() - 2,
            count: 2
        }
    );
}

#[test]
fn invalid_utf8_is_an_error_with_the_bad_byte_offset() {
    let err = Reader::new(&[3, 0, 0, 0, b'a', 0xFF, b'b'])
        .get_str("M.s")
        .unwrap_err();
    assert_eq!(
        err,
        DecodeError::InvalidUtf8 {
            offset: 5,
            what: "M.s".into()
        }
    );
    // The same bytes are fine as `bytes`.
    assert_eq!(
        Reader::new(&[3, 0, 0, 0, b'a', 0xFF, b'b'])
            .get_bytes("M.b")
            .unwrap(),
        [b'a', 0xFF, b'b']
    );
}

#[test]
fn bool_other_than_zero_or_one_is_an_error() {
    let err = Reader::new(&[2]).get_bool("M.flag").unwrap_err();
    assert_eq!(
        err,
        DecodeError::InvalidBool {
            offset: 0,
            value: 2,
            what: "M.flag".into()
        }
    );
    assert!(Reader::new(&[1]).get_bool("M.flag").unwrap());
}

#[test]
fn huge_count_fails_before_allocating() {
    // A 10-byte frame whose payload claims 4e9 list elements.
    let mut frame = Vec::new();
    encode_frame(1, &[0x00, 0x28, 0x6B, 0xEE], &mut frame).unwrap();
    assert_eq!(frame.len(), 10);
    let (_, payload) = decode_frame(&frame).unwrap();
    let err = Reader::new(payload).get_count(1, "M.items").unwrap_err();
    assert_eq!(
        err,
        DecodeError::CountTooLarge {
            offset: 0,
            claimed: 4_000_000_000,
            available: 0,
            what: "M.items".into()
        }
    );
    // A count that fits the bytes but not times the element size.
    let err = Reader::new(&[3, 0, 0, 0, 1, 2, 3, 4, 5])
        .get_count(2, "M.v")
        .unwrap_err();
    assert!(matches!(
        err,
        DecodeError::CountTooLarge {
            claimed: 3,
            available: 5,
            ..
        }
    ));
    assert_eq!(
        Reader::new(&[2, 0, 0, 0, 1, 2, 3, 4])
            .get_count(2, "M.v")
            .unwrap(),
        2
    );
    // A zero element size is treated as one byte, so the count stays bounded by the input.
    assert!(Reader::new(&[5, 0, 0, 0, 0, 0])
        .get_count(0, "M.v")
        .is_err());
}

#[test]
fn frame_header_limits() {
    let header = FrameHeader {
        type_id: 0x0102,
        payload_len: 3,
    };
    assert_eq!(header.to_bytes(), [0x02, 0x01, 3, 0, 0, 0]);
    assert_eq!(FrameHeader::parse(&header.to_bytes()).unwrap(), header);
    let too_big = FrameHeader {
        type_id: 1,
        payload_len: MAX_PAYLOAD as u32 + 1,
    }
    .to_bytes();
    assert_eq!(
        FrameHeader::parse(&too_big).unwrap_err(),
        DecodeError::TooLarge {
            len: MAX_PAYLOAD + 1,
            max: MAX_PAYLOAD
        }
    );
    assert!(matches!(
        FrameHeader::parse(&[1, 0, 0]).unwrap_err(),
        DecodeError::Truncated {
            offset: 3,
            needed: 3,
            ..
        }
    ));
}

#[test]
fn oversized_payloads_are_refused_when_encoding() {
    let payload = vec![0u8; MAX_PAYLOAD + 1];
    let mut out = Vec::new();
    assert_eq!(
        encode_frame(1, &payload, &mut out).unwrap_err(),
        EncodeError::TooLarge {
            len: MAX_PAYLOAD + 1,
            max: MAX_PAYLOAD
        }
    );
    assert!(out.is_empty());

    struct Huge;
    impl Message for Huge {
        const TYPE_ID: u16 = 1;
        const NAME: &'static str = "Huge";
        const FINGERPRINT: &'static str = "";
        fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
            out.resize(out.len() + MAX_PAYLOAD + 1, 0);
            Ok(())
        }
        fn decode_payload(_: &[u8]) -> Result<Self, DecodeError> {
            Ok(Huge)
        }
    }
    let mut buf = vec![1, 2, 3];
    assert!(matches!(
        encode_message_into(&Huge, &mut buf),
        Err(EncodeError::TooLarge { .. })
    ));
    assert_eq!(
        buf,
        [1, 2, 3],
        "a failed encode leaves the buffer as it was"
    );
}

#[test]
fn wrong_type_id_is_reported() {
    let mut frame = Vec::new();
    encode_frame(43, &[], &mut frame).unwrap();
    assert_eq!(
        decode_message::<Sample>(&frame).unwrap_err(),
        DecodeError::WrongType {
            expected: 42,
            found: 43
        }
    );
}

#[test]
fn array_ref_borrows_and_reports_truncation() {
    let data = [1u8, 2, 3];
    let mut r = Reader::new(&data);
    assert_eq!(r.get_array_ref::<2>("a").unwrap(), &[1, 2]);
    assert_eq!(
        r.get_array_ref::<2>("M.venue").unwrap_err(),
        DecodeError::Truncated {
            offset: 2,
            needed: 1,
            what: "M.venue".into()
        }
    );
    // A failed read does not move the cursor.
    assert_eq!(r.position(), 2);
}

#[test]
#[cfg(target_pointer_width = "64")]
fn lengths_beyond_u32_are_refused() {
    let mut buf = Vec::new();
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        w.put_count(u32::MAX as usize + 1),
        Err(EncodeError::LengthOverflow {
            len: u32::MAX as usize + 1
        })
    );
    assert!(w.is_empty(), "nothing is written on error");
    w.put_count(u32::MAX as usize).unwrap();
    assert_eq!(buf, [0xFF; 4]);
}
