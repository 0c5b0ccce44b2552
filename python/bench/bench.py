"""Benchmarks of the Python adapter: throughput and round-trip latency, next to pyzmq inproc://.

Run after scripts/test-python.sh (which builds the release extension and the contracts module):

    .venv/bin/python python/bench/bench.py --contracts target/python-contracts

Every figure is the median of --runs runs. The "Rust side" of the Rust<->Python rows is a
benchmark helper in the extension (``_native.bench_counter`` / ``bench_publish``): Rust code
that subscribes or publishes through the same C ABI as everything else, with the GIL released.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Callable, Dict, List, Tuple

from mycelium_native import Runtime, _native


def median_rate(run: Callable[[], float], runs: int) -> float:
    """Median of `runs` calls of `run`, each returning messages per second."""
    return statistics.median(run() for _ in range(runs))


def tick(contracts: ModuleType, i: int) -> object:
    return contracts.TradeTick(symbol="BTC-USD", price=64000.5 + i, size=i & 0xFFFF, ts_ns=1_700_000_000_000 + i, side=i & 1)


# ---- mycelium -------------------------------------------------------------------------------


def py_to_rust_raw(contracts: ModuleType, n: int) -> float:
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]  # type: ignore[attr-defined]
    with Runtime(contracts) as rt:
        counter = _native.bench_counter(rt._native, contracts.TradeTick.TYPE_ID, 4096)
        publish_raw = rt.publish_raw
        type_id = contracts.TradeTick.TYPE_ID
        start = time.perf_counter()
        for i in range(n):
            publish_raw(type_id, payloads[i & 1023])
        assert counter.wait_for(n, 60), "the Rust subscriber did not see every message"
        elapsed = time.perf_counter() - start
        counter.close()
    return n / elapsed


def py_to_rust_dataclass(contracts: ModuleType, n: int) -> float:
    messages = [tick(contracts, i) for i in range(1024)]
    with Runtime(contracts) as rt:
        counter = _native.bench_counter(rt._native, contracts.TradeTick.TYPE_ID, 4096)
        publish = rt.publish
        start = time.perf_counter()
        for i in range(n):
            publish(messages[i & 1023])  # encodes with the generated to_bytes, then publishes
        assert counter.wait_for(n, 60), "the Rust subscriber did not see every message"
        elapsed = time.perf_counter() - start
        counter.close()
    return n / elapsed


def rust_to_py_callback(contracts: ModuleType, n: int) -> float:
    payload = tick(contracts, 1).to_bytes()  # type: ignore[attr-defined]
    done = threading.Event()
    count = 0

    def on_tick(_msg: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    with Runtime(contracts) as rt:
        rt.subscribe(contracts.TradeTick, on_tick, capacity=4096, max_batch=256)
        start = time.perf_counter()
        _native.bench_publish(rt._native, contracts.TradeTick.TYPE_ID, payload, n)
        assert done.wait(60), "the Python callback did not see every message"
        elapsed = time.perf_counter() - start
    return n / elapsed


def py_to_py_callback(contracts: ModuleType, n: int) -> float:
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]  # type: ignore[attr-defined]
    done = threading.Event()
    count = 0

    def on_tick(_msg: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    with Runtime(contracts) as rt:
        rt.subscribe(contracts.TradeTick, on_tick, capacity=4096)
        publish_raw = rt.publish_raw
        type_id = contracts.TradeTick.TYPE_ID
        start = time.perf_counter()
        for i in range(n):
            publish_raw(type_id, payloads[i & 1023])
        assert done.wait(60)
        elapsed = time.perf_counter() - start
    return n / elapsed


def py_round_trip(contracts: ModuleType, n: int) -> List[float]:
    """Order -> (callback on a delivery thread publishes) OrderDecision -> pull queue recv."""
    with Runtime(contracts) as rt:
        def risk(order: object) -> None:
            rt.publish(contracts.OrderDecision(order_id=order.order_id, approved=True, reason="", ts_ns=0))  # type: ignore[attr-defined]

        rt.subscribe(contracts.Order, risk)
        answers = rt.subscription(contracts.OrderDecision)
        samples: List[float] = []
        for i in range(n):
            order = contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=1, limit_price=1.0, ts_ns=0)
            t0 = time.perf_counter_ns()
            rt.publish(order)
            reply = answers.recv(timeout=10)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            assert reply.order_id == i
    return samples


# ---- pyzmq inproc:// ------------------------------------------------------------------------

_ENDPOINTS = itertools.count()


def zmq_py_to_py(contracts: ModuleType, n: int) -> float:
    import zmq

    ctx = zmq.Context.instance()
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]  # type: ignore[attr-defined]
    pull = ctx.socket(zmq.PULL)
    endpoint = f"inproc://bench-pushpull-{next(_ENDPOINTS)}"  # closed sockets unbind lazily
    pull.bind(endpoint)
    push = ctx.socket(zmq.PUSH)
    push.connect(endpoint)
    decode = contracts.TradeTick.from_bytes

    def receive() -> None:
        for _ in range(n):
            decode(pull.recv())

    receiver = threading.Thread(target=receive)
    start = time.perf_counter()
    receiver.start()
    for i in range(n):
        push.send(payloads[i & 1023])
    receiver.join()
    elapsed = time.perf_counter() - start
    push.close(linger=0)
    pull.close(linger=0)
    return n / elapsed


def zmq_round_trip(contracts: ModuleType, n: int) -> List[float]:
    import zmq

    ctx = zmq.Context.instance()
    a = ctx.socket(zmq.PAIR)
    endpoint = f"inproc://bench-pair-{next(_ENDPOINTS)}"
    a.bind(endpoint)
    b = ctx.socket(zmq.PAIR)
    b.connect(endpoint)

    def echo() -> None:
        for _ in range(n):
            order = contracts.Order.from_bytes(b.recv())
            b.send(contracts.OrderDecision(order_id=order.order_id, approved=True, reason="", ts_ns=0).to_bytes())

    responder = threading.Thread(target=echo)
    responder.start()
    samples: List[float] = []
    for i in range(n):
        order = contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=1, limit_price=1.0, ts_ns=0)
        t0 = time.perf_counter_ns()
        a.send(order.to_bytes())
        reply = contracts.OrderDecision.from_bytes(a.recv())
        samples.append((time.perf_counter_ns() - t0) / 1000)
        assert reply.order_id == i
    responder.join()
    a.close(linger=0)
    b.close(linger=0)
    return samples


def percentile(samples: List[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median_latency(run: Callable[[], List[float]], runs: int) -> Tuple[float, float]:
    results = [run() for _ in range(runs)]
    return (
        statistics.median(percentile(r, 0.50) for r in results),
        statistics.median(percentile(r, 0.99) for r in results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=Path, default=Path("target/python-contracts"),
                        help="directory holding the generated contracts.py")
    parser.add_argument("--messages", type=int, default=200_000, help="messages per throughput run")
    parser.add_argument("--round-trips", type=int, default=5_000, help="round trips per latency run")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (the median is shown)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.contracts))
    contracts = importlib.import_module("contracts")

    n, rtn, runs = args.messages, args.round_trips, args.runs
    rows: Dict[str, str] = {}
    rate = lambda f: f"{median_rate(lambda: f(contracts, n), runs):>12,.0f} msg/s"  # noqa: E731
    rows["Python publish -> Rust subscriber (pre-encoded payloads)"] = rate(py_to_rust_raw)
    rows["Python publish -> Rust subscriber (generated dataclasses)"] = rate(py_to_rust_dataclass)
    rows["Rust publish -> Python callback (decoded dataclasses)"] = rate(rust_to_py_callback)
    rows["Python publish -> Python callback (mycelium)"] = rate(py_to_py_callback)
    rows["Python send -> Python recv (pyzmq inproc PUSH/PULL)"] = rate(zmq_py_to_py)
    p50, p99 = median_latency(lambda: py_round_trip(contracts, rtn), runs)
    rows["Python -> Python round trip (mycelium), p50 / p99"] = f"{p50:>8.1f} / {p99:.1f} us"
    p50, p99 = median_latency(lambda: zmq_round_trip(contracts, rtn), runs)
    rows["Python -> Python round trip (pyzmq inproc PAIR), p50 / p99"] = f"{p50:>8.1f} / {p99:.1f} us"

    import zmq

    print(f"Python {sys.version.split()[0]}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}; "
          f"median of {runs} runs, {n:,} messages per throughput run, {rtn:,} round trips per latency run")
    width = max(len(k) for k in rows)
    print(f"| {'benchmark':<{width}} | result |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows.items():
        print(f"| {name:<{width}} | {value.strip()} |")


if __name__ == "__main__":
    main()
