"""What callbacks may do: raise, publish, subscribe, close their own or another subscription."""

from __future__ import annotations

import threading

import pytest
from types import ModuleType
from typing import Any, List

from mycelium_native import Policy, Runtime, Subscription


def test_exceptions_go_to_unraisablehook_and_delivery_goes_on(
    rt: Runtime, contracts: ModuleType, unraisable: List[Any]
) -> None:
    seen: List[int] = []

    def handler(tick: Any) -> None:
        seen.append(tick.size)
        if tick.size % 2:
            raise RuntimeError(f"odd tick {tick.size}")

    rt.subscribe(contracts.TradeTick, handler, label="raiser")
    for i in range(10):
        rt.publish(contracts.TradeTick(size=i))
    rt.flush(10)
    assert seen == list(range(10))
    assert len(unraisable) == 5
    assert all(isinstance(u.exc_value, RuntimeError) for u in unraisable)
    assert unraisable[0].object is handler
    (sub,) = [s for s in rt.metrics()["subscribers"] if s["label"] == "raiser"]
    assert sub["handler_errors"] == 5


def test_close_inside_the_callback_stops_delivery_even_mid_batch(rt: Runtime, contracts: ModuleType) -> None:
    seen: List[int] = []
    holder: List[Subscription] = []
    gate = threading.Event()

    def handler(tick: Any) -> None:
        gate.wait(10)
        seen.append(tick.size)
        if tick.size == 3:
            holder[0].close()

    holder.append(rt.subscribe(contracts.TradeTick, handler, max_batch=64))
    for i in range(20):  # queued while the first call waits, so they form one batch
        rt.publish(contracts.TradeTick(size=i))
    gate.set()
    rt.flush(10)
    assert seen == [0, 1, 2, 3]
    assert holder[0].closed


def test_publish_inside_a_callback(rt: Runtime, contracts: ModuleType) -> None:
    decisions: List[Any] = []

    def risk(order: Any) -> None:
        rt.publish(contracts.OrderDecision(order_id=order.order_id, approved=order.qty < 100, reason=""))

    rt.subscribe(contracts.Order, risk)
    rt.subscribe(contracts.OrderDecision, decisions.append)
    for i, qty in enumerate([10, 500, 20]):
        rt.publish(contracts.Order(order_id=i, qty=qty))
    for _ in range(100):  # each flush covers one more hop (order -> decision)
        rt.flush(10)
        if len(decisions) == 3:
            break
    assert [(d.order_id, d.approved) for d in decisions] == [(0, True), (1, False), (2, True)]


def test_ping_pong_between_callbacks_of_two_types(rt: Runtime, contracts: ModuleType) -> None:
    finished = threading.Event()

    def ping(m: Any) -> None:
        if m.size >= 200:
            finished.set()
        else:
            rt.publish(contracts.Order(qty=m.size + 1))

    def pong(o: Any) -> None:
        rt.publish(contracts.TradeTick(size=o.qty + 1))

    rt.subscribe(contracts.TradeTick, ping, policy=Policy.DROP_OLDEST)
    rt.subscribe(contracts.Order, pong, policy=Policy.DROP_OLDEST)
    rt.publish(contracts.TradeTick(size=0))
    assert finished.wait(30)


def test_subscribe_and_close_others_inside_a_callback(rt: Runtime, contracts: ModuleType) -> None:
    late: List[Any] = []
    victim_seen: List[Any] = []
    victim = rt.subscribe(contracts.TextMessage, victim_seen.append)
    created: List[Subscription] = []

    def manager(m: Any) -> None:
        if m.body == "start":
            created.append(rt.subscribe(contracts.TextMessage, late.append))
            victim.close()  # joins the victim's delivery thread; our GIL is released meanwhile

    rt.subscribe(contracts.TextMessage, manager)
    rt.publish(contracts.TextMessage(body="start"))
    rt.flush(10)
    rt.publish(contracts.TextMessage(body="after"))
    rt.flush(10)
    assert victim.closed
    assert [m.body for m in victim_seen] == ["start"] or [m.body for m in victim_seen] == []
    assert [m.body for m in late] == ["after"]
    assert created and not created[0].closed


def test_runtime_close_inside_a_callback(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    closed = threading.Event()

    def handler(_m: Any) -> None:
        rt.close()
        closed.set()

    rt.subscribe(contracts.TradeTick, handler)
    rt.subscribe(contracts.TradeTick, lambda _m: None)
    rt.publish(contracts.TradeTick())
    assert closed.wait(10)
    assert rt.closed


def test_flush_from_inside_a_callback_is_refused(rt: Runtime, contracts: ModuleType, unraisable: List[Any]) -> None:
    from mycelium_native import WrongThreadError

    rt.subscribe(contracts.TradeTick, lambda _m: rt.flush(1))
    rt.publish(contracts.TradeTick())
    rt.flush(10)
    assert len(unraisable) == 1 and isinstance(unraisable[0].exc_value, WrongThreadError)


def test_runtime_close_inside_a_callback_while_a_publisher_waits_for_it(contracts: ModuleType) -> None:
    # The publisher is blocked on this callback's full queue: a close that waited for in-flight
    # calls from inside the callback would deadlock.
    from mycelium_native import ClosedError

    rt = Runtime(contracts)
    entered = threading.Event()
    proceed = threading.Event()

    def handler(_m: Any) -> None:
        entered.set()
        proceed.wait(10)
        rt.close()

    rt.subscribe(contracts.TradeTick, handler, capacity=1, max_batch=1)
    outcome: List[str] = []

    def publish_many() -> None:
        try:
            for i in range(10):
                rt.publish(contracts.TradeTick(size=i))
            outcome.append("all published")
        except ClosedError:
            outcome.append("closed")

    publisher = threading.Thread(target=publish_many)
    publisher.start()
    assert entered.wait(10)
    proceed.set()
    publisher.join(20)
    assert not publisher.is_alive()
    assert outcome == ["closed"]
    assert rt.closed


def test_a_callback_that_is_not_callable_is_refused_at_subscribe_time(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(TypeError, match="callback must be callable"):
        rt.subscribe(contracts.TradeTick, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callback must be callable"):
        rt.subscribe_raw(contracts.TradeTick.TYPE_ID, "print")  # type: ignore[arg-type]
    assert rt.metrics()["subscribers"] == [], "nothing was subscribed"
