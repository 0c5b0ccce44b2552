//! Request/reply across NATS (issue 14's services over issue 15's engine).
//!
//! - **Served here, asked elsewhere**: while a local responder (not one of this join's proxies)
//!   serves a service, the join subscribes to its subject `<prefix>._svc.<schema>.<Req>.<Rep>`
//!   and answers each NATS request by asking the local bus on NATS's behalf (origin: this
//!   join, so the request never comes back out through our own proxy).
//! - **Asked here, served elsewhere**: for every service the schema declares that no local
//!   responder serves, the join registers a proxy responder on the bus that forwards the
//!   request as a NATS request (with the requester's remaining time) and answers with what
//!   comes back. A local responder, when there is one, keeps requests local: the proxy goes.
//! - Every bus serving a service on NATS gets each request; the requester takes the first
//!   answer (as on one bus, where the first reply wins). A gathering request
//!   (`request_all`) counts NATS as one responder.
//! - Headers: the request and reply carry the message fingerprint and schema digest like a
//!   publish; `Mycelium-Timeout-Ms` the requester's remaining time; an error answer is an
//!   empty payload with `Mycelium-Error`. Nobody on NATS serving is a typed failure at once
//!   (NATS's "no responders"), not a timeout.
//!
//! The services subjects sit outside `<prefix>.<schema>.>`, so a JetStream stream of the
//! schema's messages never stores requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mycelium_transport::{IncomingRequest, RawResponder, RequestError, ServeOptions, Stopper};

use crate::{AbortOnDrop, Shared};

/// NATS header with the requester's remaining time, in milliseconds.
pub const TIMEOUT_HEADER: &str = "Mycelium-Timeout-Ms";
/// NATS header of an error answer: why the request failed on the serving side.
pub const ERROR_HEADER: &str = "Mycelium-Error";
/// How long a request from a non-Mycelium requester (no timeout header) may take here.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// A service the join can carry: its (request, reply) type ids, name and NATS subject.
#[derive(Debug, Clone)]
pub(crate) struct ServiceRoute {
    pub(crate) key: (u16, u16),
    pub(crate) name: String,
    pub(crate) subject: String,
}

/// A proxy responder of the join; stopping it happens on drop.
pub(crate) struct Proxy {
    stopper: Stopper,
    _task: AbortOnDrop,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stopper.stop();
    }
}

impl Shared {
    /// The route of a (request, reply) pair whose types the schema defines.
    pub(crate) fn service_route(&self, key: (u16, u16)) -> Option<ServiceRoute> {
        if let Some(declared) = self.declared.iter().find(|s| s.key == key) {
            return Some(declared.clone());
        }
        let request = self.validator.message_name(key.0)?;
        let reply = self.validator.message_name(key.1)?;
        Some(ServiceRoute {
            key,
            name: format!("{request} -> {reply}"),
            subject: format!("{}{request}.{reply}", self.service_root),
        })
    }
}

/// Answers the NATS requests of one service served on the local bus, each in its own task.
pub(crate) fn serve_on_nats(
    shared: &Arc<Shared>,
    route: ServiceRoute,
    mut requests: async_nats::Subscriber,
) -> AbortOnDrop {
    let shared = Arc::clone(shared);
    AbortOnDrop(tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let shared = Arc::clone(&shared);
            let route = route.clone();
            tokio::spawn(async move { answer(&shared, &route, message).await });
        }
    }))
}

async fn answer(shared: &Shared, route: &ServiceRoute, message: async_nats::Message) {
    let Some(reply_to) = message.reply.clone() else {
        shared.stats.invalid.inc(); // a publish on a service subject: nobody to answer
        return;
    };
    let (request_type, reply_type) = route.key;
    let refused = if shared
        .fingerprint_mismatch(request_type, &message)
        .is_some()
    {
        Some(format!(
            "the requester's definition of {} differs from the server's",
            route.name
        ))
    } else {
        shared
            .validator
            .validate(request_type, &message.payload)
            .err()
            .map(|e| format!("invalid request for {}: {e}", route.name))
    };
    let result = match refused {
        Some(reason) => Err(reason),
        None => {
            let timeout = message
                .headers
                .as_ref()
                .and_then(|h| h.get(TIMEOUT_HEADER))
                .and_then(|v| v.as_str().parse::<u64>().ok())
                .map_or(DEFAULT_REMOTE_TIMEOUT, Duration::from_millis);
            match shared
                .bus
                .request_raw_from_async(
                    shared.origin,
                    request_type,
                    reply_type,
                    message.payload.clone(),
                    timeout,
                )
                .await
            {
                Ok(reply) => Ok(reply),
                // The requester's own timer reports it: an answer would arrive too late.
                Err(RequestError::Timeout { .. }) => return,
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let (headers, payload) = match result {
        Ok(reply) => {
            shared.stats.requests_served.inc();
            (shared.schema_headers(reply_type), reply)
        }
        Err(reason) => {
            shared.stats.request_failures.inc();
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(ERROR_HEADER, reason.as_str());
            (headers, Bytes::new())
        }
    };
    let _ = shared
        .client
        .publish_with_headers(reply_to, headers, payload)
        .await;
}

/// A proxy responder on the local bus for a service nobody serves here.
pub(crate) fn proxy(shared: &Arc<Shared>, route: ServiceRoute, label: String) -> Proxy {
    let options = ServeOptions::default()
        .with_origin(shared.origin)
        .with_label(label);
    let responder: RawResponder = shared.bus.serve_raw(route.key.0, route.key.1, options);
    let stopper = responder.stopper();
    let shared = Arc::clone(shared);
    let task = tokio::spawn(async move {
        while let Some(request) = responder.recv().await {
            let shared = Arc::clone(&shared);
            let route = route.clone();
            tokio::spawn(async move { forward(&shared, &route, request).await });
        }
    });
    Proxy {
        stopper,
        _task: AbortOnDrop(task),
    }
}

async fn forward(shared: &Shared, route: &ServiceRoute, request: IncomingRequest) {
    let (request_type, reply_type) = route.key;
    let remaining = request.remaining();
    if remaining.is_zero() {
        return request.leave_unanswered();
    }
    let mut headers = shared.schema_headers(request_type);
    headers.insert(TIMEOUT_HEADER, remaining.as_millis().to_string().as_str());
    let nats_request = async_nats::Request::new()
        .headers(headers)
        .payload(request.payload().clone())
        .timeout(Some(remaining));
    shared.stats.requests_sent.inc();
    let asked = shared
        .client
        .send_request(route.subject.clone(), nats_request);
    let answer = match tokio::time::timeout(remaining, asked).await {
        Ok(answer) => answer,
        Err(_) => return request.leave_unanswered(), // the requester times out by itself
    };
    let message = match answer {
        Ok(message) => message,
        Err(e) => {
            use async_nats::RequestErrorKind as Kind;
            if e.kind() == Kind::TimedOut {
                return request.leave_unanswered();
            }
            shared.stats.request_failures.inc();
            let reason = if e.kind() == Kind::NoResponders {
                format!("no responder serves {} on this bus or on NATS", route.name)
            } else {
                format!("the request for {} over NATS failed: {e}", route.name)
            };
            return request.fail(reason);
        }
    };
    if let Some(error) = message.headers.as_ref().and_then(|h| h.get(ERROR_HEADER)) {
        shared.stats.request_failures.inc();
        return request.fail(format!("{} (answered over NATS)", error.as_str()));
    }
    if shared.fingerprint_mismatch(reply_type, &message).is_some() {
        shared.stats.request_failures.inc();
        return request.fail(format!(
            "the reply over NATS comes from a bus whose definition of {} differs",
            route.name
        ));
    }
    if let Err(e) = shared.validator.validate(reply_type, &message.payload) {
        shared.stats.request_failures.inc();
        return request.fail(format!("the reply over NATS does not validate: {e}"));
    }
    request.reply(message.payload);
}
