"""Request/reply in Python: a risk service that approves small orders, asked synchronously,
through the generated service class, gathered from two services, and from asyncio.

Run (``contracts`` is the module ``mycelium codegen --lang python`` generates from contracts.yaml)::

    cargo run -p mycelium-codegen -- codegen --lang python --schema contracts.yaml --out /tmp/gen/contracts.py
    PYTHONPATH=/tmp/gen python examples/python/request_reply.py

Exits 0 only when every answer is the expected one.
"""

import asyncio
import sys

import contracts
from mycelium_native import NoResponderError, ResponderFailedError, Runtime

MAX_QTY = 10


def risk_check(order: contracts.Order) -> contracts.OrderDecision:
    """Runs on the service's own thread, one request at a time."""
    if order.qty > 1000:
        raise ValueError(f"order {order.order_id}: quantity {order.qty} is not plausible")
    approved = order.qty <= MAX_QTY
    reason = "" if approved else f"qty {order.qty} over {MAX_QTY}"
    return contracts.OrderDecision(order_id=order.order_id, approved=approved, reason=reason, ts_ns=0)


def order(order_id: int, qty: int) -> contracts.Order:
    return contracts.Order(order_id=order_id, symbol="BTC-USD", side=0, qty=qty, limit_price=64000.5, ts_ns=0)


def main() -> int:
    failures = []
    with Runtime(contracts) as rt:
        try:
            rt.request(order(0, 1), contracts.OrderDecision, timeout=1)
            failures.append("a request with no service was answered")
        except NoResponderError as e:
            print(f"no service yet: {type(e).__name__}")

        with rt.serve_service(contracts.RiskCheck, risk_check):
            small = rt.request(order(1, 5), contracts.OrderDecision, timeout=5)
            big = rt.call(contracts.RiskCheck, order(2, 50), timeout=5)  # the generated service
            print(f"order 1: approved={small.approved}; order 2: approved={big.approved} ({big.reason})")
            if not (small.approved and small.order_id == 1 and not big.approved and big.order_id == 2):
                failures.append(f"unexpected decisions {small} {big}")
            try:
                rt.call(contracts.RiskCheck, order(3, 5000), timeout=5)
                failures.append("an implausible order was answered")
            except ResponderFailedError as e:
                print(f"order 3 failed as expected: {e}")

            # A second service: request_all gathers both answers.
            with rt.serve(contracts.Order, contracts.OrderDecision, risk_check, label="backup"):
                gathered = rt.request_all(order(4, 1), contracts.OrderDecision, timeout=5)
                print(f"order 4: {len(gathered.replies)} answers, {gathered.failed} failed")
                if len(gathered.replies) != 2 or gathered.failed != 0:
                    failures.append(f"request_all gathered {gathered}")

            async def ask() -> contracts.OrderDecision:
                return await rt.call_async(contracts.RiskCheck, order(5, 2), timeout=5)

            from_asyncio = asyncio.run(ask())
            print(f"order 5 from asyncio: approved={from_asyncio.approved}")
            if from_asyncio.order_id != 5:
                failures.append(f"asyncio got {from_asyncio}")

    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
