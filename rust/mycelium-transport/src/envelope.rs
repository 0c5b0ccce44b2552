//! The unit a subscriber's queue holds.

use crate::stamp::Stamp;

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
    pub published_at: Stamp,
    /// Who published it: [`Envelope::LOCAL_ORIGIN`] for ordinary publishes, or the id given to
    /// [`MessageBus::publish_raw_from`](crate::MessageBus::publish_raw_from). A socket bridge
    /// tags what it receives from a peer with that connection's id, so its own forwarding
    /// subscription can recognise the message and not send it back where it came from.
    pub origin: u64,
    /// The topic it was published with ([`MessageBus::publish_on`](crate::MessageBus::publish_on)),
    /// if any.
    pub topic: Option<crate::TopicName>,
}

impl Envelope {
    /// The origin of every message published without
    /// [`publish_raw_from`](crate::MessageBus::publish_raw_from).
    pub const LOCAL_ORIGIN: u64 = 0;

    /// A new envelope of local origin stamped with the current time.
    pub fn new(type_id: u16, payload: Bytes) -> Self {
        Envelope::from_origin(Envelope::LOCAL_ORIGIN, type_id, payload)
    }

    /// A new envelope tagged with `origin`, stamped with the current time.
    pub fn from_origin(origin: u64, type_id: u16, payload: Bytes) -> Self {
        Envelope {
            type_id,
            payload,
            published_at: Stamp::now(),
            origin,
            topic: None,
        }
    }
}
