"""Pull subscriptions: recv, try_recv, iteration, timeouts, overflow policies."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, List

import pytest

from mycelium_native import ClosedError, Policy, QueueFullError, Runtime, TimedOutError


def test_recv_returns_messages_in_order(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick)
    for i in range(50):
        rt.publish(contracts.TradeTick(size=i))
    assert [q.recv(timeout=5).size for _ in range(50)] == list(range(50))
    assert q.try_recv() is None


def test_recv_waits_for_a_message_from_another_thread(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.Order)
    timer = threading.Timer(0.2, lambda: rt.publish(contracts.Order(order_id=7)))
    timer.start()
    try:
        assert q.recv(timeout=10).order_id == 7
    finally:
        timer.join()


def test_recv_timeout_raises_timed_out(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick)
    with pytest.raises(TimedOutError, match="no message within"):
        q.recv(timeout=0.25)
    with pytest.raises(ValueError, match="timeout"):
        q.recv(timeout=-1)


def test_iteration_ends_when_closed_and_drained(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick)
    for i in range(5):
        rt.publish(contracts.TradeTick(size=i))
    rt.flush(10)
    q.close()
    assert [m.size for m in q] == list(range(5))
    assert q.finished
    with pytest.raises(ClosedError):
        q.recv(timeout=1)


def test_runtime_close_ends_a_blocked_recv(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    q = rt.subscription(contracts.TradeTick)
    errors: List[BaseException] = []

    def consume() -> None:
        try:
            q.recv()
        except BaseException as e:  # noqa: BLE001 - recorded for the assertion
            errors.append(e)

    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.2)
    rt.close()
    t.join(10)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], ClosedError)


def test_drop_oldest_keeps_the_newest(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=4, policy=Policy.DROP_OLDEST)
    for i in range(100):
        rt.publish(contracts.TradeTick(size=i))
    rt.flush(10)
    got = []
    while (m := q.try_recv()) is not None:
        got.append(m.size)
    assert got == list(range(96, 100))  # the bus-side queue is the only one: exactly `capacity`
    (ours,) = [s for s in rt.metrics()["subscribers"] if s["type_id"] == contracts.TradeTick.TYPE_ID]
    assert ours["dropped"] == 96
    assert q.dropped == 96  # the queue's own count, the same as the bus's


def test_dropped_counts_what_a_closed_queue_never_got(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=2, policy=Policy.DROP_OLDEST)
    for i in range(5):
        rt.publish(contracts.TradeTick(size=i))
    assert q.dropped == 3
    q.close()  # the two still queued move into the queue and stay readable
    assert [m.size for m in q] == [3, 4]
    assert q.dropped == 3
    rt.publish(contracts.TradeTick(size=5))  # no longer routed to it: not a drop
    assert q.dropped == 3
    rt.close()
    assert q.dropped == 3  # kept after the runtime is gone


def test_block_policy_holds_publishers_until_the_consumer_catches_up(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=2)
    published: List[int] = []

    def publish_all() -> None:
        for i in range(20):
            rt.publish(contracts.TradeTick(size=i))
            published.append(i)

    t = threading.Thread(target=publish_all)
    t.start()
    time.sleep(0.3)
    assert len(published) <= 2  # the queue holds exactly `capacity`; the third publish waits
    got = [q.recv(timeout=10).size for _ in range(20)]
    t.join(10)
    assert got == list(range(20))


def test_fail_policy_reports_a_full_pull_queue(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=1, policy="fail")
    with pytest.raises(QueueFullError):
        for i in range(100):
            rt.publish(contracts.TradeTick(size=i))
    assert q.recv(timeout=5).size == 0


def test_dropping_an_unread_queue_unblocks_publishers(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=1)
    rt.publish(contracts.TradeTick())
    del q  # nobody can read it any more: the subscription must end rather than stall publishers
    for i in range(50):
        rt.publish(contracts.TradeTick(size=i))
    rt.flush(10)


def test_len_counts_waiting_messages(rt: Runtime, contracts: ModuleType) -> None:
    with rt.subscription(contracts.TradeTick) as q:
        for _ in range(3):
            rt.publish(contracts.TradeTick())
        rt.flush(10)
        assert len(q) == 3
        got: List[Any] = [q.try_recv()]
        assert got[0] is not None and len(q) == 2


def _delivery_threads() -> int:
    """Threads the C library started for callback subscriptions (named mycelium-sub-<id>)."""
    tasks = Path("/proc/self/task")
    return sum(1 for t in tasks.iterdir() if (t / "comm").read_text().startswith("mycelium-sub"))


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to list threads")
def test_a_pull_queue_runs_no_delivery_thread(rt: Runtime, contracts: ModuleType) -> None:
    before = _delivery_threads()
    q = rt.subscription(contracts.TradeTick)
    rt.publish(contracts.TradeTick(size=1))
    assert q.recv(timeout=5).size == 1
    assert _delivery_threads() == before
    # The count does see the thread a callback subscription starts (named by the time it ran).
    ran = threading.Event()
    rt.subscribe(contracts.TradeTick, lambda m: ran.set())
    rt.publish(contracts.TradeTick(size=2))
    assert ran.wait(10)
    assert _delivery_threads() == before + 1


def test_threads_sharing_a_queue_get_each_message_once_in_publish_order(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=64)
    total = 3000
    seen: List[List[int]] = [[] for _ in range(3)]

    def consume(mine: List[int]) -> None:
        for m in q:
            mine.append(m.size)

    threads = [threading.Thread(target=consume, args=(s,)) for s in seen]
    for t in threads:
        t.start()
    for i in range(total):
        rt.publish(contracts.TradeTick(size=i))
    while len(q):  # let the consumers drain the queue before closing it
        time.sleep(0.01)
    q.close()
    for t in threads:
        t.join(30)
    assert sorted(x for s in seen for x in s) == list(range(total))
    assert all(s == sorted(s) for s in seen)


def test_runtime_close_keeps_queued_messages_readable(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    q = rt.subscription(contracts.TradeTick)
    for i in range(3):
        rt.publish(contracts.TradeTick(size=i))
    rt.close()
    assert [q.recv(timeout=1).size for _ in range(3)] == [0, 1, 2]
    assert q.finished
    with pytest.raises(ClosedError):
        q.recv(timeout=1)
    assert q.try_recv() is None


def test_len_counts_at_most_the_capacity(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.TradeTick, capacity=4, policy=Policy.DROP_OLDEST)
    for i in range(10):
        rt.publish(contracts.TradeTick(size=i))
    assert len(q) == 4
    assert [q.recv(timeout=1).size for _ in range(4)] == [6, 7, 8, 9]
    assert len(q) == 0
