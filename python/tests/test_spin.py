"""``spin_us``: receivers that poll before they sleep still deliver everything, in order, and
are still woken once they sleep; out-of-range values are refused before anything subscribes."""

from __future__ import annotations

import threading
from types import ModuleType
from typing import List

import pytest

from mycelium_native import InvalidArgumentError, Runtime


def test_a_spinning_pull_queue_is_woken_after_its_spin(rt: Runtime, contracts: ModuleType) -> None:
    q = rt.subscription(contracts.Order, spin_us=500)
    # 200 ms is far past the 0.5 ms spin: recv has gone to sleep and only the publish wakes it.
    timer = threading.Timer(0.2, lambda: rt.publish(contracts.Order(order_id=3)))
    timer.start()
    try:
        assert q.recv(timeout=10).order_id == 3
    finally:
        timer.join()


def test_round_trips_between_spinning_subscriptions_lose_nothing(
    rt: Runtime, contracts: ModuleType
) -> None:
    answers = rt.subscription(contracts.OrderDecision, spin_us=200)

    def echo(order: object) -> None:
        rt.publish(contracts.OrderDecision(order_id=getattr(order, "order_id"), approved=True))

    with rt.subscribe(contracts.Order, echo, spin_us=200):
        got: List[int] = []
        for i in range(2_000):
            rt.publish(contracts.Order(order_id=i))
            got.append(answers.recv(timeout=10).order_id)
    assert got == list(range(2_000))


@pytest.mark.parametrize("bad", [-1, 10_001])
def test_out_of_range_spin_is_refused(rt: Runtime, contracts: ModuleType, bad: int) -> None:
    with pytest.raises(ValueError, match="spin_us must be between 0 and 10000"):
        rt.subscription(contracts.Order, spin_us=bad)
    with pytest.raises(ValueError, match="spin_us"):
        rt.subscribe(contracts.Order, lambda m: None, spin_us=bad)
    assert rt.metrics()["subscribers"] == []


def test_a_non_integer_spin_is_a_type_error(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(TypeError, match="microseconds"):
        rt.subscription(contracts.Order, spin_us=0.5)  # type: ignore[arg-type]


def test_the_library_refuses_a_spin_the_wrapper_did_not_check(
    rt: Runtime, contracts: ModuleType
) -> None:
    # The C library's own check, reached through the native layer directly.
    with pytest.raises(InvalidArgumentError, match="spin_us 10001"):
        rt._native.open_receiver(contracts.Order.TYPE_ID, 0, 0, None, 10_001)


def test_a_spinning_stream_delivers_in_order(rt: Runtime, contracts: ModuleType) -> None:
    import asyncio

    async def main() -> List[int]:
        stream = rt.stream(contracts.Order, spin_us=300)
        loop = asyncio.get_running_loop()

        def publish_later() -> None:
            for i in range(5):
                rt.publish(contracts.Order(order_id=i))

        # After the loop went idle, so the delivery thread's spin has run out and it sleeps.
        loop.call_later(0.1, lambda: threading.Thread(target=publish_later).start())
        got = [(await asyncio.wait_for(stream.__anext__(), 10)).order_id for _ in range(5)]
        await stream.aclose()
        return got

    assert asyncio.run(main()) == list(range(5))
    with pytest.raises(ValueError, match="spin_us"):
        rt.stream(contracts.Order, spin_us=10_001)
