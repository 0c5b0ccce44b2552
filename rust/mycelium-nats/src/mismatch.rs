//! Naming what differs when a peer's definition of a message is not ours.
//!
//! Messages carry only fingerprints, which say *that* a definition differs, not *how*. Every
//! join therefore answers requests on `<prefix>._schema.<its digest>` with its schema's
//! canonical description; on the first refusal from a peer (per peer digest and message) the
//! join asks for the peer's description and logs the differences of that message field by
//! field (`TradeTick: field size u32 -> u64`), the same wording as `mycelium diff` and the
//! socket bridges' handshake. The lines are kept for `NatsBridge::schema_mismatches`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use mycelium_protocol::diff_canonical;
use parking_lot::Mutex;

use crate::Shared;

/// How long the join waits for a peer's description before logging without it.
const ASK_LIMIT: Duration = Duration::from_secs(2);
/// Explanations kept (the oldest go first): one per (peer digest, message) at most.
const KEPT: usize = 64;

/// The subject a bus with schema digest `digest` answers with its canonical description.
pub(crate) fn subject(prefix: &str, digest: &str) -> String {
    format!("{prefix}._schema.{digest}")
}

/// Answers requests for our canonical description until the subscription ends.
pub(crate) async fn describe(mut requests: async_nats::Subscriber, shared: Arc<Shared>) {
    let description = Bytes::from(shared.canonical.to_string());
    while let Some(request) = requests.next().await {
        if let Some(reply) = request.reply {
            let _ = shared.client.publish(reply, description.clone()).await;
        }
    }
}

/// Logs (once per peer digest and message, the caller checks) why a peer's message was
/// refused, naming the fields that differ when the peer describes its schema.
pub(crate) fn explain(shared: &Shared, peer: &str, type_id: u16, ours: &str, theirs: &str) {
    let name = shared
        .validator
        .message_name(type_id)
        .unwrap_or("?")
        .to_owned();
    let fallback =
        format!("{name}: fingerprint {ours} -> {theirs} (the peer did not describe its schema)");
    // A digest is hex; anything else cannot be a subject token of ours.
    let askable = !peer.is_empty() && peer.chars().all(|c| c.is_ascii_alphanumeric());
    let client = shared.client.clone();
    let subject = subject(&shared.prefix, peer);
    let canonical = Arc::clone(&shared.canonical);
    let found = Arc::clone(&shared.mismatches);
    let peer = peer.to_owned();
    tokio::spawn(async move {
        let mut differences = Vec::new();
        if askable {
            if let Ok(Ok(reply)) =
                tokio::time::timeout(ASK_LIMIT, client.request(subject, Bytes::new())).await
            {
                let theirs = String::from_utf8_lossy(&reply.payload);
                let own = format!("{name}:");
                differences = diff_canonical(&canonical, &theirs)
                    .into_iter()
                    .filter(|line| line.starts_with(&own))
                    .collect();
            }
        }
        let text = if differences.is_empty() {
            fallback
        } else {
            differences.join("; ")
        };
        tracing::warn!(
            message = %name,
            peer_digest = %peer,
            differences = %text,
            "refused NATS messages: the peer's definition of this message differs (logged once per peer and message; counted in refused)"
        );
        keep(&found, text);
    });
}

fn keep(found: &Mutex<Vec<String>>, text: String) {
    let mut found = found.lock();
    if found.len() == KEPT {
        found.remove(0);
    }
    found.push(text);
}
