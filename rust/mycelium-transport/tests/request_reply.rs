//! Request/reply on the bus: typed and raw, first reply wins vs gather all, timeouts, no
//! responder, failing and panicking handlers, responders that go away mid-request, close,
//! concurrent requesters (counts reconcile), async forms and metrics.
//!
//! No test relies on timing for its verdict: waits that should end at once use hour-long
//! timeouts (a regression hangs the test instead of passing), and short timeouts are used
//! only where the timeout is the expected outcome.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use common::Reading;
use mycelium_protocol::{DecodeError, EncodeError, Message};
use mycelium_transport::{
    MessageBus, RequestError, ServeOptions, SubscribeOptions, TryRecvError, WaitHooks,
};

/// The reply type of the tests' service: a verdict on a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Verdict {
    sensor: u32,
    doubled: i64,
}

impl Message for Verdict {
    const TYPE_ID: u16 = 102;
    const NAME: &'static str = "Verdict";
    const FINGERPRINT: &'static str = "test-only";

    fn encode_payload(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Reading {
            sensor: self.sensor,
            value: self.doubled,
        }
        .encode_payload(out)
    }

    fn decode_payload(payload: &[u8]) -> Result<Self, DecodeError> {
        let r = Reading::decode_payload(payload)?;
        Ok(Verdict {
            sensor: r.sensor,
            doubled: r.value,
        })
    }
}

const LONG: Duration = Duration::from_secs(3600);
const SHORT: Duration = Duration::from_millis(30);
const REQ: u16 = Reading::TYPE_ID;
const REP: u16 = Verdict::TYPE_ID;

fn double(r: Reading) -> Result<Verdict, String> {
    Ok(Verdict {
        sensor: r.sensor,
        doubled: r.value * 2,
    })
}

fn reading(sensor: u32, value: i64) -> Reading {
    Reading { sensor, value }
}

#[test]
fn typed_request_gets_the_reply() {
    let bus = MessageBus::new();
    let _guard = bus.serve::<Reading, Verdict, _>(double);
    let verdict: Verdict = bus.request(&reading(3, 21), LONG).unwrap();
    assert_eq!(
        verdict,
        Verdict {
            sensor: 3,
            doubled: 42
        }
    );
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!((s.requests, s.replies, s.responders), (1, 1, 1));
    assert_eq!(s.request_name.as_deref(), Some("Reading"));
    assert_eq!(s.reply_name.as_deref(), Some("Verdict"));
}

#[test]
fn no_responder_is_immediate_and_counted() {
    let bus = MessageBus::new();
    let err = bus.request::<Reading, Verdict>(&reading(1, 1), LONG);
    assert_eq!(
        err,
        Err(RequestError::NoResponder {
            request_type: REQ,
            reply_type: REP
        })
    );
    // A responder of another reply type does not serve this service.
    let _other = bus.serve_raw(REQ, 999, ServeOptions::default());
    assert!(matches!(
        bus.request_raw(REQ, REP, Bytes::new(), LONG),
        Err(RequestError::NoResponder { .. })
    ));
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!((s.requests, s.no_responder, s.replies), (2, 2, 0));
}

#[test]
fn timeout_then_the_late_reply_is_discarded_and_counted() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let err = bus.request_raw(REQ, REP, Bytes::from_static(b"q"), SHORT);
    assert_eq!(err, Err(RequestError::Timeout { timeout: SHORT }));
    let request = responder.try_recv().expect("the request was queued");
    assert_eq!(request.payload(), &Bytes::from_static(b"q"));
    assert_ne!(request.correlation_id(), 0);
    request.reply(Bytes::from_static(b"too late"));
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!(
        (s.requests, s.timeouts, s.replies, s.late_replies),
        (1, 1, 0, 1)
    );
}

#[test]
fn a_failing_handler_reports_its_reason_and_keeps_serving() {
    let bus = MessageBus::new();
    let _guard = bus.serve::<Reading, Verdict, _>(|r| {
        if r.value > 100 {
            Err(format!("value {} is above the limit", r.value))
        } else {
            double(r)
        }
    });
    match bus.request::<Reading, Verdict>(&reading(1, 1000), LONG) {
        Err(RequestError::ResponderFailed { reason }) => {
            assert_eq!(reason, "value 1000 is above the limit")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    let ok: Verdict = bus.request(&reading(1, 5), LONG).unwrap();
    assert_eq!(ok.doubled, 10);
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!((s.requests, s.replies, s.responder_failures), (2, 1, 1));
}

#[test]
fn a_panicking_handler_is_a_failure_and_the_responder_survives() {
    let bus = MessageBus::new();
    let _guard = bus.serve::<Reading, Verdict, _>(|r| {
        if r.value < 0 {
            panic!("negative reading {}", r.value);
        }
        double(r)
    });
    match bus.request::<Reading, Verdict>(&reading(1, -7), LONG) {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("negative reading -7"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    for i in 0..3 {
        let ok: Verdict = bus.request(&reading(1, i), LONG).unwrap();
        assert_eq!(ok.doubled, 2 * i);
    }
    assert_eq!(bus.responder_count(REQ, REP), 1);
}

#[test]
fn a_request_that_does_not_decode_fails_without_calling_the_handler() {
    let bus = MessageBus::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let _guard = bus.serve::<Reading, Verdict, _>(move |r| {
        counted.fetch_add(1, Ordering::SeqCst);
        double(r)
    });
    match bus.request_raw(REQ, REP, Bytes::from_static(b"short"), LONG) {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("did not decode as Reading"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn first_reply_wins_and_later_ones_are_counted_late() {
    let bus = MessageBus::new();
    let a = bus.serve_raw(REQ, REP, ServeOptions::default());
    let b = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::from_static(b"?"), LONG))
    };
    let from_b = b.recv_blocking().unwrap();
    let from_a = a.recv_blocking().unwrap();
    assert_eq!(from_a.correlation_id(), from_b.correlation_id());
    from_b.reply(Bytes::from_static(b"b"));
    assert_eq!(requester.join().unwrap(), Ok(Bytes::from_static(b"b")));
    from_a.reply(Bytes::from_static(b"a"));
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!((s.requests, s.replies, s.late_replies), (1, 1, 1));
}

#[test]
fn first_wins_skips_a_failure_when_another_responder_replies() {
    let bus = MessageBus::new();
    let _failing = bus.serve_raw_with(REQ, REP, ServeOptions::default(), |_| {
        Err("out of order".to_owned())
    });
    let _working = bus.serve_raw_with(REQ, REP, ServeOptions::default(), Ok);
    for _ in 0..20 {
        assert_eq!(
            bus.request_raw(REQ, REP, Bytes::from_static(b"x"), LONG),
            Ok(Bytes::from_static(b"x"))
        );
    }
}

#[test]
fn every_responder_failing_reports_the_first_reason_and_the_count() {
    let bus = MessageBus::new();
    let a = bus.serve_raw(REQ, REP, ServeOptions::default());
    let b = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::new(), LONG))
    };
    a.recv_blocking().unwrap().fail("a broke");
    b.recv_blocking().unwrap().fail("b broke");
    assert_eq!(
        requester.join().unwrap(),
        Err(RequestError::ResponderFailed {
            reason: "a broke (and 1 other responder(s) failed)".into()
        })
    );
}

#[test]
fn gather_all_returns_as_soon_as_every_responder_answered() {
    let bus = MessageBus::new();
    let guards: Vec<_> = (0..3u8)
        .map(|i| {
            bus.serve_raw_with(REQ, REP, ServeOptions::default(), move |_| {
                if i == 2 {
                    Err("number two refuses".into())
                } else {
                    Ok(Bytes::from(vec![i]))
                }
            })
        })
        .collect();
    // An hour-long timeout: only "every responder answered" can end this wait.
    let gathered = bus.request_all_raw(REQ, REP, Bytes::new(), LONG).unwrap();
    let mut replies = gathered.replies.clone();
    replies.sort();
    assert_eq!(replies, vec![Bytes::from(vec![0]), Bytes::from(vec![1])]);
    assert_eq!(gathered.failures, vec!["number two refuses".to_owned()]);
    assert_eq!(gathered.unanswered, 0);
    drop(guards);
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!(
        (s.requests, s.replies, s.responder_failures, s.timeouts),
        (1, 2, 1, 0)
    );
}

/// Answers the first responder's request from inside `before_wait`, on the requester's own
/// thread: the reply is in before the wait starts, whatever the timeout, so the test does not
/// depend on how fast another thread runs.
struct AnswerFirst {
    answering: mycelium_transport::RawResponder,
}

impl WaitHooks for AnswerFirst {
    fn before_wait(&mut self) {
        let request = self
            .answering
            .try_recv()
            .expect("the request was offered first");
        request.reply(Bytes::from_static(b"arrived"));
    }
    fn after_wait(&mut self) {}
}

#[test]
fn gather_all_stops_at_the_timeout_with_what_arrived() {
    let bus = MessageBus::new();
    let answering = bus.serve_raw(REQ, REP, ServeOptions::default());
    let silent = bus.serve_raw(REQ, REP, ServeOptions::default());
    let mut hooks = AnswerFirst { answering };
    let gathered = bus
        .request_all_raw_with_hooks(REQ, REP, Bytes::new(), SHORT, &mut hooks)
        .unwrap();
    assert_eq!(gathered.replies, vec![Bytes::from_static(b"arrived")]);
    assert!(gathered.failures.is_empty());
    assert_eq!(gathered.unanswered, 1);
    silent.try_recv().unwrap().reply(Bytes::new());
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!((s.timeouts, s.replies, s.late_replies), (1, 1, 1));
}

#[test]
fn a_responder_that_goes_away_mid_request_fails_the_request_at_once() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::new(), LONG))
    };
    // The responder took the request, then disappears without answering.
    let request = responder.recv_blocking().unwrap();
    drop(responder);
    drop(request);
    match requester.join().unwrap() {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("without replying"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    assert_eq!(bus.responder_count(REQ, REP), 0);
    // Requests still queued when a responder stops fail too.
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::new(), LONG))
    };
    while responder.is_empty() {
        thread::yield_now();
    }
    drop(responder);
    assert!(matches!(
        requester.join().unwrap(),
        Err(RequestError::ResponderFailed { .. })
    ));
}

#[test]
fn a_full_responder_queue_fails_the_request_instead_of_waiting() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default().with_capacity(1));
    let first = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::from_static(b"1"), LONG))
    };
    while responder.is_empty() {
        thread::yield_now();
    }
    match bus.request_raw(REQ, REP, Bytes::from_static(b"2"), LONG) {
        Err(RequestError::ResponderFailed { reason }) => {
            assert!(reason.contains("queue is full"), "{reason}")
        }
        other => panic!("expected ResponderFailed, got {other:?}"),
    }
    responder
        .try_recv()
        .unwrap()
        .reply(Bytes::from_static(b"one"));
    assert_eq!(first.join().unwrap(), Ok(Bytes::from_static(b"one")));
}

#[test]
fn requests_and_replies_do_not_reach_ordinary_subscribers() {
    let bus = MessageBus::new();
    let requests_seen = bus.subscribe_raw(REQ, SubscribeOptions::default());
    let replies_seen = bus.subscribe_raw(REP, SubscribeOptions::default());
    let _guard = bus.serve::<Reading, Verdict, _>(double);
    let _: Verdict = bus.request(&reading(1, 1), LONG).unwrap();
    assert_eq!(requests_seen.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(replies_seen.try_recv(), Err(TryRecvError::Empty));
    // Publishing a Reading is not a request: the responder does not see it.
    bus.publish(&reading(1, 1)).unwrap();
    assert!(requests_seen.try_recv().is_ok());
    assert_eq!(bus.metrics().service(REQ, REP).unwrap().requests, 1);
}

#[test]
fn close_ends_pending_requests_and_responders() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::new(), LONG))
    };
    let request = responder.recv_blocking().unwrap();
    bus.close();
    assert_eq!(requester.join().unwrap(), Err(RequestError::Closed));
    request.reply(Bytes::new()); // Late: the requester is gone.
    assert!(responder.recv_blocking().is_none());
    assert_eq!(
        bus.request_raw(REQ, REP, Bytes::new(), LONG),
        Err(RequestError::Closed)
    );
    // A guard whose thread ended with the bus still stops cleanly.
    let guard = bus.serve_raw_with(REQ, REP, ServeOptions::default(), Ok);
    guard.stop();
}

#[test]
fn too_large_requests_are_refused() {
    let bus = MessageBus::with_config(mycelium_transport::BusConfig { max_payload: 4 });
    let _guard = bus.serve_raw_with(REQ, REP, ServeOptions::default(), Ok);
    assert_eq!(
        bus.request_raw(REQ, REP, Bytes::from_static(b"12345"), LONG),
        Err(RequestError::TooLarge { len: 5, max: 4 })
    );
}

struct GiveUp {
    before: usize,
    after: usize,
    asked: usize,
}

impl WaitHooks for GiveUp {
    fn before_wait(&mut self) {
        self.before += 1;
    }
    fn after_wait(&mut self) {
        self.after += 1;
    }
    fn keep_waiting(&mut self) -> bool {
        self.asked += 1;
        self.asked < 2
    }
    fn may_give_up(&self) -> bool {
        true
    }
}

#[test]
fn a_wait_hook_can_interrupt_a_request() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let mut hooks = GiveUp {
        before: 0,
        after: 0,
        asked: 0,
    };
    let result = bus.request_raw_with_hooks(REQ, REP, Bytes::new(), LONG, &mut hooks);
    assert_eq!(result, Err(RequestError::Interrupted));
    assert_eq!((hooks.before, hooks.after, hooks.asked), (1, 1, 2));
    responder.try_recv().unwrap().reply(Bytes::new());
    assert_eq!(bus.metrics().service(REQ, REP).unwrap().late_replies, 1);
}

#[test]
fn concurrent_requesters_under_load_get_their_own_replies_and_counts_reconcile() {
    const REQUESTERS: usize = 8;
    const EACH: usize = 500;
    const RESPONDERS: usize = 2;
    let bus = MessageBus::new();
    let guards: Vec<_> = (0..RESPONDERS)
        .map(|_| bus.serve::<Reading, Verdict, _>(double))
        .collect();
    let start = Arc::new(Barrier::new(REQUESTERS));
    let threads: Vec<_> = (0..REQUESTERS)
        .map(|t| {
            let bus = bus.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    let r = reading(t as u32, i as i64);
                    let v: Verdict = bus.request(&r, LONG).unwrap();
                    assert_eq!(
                        v,
                        Verdict {
                            sensor: t as u32,
                            doubled: 2 * i as i64
                        }
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Stopping the responders waits for their threads: every answer is in.
    drop(guards);
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    let total = (REQUESTERS * EACH) as u64;
    assert_eq!(s.requests, total);
    // First-wins: each request took exactly one reply...
    assert_eq!(s.replies, total);
    // ...and every responder answered every request, so the other answers were late.
    assert_eq!(
        s.replies + s.late_replies + s.responder_failures,
        total * RESPONDERS as u64
    );
    assert_eq!((s.timeouts, s.no_responder), (0, 0));
}

#[test]
fn async_request_and_gather() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let bus = MessageBus::new();
        let _guard = bus.serve::<Reading, Verdict, _>(double);
        let v: Verdict = bus.request_async(&reading(2, 8), LONG).await.unwrap();
        assert_eq!(v.doubled, 16);
        let g = bus
            .request_all_async::<Reading, Verdict>(&reading(2, 1), LONG)
            .await
            .unwrap();
        assert_eq!(g.replies.len(), 1);
        let silent = bus.serve_raw(REQ, 7, ServeOptions::default());
        assert_eq!(
            bus.request_raw_async(REQ, 7, Bytes::new(), SHORT).await,
            Err(RequestError::Timeout { timeout: SHORT })
        );
        // A responder served from async code.
        let echo = bus.serve_raw(REQ, 8, ServeOptions::default());
        let server = tokio::spawn(async move {
            while let Some(request) = echo.recv().await {
                let payload = request.payload().clone();
                request.reply(payload);
            }
        });
        assert_eq!(
            bus.request_raw_async(REQ, 8, Bytes::from_static(b"e"), LONG)
                .await,
            Ok(Bytes::from_static(b"e"))
        );
        drop(silent);
        bus.close();
        server.await.unwrap();
    });
}

#[test]
fn abandoning_an_async_request_makes_its_reply_late() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    rt.block_on(async {
        let fut = bus.request_raw_async(REQ, REP, Bytes::new(), LONG);
        // Polled once (sends the request), then dropped.
        tokio::select! {
            biased;
            _ = fut => panic!("nobody answered yet"),
            _ = std::future::ready(()) => {}
        }
    });
    responder.try_recv().unwrap().reply(Bytes::new());
    assert_eq!(bus.metrics().service(REQ, REP).unwrap().late_replies, 1);
}

#[test]
fn service_metrics_in_json_and_prometheus() {
    let bus = MessageBus::new();
    bus.set_service_name(REQ, REP, "Doubler");
    let _guard = bus.serve::<Reading, Verdict, _>(double);
    let _: Verdict = bus.request(&reading(1, 1), LONG).unwrap();
    let m = bus.metrics();
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    let service = &json["services"][0];
    assert_eq!(service["name"], "Doubler");
    assert_eq!(service["requests"], 1);
    assert_eq!(service["replies"], 1);
    let text = m.to_prometheus();
    let exposition = common::prometheus_check::check(&text).unwrap();
    let labels = [
        ("service", "Doubler"),
        ("request", "Reading"),
        ("reply", "Verdict"),
    ];
    assert_eq!(
        exposition.value("mycelium_service_requests_total", &labels),
        1.0
    );
    assert_eq!(
        exposition.value("mycelium_service_replies_total", &labels),
        1.0
    );
    assert_eq!(
        exposition.value("mycelium_service_responders", &labels),
        1.0
    );
    assert_eq!(
        exposition.value("mycelium_service_late_replies_total", &labels),
        0.0
    );
}

#[test]
fn a_timeout_too_large_to_add_means_no_limit() {
    let bus = MessageBus::new();
    let _guard = bus.serve_raw_with(REQ, REP, ServeOptions::default(), Ok);
    assert_eq!(
        bus.request_raw(REQ, REP, Bytes::from_static(b"m"), Duration::MAX),
        Ok(Bytes::from_static(b"m"))
    );
}

#[test]
fn a_request_left_unanswered_times_out() {
    let bus = MessageBus::new();
    let responder = bus.serve_raw(REQ, REP, ServeOptions::default());
    let requester = {
        let bus = bus.clone();
        thread::spawn(move || bus.request_raw(REQ, REP, Bytes::new(), SHORT))
    };
    responder.recv_blocking().unwrap().leave_unanswered();
    assert_eq!(
        requester.join().unwrap(),
        Err(RequestError::Timeout { timeout: SHORT })
    );
    let m = bus.metrics();
    let s = m.service(REQ, REP).unwrap();
    assert_eq!(
        (s.timeouts, s.responder_failures, s.late_replies),
        (1, 0, 0)
    );
}
