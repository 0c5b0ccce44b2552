//! The generated service helpers (tests/schemas/services.yaml): one marker type per service
//! implementing `mycelium_protocol::Service`, used as the typed client and server of a bus.

#[allow(dead_code)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/services.rs"));
}

use std::time::Duration;

use generated::{Audit, Price, Pricing, Quote, SERVICES};
use mycelium_protocol::{Message, Schema, Service};
use mycelium_transport::{MessageBus, RequestError};

const LONG: Duration = Duration::from_secs(3600);

#[test]
fn generated_markers_name_their_messages() {
    assert_eq!(<Pricing as Service>::NAME, "Pricing");
    assert_eq!(<Pricing as Service>::Request::TYPE_ID, Quote::TYPE_ID);
    assert_eq!(<Pricing as Service>::Reply::TYPE_ID, Price::TYPE_ID);
    assert_eq!(<Audit as Service>::Request::NAME, "Price");
    // By name, with the type ids of request and reply.
    assert_eq!(SERVICES, &[("Audit", 2, 1), ("Pricing", 1, 2)]);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemas/services.yaml");
    let schema = Schema::from_path(path).unwrap();
    assert_eq!(generated::SCHEMA_DIGEST, schema.digest());
    assert!(generated::SCHEMA_CANONICAL
        .ends_with("service Audit Price Quote\nservice Pricing Quote Price\n"));
}

#[test]
fn typed_client_and_server_over_a_bus() {
    let bus = MessageBus::new();
    assert_eq!(
        bus.call::<Pricing>(&Quote::default(), LONG),
        Err(RequestError::NoResponder {
            request_type: 1,
            reply_type: 2
        })
    );
    let _server = bus.serve_service::<Pricing, _>(|quote| {
        if quote.qty == 0 {
            return Err("nothing to price".to_owned());
        }
        Ok(Price {
            symbol: quote.symbol,
            cents: i64::from(quote.qty) * 150,
        })
    });
    let price = bus
        .call::<Pricing>(
            &Quote {
                symbol: "BTC-USD".into(),
                qty: 3,
            },
            LONG,
        )
        .unwrap();
    assert_eq!(
        price,
        Price {
            symbol: "BTC-USD".into(),
            cents: 450
        }
    );
    assert_eq!(
        bus.call::<Pricing>(&Quote::default(), LONG),
        Err(RequestError::ResponderFailed {
            reason: "nothing to price".into()
        })
    );
    let gathered = bus
        .call_all::<Pricing>(
            &Quote {
                symbol: "X".into(),
                qty: 1,
            },
            LONG,
        )
        .unwrap();
    assert_eq!(gathered.replies.len(), 1);
    let metrics = bus.metrics();
    let service = metrics.service(1, 2).unwrap();
    assert_eq!(service.name.as_deref(), Some("Pricing"));
    assert_eq!(service.request_name.as_deref(), Some("Quote"));
    assert_eq!(
        (service.requests, service.replies, service.no_responder),
        (4, 2, 1)
    );
}
