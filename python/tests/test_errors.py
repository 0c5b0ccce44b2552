"""The exception hierarchy (pure Python: no runtime needed) and its agreement with the C ABI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from mycelium_native import errors

REPO_ROOT = Path(__file__).resolve().parents[2]


def c_abi_statuses() -> dict[str, int]:
    """Status names and codes as the C ABI defines them (the header, or its Rust source)."""
    header = REPO_ROOT / "rust" / "mycelium-ffi" / "include" / "mycelium.h"
    source = header if header.is_file() else REPO_ROOT / "rust" / "mycelium-ffi" / "src" / "status.rs"
    found = dict(
        (name, int(code)) for name, code in re.findall(r"\b(MYCELIUM_(?:OK|ERR_[A-Z_]+)) = (\d+)", source.read_text())
    )
    assert found, f"no status codes found in {source}"
    return found


def test_every_error_status_has_its_own_class() -> None:
    statuses = c_abi_statuses()
    for name, code in statuses.items():
        if name == "MYCELIUM_OK":
            assert code == 0
            continue
        cls = errors.STATUS_ERRORS.get(code)
        assert cls is not None, f"{name} ({code}) has no exception class"
        assert cls.status_name == name, f"{cls.__name__} says {cls.status_name}, the C ABI says {name}"
        assert issubclass(cls, errors.MyceliumError)


def test_error_for_status_builds_the_mapped_class_with_the_message() -> None:
    exc = errors.error_for_status(9, "the runtime is closed")
    assert type(exc) is errors.ClosedError
    assert str(exc) == "the runtime is closed"
    assert exc.status == 9


def test_unknown_status_falls_back_to_the_base_class() -> None:
    exc = errors.error_for_status(4242, "from a newer library")
    assert type(exc) is errors.MyceliumError
    assert "newer library" in str(exc)


def test_builtin_families_still_catch_them() -> None:
    with pytest.raises(TimeoutError):
        raise errors.TimedOutError("waited")
    with pytest.raises(ValueError):
        raise errors.DecodeError("bad payload")
    with pytest.raises(ValueError):
        raise errors.EncodeError("out of range")
    assert str(errors.UnknownTypeError("type id 9 is unknown")) == "type id 9 is unknown"


def test_errors_module_imports_without_the_compiled_extension(tmp_path: Path) -> None:
    # A copy of the pure-Python package without _native: generated modules must still be able
    # to import DecodeError/EncodeError from it.
    package = Path(errors.__file__).parent
    copy = tmp_path / "mycelium_native"
    copy.mkdir()
    for name in ("__init__.py", "errors.py", "_schema.py", "_runtime.py"):
        (copy / name).write_text((package / name).read_text())
    code = (
        "import mycelium_native.errors as e, mycelium_native as m\n"
        "assert issubclass(e.DecodeError, e.MyceliumError)\n"
        "try:\n"
        "    m.Runtime\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(tmp_path)}
    )
    assert out.returncode == 0, out.stderr
    assert "needs the compiled extension mycelium_native._native" in out.stdout


def test_bridge_status_maps_to_bridge_error() -> None:
    exc = errors.error_for_status(16, "authentication failed: the token does not match")
    assert type(exc) is errors.BridgeError
    assert exc.status_name == "MYCELIUM_ERR_BRIDGE"
