"""The library's log records, forwarded to Python's :mod:`logging`.

The Rust side (bus, bridges, this adapter) reports through ``tracing``; the compiled module
queues those records (python/src/logs.rs) and the daemon thread started here logs them on the
``mycelium.*`` loggers: ``mycelium.bridge.connector``, ``mycelium.ffi.log``,
``mycelium.python.core``, ... Structured fields (endpoint, subscription, type) are in the
message as ``key=value`` and on the record as ``record.mycelium_fields`` (a dict).

Which records the library produces at all is chosen by ``MYCELIUM_LOG`` (else ``RUST_LOG``),
in tracing's filter syntax, default ``info``; Python's logger levels and handlers then filter
and route them as usual.
"""

from __future__ import annotations

import logging
import threading
from typing import Optional

from . import _native

_thread: Optional[threading.Thread] = None
_lock = threading.Lock()


def logger_name(target: str) -> str:
    """The Python logger for a Rust log target (``mycelium_bridge::connector`` ->
    ``mycelium.bridge.connector``; this adapter's ``_native::core`` -> ``mycelium.python.core``)."""
    head, *rest = target.split("::")
    if head.startswith("mycelium_"):
        head = head[len("mycelium_") :]
    elif head == "_native":
        head = "python"
    return ".".join(["mycelium", head.replace("-", "_"), *rest])


def _forward() -> None:
    while True:
        record = _native._next_log_record()
        if record is None:
            continue
        level, target, message, fields = record
        logger = logging.getLogger(logger_name(target))
        if not logger.isEnabledFor(level):
            continue
        text = message
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields)
        logger.log(level, text, extra={"mycelium_fields": dict(fields)})


def start() -> None:
    """Starts the forwarding thread once per process (called on import)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_forward, name="mycelium-log", daemon=True)
            _thread.start()


def records_dropped() -> int:
    """Records dropped because the forwarding thread fell 10 000 behind."""
    return _native._log_records_dropped()
