//! Validator and dynamic-codec throughput on the example schema. Run with
//! `cargo bench -p mycelium-protocol`; the validator is on the C ABI publish path and should
//! stay in the tens of nanoseconds for a ~64-byte message.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mycelium_protocol::{decode_value, encode_value, Schema, Validator, Value};
use serde_json::json;

fn payload(schema: &Schema, name: &str, j: serde_json::Value) -> Vec<u8> {
    let def = schema.message_by_name(name).expect("message exists");
    let value = Value::message_from_json(schema, def, &j).expect("valid JSON");
    encode_value(schema, def, &value).expect("encodes")
}

fn bench(c: &mut Criterion) {
    let schema = Schema::from_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contracts.yaml"))
        .expect("example schema loads");
    let validator = Validator::new(&schema);
    let order = payload(
        &schema,
        "Order",
        json!({"order_id": 1, "symbol": "BTC-USD-PERPETUAL-2025", "side": 0, "qty": 5, "limit_price": 1.5, "ts_ns": 9}),
    );
    let tick = json!({"symbol": "BTC-USD", "price": 1.0, "size": 1, "ts_ns": 1, "side": 0});
    let batch = payload(
        &schema,
        "TickBatch",
        json!({"venue": "584e4153", "seq": 1, "ticks": vec![tick; 16]}),
    );
    println!(
        "Order payload: {} bytes, TickBatch payload: {} bytes",
        order.len(),
        batch.len()
    );

    c.bench_function("validate Order (~60 B)", |b| {
        b.iter(|| validator.validate(black_box(3), black_box(&order)))
    });
    c.bench_function("validate TickBatch (16 ticks)", |b| {
        b.iter(|| validator.validate(black_box(7), black_box(&batch)))
    });
    let def = schema.message_by_name("Order").expect("Order exists");
    c.bench_function("decode_value Order", |b| {
        b.iter(|| decode_value(&schema, def, black_box(&order)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
