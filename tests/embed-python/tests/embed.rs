//! A Rust host shares its `MessageBus` with CPython running in the same process.
//!
//! These tests need the `mycelium_native` package built and installed into the venv
//! (`<repo>/.venv`, or `$MYCELIUM_VENV`), so they are `#[ignore]`d in a plain
//! `cargo test --workspace`. `scripts/test-python.sh` runs them with `--ignored` right after
//! `maturin develop`; there a missing adapter is a test FAILURE with a message saying what to do,
//! never a skip.

use std::ffi::CString;
use std::path::PathBuf;
use std::time::Duration;

use mycelium_contracts::{Order, TextMessage, TradeTick};
use mycelium_embed_python::{
    default_venv, load_contracts, site_packages, write_python_module, PythonGuest,
};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, SubscribeOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

const WAIT: Duration = Duration::from_secs(20);

fn module_dir(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mycelium-embed-{}-{test}", std::process::id()))
}

fn guest(test: &str) -> PythonGuest {
    let schema = load_contracts().unwrap_or_else(|e| panic!("{e}"));
    let dir = module_dir(test);
    write_python_module(&schema, &dir, "contracts").unwrap_or_else(|e| panic!("{e}"));
    let venv = default_venv();
    let site_packages = site_packages(&venv).unwrap_or_else(|e| panic!("{e}"));
    PythonGuest {
        site_packages,
        module_dir: dir,
    }
}

/// Runs `code` with `address` bound, returning its globals for later calls.
fn run_python(guest: &PythonGuest, address: usize, code: &str) -> Py<PyDict> {
    Python::attach(|py| {
        guest.prepare(py).unwrap_or_else(|e| panic!("{e}"));
        let globals = PyDict::new(py);
        globals
            .set_item("address", address)
            .expect("set a dict item");
        let code = CString::new(code).expect("no NUL in the test's Python code");
        if let Err(e) = py.run(&code, Some(&globals), None) {
            panic!(
                "Python raised: {e}\n{}",
                e.traceback(py)
                    .and_then(|t| t.format().ok())
                    .unwrap_or_default()
            );
        }
        globals.unbind()
    })
}

const GUEST_CODE: &str = r#"
import contracts
from mycelium_native import Runtime

rt = Runtime.attach(address, contracts)

def on_tick(tick):
    # Runs on a delivery thread; publishing from a callback is allowed.
    rt.publish(contracts.TextMessage(sender="python", body=f"got tick {tick.size}", sent_at_ns=tick.ts_ns))

sub = rt.subscribe(contracts.TradeTick, on_tick)
rt.publish(contracts.Order(order_id=42, symbol="PY", side=1, qty=7, limit_price=99.5, ts_ns=1))
"#;

#[test]
#[ignore = "needs mycelium_native installed in the venv: scripts/test-python.sh runs it with --ignored"]
fn rust_host_and_python_exchange_messages_both_ways() {
    let schema = load_contracts().unwrap_or_else(|e| panic!("{e}"));
    let bus = MessageBus::new();
    let runtime = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
    let replies = bus.subscribe_raw(TextMessage::TYPE_ID, SubscribeOptions::default());
    let orders = bus.subscribe_raw(Order::TYPE_ID, SubscribeOptions::default());

    let guest = guest("exchange");
    let globals = run_python(&guest, runtime.address(), GUEST_CODE);

    // Python -> Rust: the order published during setup.
    let env = orders
        .recv_timeout(WAIT)
        .expect("the order Python published");
    let order = Order::decode_payload(&env.payload).expect("a valid Order");
    assert_eq!(
        (order.order_id, order.symbol.as_str(), order.qty),
        (42, "PY", 7)
    );

    // Rust -> Python -> Rust: each tick comes back as a reply from the Python callback. The GIL
    // is not held here, so the callbacks can run while we wait.
    for size in 1..=3u32 {
        let tick = TradeTick {
            symbol: "RS".into(),
            price: 1.5,
            size,
            ts_ns: u64::from(size) * 10,
            side: 0,
        };
        bus.publish(&tick).expect("publish from Rust");
    }
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let env = replies
            .recv_timeout(WAIT)
            .expect("a reply from the Python callback");
        let reply = TextMessage::decode_payload(&env.payload).expect("a valid TextMessage");
        assert_eq!(reply.sender, "python");
        bodies.push(reply.body);
    }
    assert_eq!(bodies, ["got tick 1", "got tick 2", "got tick 3"]);

    // The Python subscription shows in the host's metrics, then goes away with its runtime.
    assert_eq!(bus.subscriber_count(TradeTick::TYPE_ID), 1);
    Python::attach(|py| {
        let rt = globals
            .bind(py)
            .get_item("rt")
            .expect("dict lookup")
            .expect("rt defined");
        rt.call_method0("close").expect("close the Python runtime");
    });
    assert_eq!(bus.subscriber_count(TradeTick::TYPE_ID), 0);
    // The host's own handle is untouched by the guest's close.
    bus.publish(&TradeTick::default())
        .expect("the bus is still open");
    drop(runtime);
    let _ = std::fs::remove_dir_all(&guest.module_dir);
}

#[test]
#[ignore = "needs mycelium_native installed in the venv: scripts/test-python.sh runs it with --ignored"]
fn python_with_another_schema_is_refused_with_the_differences() {
    let schema = load_contracts().unwrap_or_else(|e| panic!("{e}"));
    let runtime = mycelium_ffi::Runtime::new(&schema);
    let guest = guest("mismatch");
    let code = r#"
import types, contracts
from mycelium_native import Runtime, SchemaMismatchError
other = types.SimpleNamespace(
    SCHEMA_NAME="trading",
    SCHEMA_CANONICAL=contracts.SCHEMA_CANONICAL.replace("field size u32", "field size u64", 1),
    MESSAGES={},
)
try:
    Runtime.attach(address, other)
    outcome = "attached"
except SchemaMismatchError as e:
    outcome = str(e)
"#;
    let globals = run_python(&guest, runtime.address(), code);
    let outcome: String = Python::attach(|py| {
        let value = globals
            .bind(py)
            .get_item("outcome")
            .expect("dict lookup")
            .expect("outcome set");
        value.extract().expect("a string")
    });
    assert!(outcome.contains("TradeTick"), "{outcome}");
    assert!(
        outcome.contains("u32") && outcome.contains("u64"),
        "{outcome}"
    );
    let _ = std::fs::remove_dir_all(&guest.module_dir);
}
