//! Request/reply on one bus: a risk check served in Rust, asked by a strategy.
//! `serve` answers `Order`s with `OrderDecision`s on a thread of its own; `request` returns the
//! reply or a typed error (no responder, responder failed, timeout, closed).
//!
//! Run: `cargo run -p mycelium-examples --example request_reply`
//! Exits 0 only when every answer is the expected one (docs/request-reply.md).

use std::process::ExitCode;
use std::time::Duration;

use mycelium_contracts::{Order, OrderDecision};
use mycelium_transport::{MessageBus, RequestError};

const LIMIT: u32 = 1_000;

fn order(order_id: u64, qty: u32) -> Order {
    Order {
        order_id,
        symbol: "BTC-USD".into(),
        side: 0,
        qty,
        limit_price: 64_000.5,
        ts_ns: 1,
    }
}

fn main() -> ExitCode {
    let bus = MessageBus::new();
    let timeout = Duration::from_secs(5);

    // Nobody serves yet: refused at once, not after the timeout.
    let before = bus.request::<Order, OrderDecision>(&order(1, 10), timeout);
    println!("before serving: {before:?}");
    let mut ok = matches!(before, Err(RequestError::NoResponder { .. }));

    // The risk check; dropping `risk` stops serving.
    let risk = bus.serve::<Order, OrderDecision, _>(|o| {
        if o.symbol.is_empty() {
            return Err("an order needs a symbol".to_owned()); // -> ResponderFailed
        }
        let approved = o.qty <= LIMIT;
        Ok(OrderDecision {
            order_id: o.order_id,
            approved,
            reason: if approved {
                String::new()
            } else {
                format!("qty {} above {LIMIT}", o.qty)
            },
            ts_ns: o.ts_ns,
        })
    });

    for (id, qty) in [(2, 10), (3, 5_000)] {
        match bus.request::<Order, OrderDecision>(&order(id, qty), timeout) {
            Ok(d) => {
                println!(
                    "order {} qty {qty}: approved={} {}",
                    d.order_id, d.approved, d.reason
                );
                ok &= d.order_id == id && d.approved == (qty <= LIMIT);
            }
            Err(e) => {
                println!("order {id}: {e}");
                ok = false;
            }
        }
    }
    let mut bad = order(4, 1);
    bad.symbol.clear();
    let failed = bus.request::<Order, OrderDecision>(&bad, timeout);
    println!("order without a symbol: {failed:?}");
    ok &= matches!(failed, Err(RequestError::ResponderFailed { ref reason }) if reason == "an order needs a symbol");

    drop(risk);
    let service = bus.metrics().service(3, 4).cloned();
    if let Some(s) = &service {
        println!(
            "service Order -> OrderDecision: {} requests, {} replies, {} no responder, {} failures",
            s.requests, s.replies, s.no_responder, s.responder_failures
        );
    }
    ok &= service.is_some_and(|s| {
        (s.requests, s.replies, s.no_responder, s.responder_failures) == (4, 2, 1, 1)
    });
    if ok {
        ExitCode::SUCCESS
    } else {
        eprintln!("request_reply: unexpected answers");
        ExitCode::FAILURE
    }
}
