"""The same workload in-process (native) and through the Unix and TCP socket bridges, from Python.

Workload: Python publishes pre-encoded 32-byte TradeTick payloads (`publish_raw`) and a Rust
subscriber (the extension's `_native.bench_counter`, on the C ABI) counts them until all
arrived. Native: publisher and subscriber share one runtime. Bridged: the subscriber's runtime
listens, the publisher's runtime connects, in this same interpreter (two buses joined by a real
socket; the bridge's I/O runs on each runtime's own I/O thread). Figures are medians of --runs
runs, all rows from one invocation; ratios are against the native row of the same invocation.

    .venv/bin/python python/bench/bridge_bench.py --contracts target/python-contracts
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Optional

from mycelium_native import Runtime, _native


def payloads(contracts: ModuleType) -> list[bytes]:
    return [
        contracts.TradeTick(symbol="BTC-USD", price=64000.5 + i, size=i, ts_ns=i, side=i & 1).to_bytes()
        for i in range(1024)
    ]


def run_once(contracts: ModuleType, n: int, address: Optional[str]) -> float:
    data = payloads(contracts)
    type_id = contracts.TradeTick.TYPE_ID
    with Runtime(contracts) as sub_rt, Runtime(contracts) as pub_rt:
        publisher = sub_rt if address is None else pub_rt
        counter = _native.bench_counter(sub_rt._native, type_id, 4096)
        if address is not None:
            server = sub_rt.listen(address)
            client = pub_rt.connect(server.endpoints[0])
            client.wait(timeout=10.0)
            # The subscriber's interest crosses asynchronously after the handshake: send probes
            # until one arrives, then measure from a known count.
            deadline = time.monotonic() + 10.0
            while counter.count == 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("the subscription never reached the publishing side")
                publisher.publish_raw(type_id, data[0])
                time.sleep(0.001)
        base = counter.count
        publish_raw = publisher.publish_raw
        start = time.perf_counter()
        for i in range(n):
            publish_raw(type_id, data[i & 1023])
        if not counter.wait_for(base + n, 120.0):
            raise RuntimeError(f"only {counter.count - base} of {n} messages arrived")
        elapsed = time.perf_counter() - start
        counter.close()
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=Path, default=Path("target/python-contracts"))
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(args.contracts))
    contracts = importlib.import_module("contracts")
    tmp = tempfile.mkdtemp(prefix="mycelium-bridge-bench-")
    rows = [
        ("native (one bus, in-process)", None),
        ("Unix socket bridge", f"unix:{os.path.join(tmp, 'bench.sock')}"),
        ("TCP bridge (127.0.0.1)", "tcp:127.0.0.1:0"),
    ]
    results = []
    for name, address in rows:
        rate = statistics.median(run_once(contracts, args.messages, address) for _ in range(args.runs))
        results.append((name, rate))
    native = results[0][1]
    print("| Python publish_raw -> Rust subscriber | msg/s | vs native |")
    print("| --- | --- | --- |")
    for name, rate in results:
        print(f"| {name} | {rate:,.0f} | {rate / native:.2f}x |")


if __name__ == "__main__":
    main()
