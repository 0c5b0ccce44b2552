"""Named topics from Python: one topic per symbol, a wildcard subscriber that learns each
message's topic, and per-topic metrics.

Run (``contracts`` is the module ``mycelium codegen --lang python`` generates from contracts.yaml)::

    cargo run -p mycelium-codegen -- codegen --lang python --schema contracts.yaml --out /tmp/gen/contracts.py
    PYTHONPATH=/tmp/gen python examples/python/topics.py

Exits 0 only when every subscriber received exactly what its pattern selects, each tick with the
topic it was published under, and the per-topic counts match.
"""

import sys
import threading
from typing import List, Optional, Tuple

import contracts
from mycelium_native import Runtime


def main() -> int:
    seen: List[Tuple[str, Optional[str]]] = []
    lock = threading.Lock()  # the callback runs on the subscription's delivery thread

    def on_tick(tick: contracts.TradeTick, topic: Optional[str]) -> None:
        with lock:
            seen.append((tick.symbol, topic))

    symbols = ["BTC-USD", "ETH-USD", "SOL-USD"]
    with Runtime(contracts) as rt:
        rt.enable_topic_metrics(100)  # off by default: topics can be unbounded in number
        # `*` is one segment: every symbol's ticks, and the callback learns which topic each had.
        rt.subscribe(contracts.TradeTick, on_tick, pattern="ticks/*", with_topic=True)
        btc_only = rt.subscription(contracts.TradeTick, pattern="ticks/BTC-USD")
        for i, symbol in enumerate(symbols * 2):
            tick = contracts.TradeTick(symbol=symbol, price=100.0 + i, size=1, ts_ns=i, side=0)
            rt.publish(tick, topic=f"ticks/{symbol}")
        rt.publish(contracts.TradeTick(symbol="none", price=1.0, size=1, ts_ns=99, side=0))  # no topic
        rt.flush()
        btc = [btc_only.recv(timeout=5).symbol for _ in range(2)]
        leftover = btc_only.try_recv()
        per_topic = {t["topic"]: t["published"] for t in rt.metrics()["topics"]}

    with lock:
        got = list(seen)
    for symbol, topic in got:
        print(f"ticks/* got {symbol} under {topic}")
    print(f"ticks/BTC-USD got {btc}; per-topic counts {per_topic}")
    want = [(s, f"ticks/{s}") for s in symbols * 2]
    ok = (
        got == want
        and btc == ["BTC-USD", "BTC-USD"]
        and leftover is None
        and per_topic == {f"ticks/{s}": 2 for s in symbols}
    )
    if not ok:
        print("mismatch: see above", file=sys.stderr)
        return 1
    print("ok: every pattern got what it selects, with its topic")
    return 0


if __name__ == "__main__":
    sys.exit(main())
