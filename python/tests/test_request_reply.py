"""Request/reply from Python: serve, request, request_all, the typed service helpers, asyncio,
failures (a raising handler, a wrong reply type, no responder, timeouts, closing), concurrent
requesters, and a Rust responder in another process over a socket bridge. Waits are bounded only
to turn a hang into a failure."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List

import pytest

from mycelium_native import (
    ClosedError,
    Gathered,
    NoResponderError,
    ResponderFailedError,
    Runtime,
    SchemaMismatchError,
    TimedOutError,
)

from conftest import CONTRACTS_YAML, REPO_ROOT, RESTORE_SIGINT


def order(contracts: ModuleType, order_id: int, qty: int = 1) -> Any:
    return contracts.Order(order_id=order_id, symbol="BTC-USD", side=0, qty=qty, limit_price=100.5, ts_ns=0)


def approve_small(contracts: ModuleType) -> Any:
    def decide(o: Any) -> Any:
        ok = o.qty <= 10
        return contracts.OrderDecision(order_id=o.order_id, approved=ok, reason="" if ok else "too big", ts_ns=1)

    return decide


def test_round_trip_in_one_process(rt: Runtime, contracts: ModuleType) -> None:
    with rt.serve(contracts.Order, contracts.OrderDecision, approve_small(contracts), label="risk") as svc:
        assert not svc.closed
        d = rt.request(order(contracts, 7), contracts.OrderDecision, timeout=10)
        assert (d.order_id, d.approved, d.reason) == (7, True, "")
        d = rt.request(order(contracts, 8, qty=50), contracts.OrderDecision, timeout=10)
        assert (d.order_id, d.approved, d.reason) == (8, False, "too big")
    assert svc.closed
    m = rt.metrics()
    services = m.get("services", [])
    assert any(s.get("requests", 0) >= 2 for s in services), services


def test_generated_service_descriptor(rt: Runtime, contracts: ModuleType) -> None:
    svc = rt.serve_service(contracts.RiskCheck, approve_small(contracts))
    try:
        d = rt.call(contracts.RiskCheck, order(contracts, 1), timeout=10)
        assert isinstance(d, contracts.OrderDecision) and d.order_id == 1
        with pytest.raises(TypeError, match="RiskCheck takes a Order"):
            rt.call(contracts.RiskCheck, contracts.Heartbeat())
    finally:
        svc.close()


def test_no_responder_is_immediate_and_typed(rt: Runtime, contracts: ModuleType) -> None:
    started = time.monotonic()
    with pytest.raises(NoResponderError):
        rt.request(order(contracts, 1), contracts.OrderDecision, timeout=30)
    # "at once" is the contract; 30 s is the timeout it must not have waited for.
    assert time.monotonic() - started < 25


def test_a_raising_handler_fails_the_request_and_the_service_goes_on(rt: Runtime, contracts: ModuleType) -> None:
    calls: List[int] = []

    def flaky(o: Any) -> Any:
        calls.append(o.order_id)
        if o.order_id == 13:
            raise ValueError("unlucky order")
        return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)

    with rt.serve(contracts.Order, contracts.OrderDecision, flaky):
        with pytest.raises(ResponderFailedError, match="unlucky order"):
            rt.request(order(contracts, 13), contracts.OrderDecision, timeout=10)
        assert rt.request(order(contracts, 14), contracts.OrderDecision, timeout=10).order_id == 14
    assert calls == [13, 14]


def test_a_reply_of_the_wrong_type_fails_with_a_clear_reason(rt: Runtime, contracts: ModuleType) -> None:
    with rt.serve(contracts.Order, contracts.OrderDecision, lambda o: o):
        with pytest.raises(ResponderFailedError, match="returned Order, not a OrderDecision"):
            rt.request(order(contracts, 1), contracts.OrderDecision, timeout=10)


def test_timeout_while_the_handler_is_slow(rt: Runtime, contracts: ModuleType) -> None:
    release = threading.Event()

    def slow(o: Any) -> Any:
        release.wait(30)
        return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)

    svc = rt.serve(contracts.Order, contracts.OrderDecision, slow)
    try:
        with pytest.raises(TimedOutError):
            rt.request(order(contracts, 1), contracts.OrderDecision, timeout=0.2)
    finally:
        release.set()
        svc.close()


def test_request_all_gathers_every_answer_and_counts_failures(rt: Runtime, contracts: ModuleType) -> None:
    def answer(tag: int) -> Any:
        return lambda o: contracts.OrderDecision(order_id=o.order_id, approved=True, reason=f"r{tag}", ts_ns=0)

    def broken(o: Any) -> Any:
        raise RuntimeError("down")

    services = [
        rt.serve(contracts.Order, contracts.OrderDecision, answer(1)),
        rt.serve(contracts.Order, contracts.OrderDecision, answer(2)),
        rt.serve(contracts.Order, contracts.OrderDecision, broken),
    ]
    try:
        g = rt.request_all(order(contracts, 5), contracts.OrderDecision, timeout=10)
        assert isinstance(g, Gathered)
        assert sorted(d.reason for d in g.replies) == ["r1", "r2"]
        assert (g.failed, g.unanswered) == (1, 0)
        # The first success wins for a plain request.
        assert rt.request(order(contracts, 6), contracts.OrderDecision, timeout=10).reason in ("r1", "r2")
    finally:
        for s in services:
            s.close()


def test_concurrent_requesters_each_get_their_own_answer(rt: Runtime, contracts: ModuleType) -> None:
    with rt.serve(contracts.Order, contracts.OrderDecision, approve_small(contracts)):
        errors: List[BaseException] = []

        def worker(base: int) -> None:
            try:
                for i in range(50):
                    d = rt.request(order(contracts, base + i), contracts.OrderDecision, timeout=30)
                    assert d.order_id == base + i
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
        assert errors == []


def test_a_handler_may_request_another_service(rt: Runtime, contracts: ModuleType) -> None:
    # The inner service answers Quote-free: an Order for an OrderDecision; the outer one is a
    # TextMessage echo that asks it (requests from a handler do not deadlock).
    inner = rt.serve(contracts.Order, contracts.OrderDecision, approve_small(contracts))

    def outer(t: Any) -> Any:
        d = rt.request(order(contracts, 99), contracts.OrderDecision, timeout=10)
        return contracts.TextMessage(sender="outer", body=f"{t.body}:{d.order_id}", sent_at_ns=0)

    svc = rt.serve(contracts.TextMessage, contracts.TextMessage, outer)
    try:
        got = rt.request(contracts.TextMessage(sender="me", body="hi", sent_at_ns=0), contracts.TextMessage, timeout=10)
        assert got.body == "hi:99"
    finally:
        svc.close()
        inner.close()


def test_asyncio_request_does_not_block_the_loop(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> None:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        def slow(o: Any) -> Any:
            time.sleep(0.2)
            return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)

        with rt.serve(contracts.Order, contracts.OrderDecision, slow):
            task = asyncio.ensure_future(ticker())
            d = await rt.request_async(order(contracts, 3), contracts.OrderDecision, timeout=10)
            g = await rt.request_all_async(order(contracts, 4), contracts.OrderDecision, timeout=10)
            task.cancel()
        assert d.order_id == 3 and [r.order_id for r in g.replies] == [4]
        assert ticks > 10, "the event loop was blocked while the request waited"

    asyncio.run(main())


def test_closing_a_service_ends_it_and_a_closed_runtime_refuses(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    svc = rt.serve(contracts.Order, contracts.OrderDecision, approve_small(contracts))
    svc.close()
    svc.close()  # idempotent
    with pytest.raises(NoResponderError):
        rt.request(order(contracts, 1), contracts.OrderDecision, timeout=5)
    svc2 = rt.serve(contracts.Order, contracts.OrderDecision, approve_small(contracts))
    rt.close()
    assert svc2.closed
    with pytest.raises(Exception, match="closed"):
        rt.request(order(contracts, 1), contracts.OrderDecision, timeout=5)


def test_errors_name_the_service(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(NoResponderError, match=r"^request Order -> OrderDecision: .*no responder"):
        rt.request(order(contracts, 1), contracts.OrderDecision, timeout=5)
    with pytest.raises(NoResponderError, match=r"^service RiskCheck \(Order -> OrderDecision\): "):
        rt.call(contracts.RiskCheck, order(contracts, 1), timeout=5)

    def broken(o: Any) -> Any:
        raise RuntimeError("risk engine down")

    with rt.serve(contracts.Order, contracts.OrderDecision, broken):
        with pytest.raises(ResponderFailedError, match=r"^service RiskCheck \(Order -> OrderDecision\): .*risk engine down"):
            rt.call(contracts.RiskCheck, order(contracts, 1), timeout=5)


def test_closing_a_service_with_requests_in_flight(rt: Runtime, contracts: ModuleType) -> None:
    # One request is in the handler, two wait in the service's queue when close() starts. The
    # running one may still get its reply; the queued ones fail at once: nobody waits for the
    # 30 s timeout, and close() returns once the handler has returned.
    entered, release = threading.Event(), threading.Event()

    def slow(o: Any) -> Any:
        entered.set()
        release.wait(30)
        return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)

    svc = rt.serve(contracts.Order, contracts.OrderDecision, slow)
    outcomes: Dict[int, Any] = {}

    def ask(i: int) -> None:
        try:
            outcomes[i] = rt.request(order(contracts, i), contracts.OrderDecision, timeout=30)
        except BaseException as e:  # checked below
            outcomes[i] = e

    first = threading.Thread(target=ask, args=(1,))
    first.start()
    assert entered.wait(30)
    queued = [threading.Thread(target=ask, args=(i,)) for i in (2, 3)]
    for t in queued:
        t.start()
    deadline = time.monotonic() + 30
    while not any(s.get("requests", 0) >= 3 for s in rt.metrics().get("services", [])):
        assert time.monotonic() < deadline, "the queued requests never reached the service"
        time.sleep(0.01)
    closer = threading.Thread(target=svc.close)
    closer.start()
    try:
        # The queued requests fail while the handler still runs.
        for t in queued:
            t.join(20)
            assert not t.is_alive(), "a queued request still waits after close() started"
    finally:
        release.set()
    for t in [first, closer, *queued]:
        t.join(60)
        assert not t.is_alive()
    first_outcome = outcomes[1]
    assert isinstance(first_outcome, ResponderFailedError) or first_outcome.order_id == 1, first_outcome
    for i in (2, 3):
        assert isinstance(outcomes[i], ResponderFailedError), outcomes[i]
    with pytest.raises(NoResponderError):
        rt.request(order(contracts, 4), contracts.OrderDecision, timeout=5)


def test_closing_the_runtime_ends_a_waiting_request(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    entered, release = threading.Event(), threading.Event()

    def slow(o: Any) -> Any:
        entered.set()
        release.wait(30)
        return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)

    rt.serve(contracts.Order, contracts.OrderDecision, slow)
    outcome: List[BaseException] = []

    def ask() -> None:
        try:
            rt.request(order(contracts, 1), contracts.OrderDecision, timeout=30)
        except BaseException as e:  # checked below
            outcome.append(e)

    requester = threading.Thread(target=ask)
    requester.start()
    assert entered.wait(30)
    closer = threading.Thread(target=rt.close)
    closer.start()
    try:
        # The request ends while the handler still runs: it does not wait for its answer.
        requester.join(20)
        assert not requester.is_alive(), "the request still waits after the runtime's close"
    finally:
        release.set()
        closer.join(60)
    assert not closer.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ClosedError), outcome


CTRL_C_DURING_A_REQUEST = """
import os, sys, threading
import contracts
from mycelium_native import Runtime
release = threading.Event()
def slow(o):
    release.wait(60)
    return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=0)
rt = Runtime(contracts)
rt.serve(contracts.Order, contracts.OrderDecision, slow)
def order(i):
    return contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=1, limit_price=1.0, ts_ns=0)
print("waiting", flush=True)
try:
    rt.request(order(1), contracts.OrderDecision, timeout=60)
    print("answered without waiting", flush=True)
    os._exit(1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
release.set()
# The service goes on: the next request is answered.
print("answered", rt.request(order(2), contracts.OrderDecision, timeout=30).order_id, flush=True)
rt.close()
"""


def test_ctrl_c_interrupts_a_waiting_request(contracts_dir: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SIGINT + CTRL_C_DURING_A_REQUEST],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # let it get into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split("\n")[:2] == ["interrupted", "answered 2"], (out, err)


def test_bad_arguments(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(TypeError, match="handler must be callable"):
        rt.serve(contracts.Order, contracts.OrderDecision, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        rt.request(order(contracts, 1), contracts.OrderDecision, timeout=-1)
    with pytest.raises(TypeError, match="not a generated message class"):
        rt.serve(int, contracts.OrderDecision, lambda o: o)  # type: ignore[type-var]


def test_a_rust_responder_in_another_process_answers_over_a_bridge(
    rt: Runtime, contracts: ModuleType, tmp_path: Path
) -> None:
    cli = os.environ.get("MYCELIUM_CLI") or str(REPO_ROOT / "target" / "debug" / "mycelium")
    if not Path(cli).is_file():
        subprocess.run(["cargo", "build", "-q", "-p", "mycelium-codegen", "--bin", "mycelium"], cwd=REPO_ROOT, check=True)
    # Unix socket paths are limited to 107 bytes (pytest's tmp_path can be longer, e.g. in the
    # Nix sandbox): a short name in the temporary directory.
    sock_file = Path(tempfile.gettempdir()) / f"myc-py-{os.getpid()}-risk.sock"
    sock = f"unix:{sock_file}"
    answer = '{"order_id": 0, "approved": true, "reason": "rust", "ts_ns": 0}'
    server = subprocess.Popen(
        [cli, "reply", "RiskCheck", answer, "--copy", "order_id", "--schema", str(CONTRACTS_YAML), "--listen", sock, "--count", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock_file.exists():
            assert time.monotonic() < deadline and server.poll() is None, "the reply process did not listen"
            time.sleep(0.02)
        bridge = rt.connect(sock)
        bridge.wait(timeout=30)
        # The responder is announced by the peer shortly after the session opens.
        while True:
            try:
                d = rt.call(contracts.RiskCheck, order(contracts, 41), timeout=10)
                break
            except NoResponderError:
                assert time.monotonic() < deadline, "the Rust responder was never announced"
                time.sleep(0.02)
        assert (d.order_id, d.reason) == (41, "rust")
        for i in (42, 43):
            assert rt.call(contracts.RiskCheck, order(contracts, i), timeout=10).order_id == i
        out, err = server.communicate(timeout=30)
        assert server.returncode == 0, err
        assert len(out.splitlines()) == 3
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
