//! User/password, token and nkey authentication, and TLS, against real nats-server
//! processes: the right credentials (or CA) join, wrong ones give a typed error at once (not
//! retried), and no secret shows up in errors or in the configuration's Debug output.

mod common;

use common::{eventually, schema, scratch_dir, test_certificates, NatsServer};
use mycelium_contracts::TradeTick;
use mycelium_nats::{redact_url, NatsBridge, NatsConfig, NatsError};
use mycelium_transport::{MessageBus, SubscribeOptions};

const PASSWORD: &str = "s3cret-pw-41";
const TOKEN: &str = "t0ken-xyz-97";

fn tick() -> TradeTick {
    TradeTick {
        symbol: "BTC-USD".into(),
        price: 1.0,
        size: 9,
        ts_ns: 1,
        side: 0,
    }
}

/// Two buses joined with `config`: a message published on one arrives on the other.
async fn forwards(config: NatsConfig) {
    let schema = schema();
    let (a, b) = (MessageBus::new(), MessageBus::new());
    let ja = NatsBridge::connect(&a, &schema, config.clone())
        .await
        .expect("right credentials join");
    let jb = NatsBridge::connect(&b, &schema, config)
        .await
        .expect("right credentials join");
    let sub = b.subscribe::<TradeTick>(SubscribeOptions::default());
    eventually("subscribed", || jb.is_ready()).await;
    a.publish(&tick()).expect("publish");
    ja.flush().await.expect("flush");
    assert_eq!(sub.recv().await.expect("forwarded").size, 9);
    ja.close().await;
    jb.close().await;
}

async fn refused(config: NatsConfig, secret: &str) {
    assert!(!format!("{config:?}").contains(secret), "Debug redacts");
    let bus = MessageBus::new();
    let err = NatsBridge::connect(&bus, &schema(), config)
        .await
        .err()
        .expect("wrong credentials refused");
    assert!(matches!(err, NatsError::Auth { .. }), "typed: {err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(secret), "no secret in {text}");
    assert!(text.contains("authorization violation"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_right_joins_wrong_is_a_typed_error() {
    let server = NatsServer::start(&format!(
        "authorization {{ user: alice, password: \"{PASSWORD}\" }}"
    ));
    forwards(NatsConfig::new(server.url()).with_user_password("alice", PASSWORD)).await;
    refused(
        NatsConfig::new(server.url()).with_user_password("alice", "wrong-pw-13"),
        "wrong-pw-13",
    )
    .await;
    // Credentials in the URL: refused the same way, redacted in the error.
    let url = format!("nats://alice:wrong-pw-13@127.0.0.1:{}", server.port);
    assert_eq!(
        redact_url(&url),
        format!("nats://<redacted>@127.0.0.1:{}", server.port)
    );
    refused(NatsConfig::new(url), "wrong-pw-13").await;
    // No credentials at all.
    let err = NatsBridge::connect(&MessageBus::new(), &schema(), NatsConfig::new(server.url()))
        .await
        .err()
        .expect("anonymous refused");
    assert!(matches!(err, NatsError::Auth { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_right_joins_wrong_is_a_typed_error() {
    let server = NatsServer::start(&format!("authorization {{ token: \"{TOKEN}\" }}"));
    forwards(NatsConfig::new(server.url()).with_token(TOKEN)).await;
    refused(
        NatsConfig::new(server.url()).with_token("bad-token-55"),
        "bad-token-55",
    )
    .await;
    assert!(!format!("{:?}", NatsConfig::new("nats://x").with_token(TOKEN)).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nkey_known_joins_unknown_is_a_typed_error() {
    let user = nkeys::KeyPair::new_user();
    let seed = user.seed().expect("seed");
    let server = NatsServer::start(&format!(
        "authorization {{ users = [ {{ nkey: \"{}\" }} ] }}",
        user.public_key()
    ));
    forwards(NatsConfig::new(server.url()).with_nkey(seed.clone())).await;
    // The seed from a file named in the address (C, Python, OCaml and the CLI use this).
    let dir = scratch_dir("nkey");
    let seed_file = dir.join("user.nk");
    std::fs::write(&seed_file, format!("{seed}\n")).expect("seed file");
    let address = format!("{}?nkey_seed_file={}", server.url(), seed_file.display());
    forwards(NatsConfig::from_url(&address).expect("address")).await;
    let stranger = nkeys::KeyPair::new_user().seed().expect("seed");
    refused(
        NatsConfig::new(server.url()).with_nkey(stranger.clone()),
        &stranger,
    )
    .await;
    // Not a seed at all: a configuration error before any connection.
    let err = NatsBridge::connect(
        &MessageBus::new(),
        &schema(),
        NatsConfig::new(server.url()).with_nkey("SUnot-a-seed"),
    )
    .await
    .err()
    .expect("bad seed refused");
    assert!(matches!(err, NatsError::Config(_)), "{err:?}");
    assert!(!format!("{err}").contains("SUnot-a-seed"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_ca_joins_a_wrong_ca_is_a_typed_error() {
    let dir = scratch_dir("tls");
    let (ca, cert, key) = test_certificates(&dir.join("good"));
    let (other_ca, _, _) = test_certificates(&dir.join("other"));
    let server = NatsServer::start(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        cert.display(),
        key.display()
    ));
    let url = format!("tls://127.0.0.1:{}", server.port);
    forwards(NatsConfig::new(url.clone()).with_tls_ca(&ca)).await;
    // The same from an address string, on a nats:// URL (the CA option requires TLS).
    forwards(
        NatsConfig::from_url(&format!("{}?ca={}", server.url(), ca.display())).expect("address"),
    )
    .await;
    for wrong in [
        NatsConfig::new(url.clone()).with_tls_ca(&other_ca),
        // No CA: the system's roots do not know our test CA either.
        NatsConfig::new(url.clone()),
    ] {
        let err = NatsBridge::connect(&MessageBus::new(), &schema(), wrong)
            .await
            .err()
            .expect("an untrusted certificate is refused");
        assert!(matches!(err, NatsError::Tls { .. }), "typed: {err:?}");
    }
    let err = NatsBridge::connect(
        &MessageBus::new(),
        &schema(),
        NatsConfig::new(url).with_tls_ca(dir.join("missing.pem")),
    )
    .await
    .err()
    .expect("a missing CA file");
    assert!(matches!(err, NatsError::Config(_)), "{err:?}");
    let _ = std::fs::remove_dir_all(dir);
}
