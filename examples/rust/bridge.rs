//! Joining a bus over a socket bridge from Rust: one bus listens on a Unix socket, a second bus
//! (standing in for another process) connects to it, and a typed subscriber on the first
//! receives what is published on the second. Publish/subscribe code is the same as in-process;
//! only `Bridge::listen` / `Bridge::connect` are new. (Across real processes, run the listening
//! side in one program and the connecting side in another; `examples/c/bridge.c` does that.)
//!
//! Run: `cargo run -p mycelium-examples --example bridge`
//! Exits 0 only when the message crossed the bridge.

use std::process::ExitCode;
use std::time::Duration;

use mycelium_bridge::{Bridge, ConnectConfig, Endpoint, ListenConfig};
use mycelium_contracts::TextMessage;
use mycelium_protocol::Schema;
use mycelium_transport::{MessageBus, SubscribeOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Schema::from_path(mycelium_contracts::SCHEMA_PATH)?;
    let socket = std::env::temp_dir().join(format!("mycelium-example-{}.sock", std::process::id()));
    let endpoint = Endpoint::unix(&socket);

    // The service: owns a bus, listens, subscribes.
    let service_bus = MessageBus::new();
    let server =
        Bridge::listen(&service_bus, &schema, ListenConfig::new([endpoint.clone()])).await?;
    let texts = service_bus.subscribe::<TextMessage>(SubscribeOptions::default());

    // The joining side: its own bus, connected to the service's.
    let client_bus = MessageBus::new();
    let client = Bridge::connect(&client_bus, &schema, ConnectConfig::new(endpoint)).await?;
    if !tokio::time::timeout(Duration::from_secs(10), client.wait_for_sessions(1)).await? {
        return Err("the bridge stopped before connecting".into());
    }

    // Subscriptions propagate asynchronously after the handshake: until the service's interest
    // in TextMessage has reached the client, nothing is forwarded. Publish until it arrives.
    let text = TextMessage {
        sender: "rust-client".into(),
        body: "hello over the bridge".into(),
        sent_at_ns: 0,
    };
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            client_bus.publish(&text)?;
            if let Ok(Some(got)) =
                tokio::time::timeout(Duration::from_millis(50), texts.recv()).await
            {
                return Ok::<_, mycelium_transport::PublishError>(got);
            }
        }
    })
    .await??;
    println!(
        "service got {:?} from {} over {}",
        received.body,
        received.sender,
        socket.display()
    );

    client.close_and_join().await?;
    server.close_and_join().await?;
    if received != text {
        return Err(format!("received {received:?}, sent {text:?}").into());
    }
    Ok(())
}
