"""Mycelium from Python without callbacks: a pull queue read by a worker thread, and an asyncio stream.

A "risk" thread pulls Orders from a queue (``rt.subscription``) and answers each with an
OrderDecision; the asyncio side publishes the Orders and reads the decisions with
``async for`` over ``rt.stream``. Nothing polls: the queue's ``recv`` waits with the GIL
released, and the stream wakes the event loop through a pipe.

Run (``contracts`` is the module ``mycelium codegen --lang python`` generates from contracts.yaml)::

    cargo run -p mycelium-codegen -- codegen --lang python --schema contracts.yaml --out /tmp/gen/contracts.py
    PYTHONPATH=/tmp/gen python examples/python/pull_and_asyncio.py

Exits 0 only when every Order published was answered with the expected decision.
"""

import asyncio
import sys
import threading

import contracts
from mycelium_native import MessageQueue, Runtime

MAX_QTY = 100  # the "risk limit": bigger orders are refused


def risk_engine(rt: Runtime, orders: "MessageQueue[contracts.Order]") -> None:
    # Iterating a pull queue ends once it is closed and drained.
    for order in orders:
        approved = order.qty <= MAX_QTY
        verdict = "approve" if approved else "refuse"
        print(f"risk thread pulled Order {order.order_id} ({order.qty} {order.symbol}): {verdict}")
        reason = "" if approved else f"qty {order.qty} over the limit of {MAX_QTY}"
        decision = contracts.OrderDecision(
            order_id=order.order_id, approved=approved, reason=reason, ts_ns=order.ts_ns
        )
        rt.publish(decision)


async def trade(rt: Runtime, sent: "list[contracts.Order]") -> "list[contracts.OrderDecision]":
    got = []
    # Open the stream before publishing: a subscription only sees messages published after it.
    async with rt.stream(contracts.OrderDecision) as decisions:
        for order in sent:
            rt.publish(order)
        print(f"asyncio published {len(sent)} Orders")
        async for decision in decisions:
            note = f" ({decision.reason})" if decision.reason else ""
            print(f"asyncio got OrderDecision {decision.order_id}: approved={decision.approved}{note}")
            got.append(decision)
            if len(got) == len(sent):
                break
    return got


def main() -> int:
    sent = [
        contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=qty, limit_price=64000.0, ts_ns=i)
        for i, qty in enumerate([10, 500, 100], start=1)
    ]
    with Runtime(contracts) as rt:
        orders = rt.subscription(contracts.Order, capacity=64, label="risk-queue")
        worker = threading.Thread(target=risk_engine, args=(rt, orders), name="risk")
        worker.start()
        try:
            # The guard only keeps a broken build from hanging CI; the answers take milliseconds.
            got = asyncio.run(asyncio.wait_for(trade(rt, sent), timeout=30))
        finally:
            orders.close()  # ends the worker's `for` loop
            worker.join()

    expected = [(1, True), (2, False), (3, True)]  # (order_id, approved) for the quantities above
    answered = [(d.order_id, d.approved) for d in got]
    if answered != expected:
        print(f"mismatch: expected {expected}, got {answered}", file=sys.stderr)
        return 1
    print("ok: every Order was answered as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
