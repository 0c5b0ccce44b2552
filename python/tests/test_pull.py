"""Pull subscriptions: recv, try_recv, iteration, timeouts, overflow policies."""

from __future__ import annotations

import threading
import time
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
    assert got[-1] == 99
    assert got == sorted(got)
    assert len(got) <= 8
    bus_drops = sum(s["dropped"] for s in rt.metrics()["subscribers"])
    assert q.dropped + bus_drops == 100 - len(got)


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
    assert len(published) < 20  # at most ~2x capacity can be pending
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
