//! A Rust service that runs a Python strategy in-process on its own bus.
//!
//! Run after `scripts/test-python.sh` (or `maturin develop` into `.venv`):
//! `cargo run -p mycelium-embed-python --example embed_python`
//!
//! Rust publishes trade ticks; the Python callback answers each with a TextMessage that Rust
//! reads back. Both sides use the same `MessageBus`: Python attaches to the handle the Rust
//! service hands it (`Runtime::address`).

use std::ffi::CString;
use std::time::Duration;

use mycelium_contracts::{TextMessage, TradeTick};
use mycelium_embed_python::{
    default_venv, load_contracts, site_packages, write_python_module, EmbedError, PythonGuest,
};
use mycelium_protocol::Message;
use mycelium_transport::{MessageBus, SubscribeOptions};
use pyo3::prelude::*;
use pyo3::types::PyDict;

const STRATEGY: &str = r#"
import contracts
from mycelium_native import Runtime

rt = Runtime.attach(address, contracts)

def on_tick(tick):
    side = "buy" if tick.side == 0 else "sell"
    rt.publish(contracts.TextMessage(sender="strategy.py", body=f"{side} {tick.size} {tick.symbol} @ {tick.price}"))

rt.subscribe(contracts.TradeTick, on_tick)
"#;

fn main() -> Result<(), EmbedError> {
    let schema = load_contracts()?;
    let bus = MessageBus::new();
    let runtime = mycelium_ffi::Runtime::from_bus(bus.clone(), &schema);
    let replies = bus.subscribe_raw(TextMessage::TYPE_ID, SubscribeOptions::default());

    let module_dir =
        std::env::temp_dir().join(format!("mycelium-embed-example-{}", std::process::id()));
    write_python_module(&schema, &module_dir, "contracts")?;
    let guest = PythonGuest {
        site_packages: site_packages(&default_venv())?,
        module_dir,
    };
    let globals = Python::attach(|py| -> Result<Py<PyDict>, EmbedError> {
        guest.prepare(py)?;
        let globals = PyDict::new(py);
        globals.set_item("address", runtime.address())?;
        let code = CString::new(STRATEGY).expect("no NUL in the strategy");
        py.run(&code, Some(&globals), None)?;
        Ok(globals.unbind())
    })?;

    for (i, symbol) in ["BTC-USD", "ETH-USD", "SOL-USD"].into_iter().enumerate() {
        let tick = TradeTick {
            symbol: symbol.into(),
            price: 100.0 * (i + 1) as f64,
            size: (i as u32 + 1) * 5,
            ts_ns: i as u64,
            side: (i % 2) as u8,
        };
        println!("rust   -> TradeTick {symbol}");
        if let Err(e) = bus.publish(&tick) {
            eprintln!("publish failed: {e}");
        }
        match replies.recv_timeout(Duration::from_secs(10)) {
            Ok(env) => match TextMessage::decode_payload(&env.payload) {
                Ok(reply) => println!("python -> {}: {}", reply.sender, reply.body),
                Err(e) => eprintln!("undecodable reply: {e}"),
            },
            Err(e) => eprintln!("no reply from Python: {e}"),
        }
    }

    Python::attach(|py| -> PyResult<()> {
        if let Some(rt) = globals.bind(py).get_item("rt")? {
            rt.call_method0("close")?;
        }
        Ok(())
    })?;
    let _ = std::fs::remove_dir_all(&guest.module_dir);
    Ok(())
}
