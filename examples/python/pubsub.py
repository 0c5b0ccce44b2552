"""The smallest complete Python program on Mycelium: callbacks.

A runtime with a bus of its own, a callback subscription to TradeTick, three published ticks,
``flush`` to wait until the callback saw them, a clean close.

Run (``contracts`` is the module ``mycelium codegen --lang python`` generates from contracts.yaml)::

    cargo run -p mycelium-codegen -- codegen --lang python --schema contracts.yaml --out /tmp/gen/contracts.py
    PYTHONPATH=/tmp/gen python examples/python/pubsub.py

Exits 0 only when the callback received exactly what was published, in order.
"""

import sys
import threading

import contracts
from mycelium_native import Runtime


def main() -> int:
    received = []
    lock = threading.Lock()  # the callback runs on the subscription's delivery thread

    def on_tick(tick: contracts.TradeTick) -> None:
        side = "buy" if tick.side == 0 else "sell"
        print(f"python callback got {tick.symbol} {side} {tick.size} @ {tick.price}")
        with lock:
            received.append(tick)

    sent = [
        contracts.TradeTick(symbol=symbol, price=100.0 * i, size=i, ts_ns=i, side=i % 2)
        for i, symbol in enumerate(["BTC-USD", "ETH-USD", "SOL-USD"], start=1)
    ]
    # Runtime(contracts) checks every generated class against the runtime's schema once.
    with Runtime(contracts) as rt:
        rt.subscribe(contracts.TradeTick, on_tick, label="python-sample")
        for tick in sent:
            rt.publish(tick)  # validated against the schema before any subscriber sees it
        print(f"python published {len(sent)} TradeTicks (schema digest {rt.schema_digest[:12]})")
        rt.flush()  # callbacks run on another thread: wait until they handled what was published
        ticks = next(t for t in rt.metrics()["types"] if t["name"] == "TradeTick")
    print(f"bus metrics: TradeTick published {ticks['published']}, delivered {ticks['delivered']}")

    with lock:
        got = list(received)
    if got != sent:
        print(f"mismatch: published {sent}, received {got}", file=sys.stderr)
        return 1
    print("ok: received what was published")
    return 0


if __name__ == "__main__":
    sys.exit(main())
