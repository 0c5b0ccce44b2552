//! Typed subscriptions: a [`RawSubscription`] that decodes payloads into a [`Message`].

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_core::Stream;
use mycelium_protocol::{DecodeError, Message};

use crate::envelope::Envelope;
use crate::error::TryRecvError;
use crate::raw_subscription::RawSubscription;

/// A subscription that yields decoded `T`s. Dropping it unsubscribes.
///
/// A payload that does not decode as `T` (e.g. a foreign publisher built against another
/// schema) is skipped, counted in the subscriber's `decode_errors`, and kept as its
/// `last_error`; it still counts as delivered, since it left the queue.
pub struct Subscription<T> {
    raw: RawSubscription,
    // `fn() -> T` keeps the subscription Send + Sync whatever T is: it never stores a T.
    _type: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("type", &std::any::type_name::<T>())
            .field("raw", &self.raw)
            .finish()
    }
}

pub(crate) fn note_decode_error(raw: &RawSubscription, type_id: u16, error: &DecodeError) {
    let shared = raw.shared();
    shared.stats.decode_errors.fetch_add(1, Ordering::Relaxed);
    shared.stats.set_last_error(format!(
        "could not decode a type {type_id} payload: {error}"
    ));
}

impl<T: Message> Subscription<T> {
    pub(crate) fn new(raw: RawSubscription) -> Self {
        Subscription {
            raw,
            _type: PhantomData,
        }
    }

    fn decode(&self, envelope: &Envelope) -> Option<T> {
        match T::decode_payload(&envelope.payload) {
            Ok(msg) => Some(msg),
            Err(error) => {
                note_decode_error(&self.raw, envelope.type_id, &error);
                None
            }
        }
    }

    /// Subscriber id (see [`RawSubscription::id`]).
    pub fn id(&self) -> u64 {
        self.raw.id()
    }

    /// The untyped subscription underneath, for queue length, metrics or closing.
    pub fn raw(&self) -> &RawSubscription {
        &self.raw
    }

    /// Gives up typing and returns the raw subscription (still subscribed).
    pub fn into_raw(self) -> RawSubscription {
        self.raw
    }

    /// Awaits the next decodable message; `None` once closed and drained.
    pub async fn recv(&self) -> Option<T> {
        loop {
            let envelope = self.raw.recv().await?;
            if let Some(msg) = self.decode(&envelope) {
                return Some(msg);
            }
        }
    }

    /// Waits on this thread for the next decodable message; `None` once closed and drained.
    pub fn recv_blocking(&self) -> Option<T> {
        loop {
            let envelope = self.raw.recv_blocking()?;
            if let Some(msg) = self.decode(&envelope) {
                return Some(msg);
            }
        }
    }

    /// Takes the next decodable message if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        loop {
            let envelope = self.raw.try_recv()?;
            if let Some(msg) = self.decode(&envelope) {
                return Ok(msg);
            }
        }
    }

    /// Unsubscribes now (see [`RawSubscription::close`]).
    pub fn close(&self) {
        self.raw.close();
    }
}

impl<T: Message> Stream for Subscription<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        loop {
            match Pin::new(&mut this.raw).poll_next(cx) {
                Poll::Ready(Some(envelope)) => {
                    if let Some(msg) = this.decode(&envelope) {
                        return Poll::Ready(Some(msg));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
