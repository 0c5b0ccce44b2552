"""The demo's trading strategy, running inside the Rust demo process (``scripts/demo.sh``).

The Rust service owns the bus; it starts CPython in its own process, makes this module and the
generated ``contracts`` module importable, and calls :func:`start` with the address of its
runtime handle. From then on this code sees the trade ticks the Rust market publishes (each
symbol on its topic ``ticks/<symbol>``; it subscribes to ``ticks/*``), asks the OCaml risk
engine about each order it wants to send (the ``RiskCheck`` service, request/reply), and
publishes the decision it gets for the Rust book.

The rule, per symbol: keep the average of the last ``WINDOW`` prices. When the price crosses it
(it was below and is now above, or the other way round) send an order on that side of the move:
a buy when the price moved above its average, a sell when it moved below. A symbol that has not
crossed for ``order_every`` ticks sends one anyway, in the direction of the price against its
average, so quiet markets still show orders. The order is for the traded size at the traded
price. The Rust-only mode (``--strategy rust``) applies the same rule
(rust/mycelium-demo/src/rules.rs).

Callbacks run on the subscription's delivery thread, one at a time, so the state below needs no
lock; the host reads :meth:`Strategy.stats` from its own thread, holding the GIL.
"""

from collections import deque
from dataclasses import dataclass, field
import time
from typing import Deque, Dict, Tuple

import contracts
from mycelium_native import Runtime

WINDOW = 20
BUY, SELL = 0, 1


@dataclass
class SymbolState:
    prices: Deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    total: float = 0.0
    above: bool = False
    since_order: int = 0

    def average_after(self, price: float) -> float:
        """Adds ``price`` to the window and returns the window's average."""
        if len(self.prices) == WINDOW:
            self.total -= self.prices[0]
        self.prices.append(price)
        self.total += price
        return self.total / len(self.prices)


class Strategy:
    """The subscription and its counters. Build it with :func:`start`."""

    def __init__(self, rt: Runtime, *, order_every: int, capacity: int, policy: str) -> None:
        self._rt = rt
        self._order_every = order_every
        self._symbols: Dict[str, SymbolState] = {}
        self._next_order_id = 1
        self.ticks = 0
        self.orders = 0
        # The market publishes each symbol on its own topic (ticks/BTC-USD, ...): take them all.
        rt.subscribe(
            contracts.TradeTick,
            self.on_tick,
            capacity=capacity,
            policy=policy,
            label="python-strategy",
            pattern="ticks/*",
        )

    def on_tick(self, tick: contracts.TradeTick) -> None:
        state = self._symbols.setdefault(tick.symbol, SymbolState())
        average = state.average_after(tick.price)
        was_above, state.above = state.above, tick.price > average
        state.since_order += 1
        crossed = len(state.prices) == WINDOW and was_above != state.above
        quiet = self._order_every > 0 and state.since_order >= self._order_every
        if crossed or quiet:
            self._send(tick, BUY if state.above else SELL)
            state.since_order = 0
        self.ticks += 1

    def _send(self, tick: contracts.TradeTick, side: int) -> None:
        order = contracts.Order(
            order_id=self._next_order_id,
            symbol=tick.symbol,
            side=side,
            qty=max(tick.size, 1),
            limit_price=tick.price,
            ts_ns=time.time_ns(),
        )
        self._next_order_id += 1
        # Ask the risk service (the OCaml engine, or Rust's) and pass its decision to the book.
        decision = self._rt.call(contracts.RiskCheck, order, timeout=10)
        self._rt.publish(decision)
        self.orders += 1

    def stats(self) -> Tuple[int, int]:
        """(ticks handled, orders decided: asked about and their decision published) so far."""
        return self.ticks, self.orders

    def close(self) -> None:
        """Ends the subscription (waiting for a running callback) and releases the handle; the
        host's bus stays open."""
        self._rt.close()


def start(address: int, *, order_every: int, capacity: int, policy: str) -> Strategy:
    """Attaches to the host's bus (``mycelium_ffi::Runtime::address()``) and subscribes.

    ``policy`` is ``"block"`` or ``"drop_oldest"``; ``order_every`` 0 sends orders on crossings
    only. Raises ``SchemaMismatchError`` when ``contracts`` was generated from another schema than
    the host's.
    """
    rt = Runtime.attach(address, contracts)
    try:
        return Strategy(rt, order_every=order_every, capacity=capacity, policy=policy)
    except BaseException:
        rt.close()
        raise
