//! The library's log records delivered to Python's `logging`, as the `mycelium.*` loggers: the
//! queue is `mycelium_ffi::log_forward` (why a queue: see there); the daemon thread
//! `mycelium-log`, started by `mycelium_native/__init__.py`, takes records without the GIL and
//! logs them with it (`mycelium_native/_logs.py`). A forked child has no such thread (the
//! parent's held the queue at the fork): its records are dropped.

use mycelium_ffi::log_forward;
use pyo3::prelude::*;
use tracing::Level;

/// One record as Python receives it: (logging level, target, message, fields).
type PyRecord = (u8, String, String, Vec<(String, String)>);

/// Python's numeric level for a tracing level (TRACE has no name there: 5).
fn python_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

/// Makes the library's records go to the queue (this extension's own copy of tracing: a Rust
/// host embedding Python keeps its subscriber).
pub(crate) fn install() -> bool {
    log_forward::install()
}

/// The next log record as `(level, target, message, fields)`, waiting for it without the GIL.
/// Called in a loop by the `mycelium-log` daemon thread; `detach` parks it for good once the
/// interpreter shuts down.
#[pyfunction]
pub(crate) fn _next_log_record(py: Python<'_>) -> Option<PyRecord> {
    crate::lifecycle::detach(py, log_forward::next_record)
        .map(|r| (python_level(r.level), r.target, r.message, r.fields))
}

/// Log records dropped because the Python thread fell 10 000 behind.
#[pyfunction]
pub(crate) fn _log_records_dropped() -> u64 {
    log_forward::dropped()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_pythons() {
        let levels = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        assert_eq!(levels.map(python_level), [40, 30, 20, 10, 5]);
    }
}
