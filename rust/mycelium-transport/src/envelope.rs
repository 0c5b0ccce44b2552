//! The unit a subscriber's queue holds.

use std::time::Instant;

use bytes::Bytes;

/// One published message as seen by one subscriber.
///
/// Cloning is cheap: the payload is reference-counted, so fan-out to N subscribers shares one
/// buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Schema type id the message was published under.
    pub type_id: u16,
    /// Encoded payload (TLV, no frame header).
    pub payload: Bytes,
    /// When the publish started; the delivery-latency histogram measures from here.
    pub published_at: Instant,
}

impl Envelope {
    /// A new envelope stamped with the current time.
    pub fn new(type_id: u16, payload: Bytes) -> Self {
        Envelope {
            type_id,
            payload,
            published_at: Instant::now(),
        }
    }
}
