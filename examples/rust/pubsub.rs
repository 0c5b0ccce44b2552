//! The smallest complete Rust program on Mycelium: a bus, a typed subscriber on its own thread,
//! three published trade ticks, a clean shutdown.
//!
//! Run: `cargo run -p mycelium-examples --example pubsub`
//! Exits 0 only when the subscriber received exactly what was published, in order.

use std::process::ExitCode;
use std::thread;

use mycelium_contracts::{TradeTick, SCHEMA_DIGEST};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, SubscribeOptions};

fn main() -> ExitCode {
    let bus = MessageBus::new();
    // Subscribe before publishing: a bus keeps no history, so later subscribers miss earlier messages.
    let ticks = bus.subscribe::<TradeTick>(SubscribeOptions::default().with_label("rust-sample"));
    // `recv_blocking` yields the queued messages, then `None` once the bus is closed and drained.
    let consumer = thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(tick) = ticks.recv_blocking() {
            let side = if tick.side == 0 { "buy" } else { "sell" };
            println!(
                "rust subscriber got {} {side} {} @ {}",
                tick.symbol, tick.size, tick.price
            );
            got.push(tick);
        }
        got
    });

    let sent: Vec<TradeTick> = ["BTC-USD", "ETH-USD", "SOL-USD"]
        .iter()
        .zip(1u32..)
        .map(|(symbol, i)| TradeTick {
            symbol: (*symbol).to_string(),
            price: 100.0 * f64::from(i),
            size: i,
            ts_ns: u64::from(i),
            side: (i % 2) as u8,
        })
        .collect();
    for tick in &sent {
        if let Err(e) = bus.publish(tick) {
            eprintln!("publish failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!(
        "rust published {} TradeTicks (schema digest {})",
        sent.len(),
        &SCHEMA_DIGEST[..12]
    );
    bus.close();

    let got = match consumer.join() {
        Ok(got) => got,
        Err(_) => {
            eprintln!("the subscriber thread panicked");
            return ExitCode::FAILURE;
        }
    };
    let delivered = bus
        .metrics()
        .type_metrics(TradeTick::TYPE_ID)
        .map_or(0, |m| m.delivered);
    println!("bus metrics: {delivered} TradeTicks delivered");
    if got == sent {
        println!("ok: received what was published");
        ExitCode::SUCCESS
    } else {
        eprintln!("mismatch: published {sent:?}, received {got:?}");
        ExitCode::FAILURE
    }
}
