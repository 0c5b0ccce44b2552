"""Named topics from Python (docs/topics.md): publish(topic=...), pattern= on callbacks, pull
queues and asyncio streams, and clear errors for malformed topics and patterns."""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType
from typing import Any, List

import pytest

from mycelium_native import InvalidArgumentError, Runtime


def tick(contracts: ModuleType, symbol: str, ts: int) -> Any:
    return contracts.TradeTick(symbol=symbol, price=1.0, size=1, ts_ns=ts, side=0)


def test_patterns_filter_topics_and_plain_subscribers_get_everything(rt: Runtime, contracts: ModuleType) -> None:
    got: List[int] = []
    lock = threading.Lock()

    def on_btc(t: Any) -> None:
        with lock:
            got.append(t.ts_ns)

    rt.subscribe(contracts.TradeTick, on_btc, pattern="ticks/BTC-USD")
    every = rt.subscription(contracts.TradeTick)
    wildcard = rt.subscription(contracts.TradeTick, pattern="ticks/*")
    rt.publish(tick(contracts, "BTC-USD", 1), topic="ticks/BTC-USD")
    rt.publish(tick(contracts, "ETH-USD", 2), topic="ticks/ETH-USD")
    rt.publish(tick(contracts, "X", 3))  # no topic
    rt.publish_raw(contracts.TradeTick.TYPE_ID, tick(contracts, "Y", 4).to_bytes(), topic="other/Y")
    rt.flush()
    assert got == [1]
    assert [every.recv(timeout=5).ts_ns for _ in range(4)] == [1, 2, 3, 4]
    assert [wildcard.recv(timeout=5).ts_ns for _ in range(2)] == [1, 2]
    assert wildcard.try_recv() is None


def test_asyncio_stream_with_a_pattern(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> List[int]:
        stream = rt.stream(contracts.TradeTick, pattern="ticks/>")
        rt.publish(tick(contracts, "A", 1), topic="ticks/A/1m")
        rt.publish(tick(contracts, "B", 2), topic="quotes/B")
        rt.publish(tick(contracts, "C", 3), topic="ticks/C")
        out = []
        async for t in stream:
            out.append(t.ts_ns)
            if len(out) == 2:
                break
        stream.close()
        return out

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [1, 3]


def test_malformed_topics_and_patterns_say_why(rt: Runtime, contracts: ModuleType) -> None:
    with pytest.raises(InvalidArgumentError, match="empty segment"):
        rt.publish(tick(contracts, "A", 1), topic="ticks//A")
    with pytest.raises(InvalidArgumentError, match="wildcard"):
        rt.publish(tick(contracts, "A", 1), topic="ticks/*")
    with pytest.raises(InvalidArgumentError, match="before its last segment"):
        rt.subscription(contracts.TradeTick, pattern="a/>/b")
    with pytest.raises(InvalidArgumentError, match="inside a segment"):
        rt.subscribe(contracts.TradeTick, lambda t: None, pattern="ticks/BTC*")
