//! Random sequences of subscribe / publish / receive / unsubscribe / close, checked step by
//! step against a simple model of the queues and every counter.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use mycelium_transport::{
    MessageBus, OverflowPolicy, PublishError, RawSubscription, SubscribeOptions, TryRecvError,
    LATENCY_SAMPLE_EVERY,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Subscribe {
        type_id: u16,
        capacity: usize,
        policy: OverflowPolicy,
    },
    Unsubscribe(usize),
    Publish {
        type_id: u16,
        padding: usize,
    },
    Recv(usize),
    Drain {
        sub: usize,
        max: usize,
    },
    HandlerError(usize),
    CloseBus,
}

fn policy() -> impl Strategy<Value = OverflowPolicy> {
    prop_oneof![
        Just(OverflowPolicy::Block),
        Just(OverflowPolicy::DropOldest),
        Just(OverflowPolicy::FailPublish),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    // Closing the bus is rare so most runs exercise an open bus for a while first.
    prop_oneof![
        12 => (0u16..3, 1usize..5, policy())
            .prop_map(|(type_id, capacity, policy)| Op::Subscribe { type_id, capacity, policy }),
        4 => any::<usize>().prop_map(Op::Unsubscribe),
        32 => (0u16..3, 0usize..4).prop_map(|(type_id, padding)| Op::Publish { type_id, padding }),
        16 => any::<usize>().prop_map(Op::Recv),
        4 => (any::<usize>(), 0usize..4).prop_map(|(sub, max)| Op::Drain { sub, max }),
        4 => any::<usize>().prop_map(Op::HandlerError),
        1 => Just(Op::CloseBus),
    ]
}

struct ModelSub {
    sub: RawSubscription,
    type_id: u16,
    capacity: usize,
    policy: OverflowPolicy,
    queue: VecDeque<u64>,
    delivered: u64,
    dropped: u64,
    handler_errors: u64,
}

#[derive(Default, Debug, PartialEq)]
struct ModelType {
    published: u64,
    published_bytes: u64,
    delivered: u64,
    dropped: u64,
    latency_samples: u64,
}

struct Model {
    bus: MessageBus,
    subs: Vec<ModelSub>,
    types: BTreeMap<u16, ModelType>,
    closed: bool,
    next_seq: u64,
}

impl Model {
    fn pick(&self, index: usize) -> Option<usize> {
        (!self.subs.is_empty()).then(|| index % self.subs.len())
    }

    fn take(&mut self, i: usize, got: Result<u64, TryRecvError>) {
        let s = &mut self.subs[i];
        match s.queue.pop_front() {
            Some(expected) => {
                assert_eq!(
                    got,
                    Ok(expected),
                    "sub {} got the wrong message",
                    s.sub.id()
                );
                s.delivered += 1;
                let t = self.types.get_mut(&s.type_id).unwrap();
                t.delivered += 1;
                // Each subscriber's first take and every LATENCY_SAMPLE_EVERY-th after it.
                if s.delivered % LATENCY_SAMPLE_EVERY == 1 {
                    t.latency_samples += 1;
                }
            }
            None if self.closed => assert_eq!(got, Err(TryRecvError::Closed)),
            None => assert_eq!(got, Err(TryRecvError::Empty)),
        }
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Subscribe {
                type_id,
                capacity,
                policy,
            } => {
                let sub = self
                    .bus
                    .subscribe_raw(type_id, SubscribeOptions::new(capacity, policy));
                self.types.entry(type_id).or_default();
                self.subs.push(ModelSub {
                    sub,
                    type_id,
                    capacity,
                    policy,
                    queue: VecDeque::new(),
                    delivered: 0,
                    dropped: 0,
                    handler_errors: 0,
                });
            }
            Op::Unsubscribe(index) => {
                if let Some(i) = self.pick(index) {
                    let s = self.subs.remove(i);
                    self.types.get_mut(&s.type_id).unwrap().dropped += s.queue.len() as u64;
                    drop(s.sub);
                }
            }
            Op::Publish { type_id, padding } => {
                let would_block = self.subs.iter().any(|s| {
                    s.type_id == type_id
                        && s.policy == OverflowPolicy::Block
                        && s.queue.len() == s.capacity
                });
                if would_block && !self.closed {
                    return; // single-threaded: nobody would make room
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut payload = seq.to_le_bytes().to_vec();
                payload.resize(8 + padding, 0);
                let len = payload.len() as u64;
                let result = self.bus.publish_raw(type_id, Bytes::from(payload));
                if self.closed {
                    assert_eq!(result, Err(PublishError::Closed));
                    return;
                }
                let t = self.types.entry(type_id).or_default();
                t.published += 1;
                t.published_bytes += len;
                let mut first_full = None;
                for s in self.subs.iter_mut().filter(|s| s.type_id == type_id) {
                    let full = s.queue.len() == s.capacity;
                    match s.policy {
                        OverflowPolicy::Block => s.queue.push_back(seq),
                        OverflowPolicy::DropOldest => {
                            if full {
                                s.queue.pop_front();
                                s.dropped += 1;
                                t.dropped += 1;
                            }
                            s.queue.push_back(seq);
                        }
                        OverflowPolicy::FailPublish => {
                            if full {
                                s.dropped += 1;
                                t.dropped += 1;
                                first_full.get_or_insert(s.sub.id());
                            } else {
                                s.queue.push_back(seq);
                            }
                        }
                    }
                }
                match first_full {
                    Some(id) => assert_eq!(
                        result,
                        Err(PublishError::QueueFull {
                            subscriber: id,
                            label: None
                        })
                    ),
                    None => assert_eq!(result, Ok(())),
                }
            }
            Op::Recv(index) => {
                if let Some(i) = self.pick(index) {
                    let got = self.subs[i]
                        .sub
                        .try_recv()
                        .map(|e| u64::from_le_bytes(e.payload[..8].try_into().unwrap()));
                    self.take(i, got);
                }
            }
            Op::Drain { sub, max } => {
                if let Some(i) = self.pick(sub) {
                    let mut out = Vec::new();
                    let n = self.subs[i].sub.drain_into(&mut out, max);
                    assert_eq!(n, out.len());
                    assert_eq!(n, max.min(self.subs[i].queue.len()));
                    for e in out {
                        let seq = u64::from_le_bytes(e.payload[..8].try_into().unwrap());
                        self.take(i, Ok(seq));
                    }
                }
            }
            Op::HandlerError(index) => {
                if let Some(i) = self.pick(index) {
                    self.subs[i].sub.record_handler_error();
                    self.subs[i].handler_errors += 1;
                }
            }
            Op::CloseBus => {
                self.bus.close();
                self.closed = true;
            }
        }
    }

    fn check(&self) {
        let m = self.bus.metrics();
        assert_eq!(m.closed, self.closed);
        let seen: Vec<u16> = m.types.iter().map(|t| t.type_id).collect();
        assert_eq!(seen, self.types.keys().copied().collect::<Vec<_>>());
        for (&type_id, model) in &self.types {
            let t = m.type_metrics(type_id).unwrap();
            let actual = ModelType {
                published: t.published,
                published_bytes: t.published_bytes,
                delivered: t.delivered,
                dropped: t.dropped,
                latency_samples: t.latency.count,
            };
            assert_eq!(&actual, model, "type {type_id}");
            let live = self.subs.iter().filter(|s| s.type_id == type_id).count();
            assert_eq!(t.subscribers, live);
            assert_eq!(self.bus.subscriber_count(type_id), live);
        }
        assert_eq!(m.subscribers.len(), self.subs.len());
        for s in &self.subs {
            let actual = m.subscriber(s.sub.id()).unwrap();
            assert_eq!(
                (
                    actual.queue_depth,
                    actual.delivered,
                    actual.dropped,
                    actual.handler_errors
                ),
                (s.queue.len(), s.delivered, s.dropped, s.handler_errors),
                "subscriber {}",
                s.sub.id()
            );
            assert_eq!(s.sub.len(), s.queue.len());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn counters_follow_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut model = Model {
            bus: MessageBus::new(),
            subs: Vec::new(),
            types: BTreeMap::new(),
            closed: false,
            next_seq: 0,
        };
        for op in ops {
            model.apply(op);
            model.check();
        }
        // Dropping every subscription settles every queue into `dropped`.
        let subs = std::mem::take(&mut model.subs);
        for s in subs {
            model.types.get_mut(&s.type_id).unwrap().dropped += s.queue.len() as u64;
        }
        model.check();
    }
}
