"""Runtime.attach: a second handle onto an existing bus (what a Rust host hands to Python)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any, List

import pytest

from mycelium_native import ClosedError, MyceliumError, Runtime, SchemaMismatchError

from conftest import CONTRACTS_YAML


def test_attached_runtime_shares_the_bus(contracts: ModuleType) -> None:
    with Runtime(contracts) as host:
        with Runtime.attach(host.address, contracts) as guest:
            at_host: List[Any] = []
            at_guest: List[Any] = []
            host.subscribe(contracts.TextMessage, at_host.append)
            guest.subscribe(contracts.TextMessage, at_guest.append)
            guest.publish(contracts.TextMessage(sender="guest", body="hi"))
            host.publish(contracts.TextMessage(sender="host", body="hello"))
            host.flush(10)
            guest.flush(10)
            assert [m.sender for m in at_host] == ["guest", "host"]
            assert [m.sender for m in at_guest] == ["guest", "host"]
            assert guest.address != host.address  # attach cloned the handle


def test_attached_runtime_outlives_the_handle_it_was_made_from(contracts: ModuleType) -> None:
    host = Runtime(contracts)
    guest = Runtime.attach(host.address, contracts)
    host.close()
    got: List[Any] = []
    guest.subscribe(contracts.TradeTick, got.append)
    guest.publish(contracts.TradeTick(size=3))
    guest.flush(10)
    guest.close()
    assert [m.size for m in got] == [3]


def test_closing_the_guest_leaves_the_host_bus_open(contracts: ModuleType) -> None:
    with Runtime(contracts) as host:
        guest = Runtime.attach(host.address, contracts)
        guest.subscribe(contracts.TradeTick, lambda _m: None)
        guest.close()
        host.publish(contracts.TradeTick())  # no ClosedError


def test_attach_with_a_yaml_path_verifies_too(contracts: ModuleType, tmp_path: Path) -> None:
    with Runtime(contracts) as host:
        Runtime.attach(host.address, CONTRACTS_YAML).close()
        other = tmp_path / "other.yaml"
        other.write_text("schema: o\nversion: 1\nmessages:\n  Ping:\n    id: 1\n")
        with pytest.raises(SchemaMismatchError):
            Runtime.attach(host.address, other)


def test_schema_mismatch_names_the_differing_messages(contracts: ModuleType) -> None:
    changed = contracts.SCHEMA_CANONICAL.replace("field price f64", "field price f32", 1)
    assert changed != contracts.SCHEMA_CANONICAL
    other_schema = SimpleNamespace(SCHEMA_NAME="trading", SCHEMA_CANONICAL=changed, MESSAGES={})
    with Runtime(contracts) as host:
        with pytest.raises(SchemaMismatchError) as info:
            Runtime.attach(host.address, other_schema)  # type: ignore[arg-type]
        assert "TradeTick" in str(info.value)
        assert "f64" in str(info.value) and "f32" in str(info.value)


def test_attach_to_null_or_destroyed_handles_fails_cleanly(contracts: ModuleType) -> None:
    with pytest.raises(MyceliumError):
        Runtime.attach(0, contracts)
    rt = Runtime(contracts)
    address = rt.address
    rt.close()
    with pytest.raises(ClosedError):
        rt.address  # noqa: B018 - the property raises
    # The C library keeps destroyed headers (tombstones), so a stale address is refused too.
    with pytest.raises(ClosedError):
        Runtime.attach(address, contracts)


def test_attach_to_a_bogus_address_raises_instead_of_crashing(child: Any) -> None:
    # Before mycelium_runtime_clone probed its argument, the first of these was a SIGSEGV.
    # In a child process so that a crash fails this test and not the whole session.
    code = """
import ctypes, contracts
from mycelium_native import InvalidArgumentError, Runtime
zeros = ctypes.create_string_buffer(256)
with Runtime(contracts) as host:
    lookalike = ctypes.create_string_buffer(ctypes.string_at(host.address, 8) + bytes(248))
    cases = {
        "0xdeadbeef": 0xDEADBEEF,
        "unmapped": 0xDEADBEE8,
        "0x1": 1,
        "zeros": ctypes.addressof(zeros),
        "look-alike": ctypes.addressof(lookalike),
    }
    for name, address in cases.items():
        try:
            Runtime.attach(address, contracts)
        except InvalidArgumentError as e:
            assert "not a mycelium runtime handle" in str(e), (name, str(e))
            print(name, "refused", flush=True)
        else:
            raise SystemExit(f"{name}: attach succeeded")
    Runtime.attach(host.address, contracts).close()  # the real one still works
print("done")
"""
    out = child(code, timeout=60)
    assert out.returncode == 0, out.stderr
    for name in ("0xdeadbeef", "unmapped", "0x1", "zeros", "look-alike"):
        assert f"{name} refused" in out.stdout
    assert "done" in out.stdout
