"""Stress: 4 publishing threads x 100k messages under the Block policy into a small queue:
nothing is lost and each thread's messages arrive in the order it published them."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, Callable, List

import pytest

from mycelium_native import Policy, Runtime

THREADS = 4
PER_THREAD = 100_000


@pytest.mark.timeout(600)
def test_four_publishers_block_policy_nothing_lost_order_kept(rt: Runtime, contracts: ModuleType) -> None:
    last_seq = [-1] * THREADS
    received = [0] * THREADS
    out_of_order: List[str] = []

    def on_tick(tick: contracts.TradeTick) -> None:  # type: ignore[name-defined]
        t, seq = tick.side, tick.ts_ns
        if seq != last_seq[t] + 1:
            out_of_order.append(f"thread {t}: {seq} after {last_seq[t]}")
        last_seq[t] = seq
        received[t] += 1

    # A small queue keeps the publishers blocking most of the time.
    rt.subscribe(contracts.TradeTick, on_tick, capacity=64, policy=Policy.BLOCK)
    # A pull subscriber on the same type must see the same stream.
    pull = rt.subscription(contracts.TradeTick, capacity=256)
    pulled = [0] * THREADS

    def drain() -> None:
        for tick in pull:
            pulled[tick.side] += 1

    drainer = threading.Thread(target=drain)
    drainer.start()
    payloads = [
        [contracts.TradeTick(symbol="S", price=1.0, size=1, ts_ns=i, side=t).to_bytes() for i in range(PER_THREAD)]
        for t in range(THREADS)
    ]
    errors: List[BaseException] = []

    def publish(t: int) -> None:
        try:
            publish_raw = rt.publish_raw
            for payload in payloads[t]:
                publish_raw(contracts.TradeTick.TYPE_ID, payload)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    publishers = [threading.Thread(target=publish, args=(t,)) for t in range(THREADS)]
    for p in publishers:
        p.start()
    for p in publishers:
        p.join()
    rt.flush(120)
    pull.close()
    drainer.join(60)
    assert errors == []
    assert out_of_order == []
    assert received == [PER_THREAD] * THREADS
    assert pulled == [PER_THREAD] * THREADS
    (types,) = [t for t in rt.metrics()["types"] if t["type_id"] == contracts.TradeTick.TYPE_ID]
    assert types["published"] == THREADS * PER_THREAD
    assert types["dropped"] == 0



WAIT_FOR_A_PYTHON_CONSUMER = """
import time, contracts
from mycelium_native import Runtime
seen = []
def slow(tick):
    time.sleep(0.001)  # slower than the publisher: the queue (capacity 1) fills
    seen.append(tick.size)
with Runtime(contracts) as rt:
    with rt.subscribe(contracts.TradeTick, slow, capacity=1, max_batch=1):
        for i in range(200):
            rt.publish(contracts.TradeTick(size=i))
        rt.flush(timeout=30)
assert seen == list(range(200)), seen[:10]
print("all 200 in order")
"""


def test_a_publish_waiting_for_a_python_consumer_lets_it_run(child: Callable[..., Any]) -> None:
    """publish keeps the GIL unless it must wait for room; then it must let go of it, or the
    Python callback that would make room never runs. That deadlock would also stop
    pytest-timeout (it needs the GIL), hence a child process with a timeout."""
    out = child(WAIT_FOR_A_PYTHON_CONSUMER, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "all 200 in order" in out.stdout
