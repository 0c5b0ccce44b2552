//! Callback subscriptions: a tokio task that feeds every message to a closure.

use std::any::Any;
use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use mycelium_protocol::Message;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::bus::{check_options, MessageBus};
use crate::config::SubscribeOptions;
use crate::error::{HandlerJoinError, SubscribeError};
use crate::raw_subscription::RawSubscription;
use crate::subscriber::SubscriberShared;
use crate::topic::Topic;
use crate::typed::note_decode_error;

/// A handler that never awaits could starve its worker while its queue stays non-empty;
/// yielding after this many messages in a row lets other tasks run.
const YIELD_EVERY: u32 = 64;

/// Control over a handler started by [`MessageBus::subscribe_handler`].
///
/// Dropping the handle detaches it: the handler keeps running until its subscription ends
/// (bus closed, [`stop`](Self::stop), [`abort`](Self::abort)) or its runtime shuts down.
#[must_use = "dropping the handle leaves the handler running until the bus closes"]
pub struct HandlerHandle {
    task: JoinHandle<()>,
    shared: Arc<SubscriberShared>,
    topic: Arc<Topic>,
}

impl std::fmt::Debug for HandlerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerHandle")
            .field("subscription_id", &self.shared.id)
            .field("type_id", &self.shared.type_id)
            .field("finished", &self.task.is_finished())
            .finish()
    }
}

impl HandlerHandle {
    /// Id of the handler's subscription (as in metrics).
    pub fn subscription_id(&self) -> u64 {
        self.shared.id
    }

    /// Handler calls so far that returned `Err` or panicked.
    pub fn handler_errors(&self) -> u64 {
        self.shared.stats.handler_errors.load(Ordering::Relaxed)
    }

    /// Graceful stop: no new messages are routed to the handler; it processes what is
    /// already queued, then its task ends. Await [`join`](Self::join) to wait for that.
    pub fn stop(&self) {
        self.topic.remove(self.shared.id);
        self.shared.close_queue();
    }

    /// Immediate stop: the task is cancelled at its next await point; messages still queued
    /// are counted as dropped.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the task to end. `Ok` after the subscription ended normally (bus closed or
    /// [`stop`](Self::stop)); `Cancelled` after [`abort`](Self::abort) or runtime shutdown.
    pub async fn join(self) -> Result<(), HandlerJoinError> {
        self.task.await.map_err(|error| {
            if error.is_panic() {
                HandlerJoinError::Panicked(panic_text(error.into_panic().as_ref()))
            } else {
                HandlerJoinError::Cancelled
            }
        })
    }
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

enum Failure {
    Decode(mycelium_protocol::DecodeError),
    Handler(String),
}

async fn run_handler<T, F, E>(subscription: RawSubscription, mut handler: F)
where
    T: Message,
    F: FnMut(T) -> Result<(), E>,
    E: Display,
{
    let mut in_a_row = 0u32;
    while let Some(envelope) = subscription.recv().await {
        // Decoding runs inside the guard too: a hand-written `Message` impl may panic.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let msg = T::decode_payload(&envelope.payload).map_err(Failure::Decode)?;
            handler(msg).map_err(|e| Failure::Handler(e.to_string()))
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Decode(error))) => {
                note_decode_error(&subscription, envelope.type_id, &error);
            }
            Ok(Err(Failure::Handler(message))) => {
                subscription
                    .record_handler_failure(format!("handler returned an error: {message}"));
            }
            Err(panic) => {
                subscription.record_handler_failure(format!(
                    "handler panicked: {}",
                    panic_text(panic.as_ref())
                ));
            }
        }
        in_a_row += 1;
        if in_a_row == YIELD_EVERY {
            in_a_row = 0;
            tokio::task::yield_now().await;
        }
    }
}

impl MessageBus {
    /// Runs `handler` on every `T` published, as a task on the current tokio runtime.
    ///
    /// The handler is called for one message at a time, in queue order. An `Err` return or a
    /// panic counts as a handler error (kept in metrics with its message) and delivery goes
    /// on with the next message. A payload that does not decode as `T` counts as a decode
    /// error. The task ends when its subscription ends: see [`HandlerHandle`].
    ///
    /// The handler runs on a runtime worker, so it should not block for long.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`, and on a capacity out of range, as
    /// [`subscribe_raw`](Self::subscribe_raw). Use
    /// [`try_subscribe_handler`](Self::try_subscribe_handler) to get an error instead.
    pub fn subscribe_handler<T, F, E>(&self, opts: SubscribeOptions, handler: F) -> HandlerHandle
    where
        T: Message,
        F: FnMut(T) -> Result<(), E> + Send + 'static,
        E: Display + 'static,
    {
        match Handle::try_current() {
            Ok(runtime) => self.subscribe_handler_on(&runtime, opts, handler),
            Err(_) => panic!("{}", SubscribeError::NoRuntime),
        }
    }

    /// Like [`subscribe_handler`](Self::subscribe_handler), but returns an error outside a
    /// runtime or for an out-of-range capacity or spin instead of panicking.
    pub fn try_subscribe_handler<T, F, E>(
        &self,
        opts: SubscribeOptions,
        handler: F,
    ) -> Result<HandlerHandle, SubscribeError>
    where
        T: Message,
        F: FnMut(T) -> Result<(), E> + Send + 'static,
        E: Display + 'static,
    {
        check_options(&opts)?;
        let runtime = Handle::try_current().map_err(|_| SubscribeError::NoRuntime)?;
        Ok(self.subscribe_handler_on(&runtime, opts, handler))
    }

    /// Like [`subscribe_handler`](Self::subscribe_handler), on the given runtime; callable
    /// from any thread. Panics on a capacity out of range, as
    /// [`subscribe_raw`](Self::subscribe_raw).
    pub fn subscribe_handler_on<T, F, E>(
        &self,
        runtime: &Handle,
        opts: SubscribeOptions,
        handler: F,
    ) -> HandlerHandle
    where
        T: Message,
        F: FnMut(T) -> Result<(), E> + Send + 'static,
        E: Display + 'static,
    {
        let subscription = self.subscribe_with(T::TYPE_ID, opts, Some(T::NAME));
        let shared = Arc::clone(subscription.shared());
        let topic = Arc::clone(subscription.topic());
        let task = runtime.spawn(run_handler::<T, F, E>(subscription, handler));
        HandlerHandle {
            task,
            shared,
            topic,
        }
    }
}
