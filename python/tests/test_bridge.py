"""Socket bridges between two runtimes of this interpreter: a Unix socket (both directions,
counts reconciled with the bridges' own counters), TCP on port 0, token and schema refusals,
argument errors and closing. Every wait is bounded; the bounds only turn a hang into a failure."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, List

import pytest

from mycelium_native import (
    Bridge,
    BridgeError,
    ClosedError,
    InvalidArgumentError,
    Runtime,
    TimedOutError,
)

from conftest import CONTRACTS_YAML, RESTORE_SIGINT


def sock_path(name: str) -> str:
    # Unix socket paths are limited to 107 bytes: short names in the temporary directory.
    return os.path.join(tempfile.gettempdir(), f"myc-py-{os.getpid()}-{name}.sock")


def within(what: str, cond: Callable[[], bool], seconds: float = 30.0) -> None:
    """Polls `cond` (for what has no blocking wait: interest reaching the peer, messages
    crossing a socket)."""
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.002)


def subscribers(rt: Runtime, type_id: int) -> int:
    return sum(1 for s in rt.metrics()["subscribers"] if s["type_id"] == type_id)


def wait_for_peer_interest(rt: Runtime, type_id: int) -> None:
    """The peer's subscription has arrived once the bridge holds a forwarding subscription on
    this side's bus; only then does a publish here cross."""
    within(f"the peer's subscription to type {type_id}", lambda: subscribers(rt, type_id) > 0)


class Inbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: List[Any] = []

    def add(self, item: Any) -> None:
        with self._lock:
            self.items.append(item)

    def __len__(self) -> int:
        with self._lock:
            return len(self.items)


@pytest.fixture
def pair(contracts: ModuleType) -> Iterator[tuple[Runtime, Runtime]]:
    with Runtime(contracts) as a, Runtime(contracts) as b:
        yield a, b


def tick(contracts: ModuleType, i: int) -> Any:
    return contracts.TradeTick(symbol=f"S{i}", price=1.5 + i, size=i, ts_ns=i * 10, side=i % 2)


def text(contracts: ModuleType, i: int) -> Any:
    return contracts.TextMessage(sender="a", body=f"text-{i}", sent_at_ns=i)


def test_two_runtimes_over_a_unix_socket(pair: tuple[Runtime, Runtime], contracts: ModuleType) -> None:
    a, b = pair
    path = sock_path("pair")
    listener = a.listen("unix:" + path)
    assert listener.endpoints == ["unix:" + path]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, "0600 by default"
    ticks, texts = Inbox(), Inbox()
    a.subscribe(contracts.TradeTick, ticks.add)
    # The pull side: a queue on b receives what a publishes.
    queue = b.subscription(contracts.TextMessage)
    connector = b.connect("unix:" + path)
    connector.wait(timeout=30)
    listener.wait(timeout=30)
    wait_for_peer_interest(b, contracts.TradeTick.TYPE_ID)
    wait_for_peer_interest(a, contracts.TextMessage.TYPE_ID)
    sent_ticks = [tick(contracts, i) for i in range(300)]
    sent_texts = [text(contracts, i) for i in range(120)]
    for t in sent_ticks:
        b.publish(t)
    for m in sent_texts:
        a.publish(m)
    got_texts = [queue.recv(timeout=30) for _ in range(120)]
    within("300 ticks at the listener", lambda: len(ticks) >= 300)
    assert ticks.items == sent_ticks, "same values, in publish order"
    assert got_texts == sent_texts, "same values, in publish order"
    assert connector.stats()["messages_out"] == 300
    assert connector.stats()["messages_in"] == 120
    assert listener.stats()["messages_in"] == 300
    assert listener.stats()["messages_out"] == 120
    assert listener.stats()["sessions"] == 1
    # The bridge's counters are in the metrics JSON too, by id.
    [conn] = a.metrics()["connections"]
    assert (conn["id"], conn["kind"], conn["endpoints"]) == (listener.id, "socket", listener.endpoints)
    assert conn["stats"] == listener.stats()

    # Closing is idempotent, and a closed bridge says so and refuses further use.
    with connector:
        pass
    connector.close()
    assert connector.closed
    with pytest.raises(ClosedError):
        connector.wait(timeout=1)
    with pytest.raises(ClosedError):
        connector.stats()
    assert connector.endpoints == ["unix:" + path], "still readable after close"

    # Closing the runtime closes its bridges, which removes the socket file.
    assert not listener.closed
    a.close()
    assert listener.closed
    assert not os.path.exists(path)
    listener.close()
    with pytest.raises(ClosedError):
        listener.stats()


def test_tcp_port_zero_reports_the_port(pair: tuple[Runtime, Runtime], contracts: ModuleType) -> None:
    a, b = pair
    with a.listen("tcp:127.0.0.1:0") as listener:
        (endpoint,) = listener.endpoints
        prefix = "tcp:127.0.0.1:"
        assert endpoint.startswith(prefix), endpoint
        assert int(endpoint[len(prefix):]) > 0
        got = Inbox()
        a.subscribe(contracts.TradeTick, got.add)
        with b.connect(endpoint) as connector:
            connector.wait(timeout=30)
            wait_for_peer_interest(b, contracts.TradeTick.TYPE_ID)
            b.publish(tick(contracts, 42))
            within("the tick over TCP", lambda: len(got) >= 1)
            assert [t.size for t in got.items] == [42]


def test_a_wrong_or_missing_token_is_refused(pair: tuple[Runtime, Runtime]) -> None:
    a, b = pair
    address = "unix:" + sock_path("token")
    listener = a.listen(address, token="s3cret")
    for token in ("wrong", None):
        c = b.connect(address, token=token)
        with pytest.raises(BridgeError, match="token"):
            c.wait(timeout=30)
        c.close()  # a refused connector has stopped; closing it is still fine
    within("the listener counting two refusals", lambda: listener.stats()["rejected"] == 2)
    c = b.connect(address, token="s3cret")
    c.wait(timeout=30)
    listener.wait(timeout=30)
    assert listener.stats()["sessions"] == 1


def test_a_schema_mismatch_is_refused_naming_the_message(contracts: ModuleType, tmp_path: Path) -> None:
    yaml = CONTRACTS_YAML.read_text(encoding="utf-8")
    assert "- price: f64" in yaml, "contracts.yaml has no '- price: f64' line to alter"
    altered = tmp_path / "contracts.yaml"
    altered.write_text(yaml.replace("- price: f64", "- price: f32", 1), encoding="utf-8")
    with Runtime(contracts) as a, Runtime(altered) as other:
        address = "unix:" + sock_path("schema")
        a.listen(address)
        c = other.connect(address)
        with pytest.raises(BridgeError, match="TradeTick: field price"):
            c.wait(timeout=30)


def test_wait_times_out_while_nobody_listens(rt: Runtime) -> None:
    c = rt.connect("unix:" + sock_path("nobody"))
    # Not an error: the connector keeps trying, as for a peer that starts later.
    with pytest.raises(TimedOutError):
        c.wait(timeout=0.1)
    c.close()


def test_a_wait_that_times_out_says_why_connecting_fails(rt: Runtime) -> None:
    c = rt.connect("unix:" + sock_path("absent"))
    with pytest.raises(TimedOutError, match=r"connection attempt\(s\) failed, the last: .*No such file or directory") as e:
        c.wait(timeout=2)
    assert "MYCELIUM_ERR" not in str(e.value)
    c.close()


def test_bad_addresses_tokens_and_paths(rt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        rt.listen("nonsense")
    with pytest.raises(InvalidArgumentError):
        rt.listen("tcp:0.0.0.0:0")
    with pytest.raises(InvalidArgumentError):
        rt.listen("unix:" + sock_path("empty-token"), token="")
    with pytest.raises(ValueError, match="NUL"):
        rt.listen("unix:/tmp/a\0b")
    with pytest.raises(ValueError, match="NUL"):
        rt.connect("unix:/tmp/x.sock", token="a\0b")
    with pytest.raises(ValueError, match="socket_mode"):
        rt.listen("unix:" + sock_path("mode"), socket_mode=0o1777)
    # A path that is not a socket is never replaced.
    regular = tmp_path / "regular-file"
    regular.write_text("")
    with pytest.raises(BridgeError, match=str(regular)):
        rt.listen(f"unix:{regular}")
    assert regular.exists()
    # Nor is a socket where a live bridge listens.
    path = sock_path("taken")
    with rt.listen("unix:" + path):
        with pytest.raises(BridgeError):
            rt.listen("unix:" + path)
        c = rt.connect("unix:" + path)
        with pytest.raises(ValueError):
            c.wait(timeout=1, sessions=0)


def test_socket_mode_and_distinct_ids(rt: Runtime) -> None:
    path = sock_path("mode")
    first = rt.listen("unix:" + path, socket_mode=0o660)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    first.close()
    assert not os.path.exists(path), "close removes the socket"
    second = rt.listen("unix:" + sock_path("mode2"))
    assert isinstance(second, Bridge)
    assert second.id != first.id
    assert "mode2" in repr(second)


def test_runtime_close_reports_its_bridges_closed(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    bridges = [rt.listen("unix:" + sock_path(f"rtclose{i}")) for i in range(2)]
    rt.close()
    assert [b.closed for b in bridges] == [True, True]
    with pytest.raises(ClosedError):
        rt.listen("unix:" + sock_path("after"))


def test_ctrl_c_interrupts_a_wait(contracts_dir: Path) -> None:
    code = f"""
import contracts, sys
from mycelium_native import Runtime
with Runtime(contracts) as rt:
    bridge = rt.connect("unix:{sock_path('ctrl-c')}")  # nobody listens there
    try:
        print("waiting", flush=True)
        bridge.wait(timeout=600)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(0)
sys.exit(1)
"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SIGINT + code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # let it get into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    assert "interrupted" in out


def test_close_from_another_thread_ends_a_wait(rt: Runtime) -> None:
    bridge = rt.connect(f"unix:{sock_path('nobody-close')}")
    outcome: List[BaseException] = []

    def waiter() -> None:
        try:
            bridge.wait(timeout=60.0)
        except BaseException as e:  # recorded and checked below
            outcome.append(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.2)
    bridge.close()
    t.join(timeout=10.0)
    assert not t.is_alive(), "close did not end the wait"
    assert len(outcome) == 1 and isinstance(outcome[0], (BridgeError, ClosedError)), outcome
