//! Control frames: the bridge's own messages, sent in ordinary frames whose type id lies in
//! the range the schema reserves (`0xFF00..=0xFFFF`). Their payloads use the wire format's
//! encoding (`docs/wire-format.md`, "Bridge control frames" gives the layouts).

use std::fmt;

use mycelium_protocol::{DecodeError, EncodeError, Reader, Writer};

/// Version of the bridge protocol (handshake and control frames). Peers must match: a peer of
/// another version is refused with `RefusalKind::Version` naming both versions.
/// 2: request/reply (serve, unserve, request and reply frames).
/// 3: named topics (a topic frame before each message published with a topic).
pub const PROTOCOL_VERSION: u16 = 3;

/// Client -> server, first frame: version, name, schema digest and description, token.
pub const HELLO: u16 = 0xFF01;
/// Server -> client: the handshake succeeded.
pub const WELCOME: u16 = 0xFF02;
/// Server -> client: the handshake failed, with the reason; the server then closes.
pub const REFUSE: u16 = 0xFF03;
/// Either way: "send me these type ids".
pub const SUBSCRIBE: u16 = 0xFF04;
/// Either way: "stop sending these type ids".
pub const UNSUBSCRIBE: u16 = 0xFF05;
/// Either way, after a third of the idle timeout without traffic: "still here".
pub const PING: u16 = 0xFF06;
/// Either way, last frame before closing: the reason.
pub const BYE: u16 = 0xFF07;
/// Either way (protocol 2): "I serve these (request type, reply type) services".
pub const SERVE: u16 = 0xFF08;
/// Either way (protocol 2): "I no longer serve these services".
pub const UNSERVE: u16 = 0xFF09;
/// Either way (protocol 2): a request for a service the peer announced, with this side's
/// correlation id and the time the requester still waits.
pub const REQUEST: u16 = 0xFF0A;
/// Either way (protocol 2): the answer to a request, under the requester side's correlation id.
pub const REPLY: u16 = 0xFF0B;

/// Either way (protocol 3): the topic of the message frame that follows it at once.
pub const TOPIC: u16 = 0xFF0C;

/// `timeout_ms` of a request frame meaning "no limit".
pub const NO_TIMEOUT: u32 = u32::MAX;

/// How a forwarded request ended on the serving side (a reply frame).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyOutcome {
    /// The first successful reply's payload.
    Ok(Vec<u8>),
    /// Every responder failed; the first reason.
    Failed(String),
    /// Nobody serves it on that side any more.
    NoResponder,
    /// No responder answered in time.
    Timeout,
    /// That side's bus is closed.
    Closed,
}

/// Why a handshake was refused (the first byte of a refuse frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// Different bridge protocol versions.
    Version,
    /// Missing or wrong token.
    Token,
    /// Different schema digests; the reason lists the messages that differ.
    Schema,
    /// The server already serves its maximum number of connections.
    Busy,
    /// The peer did not speak the protocol (garbage, a wrong first frame, a bad hello).
    Protocol,
}

impl RefusalKind {
    fn code(self) -> u8 {
        match self {
            RefusalKind::Version => 1,
            RefusalKind::Token => 2,
            RefusalKind::Schema => 3,
            RefusalKind::Busy => 4,
            RefusalKind::Protocol => 5,
        }
    }

    fn from_code(code: u8) -> RefusalKind {
        match code {
            1 => RefusalKind::Version,
            2 => RefusalKind::Token,
            3 => RefusalKind::Schema,
            4 => RefusalKind::Busy,
            // Unknown codes come from a newer peer; "protocol" is the honest summary.
            _ => RefusalKind::Protocol,
        }
    }

    /// Whether retrying cannot help until someone changes a configuration.
    pub fn needs_a_fix(self) -> bool {
        !matches!(self, RefusalKind::Busy)
    }
}

impl fmt::Display for RefusalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RefusalKind::Version => "protocol version mismatch",
            RefusalKind::Token => "authentication failed",
            RefusalKind::Schema => "schema mismatch",
            RefusalKind::Busy => "too many connections",
            RefusalKind::Protocol => "protocol error",
        })
    }
}

/// The client's opening frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello {
    pub version: u16,
    pub name: String,
    pub digest: String,
    pub canonical: String,
    pub token: Vec<u8>,
}

/// A decoded control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Control {
    Hello(Hello),
    Welcome {
        version: u16,
        name: String,
    },
    Refuse {
        kind: RefusalKind,
        reason: String,
        /// The server's canonical description for a schema refusal (so the client can name
        /// the differences from its side), empty otherwise.
        canonical: String,
    },
    Subscribe(Vec<u16>),
    Unsubscribe(Vec<u16>),
    Ping,
    Bye(String),
    Serve(Vec<(u16, u16)>),
    Unserve(Vec<(u16, u16)>),
    Request {
        correlation: u64,
        request_type: u16,
        reply_type: u16,
        timeout_ms: u32,
        payload: Vec<u8>,
    },
    Reply {
        correlation: u64,
        outcome: ReplyOutcome,
    },
    /// The topic of the next frame, which must be a message frame.
    Topic(String),
}

/// Whether `type_id` is in the control range (or 0, which is reserved as well).
pub(crate) fn is_control(type_id: u16) -> bool {
    mycelium_protocol::is_reserved_type_id(type_id)
}

impl Control {
    /// The frame's type id and payload.
    pub(crate) fn encode(&self) -> Result<(u16, Vec<u8>), EncodeError> {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        let type_id = match self {
            Control::Hello(hello) => {
                w.put_u16(hello.version);
                w.put_str(&hello.name)?;
                w.put_str(&hello.digest)?;
                w.put_str(&hello.canonical)?;
                w.put_bytes(&hello.token)?;
                HELLO
            }
            Control::Welcome { version, name } => {
                w.put_u16(*version);
                w.put_str(name)?;
                WELCOME
            }
            Control::Refuse {
                kind,
                reason,
                canonical,
            } => {
                w.put_u8(kind.code());
                w.put_str(reason)?;
                w.put_str(canonical)?;
                REFUSE
            }
            Control::Subscribe(ids) | Control::Unsubscribe(ids) => {
                w.put_count(ids.len())?;
                for id in ids {
                    w.put_u16(*id);
                }
                if matches!(self, Control::Subscribe(_)) {
                    SUBSCRIBE
                } else {
                    UNSUBSCRIBE
                }
            }
            Control::Ping => PING,
            Control::Bye(reason) => {
                w.put_str(reason)?;
                BYE
            }
            Control::Topic(topic) => {
                w.put_str(topic)?;
                TOPIC
            }
            Control::Serve(pairs) | Control::Unserve(pairs) => {
                w.put_count(pairs.len())?;
                for (request, reply) in pairs {
                    w.put_u16(*request);
                    w.put_u16(*reply);
                }
                if matches!(self, Control::Serve(_)) {
                    SERVE
                } else {
                    UNSERVE
                }
            }
            Control::Request {
                correlation,
                request_type,
                reply_type,
                timeout_ms,
                payload,
            } => {
                w.put_u64(*correlation);
                w.put_u16(*request_type);
                w.put_u16(*reply_type);
                w.put_u32(*timeout_ms);
                w.put_bytes(payload)?;
                REQUEST
            }
            Control::Reply {
                correlation,
                outcome,
            } => {
                w.put_u64(*correlation);
                match outcome {
                    ReplyOutcome::Ok(payload) => {
                        w.put_u8(0);
                        w.put_bytes(payload)?;
                    }
                    ReplyOutcome::Failed(reason) => {
                        w.put_u8(1);
                        w.put_bytes(reason.as_bytes())?;
                    }
                    ReplyOutcome::NoResponder => {
                        w.put_u8(2);
                        w.put_bytes(&[])?;
                    }
                    ReplyOutcome::Timeout => {
                        w.put_u8(3);
                        w.put_bytes(&[])?;
                    }
                    ReplyOutcome::Closed => {
                        w.put_u8(4);
                        w.put_bytes(&[])?;
                    }
                }
                REPLY
            }
        };
        Ok((type_id, out))
    }

    /// Decodes a control frame. `Ok(None)` for a type id outside the known control frames.
    pub(crate) fn decode(type_id: u16, payload: &[u8]) -> Result<Option<Control>, DecodeError> {
        let mut r = Reader::new(payload);
        let control = match type_id {
            HELLO => {
                let version = r.get_u16("Hello.version")?;
                if version != PROTOCOL_VERSION {
                    // The rest may be laid out differently; the version is all we need to
                    // refuse politely.
                    return Ok(Some(Control::Hello(Hello {
                        version,
                        name: String::new(),
                        digest: String::new(),
                        canonical: String::new(),
                        token: Vec::new(),
                    })));
                }
                Control::Hello(Hello {
                    version,
                    name: r.get_str("Hello.name")?.to_owned(),
                    digest: r.get_str("Hello.digest")?.to_owned(),
                    canonical: r.get_str("Hello.canonical")?.to_owned(),
                    token: r.get_bytes("Hello.token")?.to_vec(),
                })
            }
            WELCOME => Control::Welcome {
                version: r.get_u16("Welcome.version")?,
                name: r.get_str("Welcome.name")?.to_owned(),
            },
            REFUSE => Control::Refuse {
                kind: RefusalKind::from_code(r.get_u8("Refuse.kind")?),
                reason: r.get_str("Refuse.reason")?.to_owned(),
                canonical: r.get_str("Refuse.canonical")?.to_owned(),
            },
            SUBSCRIBE | UNSUBSCRIBE => {
                let count = r.get_count(2, "Subscribe.type_ids")?;
                let mut ids = Vec::with_capacity(count);
                for _ in 0..count {
                    ids.push(r.get_u16("Subscribe.type_ids[]")?);
                }
                if type_id == SUBSCRIBE {
                    Control::Subscribe(ids)
                } else {
                    Control::Unsubscribe(ids)
                }
            }
            PING => Control::Ping,
            BYE => Control::Bye(r.get_str("Bye.reason")?.to_owned()),
            TOPIC => Control::Topic(r.get_str("Topic.topic")?.to_owned()),
            SERVE | UNSERVE => {
                let count = r.get_count(4, "Serve.services")?;
                let mut pairs = Vec::with_capacity(count);
                for _ in 0..count {
                    let request = r.get_u16("Serve.services[].request_type")?;
                    pairs.push((request, r.get_u16("Serve.services[].reply_type")?));
                }
                if type_id == SERVE {
                    Control::Serve(pairs)
                } else {
                    Control::Unserve(pairs)
                }
            }
            REQUEST => Control::Request {
                correlation: r.get_u64("Request.correlation")?,
                request_type: r.get_u16("Request.request_type")?,
                reply_type: r.get_u16("Request.reply_type")?,
                timeout_ms: r.get_u32("Request.timeout_ms")?,
                payload: r.get_bytes("Request.payload")?.to_vec(),
            },
            REPLY => {
                let correlation = r.get_u64("Reply.correlation")?;
                let status = r.get_u8("Reply.status")?;
                let body = r.get_bytes("Reply.body")?;
                let outcome = match status {
                    0 => ReplyOutcome::Ok(body.to_vec()),
                    1 => ReplyOutcome::Failed(String::from_utf8_lossy(body).into_owned()),
                    2 => ReplyOutcome::NoResponder,
                    3 => ReplyOutcome::Timeout,
                    4 => ReplyOutcome::Closed,
                    // A newer peer's outcome: a failure, with its code.
                    other => ReplyOutcome::Failed(format!(
                        "the peer answered with reply status {other}, unknown to this side"
                    )),
                };
                Control::Reply {
                    correlation,
                    outcome,
                }
            }
            _ => return Ok(None),
        };
        r.finish()?;
        Ok(Some(control))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Control> {
        vec![
            Control::Hello(Hello {
                version: PROTOCOL_VERSION,
                name: "client".into(),
                digest: "ab".repeat(32),
                canonical: "mycelium-schema/1\n".into(),
                token: b"secret".to_vec(),
            }),
            Control::Welcome {
                version: PROTOCOL_VERSION,
                name: "server".into(),
            },
            Control::Refuse {
                kind: RefusalKind::Schema,
                reason: "TradeTick: field price f64 -> f32".into(),
                canonical: "mycelium-schema/1\n".into(),
            },
            Control::Subscribe(vec![1, 2, 100]),
            Control::Unsubscribe(vec![]),
            Control::Ping,
            Control::Bye("shutting down".into()),
            Control::Topic("ticks/BTC-USD".into()),
            Control::Serve(vec![(1, 2), (3, 4)]),
            Control::Unserve(vec![]),
            Control::Request {
                correlation: u64::MAX,
                request_type: 3,
                reply_type: 4,
                timeout_ms: 1500,
                payload: vec![1, 2, 3],
            },
            Control::Reply {
                correlation: 7,
                outcome: ReplyOutcome::Ok(vec![9, 9]),
            },
            Control::Reply {
                correlation: 8,
                outcome: ReplyOutcome::Failed("limit exceeded".into()),
            },
            Control::Reply {
                correlation: 9,
                outcome: ReplyOutcome::NoResponder,
            },
            Control::Reply {
                correlation: 10,
                outcome: ReplyOutcome::Timeout,
            },
            Control::Reply {
                correlation: 11,
                outcome: ReplyOutcome::Closed,
            },
        ]
    }

    #[test]
    fn every_control_frame_round_trips_in_the_reserved_range() {
        for control in all() {
            let (type_id, payload) = control.encode().unwrap();
            assert!(is_control(type_id), "{type_id:#x}");
            assert_eq!(Control::decode(type_id, &payload).unwrap(), Some(control));
        }
    }

    #[test]
    fn truncated_or_padded_control_payloads_are_errors_not_panics() {
        for control in all() {
            let (type_id, payload) = control.encode().unwrap();
            for cut in 0..payload.len() {
                assert!(
                    Control::decode(type_id, &payload[..cut]).is_err(),
                    "{control:?} cut at {cut}"
                );
            }
            let mut padded = payload.clone();
            padded.push(0);
            assert!(matches!(
                Control::decode(type_id, &padded),
                Err(DecodeError::TrailingBytes { .. })
            ));
        }
    }

    #[test]
    fn a_huge_subscribe_count_is_refused_before_allocating() {
        let payload = u32::MAX.to_le_bytes();
        assert!(matches!(
            Control::decode(SUBSCRIBE, &payload),
            Err(DecodeError::CountTooLarge { .. })
        ));
        assert!(matches!(
            Control::decode(SERVE, &payload),
            Err(DecodeError::CountTooLarge { .. })
        ));
    }

    #[test]
    fn a_hello_of_another_version_decodes_to_just_its_version() {
        // A future version, and the version before request/reply (1).
        for other in [PROTOCOL_VERSION + 1, 1] {
            let mut payload = other.to_le_bytes().to_vec();
            payload.extend_from_slice(b"whatever that version sends");
            match Control::decode(HELLO, &payload).unwrap() {
                Some(Control::Hello(hello)) => assert_eq!(hello.version, other),
                unexpected => panic!("unexpected {unexpected:?}"),
            }
        }
    }

    #[test]
    fn unknown_control_ids_and_refusal_codes_are_tolerated() {
        assert_eq!(Control::decode(0xFF42, &[]).unwrap(), None);
        assert_eq!(RefusalKind::from_code(200), RefusalKind::Protocol);
        for kind in [
            RefusalKind::Version,
            RefusalKind::Token,
            RefusalKind::Schema,
            RefusalKind::Busy,
            RefusalKind::Protocol,
        ] {
            assert_eq!(RefusalKind::from_code(kind.code()), kind);
        }
    }
}
