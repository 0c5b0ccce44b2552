"""The library's log records reach Python's `logging` (python/src/logs.rs, mycelium_native/_logs.py)."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from types import ModuleType

import pytest

from mycelium_native import Runtime, _logs


def test_rust_targets_map_to_mycelium_loggers() -> None:
    assert _logs.logger_name("mycelium_bridge::connector") == "mycelium.bridge.connector"
    assert _logs.logger_name("mycelium_ffi") == "mycelium.ffi"
    assert _logs.logger_name("_native::core") == "mycelium.python.core"
    assert _logs.logger_name("tokio::runtime") == "mycelium.tokio.runtime"


def test_a_bridge_that_cannot_connect_says_why_on_the_mycelium_logger(
    contracts: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    # Unix socket paths are limited to 107 bytes (pytest's tmp_path can be longer, e.g. in the
    # Nix sandbox): a short name in the temporary directory, which must not exist.
    missing = Path(tempfile.gettempdir()) / f"myc-py-{os.getpid()}-absent.sock"
    assert not missing.exists()
    caplog.set_level(logging.WARNING, logger="mycelium")
    with Runtime(contracts) as rt:
        rt.connect(f"unix:{missing}")
        deadline = time.monotonic() + 20
        found: list[logging.LogRecord] = []
        while not found and time.monotonic() < deadline:
            found = [
                r
                for r in caplog.records
                if r.name.startswith("mycelium.bridge") and "cannot connect" in r.getMessage()
            ]
            time.sleep(0.05)
    assert found, f"no 'cannot connect' record; got {[(r.name, r.getMessage()) for r in caplog.records]}"
    record = found[0]
    assert record.levelno == logging.WARNING
    fields = getattr(record, "mycelium_fields")
    assert str(missing) in fields["endpoint"], fields
    assert "No such file or directory" in record.getMessage()
    assert _logs.records_dropped() == 0
