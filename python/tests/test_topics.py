"""Named topics from Python (docs/topics.md): publish(topic=...), pattern= on callbacks, pull
queues and asyncio streams, and clear errors for malformed topics and patterns."""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType
from typing import Any, List, Optional, Tuple

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


def test_with_topic_hands_each_callback_its_topic(rt: Runtime, contracts: ModuleType) -> None:
    typed: List[Tuple[int, Optional[str]]] = []
    raw: List[Tuple[bytes, Optional[str]]] = []
    plain: List[int] = []
    lock = threading.Lock()

    def on_typed(t: Any, topic: Optional[str]) -> None:
        with lock:
            typed.append((t.ts_ns, topic))

    def on_raw(payload: bytes, topic: Optional[str]) -> None:
        with lock:
            raw.append((payload, topic))

    def on_plain(t: Any) -> None:
        with lock:
            plain.append(t.ts_ns)

    rt.subscribe(contracts.TradeTick, on_typed, with_topic=True, max_batch=8)
    rt.subscribe_raw(contracts.TradeTick.TYPE_ID, on_raw, pattern="ticks/*", with_topic=True)
    rt.subscribe(contracts.TradeTick, on_plain)
    rt.publish(tick(contracts, "BTC-USD", 1), topic="ticks/BTC-USD")
    rt.publish(tick(contracts, "X", 2))
    rt.publish(tick(contracts, "ETH-USD", 3), topic="ticks/ETH-USD")
    rt.publish_many([tick(contracts, "Z", 4)], topic="z/é")
    rt.flush()
    assert typed == [(1, "ticks/BTC-USD"), (2, None), (3, "ticks/ETH-USD"), (4, "z/é")]
    assert [topic for _, topic in raw] == ["ticks/BTC-USD", "ticks/ETH-USD"]
    assert raw[0][0] == tick(contracts, "BTC-USD", 1).to_bytes()
    assert plain == [1, 2, 3, 4], "without with_topic the callback still gets one argument"


def test_a_callback_taking_one_argument_with_with_topic_is_a_counted_handler_error(
    rt: Runtime, contracts: ModuleType, unraisable: List[Any]
) -> None:
    def one_argument(t: Any) -> None:
        pass

    rt.subscribe(contracts.TradeTick, one_argument, with_topic=True, label="one-arg")  # type: ignore[call-overload]
    rt.publish(tick(contracts, "A", 1), topic="a")
    rt.flush()
    assert len(unraisable) == 1 and isinstance(unraisable[0].exc_value, TypeError)
    (sub,) = [s for s in rt.metrics()["subscribers"] if s["label"] == "one-arg"]
    assert sub["handler_errors"] == 1


def test_a_pull_queue_with_topic_returns_message_topic_pairs(rt: Runtime, contracts: ModuleType) -> None:
    pairs = rt.subscription(contracts.TradeTick, with_topic=True)
    wildcard = rt.subscription(contracts.TradeTick, pattern="ticks/*", with_topic=True)
    plain = rt.subscription(contracts.TradeTick)
    rt.publish(tick(contracts, "BTC-USD", 1), topic="ticks/BTC-USD")
    rt.publish(tick(contracts, "X", 2))
    rt.publish(tick(contracts, "ETH-USD", 3), topic="ticks/ETH-USD")
    first, topic = pairs.recv(timeout=5)
    assert (first.ts_ns, topic) == (1, "ticks/BTC-USD")
    second = pairs.try_recv()
    assert second is not None and (second[0].ts_ns, second[1]) == (2, None)
    third, topic = pairs.recv(timeout=5)
    assert (third.ts_ns, topic) == (3, "ticks/ETH-USD")
    assert pairs.try_recv() is None
    assert [(t.ts_ns, topic) for t, topic in (wildcard.recv(timeout=5) for _ in range(2))] == [
        (1, "ticks/BTC-USD"),
        (3, "ticks/ETH-USD"),
    ]
    assert [plain.recv(timeout=5).ts_ns for _ in range(3)] == [1, 2, 3]
    pairs.close()
    assert list(pairs) == []


def test_per_topic_metrics_are_opt_in_and_bounded(rt: Runtime, contracts: ModuleType) -> None:
    rt.publish(tick(contracts, "A", 1), topic="ticks/A")
    assert rt.metrics()["topics"] == [] and rt.metrics()["topics_untracked"] == 0
    rt.enable_topic_metrics(1)
    for symbol in ["A", "B", "A"]:
        rt.publish(tick(contracts, symbol, 1), topic=f"ticks/{symbol}")
    rt.publish(tick(contracts, "plain", 1))
    m = rt.metrics()
    assert [(t["name"], t["topic"], t["published"]) for t in m["topics"]] == [("TradeTick", "ticks/A", 2)]
    assert m["topics"][0]["published_bytes"] == 2 * len(tick(contracts, "A", 1).to_bytes())
    assert m["topics_untracked"] == 1
    assert 'mycelium_topic_messages_published_total{type_id="' in rt.metrics_prometheus()
    with pytest.raises(ValueError, match="max_topics"):
        rt.enable_topic_metrics(-1)
    rt.enable_topic_metrics(0)
    assert rt.metrics()["topics"] == []


def test_an_asyncio_stream_with_topic_yields_message_topic_pairs(rt: Runtime, contracts: ModuleType) -> None:
    async def main() -> List[Tuple[int, Optional[str]]]:
        out: List[Tuple[int, Optional[str]]] = []
        async with rt.stream(contracts.TradeTick, with_topic=True) as stream:
            rt.publish(tick(contracts, "A", 1), topic="ticks/A")
            rt.publish(tick(contracts, "X", 2))
            rt.publish(tick(contracts, "B", 3), topic="ticks/B")
            async for t, topic in stream:
                out.append((t.ts_ns, topic))
                if len(out) == 3:
                    break
        return out

    assert asyncio.run(asyncio.wait_for(main(), 30)) == [(1, "ticks/A"), (2, None), (3, "ticks/B")]
