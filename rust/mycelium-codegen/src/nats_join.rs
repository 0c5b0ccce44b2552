//! `mycelium bridge --nats URL`: joins the CLI's bus to NATS beside its socket bridges, through
//! the bridge CLI's [`ExtraJoins`] hook (mycelium-bridge does not depend on the NATS client).

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use mycelium_bridge::cli::{CliError, ExtraJoin, ExtraJoins, ExtraJoinsFuture};
use mycelium_nats::{redact_url, NatsBridge, NatsConfig};
use mycelium_protocol::Schema;
use mycelium_transport::MessageBus;

/// How long a join may take to connect and hand the server the bus's subscriptions.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// `mycelium bridge`'s flags plus the NATS ones.
#[derive(Debug, Clone, clap::Args)]
pub struct BridgeCommand {
    #[command(flatten)]
    pub bridge: mycelium_bridge::cli::BridgeArgs,
    /// Join a NATS server (nats://HOST:PORT, tls://..., or a comma-separated cluster list;
    /// nats://USER:PASSWORD@HOST:PORT for user/password auth). Repeatable. Core NATS, subjects
    /// <prefix>.<schema>.<Message> (docs/distributed.md); options after `?`: jetstream=STREAM,
    /// durable=NAME, deliver=all|new|SEQ, replicas=N, prefix=P, outgoing=N, overflow=POLICY,
    /// ca=PEM, cert=PEM&key=PEM, nkey_seed_file=PATH. A topology file (--config) can list joins
    /// under `nats:` (docs/bridges.md). A publisher's --wait-subscribers does
    /// not see NATS subscribers: start them first and wait for their `joined` line.
    #[arg(long, value_name = "URL")]
    pub nats: Vec<String>,
    /// File holding the NATS server's auth token.
    #[arg(long, value_name = "FILE")]
    pub nats_token_file: Option<PathBuf>,
    /// First subject token(s) (default mycelium).
    #[arg(long, value_name = "PREFIX")]
    pub nats_prefix: Option<String>,
}

impl BridgeCommand {
    pub fn run(self) -> Result<(), CliError> {
        let token = match &self.nats_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| {
                        CliError::Usage(format!("cannot read --nats-token-file {path:?}: {e}"))
                    })?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => None,
        };
        if token.is_some() && self.nats.is_empty() {
            return Err(CliError::Usage(
                "--nats-token-file without --nats".to_string(),
            ));
        }
        // The topology file's `nats:` joins, then the flags'.
        let from_file = match &self.bridge.config {
            Some(path) => mycelium_bridge::Topology::from_path(path)
                .map_err(|e| CliError::Usage(e.to_string()))?
                .nats
                .iter()
                .map(config_from_spec)
                .collect::<Result<Vec<_>, CliError>>()?,
            None => Vec::new(),
        };
        let from_flags = self
            .nats
            .iter()
            .map(|url| {
                let mut config = NatsConfig::from_url(url)
                    .map_err(|e| CliError::Usage(format!("--nats: {e}")))?;
                if let Some(token) = &token {
                    config = config.with_token(token.clone());
                }
                Ok(config)
            })
            .collect::<Result<Vec<_>, CliError>>()?;
        let joins = NatsJoins {
            configs: from_file
                .into_iter()
                .chain(from_flags)
                .map(|mut config| {
                    if let Some(prefix) = &self.nats_prefix {
                        config = config.with_prefix(prefix.clone());
                    }
                    // The bridge flags for per-connection queues set the outgoing buffer too.
                    if let Some(capacity) = self.bridge.queue_capacity {
                        config.queue_capacity = capacity;
                    }
                    if let Some(overflow) = self.bridge.overflow {
                        config.queue_overflow = overflow;
                    }
                    Ok(config)
                })
                .collect::<Result<_, CliError>>()?,
        };
        mycelium_bridge::cli::run_with(self.bridge, &joins)
    }
}

/// A topology file's `nats:` entry as a join configuration (secrets read from their files).
fn config_from_spec(spec: &mycelium_bridge::NatsJoinSpec) -> Result<NatsConfig, CliError> {
    let shown = redact_url(&spec.url);
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| CliError::Usage(format!("nats {shown}: cannot read {what} {path:?}: {e}")))
    };
    let mut config = NatsConfig::from_url(&spec.url)
        .map_err(|e| CliError::Usage(format!("nats {shown} in the topology file: {e}")))?;
    if let Some(path) = &spec.token_file {
        config = config.with_token(read("token_file", path)?);
    }
    if let (Some(user), Some(path)) = (&spec.user, &spec.password_file) {
        config = config.with_user_password(user.clone(), read("password_file", path)?);
    }
    if let Some(path) = &spec.nkey_seed_file {
        config = config.with_nkey(read("nkey_seed_file", path)?.trim().to_string());
    }
    if let Some(ca) = &spec.ca {
        config = config.with_tls_ca(ca.clone());
    }
    if let (Some(cert), Some(key)) = (&spec.cert, &spec.key) {
        config = config.with_client_certificate(cert.clone(), key.clone());
    }
    if let Some(prefix) = &spec.prefix {
        config = config.with_prefix(prefix.clone());
    }
    Ok(config)
}

struct NatsJoins {
    configs: Vec<NatsConfig>,
}

impl ExtraJoins for NatsJoins {
    fn is_empty(&self) -> bool {
        self.configs.is_empty()
    }

    fn joins_nats(&self) -> bool {
        true
    }

    fn start<'a>(&'a self, bus: &'a MessageBus, schema: &'a Schema) -> ExtraJoinsFuture<'a> {
        Box::pin(async move {
            let mut joins: Vec<Box<dyn ExtraJoin>> = Vec::new();
            for config in &self.configs {
                let url = redact_url(&config.url);
                let join = match NatsBridge::connect(bus, schema, config.clone()).await {
                    Ok(join) => join,
                    Err(e) => {
                        for j in joins {
                            let _ = j.close().await;
                        }
                        return Err(CliError::Join(e.to_string()));
                    }
                };
                if !join.wait_ready(READY_TIMEOUT).await {
                    join.close().await;
                    for j in joins {
                        let _ = j.close().await;
                    }
                    return Err(CliError::Join(format!(
                        "NATS at {url}: not ready after {} s (connected, but the subscriptions did not reach the server)",
                        READY_TIMEOUT.as_secs()
                    )));
                }
                joins.push(Box::new(Joined { url, join }));
            }
            Ok(joins)
        })
    }
}

struct Joined {
    url: String,
    join: NatsBridge,
}

impl ExtraJoin for Joined {
    fn name(&self) -> String {
        self.url.clone()
    }

    fn close(self: Box<Self>) -> Pin<Box<dyn Future<Output = serde_json::Value> + Send>> {
        Box::pin(async move {
            let stats = self.join.stats_handle();
            self.join.close().await;
            serde_json::json!({
                "endpoints": [self.url],
                "kind": "nats",
                "stats": stats.snapshot(),
            })
        })
    }
}
