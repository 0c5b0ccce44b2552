//! The connecting side: dial, handshake, run the session, and start over with backoff.
//! Nothing is replayed after a reconnect (at most once across a cut): what was queued for the
//! old connection was dropped with it, and what was published while disconnected was never
//! queued, because no forwarder existed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::config::ConnectConfig;
use crate::error::BridgeError;
use crate::framing::{FrameReader, FrameWriter};
use crate::handle::raised;
use crate::handshake::{self, HandshakeError, Identity};
use crate::session::{self, SessionEnd, Shared};
use crate::socket::{self, ReadHalf, WriteHalf};
use crate::stats::bump;

enum Attempt {
    Connected(FrameReader<ReadHalf>, FrameWriter<WriteHalf>, String),
    Refused(HandshakeError),
    Failed(String),
}

pub(crate) fn start(
    shared: Arc<Shared>,
    identity: Identity,
    config: ConnectConfig,
) -> JoinHandle<Result<(), BridgeError>> {
    tokio::spawn(async move {
        let result = connect_loop(&shared, &identity, &config).await;
        shared.stats.stopped();
        result
    })
}

async fn connect_loop(
    shared: &Arc<Shared>,
    identity: &Identity,
    config: &ConnectConfig,
) -> Result<(), BridgeError> {
    let endpoint = config.endpoint.to_string();
    let stats = &shared.stats;
    let mut shutdown = shared.shutdown.clone();
    let mut delay = config.backoff.min;
    let mut had_session = false;
    // Repeated identical failures (the peer is down) are logged once, not every attempt.
    let mut last_failure: Option<String> = None;
    loop {
        let attempt = tokio::select! {
            attempt = attempt(shared, identity, config) => attempt,
            _ = raised(&mut shutdown) => return Ok(()),
        };
        match attempt {
            Attempt::Connected(reader, writer, name) => {
                if had_session {
                    bump(&stats.reconnects, 1);
                }
                had_session = true;
                last_failure = None;
                *stats.last_connect_failure.lock() = None;
                let peer = format!("{name} ({endpoint})");
                match session::run(Arc::clone(shared), reader, writer, peer).await {
                    SessionEnd::Shutdown | SessionEnd::BusClosed => return Ok(()),
                    _ => delay = config.backoff.min,
                }
            }
            Attempt::Refused(HandshakeError::Refused { kind, reason }) => {
                tracing::warn!(endpoint = %endpoint, reason = %reason, "bridge refused ({kind})");
                stats.reject(endpoint.clone(), format!("{kind}: {reason}"));
                if kind.needs_a_fix() && !config.retry_refused {
                    return Err(BridgeError::Refused {
                        endpoint,
                        kind,
                        reason,
                    });
                }
            }
            Attempt::Refused(other) => {
                let reason = other.to_string();
                tracing::warn!(endpoint = %endpoint, reason = %reason, "bridge handshake failed");
                stats.reject(endpoint.clone(), reason);
            }
            Attempt::Failed(reason) => {
                bump(&stats.connect_failures, 1);
                *stats.last_connect_failure.lock() = Some(format!("{endpoint}: {reason}"));
                if last_failure.as_deref() != Some(reason.as_str()) {
                    tracing::warn!(endpoint = %endpoint, reason = %reason, "bridge cannot connect; retrying with backoff");
                    last_failure = Some(reason);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(jitter(delay)) => {}
            _ = raised(&mut shutdown) => return Ok(()),
        }
        delay = config.backoff.next(delay);
    }
}

async fn attempt(shared: &Shared, identity: &Identity, config: &ConnectConfig) -> Attempt {
    let limit = shared.limits.handshake_timeout;
    let attempt = async {
        let (reader, writer) = match socket::dial(&config.endpoint).await {
            Ok(halves) => halves,
            Err(e) => return Attempt::Failed(format!("cannot connect: {e}")),
        };
        let mut reader = FrameReader::new(reader);
        let mut writer = FrameWriter::new(writer);
        match handshake::client(&mut reader, &mut writer, identity, config.token.as_ref()).await {
            Ok(name) => Attempt::Connected(reader, writer, name),
            Err(e) => Attempt::Refused(e),
        }
    };
    match timeout(limit, attempt).await {
        Ok(attempt) => attempt,
        Err(_) => Attempt::Failed(format!(
            "no complete handshake within {limit:?} (handshake timeout)"
        )),
    }
}

/// Up to a quarter less than `delay`, so clients cut by the same server restart do not all
/// come back in the same instant.
fn jitter(delay: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    let fraction = (random % 1000) as u32;
    delay.saturating_sub(delay / 4 * fraction / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_quarter_below_the_delay() {
        let delay = Duration::from_millis(400);
        for _ in 0..100 {
            let d = jitter(delay);
            assert!(d <= delay && d >= Duration::from_millis(300), "{d:?}");
        }
    }
}
