//! Entry points for the fuzz targets in `fuzz/` (not a stable API). Each runs the bridge's
//! own parsing code — frame reader, control decoder, both sides of the handshake — over bytes
//! that stand for what a peer sent, on an in-memory stream, and reports the outcome as text.
//! Nothing here changes how the bridge behaves.

use std::cell::RefCell;

use mycelium_protocol::Schema;

use crate::config::{Token, HANDSHAKE_MAX_FRAME};
use crate::control::{is_control, Control, Hello, RefusalKind, PROTOCOL_VERSION};
use crate::framing::FrameReader;
use crate::handshake::{self, Identity};

thread_local! {
    // One runtime per thread: building one per input would dominate the fuzzer's time.
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds"),
    );
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    RUNTIME.with(|runtime| runtime.borrow().block_on(future))
}

/// Reads frames from `input` as a session's read loop does (payloads up to `max_payload`),
/// decoding each control frame; stops at the end of input or the first error. Returns one
/// line per frame read and a last line saying why it stopped.
pub fn read_frames(input: &[u8], max_payload: usize) -> Vec<String> {
    block_on(async {
        let mut reader = FrameReader::new(input);
        let mut seen = Vec::new();
        loop {
            match reader.read_frame(max_payload).await {
                Ok(Some((type_id, payload))) => {
                    assert!(payload.len() <= max_payload, "payload beyond the limit");
                    if is_control(type_id) {
                        match Control::decode(type_id, &payload) {
                            Ok(control) => seen.push(format!("{control:?}")),
                            Err(e) => {
                                seen.push(format!("malformed control frame: {e}"));
                                return seen;
                            }
                        }
                    } else {
                        seen.push(format!("data {type_id} ({} bytes)", payload.len()));
                    }
                }
                Ok(None) => {
                    seen.push("end".to_owned());
                    return seen;
                }
                Err(e) => {
                    seen.push(e.to_string());
                    return seen;
                }
            }
        }
    })
}

/// The server side of a handshake whose client sent `input`; what the server answered is
/// discarded. `token` is the secret the server expects, if any.
pub fn server_handshake(
    input: &[u8],
    schema: &Schema,
    token: Option<&[u8]>,
) -> Result<String, String> {
    let token = token
        .map(|t| Token::new(t.to_vec()).map_err(|e| e.to_string()))
        .transpose()?;
    let identity = Identity::new("fuzz-server", schema);
    block_on(async {
        let mut reader = FrameReader::new(input);
        let mut writer = crate::framing::FrameWriter::new(tokio::io::sink());
        handshake::server(&mut reader, &mut writer, &identity, token.as_ref())
            .await
            .map_err(|e| e.to_string())
    })
}

/// The client side of a handshake whose server answered with `input`.
pub fn client_handshake(input: &[u8], schema: &Schema) -> Result<String, String> {
    let identity = Identity::new("fuzz-client", schema);
    block_on(async {
        let mut reader = FrameReader::new(input);
        let mut writer = crate::framing::FrameWriter::new(tokio::io::sink());
        handshake::client(&mut reader, &mut writer, &identity, None)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Largest frame a handshake accepts, for sizing fuzz inputs.
pub const HANDSHAKE_FRAME_LIMIT: usize = HANDSHAKE_MAX_FRAME;

/// Well-formed frames (header and payload) of every control kind plus a data frame, named,
/// for seeding the fuzzers: a hello for `schema` (without and with the token `secret`), a
/// welcome, refusals, subscriptions, a ping, a bye, and the request/reply frames.
pub fn sample_frames(schema: &Schema) -> Vec<(&'static str, Vec<u8>)> {
    let identity = Identity::new("sample", schema);
    let hello = |token: &[u8]| {
        Control::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: "sample-client".to_owned(),
            digest: identity.digest.clone(),
            canonical: identity.canonical.clone(),
            token: token.to_vec(),
        })
    };
    let controls = [
        ("hello", hello(b"")),
        ("hello-token", hello(b"secret")),
        (
            "welcome",
            Control::Welcome {
                version: PROTOCOL_VERSION,
                name: "sample-server".to_owned(),
            },
        ),
        (
            "refuse-schema",
            Control::Refuse {
                kind: RefusalKind::Schema,
                reason: "the schemas differ".to_owned(),
                canonical: identity.canonical.replace("f64", "f32"),
            },
        ),
        (
            "refuse-token",
            Control::Refuse {
                kind: RefusalKind::Token,
                reason: "the peer's token does not match".to_owned(),
                canonical: String::new(),
            },
        ),
        ("subscribe", Control::Subscribe(vec![1, 2, 7])),
        ("unsubscribe", Control::Unsubscribe(vec![2])),
        ("ping", Control::Ping),
        ("bye", Control::Bye("shutting down".to_owned())),
        ("serve", Control::Serve(vec![(3, 4)])),
        (
            "request",
            Control::Request {
                correlation: 1,
                request_type: 8,
                reply_type: 8,
                timeout_ms: 1000,
                payload: Vec::new(),
            },
        ),
        (
            "reply",
            Control::Reply {
                correlation: 1,
                outcome: crate::control::ReplyOutcome::Failed("limit".to_owned()),
            },
        ),
    ];
    let mut frames: Vec<(&'static str, Vec<u8>)> = controls
        .into_iter()
        .map(|(name, control)| {
            let (type_id, payload) = control.encode().expect("samples encode");
            (name, frame(type_id, &payload))
        })
        .collect();
    frames.push(("data", frame(1, &[0u8; 25])));
    frames
}

fn frame(type_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    mycelium_protocol::encode_frame(type_id, payload, &mut out).expect("small frames encode");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml")).unwrap()
    }

    fn sample(name: &str) -> Vec<u8> {
        let frames = sample_frames(&schema());
        frames.into_iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn the_entry_points_run_the_real_handshake_and_reader() {
        let schema = schema();
        assert_eq!(
            server_handshake(&sample("hello"), &schema, None),
            Ok("sample-client".to_owned())
        );
        assert_eq!(
            server_handshake(&sample("hello-token"), &schema, Some(b"secret")),
            Ok("sample-client".to_owned())
        );
        let refused = server_handshake(&sample("hello"), &schema, Some(b"secret")).unwrap_err();
        assert!(refused.contains("requires a token"), "{refused}");
        assert_eq!(
            client_handshake(&sample("welcome"), &schema),
            Ok("sample-server".to_owned())
        );
        let refused = client_handshake(&sample("refuse-schema"), &schema).unwrap_err();
        assert!(refused.contains("f64 -> f32"), "{refused}");
        let all: Vec<u8> = sample_frames(&schema)
            .into_iter()
            .flat_map(|(_, f)| f)
            .collect();
        let seen = read_frames(&all, 1 << 20);
        assert_eq!(seen.len(), 14, "{seen:?}");
        assert_eq!(seen.last().map(String::as_str), Some("end"));
        assert!(read_frames(&all, 10)
            .last()
            .unwrap()
            .contains("the limit is 10"));
    }

    /// Writes the seed corpora of `fuzz/corpus/` (run by hand when the wire format changes:
    /// `MYCELIUM_FUZZ_SEEDS=fuzz/corpus cargo test -p mycelium-bridge write_fuzz_seeds -- --ignored`).
    #[test]
    #[ignore = "writes files; run by hand"]
    fn write_fuzz_seeds() {
        let root = std::path::PathBuf::from(std::env::var("MYCELIUM_FUZZ_SEEDS").unwrap());
        let schema = schema();
        let frames = sample_frames(&schema);
        for (target, names) in [
            (
                "handshake",
                &[
                    "hello",
                    "hello-token",
                    "welcome",
                    "refuse-schema",
                    "refuse-token",
                ][..],
            ),
            (
                "frames",
                &[
                    "subscribe",
                    "unsubscribe",
                    "ping",
                    "bye",
                    "data",
                    "welcome",
                    "serve",
                    "request",
                    "reply",
                ][..],
            ),
        ] {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in frames.iter().filter(|(n, _)| names.contains(n)) {
                // The first byte picks the handshake's side and token, or the frame limit
                // (3: 1 MiB).
                let mode = match (target, *name) {
                    ("handshake", "hello") => 0u8,
                    ("handshake", "hello-token") => 1,
                    _ => 3,
                };
                let bytes = [&[mode][..], bytes].concat();
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let session: Vec<u8> = frames
            .iter()
            .filter(|(n, _)| ["subscribe", "data", "ping", "unsubscribe", "bye"].contains(n))
            .flat_map(|(_, f)| f.clone())
            .collect();
        std::fs::write(root.join("frames/session"), [&[3u8][..], &session].concat()).unwrap();
    }
}
