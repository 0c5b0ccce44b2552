//! The handshake: the client sends a hello (protocol version, name, schema digest and
//! canonical description, token); the server answers welcome or refuse. The server checks, in
//! this order, the version, the token (before revealing anything about its schema) and the
//! digest. A schema mismatch is explained on both sides in terms of messages, each side
//! diffing its own description against the other's.

use mycelium_protocol::{diff_canonical, Schema};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::config::{Token, HANDSHAKE_MAX_FRAME};
use crate::control::{Control, Hello, RefusalKind, HELLO, PROTOCOL_VERSION};
use crate::framing::{FrameError, FrameReader, FrameWriter};

/// Differences listed in a schema refusal before the rest is summarised as a count.
const MAX_LISTED_DIFFERENCES: usize = 20;

/// What this side says about itself in a handshake.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub name: String,
    pub digest: String,
    pub canonical: String,
}

impl Identity {
    pub(crate) fn new(name: &str, schema: &Schema) -> Identity {
        let canonical = schema.canonical_description();
        Identity {
            name: name.to_owned(),
            digest: mycelium_protocol::sha256_hex(&canonical),
            canonical,
        }
    }
}

/// Why a handshake did not produce a session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// This side refused the peer (server) or the peer refused this side (client). `reason`
    /// is written from this side's point of view.
    #[error("{kind}: {reason}")]
    Refused { kind: RefusalKind, reason: String },
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("the peer closed the connection during the handshake")]
    Closed,
    #[error("protocol error during the handshake: {0}")]
    Protocol(String),
    #[error("could not send the handshake: {0}")]
    Write(std::io::Error),
}

/// Client side: sends the hello and waits for the answer. Returns the server's name.
pub(crate) async fn client<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    identity: &Identity,
    token: Option<&Token>,
) -> Result<String, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let hello = Control::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: identity.name.clone(),
        digest: identity.digest.clone(),
        canonical: identity.canonical.clone(),
        token: token.map(|t| t.as_bytes().to_vec()).unwrap_or_default(),
    });
    send(writer, &hello).await?;
    let Some((type_id, payload)) = reader.read_frame(HANDSHAKE_MAX_FRAME).await? else {
        return Err(HandshakeError::Closed);
    };
    let answer = Control::decode(type_id, &payload)
        .map_err(|e| HandshakeError::Protocol(format!("unreadable answer to the hello: {e}")))?;
    match answer {
        Some(Control::Welcome { version, name }) if version == PROTOCOL_VERSION => Ok(name),
        Some(Control::Welcome { version, .. }) => Err(HandshakeError::Refused {
            kind: RefusalKind::Version,
            reason: version_mismatch(version),
        }),
        Some(Control::Refuse {
            kind: RefusalKind::Schema,
            canonical,
            reason,
        }) if !canonical.is_empty() => Err(HandshakeError::Refused {
            kind: RefusalKind::Schema,
            reason: format!(
                "{} (the server says: {reason})",
                schema_mismatch(&identity.canonical, &canonical)
            ),
        }),
        Some(Control::Refuse { kind, reason, .. }) => Err(HandshakeError::Refused {
            kind,
            reason: format!("the server says: {reason}"),
        }),
        _ => Err(HandshakeError::Protocol(format!(
            "expected a welcome or refuse frame, got type id {type_id:#06x}"
        ))),
    }
}

/// Server side: reads the hello, checks it and answers. Returns the client's name. A refusal
/// is sent to the client before the error is returned.
pub(crate) async fn server<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    identity: &Identity,
    token: Option<&Token>,
) -> Result<String, HandshakeError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let frame = match reader.read_frame(HANDSHAKE_MAX_FRAME).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Err(HandshakeError::Closed),
        Err(e @ FrameError::TooLarge { .. }) => {
            return refuse(writer, RefusalKind::Protocol, e.to_string()).await;
        }
        Err(e) => return Err(e.into()),
    };
    let (type_id, payload) = frame;
    if type_id != HELLO {
        let reason = format!(
            "the first frame must be a hello ({HELLO:#06x}), got type id {type_id:#06x}; \
             the peer is not a mycelium bridge"
        );
        return refuse(writer, RefusalKind::Protocol, reason).await;
    }
    let hello = match Control::decode(type_id, &payload) {
        Ok(Some(Control::Hello(hello))) => hello,
        Ok(other) => {
            let reason = format!("malformed hello: decoded as {other:?}");
            return refuse(writer, RefusalKind::Protocol, reason).await;
        }
        Err(e) => {
            let reason = format!("malformed hello: {e}");
            return refuse(writer, RefusalKind::Protocol, reason).await;
        }
    };
    if hello.version != PROTOCOL_VERSION {
        return refuse(
            writer,
            RefusalKind::Version,
            version_mismatch(hello.version),
        )
        .await;
    }
    if let Some(expected) = token {
        if !tokens_match(expected, &hello.token) {
            let reason = if hello.token.is_empty() {
                "this bridge requires a token and the peer sent none"
            } else {
                "the peer's token does not match"
            };
            return refuse(writer, RefusalKind::Token, reason.to_owned()).await;
        }
    }
    if hello.digest != identity.digest {
        let reason = format!(
            "peer '{}': {}",
            hello.name,
            schema_mismatch(&identity.canonical, &hello.canonical)
        );
        return refuse_schema(writer, reason, &identity.canonical).await;
    }
    send(
        writer,
        &Control::Welcome {
            version: PROTOCOL_VERSION,
            name: identity.name.clone(),
        },
    )
    .await?;
    Ok(hello.name)
}

async fn send<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    control: &Control,
) -> Result<(), HandshakeError> {
    let (type_id, payload) = control
        .encode()
        .map_err(|e| HandshakeError::Protocol(format!("cannot encode {control:?}: {e}")))?;
    writer
        .write_frame(type_id, &payload)
        .await
        .map_err(HandshakeError::Write)?;
    writer.flush().await.map_err(HandshakeError::Write)
}

async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    kind: RefusalKind,
    reason: String,
) -> Result<String, HandshakeError> {
    let refusal = Control::Refuse {
        kind,
        reason: reason.clone(),
        canonical: String::new(),
    };
    // Best effort: the peer may already be gone, and the refusal is what gets reported.
    let _ = send(writer, &refusal).await;
    Err(HandshakeError::Refused { kind, reason })
}

async fn refuse_schema<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    reason: String,
    canonical: &str,
) -> Result<String, HandshakeError> {
    let refusal = Control::Refuse {
        kind: RefusalKind::Schema,
        reason: reason.clone(),
        canonical: canonical.to_owned(),
    };
    let _ = send(writer, &refusal).await;
    Err(HandshakeError::Refused {
        kind: RefusalKind::Schema,
        reason,
    })
}

fn version_mismatch(theirs: u16) -> String {
    format!(
        "this side speaks bridge protocol {PROTOCOL_VERSION}, the peer {theirs}; upgrade the \
         older side"
    )
}

/// "schema digests differ; ours -> theirs: TradeTick: field price f64 -> f32; ...".
fn schema_mismatch(ours: &str, theirs: &str) -> String {
    let differences = diff_canonical(ours, theirs);
    let mut listed: Vec<String> = differences
        .iter()
        .take(MAX_LISTED_DIFFERENCES)
        .cloned()
        .collect();
    if differences.len() > MAX_LISTED_DIFFERENCES {
        listed.push(format!(
            "and {} more",
            differences.len() - MAX_LISTED_DIFFERENCES
        ));
    }
    format!(
        "the schemas differ (ours -> theirs): {}; regenerate both sides from the same \
         contracts.yaml",
        listed.join("; ")
    )
}

/// Compares a presented token with the expected one in time independent of where they
/// differ and of their lengths: both are hashed to 32 bytes first, and the digests are
/// compared without an early exit.
pub(crate) fn tokens_match(expected: &Token, presented: &[u8]) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented);
    let difference = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        let token = Token::new(b"correct horse".to_vec()).unwrap();
        assert!(tokens_match(&token, b"correct horse"));
        assert!(!tokens_match(&token, b"correct hors"));
        assert!(!tokens_match(&token, b"correct horsf"));
        assert!(!tokens_match(&token, b""));
    }

    #[test]
    fn schema_mismatch_names_the_messages_and_caps_the_list() {
        let ours = "mycelium-schema/1\nmessage A 1\nfield x u8\n";
        let theirs = "mycelium-schema/1\nmessage A 1\nfield x u16\n";
        let text = schema_mismatch(ours, theirs);
        assert!(text.contains("A: field x u8 -> u16"), "{text}");

        let many: String = (1..=30).map(|i| format!("message M{i} {i}\n")).collect();
        let text = schema_mismatch("mycelium-schema/1\n", &format!("mycelium-schema/1\n{many}"));
        assert!(text.contains("M1 missing on this side"), "{text}");
        assert!(text.contains("and 10 more"), "{text}");
    }
}
