//! The topic of a message being delivered (ABI 1.5, `mycelium_message_topic`).
//!
//! `mycelium_message` cannot grow a `topic` field: callers written against an older header
//! walk batch arrays with the old struct size. So a callback asks for the topic of a message
//! it was handed, by the message's address, while the delivery runs: this thread-local records
//! which messages the thread is delivering now and the envelopes they came from.

use std::cell::Cell;

use mycelium_transport::Envelope;

use crate::subscription::mycelium_message;

/// The batch a callback on this thread is being handed: `views[0]` shows `*head`, `views[i]`
/// shows `tail[i - 1]` (a pull receiver's first message is taken apart from the rest).
#[derive(Clone, Copy)]
struct Delivering {
    views: *const mycelium_message,
    count: usize,
    head: *const Envelope,
    tail: *const Envelope,
}

thread_local! {
    static DELIVERING: Cell<Option<Delivering>> = const { Cell::new(None) };
}

/// Runs `f` (the call that hands `views` to foreign code) with the topics of `views` available
/// to [`topic_of`] on this thread. The batch this thread was delivering before (a callback
/// that receives from a pull receiver inside its own delivery) is restored afterwards, even if
/// `f` unwinds.
pub(crate) fn delivering<R>(
    views: &[mycelium_message],
    head: &Envelope,
    tail: &[Envelope],
    f: impl FnOnce() -> R,
) -> R {
    assert_eq!(views.len(), 1 + tail.len(), "one view per envelope");
    struct Restore(Option<Delivering>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DELIVERING.with(|d| d.set(self.0));
        }
    }
    let now = Delivering {
        views: views.as_ptr(),
        count: views.len(),
        head,
        tail: tail.as_ptr(),
    };
    let _restore = Restore(DELIVERING.with(|d| d.replace(Some(now))));
    f()
}

/// Why [`topic_of`] found nothing to answer with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotDelivering {
    /// This thread is not inside a delivery callback (or a pull receiver's visit) now.
    Idle,
    /// It is, but `message` is not one of the messages that call was handed.
    Elsewhere,
}

/// The topic of `message` as (address, length) of its UTF-8 bytes (`None`: published without
/// one), if `message` is the address of one of the messages this thread's innermost delivery
/// is handing over. The bytes are the envelope's, alive until that delivery returns.
pub(crate) fn topic_of(
    message: *const mycelium_message,
) -> Result<Option<(*const u8, usize)>, NotDelivering> {
    let now = DELIVERING.with(|d| d.get()).ok_or(NotDelivering::Idle)?;
    let size = std::mem::size_of::<mycelium_message>();
    let offset = (message as usize).wrapping_sub(now.views as usize);
    if !offset.is_multiple_of(size) || offset / size >= now.count {
        return Err(NotDelivering::Elsewhere);
    }
    let index = offset / size;
    let envelope = if index == 0 {
        now.head
    } else {
        // SAFETY: `tail` holds `count - 1` envelopes (checked in `delivering`) and `index - 1`
        // is below that.
        unsafe { now.tail.add(index - 1) }
    };
    // SAFETY: the envelopes outlive the `delivering` call that recorded them, and this thread
    // is inside that call (the record is removed when it returns).
    let envelope = unsafe { &*envelope };
    Ok(envelope
        .topic
        .as_ref()
        .map(|t| (t.as_str().as_ptr(), t.as_str().len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use mycelium_transport::TopicName;

    fn envelope(topic: Option<&str>) -> Envelope {
        let mut e = Envelope::new(1, Bytes::from_static(b"x"));
        e.topic = topic.map(|t| TopicName::new(t).unwrap());
        e
    }

    /// `topic_of`, read as text (only while the delivery runs).
    fn text(message: *const mycelium_message) -> Result<Option<String>, NotDelivering> {
        Ok(topic_of(message)?.map(|(ptr, len)| {
            // SAFETY (test): called inside the delivery, where the bytes are alive.
            let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
            String::from_utf8(bytes.to_vec()).unwrap()
        }))
    }

    fn view() -> mycelium_message {
        mycelium_message {
            type_id: 1,
            payload: std::ptr::null(),
            len: 0,
            queued_ns: 0,
        }
    }

    #[test]
    fn each_view_finds_its_own_envelope_and_only_during_the_delivery() {
        let head = envelope(Some("ticks/BTC"));
        let tail = [envelope(None), envelope(Some("ticks/ETH"))];
        let views = [view(), view(), view()];
        assert_eq!(topic_of(&views[0]), Err(NotDelivering::Idle));
        delivering(&views, &head, &tail, || {
            assert_eq!(text(&views[0]), Ok(Some("ticks/BTC".to_string())));
            assert_eq!(text(&views[1]), Ok(None));
            assert_eq!(text(&views[2]), Ok(Some("ticks/ETH".to_string())));
            let copy = views[2];
            assert_eq!(topic_of(&copy), Err(NotDelivering::Elsewhere), "a copy");
            // SAFETY (test): only the address is used, never dereferenced.
            let past_end = unsafe { views.as_ptr().add(3) };
            assert_eq!(topic_of(past_end), Err(NotDelivering::Elsewhere));
            let inside = (views.as_ptr() as usize + 4) as *const mycelium_message;
            assert_eq!(
                topic_of(inside),
                Err(NotDelivering::Elsewhere),
                "misaligned"
            );
        });
        assert_eq!(topic_of(&views[0]), Err(NotDelivering::Idle));
    }

    #[test]
    fn a_nested_delivery_is_searched_and_the_outer_one_restored_even_after_a_panic() {
        let outer = envelope(Some("a/b"));
        let inner = envelope(Some("c"));
        let (outer_views, inner_views) = ([view()], [view()]);
        delivering(&outer_views, &outer, &[], || {
            let unwound = std::panic::catch_unwind(|| {
                delivering(&inner_views, &inner, &[], || {
                    assert_eq!(text(&inner_views[0]), Ok(Some("c".to_string())));
                    assert_eq!(topic_of(&outer_views[0]), Err(NotDelivering::Elsewhere));
                    panic!("a callback that unwinds");
                })
            });
            assert!(unwound.is_err());
            assert_eq!(text(&outer_views[0]), Ok(Some("a/b".to_string())));
        });
    }
}
