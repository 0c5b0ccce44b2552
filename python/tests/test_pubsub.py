"""Publish and subscribe with generated classes: values, order, validation, errors, metrics."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any, List

import pytest

from mycelium_native import (
    ClosedError,
    DecodeError,
    Policy,
    QueueFullError,
    Runtime,
    TimedOutError,
    UnknownTypeError,
)


def test_messages_arrive_decoded_and_in_order(rt: Runtime, contracts: ModuleType) -> None:
    got: List[Any] = []
    rt.subscribe(contracts.TradeTick, got.append)
    sent = [contracts.TradeTick(symbol=f"S{i}", price=i / 4, size=i, ts_ns=10**12 + i, side=i % 2) for i in range(500)]
    for tick in sent:
        rt.publish(tick)
    rt.flush(10)
    assert got == sent


def test_nested_list_and_empty_messages_round_trip(rt: Runtime, contracts: ModuleType) -> None:
    got: List[Any] = []
    for cls in (contracts.Quote, contracts.TickBatch, contracts.Heartbeat):
        rt.subscribe(cls, got.append)
    quote = contracts.Quote(
        symbol="EURUSD", bid=contracts.PriceLevel(price=1.1, qty=5), ask=contracts.PriceLevel(price=1.2, qty=7), ts_ns=3
    )
    batch = contracts.TickBatch(
        venue=b"XNAS", seq=9, ticks=[contracts.TradeTick(symbol="A", price=1.0), contracts.TradeTick(symbol="B")]
    )
    beat = contracts.Heartbeat()
    for m in (quote, batch, beat):
        rt.publish(m)
    rt.flush(10)
    assert sorted(got, key=lambda m: m.TYPE_ID) == [quote, batch, beat]


def test_every_subscriber_gets_every_message(rt: Runtime, contracts: ModuleType) -> None:
    a: List[Any] = []
    b: List[Any] = []
    rt.subscribe(contracts.Order, a.append)
    rt.subscribe(contracts.Order, b.append, capacity=4)
    orders = [contracts.Order(order_id=i, symbol="X", qty=i) for i in range(100)]
    for o in orders:
        rt.publish(o)
    rt.flush(10)
    assert a == orders and b == orders


def test_publish_raw_delivers_bytes_to_raw_subscribers(rt: Runtime, contracts: ModuleType) -> None:
    got: List[bytes] = []
    rt.subscribe_raw(contracts.TextMessage.TYPE_ID, got.append)
    payload = contracts.TextMessage(sender="a", body="héllo", sent_at_ns=1).to_bytes()
    rt.publish_raw(contracts.TextMessage.TYPE_ID, payload)
    rt.flush(10)
    assert got == [payload]


def test_invalid_payloads_are_refused_before_delivery(rt: Runtime, contracts: ModuleType) -> None:
    got: List[Any] = []
    rt.subscribe(contracts.TradeTick, got.append)
    good = contracts.TradeTick(symbol="ok").to_bytes()
    with pytest.raises(DecodeError, match="TradeTick"):
        rt.publish_raw(contracts.TradeTick.TYPE_ID, good[:-1])
    with pytest.raises(DecodeError, match="TradeTick"):
        rt.publish_raw(contracts.TradeTick.TYPE_ID, good + b"\x00")
    with pytest.raises(UnknownTypeError, match="type id 999"):
        rt.publish_raw(999, b"")
    rt.flush(10)
    assert got == []
    assert rt.metrics()["types"] == [] or all(t["published"] == 0 for t in rt.metrics()["types"])


def test_bad_arguments_raise_value_errors(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(ValueError, match="overflow policy"):
        rt.subscribe(contracts.TradeTick, print, policy="sometimes")
    with pytest.raises(ValueError, match="capacity"):
        rt.subscription(contracts.TradeTick, capacity=0)
    with pytest.raises(ValueError, match="NUL"):
        rt.subscribe(contracts.TradeTick, print, label="a\0b")
    with pytest.raises(TypeError, match="not a generated message class"):
        rt.subscribe(int, print)  # type: ignore[type-var]


def test_fail_policy_raises_queue_full_and_others_still_receive(rt: Runtime, contracts: ModuleType) -> None:
    release = threading.Event()
    entered = threading.Event()
    others: List[Any] = []

    def slow(_m: Any) -> None:
        entered.set()
        release.wait(30)

    rt.subscribe(contracts.TradeTick, slow, capacity=2, max_batch=1, policy=Policy.FAIL)
    rt.subscribe(contracts.TradeTick, others.append)
    rt.publish(contracts.TradeTick(size=0))
    assert entered.wait(10)
    rt.publish(contracts.TradeTick(size=1))
    rt.publish(contracts.TradeTick(size=2))
    with pytest.raises(QueueFullError):
        rt.publish(contracts.TradeTick(size=3))
    release.set()
    rt.flush(10)
    assert [m.size for m in others] == [0, 1, 2, 3]


def test_flush_times_out_while_a_callback_is_busy(rt: Runtime, contracts: ModuleType) -> None:
    release = threading.Event()
    rt.subscribe(contracts.TradeTick, lambda _m: release.wait(30))
    rt.publish(contracts.TradeTick())
    with pytest.raises(TimedOutError, match="pending"):
        rt.flush(0.3)
    release.set()
    rt.flush(10)


def test_metrics_count_publishes_and_deliveries(rt: Runtime, contracts: ModuleType) -> None:
    rt.subscribe(contracts.PriceLevel, lambda _m: None, label="metrics-test")
    for i in range(10):
        rt.publish(contracts.PriceLevel(price=i, qty=i))
    rt.flush(10)
    metrics = rt.metrics()
    (level,) = [t for t in metrics["types"] if t["type_id"] == contracts.PriceLevel.TYPE_ID]
    assert level["published"] == 10
    assert level["name"] == "PriceLevel"
    (sub,) = [s for s in metrics["subscribers"] if s["label"] == "metrics-test"]
    assert sub["delivered"] == 10
    assert "PriceLevel" in rt.metrics_prometheus()


def test_closed_runtime_refuses_everything(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    sub = rt.subscribe(contracts.TradeTick, print)
    rt.close()
    rt.close()  # idempotent
    assert rt.closed and sub.closed
    sub.close()  # already ended with the runtime: not an error
    with pytest.raises(ClosedError):
        rt.publish(contracts.TradeTick())
    with pytest.raises(ClosedError):
        rt.subscribe(contracts.TradeTick, print)
    with pytest.raises(ClosedError):
        rt.metrics()


def test_context_managers_close(contracts: ModuleType) -> None:
    got: List[Any] = []
    with Runtime(contracts) as rt:
        with rt.subscribe(contracts.TradeTick, got.append) as sub:
            rt.publish(contracts.TradeTick(size=1))
            rt.flush(10)
        assert sub.closed
        rt.publish(contracts.TradeTick(size=2))
        rt.flush(10)
    assert rt.closed
    assert [m.size for m in got] == [1]


@pytest.mark.parametrize("api", ["subscribe", "subscribe_raw", "subscription", "stream"])
def test_capacity_above_the_maximum_is_refused_naming_the_parameter_and_limit(
    rt: Runtime, contracts: ModuleType, api: str
) -> None:
    # Was clamped to 1 Mi slots in silence (issue 12 item 8); then refused by the C library
    # with its own field's name ("options.capacity").
    calls = {
        "subscribe": lambda cap: rt.subscribe(contracts.TradeTick, lambda _m: None, capacity=cap),
        "subscribe_raw": lambda cap: rt.subscribe_raw(contracts.TradeTick.TYPE_ID, lambda _p: None, capacity=cap),
        "subscription": lambda cap: rt.subscription(contracts.TradeTick, capacity=cap),
        "stream": lambda cap: rt.stream(contracts.TradeTick, capacity=cap),
    }
    for too_big in (1048577, 0xFFFF_FFFF, 1 << 40):
        with pytest.raises(ValueError) as info:
            calls[api](too_big)
        assert str(info.value).startswith("capacity must be between 1 and 1048576"), str(info.value)
        assert str(too_big) in str(info.value)
    assert rt.metrics()["subscribers"] == [] or all(
        s["capacity"] <= 1048576 for s in rt.metrics()["subscribers"]
    )
    calls[api](1048576).close()  # the maximum itself is accepted


def test_publish_many_publishes_in_order_across_types(rt: Runtime, contracts: ModuleType) -> None:
    got: List[Any] = []
    rt.subscribe(contracts.TradeTick, got.append)
    rt.subscribe(contracts.Heartbeat, got.append)
    sent: List[Any] = []
    for i in range(300):
        sent.append(contracts.TradeTick(symbol=f"S{i}", price=i / 8, size=i, ts_ns=i, side=i % 2))
        if i % 100 == 0:
            sent.append(contracts.Heartbeat())
    assert rt.publish_many(sent) == len(sent)
    assert rt.publish_many([]) == 0
    rt.flush(10)
    assert [m for m in got if isinstance(m, contracts.TradeTick)] == [m for m in sent if isinstance(m, contracts.TradeTick)]
    assert sum(isinstance(m, contracts.Heartbeat) for m in got) == 3
    assert rt.metrics()["types"][0]["published"] + rt.metrics()["types"][1]["published"] == len(sent)


def test_publish_many_stops_at_the_first_failure_and_says_how_many_went_out(rt: Runtime, contracts: ModuleType) -> None:
    release = threading.Event()
    # One message at a time, and the callback holds the delivery thread: the 2-slot FAIL queue
    # refuses the third or fourth tick (third if the thread had not taken the first yet).
    rt.subscribe(contracts.TradeTick, lambda _m: release.wait(10), capacity=2, policy=Policy.FAIL, max_batch=1)
    ticks = [contracts.TradeTick(symbol="X", size=i) for i in range(50)]
    try:
        with pytest.raises(QueueFullError) as failure:
            rt.publish_many(ticks)
    finally:
        release.set()
    assert failure.value.published in (2, 3)  # type: ignore[attr-defined]


def test_publish_many_refuses_a_malformed_item_and_keeps_what_went_before(rt: Runtime, contracts: ModuleType) -> None:
    got: List[Any] = []
    rt.subscribe(contracts.TradeTick, got.append)
    good = contracts.TradeTick(symbol="ok").to_bytes()
    with pytest.raises(DecodeError) as failure:
        rt._native.publish_many([(contracts.TradeTick.TYPE_ID, good), (contracts.TradeTick.TYPE_ID, b"\xff\x01")], None)
    assert failure.value.published == 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        rt._native.publish_many([("not an id", good)], None)
    rt.flush(10)
    assert got == [contracts.TradeTick(symbol="ok")]
