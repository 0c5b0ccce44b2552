//! Helpers shared by the integration tests.
// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

pub mod prometheus_check;

use std::time::Duration;

use bytes::Bytes;
use mycelium_protocol::{DecodeError, EncodeError, Message};
use mycelium_transport::{MessageBus, MetricsSnapshot};

/// A hand-written message: 4-byte sensor id and 8-byte value, little-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub sensor: u32,
    pub value: i64,
}

impl Message for Reading {
    const TYPE_ID: u16 = 100;
    const NAME: &'static str = "Reading";
    const FINGERPRINT: &'static str = "test-only";

    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.extend_from_slice(&self.sensor.to_le_bytes());
        out.extend_from_slice(&self.value.to_le_bytes());
        Ok(())
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.len() < 12 {
            return Err(DecodeError::Truncated {
                offset: payload.len(),
                needed: 12 - payload.len(),
                what: "Reading".into(),
            });
        }
        if payload.len() > 12 {
            return Err(DecodeError::TrailingBytes {
                offset: 12,
                count: payload.len() - 12,
            });
        }
        let mut sensor = [0u8; 4];
        sensor.copy_from_slice(&payload[..4]);
        let mut value = [0u8; 8];
        value.copy_from_slice(&payload[4..]);
        Ok(Reading {
            sensor: u32::from_le_bytes(sensor),
            value: i64::from_le_bytes(value),
        })
    }
}

/// A message whose encoder always fails, to check that encode errors surface.
#[derive(Debug)]
pub struct Unencodable;

impl Message for Unencodable {
    const TYPE_ID: u16 = 101;
    const NAME: &'static str = "Unencodable";
    const FINGERPRINT: &'static str = "test-only";

    fn encode_payload(&self, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Err(EncodeError::OutOfRange {
            field: "items".into(),
            reason: "too many".into(),
        })
    }

    fn decode_payload(_payload: &[u8]) -> Result<Self, DecodeError> {
        Ok(Unencodable)
    }
}

/// Payload carrying (publisher, sequence) so receivers can check ordering.
pub fn tagged(publisher: u32, seq: u64) -> Bytes {
    let mut buf = Vec::with_capacity(12);
    buf.extend_from_slice(&publisher.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    Bytes::from(buf)
}

pub fn untag(payload: &[u8]) -> (u32, u64) {
    let mut publisher = [0u8; 4];
    publisher.copy_from_slice(&payload[..4]);
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&payload[4..12]);
    (u32::from_le_bytes(publisher), u64::from_le_bytes(seq))
}

/// Waits (without asserting on time) until `condition` holds on the bus metrics; gives up
/// after a generous bound so a broken implementation fails instead of hanging.
pub fn wait_for(bus: &MessageBus, what: &str, condition: impl Fn(&MetricsSnapshot) -> bool) {
    for _ in 0..20_000 {
        if condition(&bus.metrics()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("gave up waiting for: {what}");
}

/// Gives a thread that should be blocked the chance to (wrongly) finish.
pub fn pause() {
    std::thread::sleep(Duration::from_millis(50));
}
