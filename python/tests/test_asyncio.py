"""asyncio streams: woken through a pipe by the delivery thread, no polling thread."""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType
from typing import Any, List

from mycelium_native import Runtime


def test_stream_yields_messages_published_from_another_thread(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> List[int]:
        got: List[int] = []
        stream = rt.stream(contracts.TradeTick)

        def publish_later() -> None:
            for i in range(300):
                rt.publish(contracts.TradeTick(size=i))

        threads_before = threading.active_count()
        publisher = threading.Thread(target=publish_later)
        publisher.start()
        async for tick in stream:
            got.append(tick.size)
            if len(got) == 300:
                break
        publisher.join()
        # The stream itself started no Python thread: only our publisher came and went.
        assert threading.active_count() == threads_before
        await stream.aclose()
        return got

    got = asyncio.run(asyncio.wait_for(main(), 30))
    assert got == list(range(300))


def test_stream_wakes_an_idle_loop(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> Any:
        stream = rt.stream(contracts.Order)
        loop = asyncio.get_running_loop()
        # Publish from a thread after the loop went idle waiting on the stream.
        loop.call_later(0.2, lambda: threading.Thread(target=rt.publish, args=(contracts.Order(order_id=5),)).start())
        msg = await asyncio.wait_for(stream.__anext__(), 10)
        await stream.aclose()
        return msg

    assert asyncio.run(main()).order_id == 5


def test_stream_ends_when_closed(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> List[int]:
        got: List[int] = []
        async with rt.stream(contracts.TradeTick) as stream:
            for i in range(3):
                rt.publish(contracts.TradeTick(size=i))
            rt.flush(10)
            asyncio.get_running_loop().call_later(0.2, stream.close)
            async for tick in stream:
                got.append(tick.size)
        return got

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [0, 1, 2]


def test_runtime_close_ends_a_waiting_stream(contracts: ModuleType) -> None:
    rt = Runtime(contracts)

    async def main() -> List[Any]:
        stream = rt.stream(contracts.TradeTick)
        asyncio.get_running_loop().call_later(0.2, lambda: threading.Thread(target=rt.close).start())
        return [m async for m in stream]

    assert asyncio.run(asyncio.wait_for(main(), 30)) == []
    assert rt.closed


def test_stream_dropped_counts_evictions_on_both_sides(rt: Runtime, contracts: ModuleType) -> None:
    # A DROP_OLDEST stream evicts in two places: its own queue (the event loop is behind) and the
    # bus-side queue (its delivery thread is behind). `dropped` used to count only the first, so
    # received + dropped fell short of what was published (by ~4900 of 5000 here).
    from mycelium_native import Policy

    published = 5000

    async def main() -> None:
        stream = rt.stream(contracts.TradeTick, capacity=1, policy=Policy.DROP_OLDEST)
        for i in range(published):
            rt.publish(contracts.TradeTick(size=i))
        rt.flush(10)
        received = 0
        while True:
            try:
                await asyncio.wait_for(stream.__anext__(), 0.5)
            except asyncio.TimeoutError:
                break
            received += 1
        assert received >= 1
        assert received + stream.dropped == published, (received, stream.dropped)
        await stream.aclose()
        assert received + stream.dropped == published, "the count is kept after close"

    asyncio.run(asyncio.wait_for(main(), 60))
