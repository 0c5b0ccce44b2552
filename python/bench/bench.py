"""Benchmarks of the Python adapter: throughput and round-trip latency, next to pyzmq inproc://.

Run after scripts/test-python.sh (which builds the release extension and the contracts module):

    .venv/bin/python python/bench/bench.py --contracts target/python-contracts

Every figure is the median of --runs runs. The "Rust side" of the Rust<->Python rows is a
benchmark helper in the extension (``_native.bench_counter`` / ``bench_publish`` /
``bench_rust_round_trip``): Rust code that subscribes or publishes through the same C ABI as
everything else, with the GIL released.

Rows that are compared with pyzmq use the same threads and hops as the pyzmq row next to them
(stated in the row's name); mycelium additionally validates every payload against the schema and
keeps per-subscriber metrics (counters and a latency histogram), which pyzmq does not.

Every receiver decodes each payload into the generated dataclass. Ours uses the native decoder
the runtime picks for a flat message (``_native.Decoder``, from the class's ``_WIRE``); the peers
use the generated ``from_bytes``, which is what their users would have. The pyzmq row is
repeated with the native decoder, so the transport's share of the difference is visible.

The eclipse-zenoh and iceoryx2 rows (issue 16's other peers) run when their modules are
installed (``.venv/bin/pip install eclipse-zenoh iceoryx2``); otherwise the rows say so. iceoryx2's
publisher cannot wait for room without holding the GIL (a blocking back-pressure strategy hung
with the consumer thread in our try), so its row keeps a window of messages in flight itself
(see ``iceoryx2_py_to_py``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import itertools
import statistics
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

from mycelium_native import Runtime, _native
from mycelium_native._runtime import _decoder_of


def median_rate(run: Callable[[], float], runs: int) -> float:
    """Median of `runs` calls of `run`, each returning messages per second."""
    return statistics.median(run() for _ in range(runs))


def tick(contracts: ModuleType, i: int) -> Any:
    return contracts.TradeTick(symbol="BTC-USD", price=64000.5 + i, size=i & 0xFFFF, ts_ns=1_700_000_000_000 + i, side=i & 1)


# ---- mycelium -------------------------------------------------------------------------------


def py_to_rust_raw(contracts: ModuleType, n: int) -> float:
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
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


def py_to_rust_dataclass(contracts: ModuleType, n: int, via_to_bytes: bool = False) -> float:
    """``rt.publish(tick)`` (the native encoder for a flat message), or (``via_to_bytes``)
    ``rt.publish_raw(TYPE_ID, tick.to_bytes())``, the path ``publish`` took before it."""
    messages = [tick(contracts, i) for i in range(1024)]
    with Runtime(contracts) as rt:
        counter = _native.bench_counter(rt._native, contracts.TradeTick.TYPE_ID, 4096)
        publish = rt.publish
        if via_to_bytes:
            publish_raw = rt.publish_raw

            def publish(message: Any, *, topic: Any = None) -> None:
                publish_raw(message.TYPE_ID, message.to_bytes())

        start = time.perf_counter()
        for i in range(n):
            publish(messages[i & 1023])
        assert counter.wait_for(n, 60), "the Rust subscriber did not see every message"
        elapsed = time.perf_counter() - start
        counter.close()
    return n / elapsed


def rust_to_py_callback(contracts: ModuleType, n: int) -> float:
    payload = tick(contracts, 1).to_bytes()
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


def py_to_py_callback(contracts: ModuleType, n: int, generated_decoder: bool = False) -> float:
    """The callback gets decoded ticks: by the native decoder the runtime picks, or (with
    ``generated_decoder``) by the generated ``from_bytes``, as before the native decoder."""
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    done = threading.Event()
    count = 0

    def on_tick(_msg: object) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    with Runtime(contracts) as rt:
        if generated_decoder:
            # What Runtime.subscribe passed before the native decoder: the class's from_bytes.
            rt._native.subscribe(contracts.TradeTick.TYPE_ID, on_tick, contracts.TradeTick.from_bytes, 4096)
        else:
            rt.subscribe(contracts.TradeTick, on_tick, capacity=4096)
        publish_raw = rt.publish_raw
        type_id = contracts.TradeTick.TYPE_ID
        start = time.perf_counter()
        for i in range(n):
            publish_raw(type_id, payloads[i & 1023])
        assert done.wait(60)
        elapsed = time.perf_counter() - start
    return n / elapsed


def py_to_py_callback_batched(contracts: ModuleType, n: int, batch: int = 64) -> float:
    """As the row above, publishing `batch` pre-encoded messages per call (publish_raw_many)."""
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    type_id = contracts.TradeTick.TYPE_ID
    batches = [[(type_id, payloads[(j + k) & 1023]) for k in range(batch)] for j in range(0, 1024, batch)]
    total = (n // batch) * batch
    done = threading.Event()
    count = 0

    def on_tick(_tick: Any) -> None:
        nonlocal count
        count += 1
        if count == total:
            done.set()

    with Runtime(contracts) as rt:
        rt.subscribe(contracts.TradeTick, on_tick, capacity=4096)
        publish_raw_many = rt.publish_raw_many
        start = time.perf_counter()
        for i in range(n // batch):
            publish_raw_many(batches[i % len(batches)])
        assert done.wait(60)
        elapsed = time.perf_counter() - start
    return total / elapsed


def py_to_py_pull(contracts: ModuleType, n: int, spin_us: int = 0) -> float:
    """The same two Python threads as pyzmq PUSH/PULL: the main thread publishes, a consumer
    thread takes each message from a pull queue (recv, decoded into a dataclass)."""
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    with Runtime(contracts) as rt:
        queue = rt.subscription(contracts.TradeTick, capacity=4096, spin_us=spin_us)

        def receive() -> None:
            recv = queue.recv
            for _ in range(n):
                recv()

        receiver = threading.Thread(target=receive)
        publish_raw = rt.publish_raw
        type_id = contracts.TradeTick.TYPE_ID
        start = time.perf_counter()
        receiver.start()
        for i in range(n):
            publish_raw(type_id, payloads[i & 1023])
        receiver.join()
        elapsed = time.perf_counter() - start
    return n / elapsed


def order(contracts: ModuleType, i: int) -> Any:
    return contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=1, limit_price=1.0, ts_ns=0)


def decision(contracts: ModuleType, order_id: int) -> Any:
    return contracts.OrderDecision(order_id=order_id, approved=True, reason="", ts_ns=0)


def py_round_trip(contracts: ModuleType, n: int, spin_us: int = 0) -> List[float]:
    """Order -> (callback on the library's delivery thread publishes) OrderDecision -> pull
    queue recv on the main thread: two threads, like pyzmq's PAIR echo."""
    with Runtime(contracts) as rt:
        def risk(request: Any) -> None:
            rt.publish(decision(contracts, request.order_id))

        rt.subscribe(contracts.Order, risk, spin_us=spin_us)
        answers = rt.subscription(contracts.OrderDecision, spin_us=spin_us)
        samples: List[float] = []
        for i in range(n):
            request = order(contracts, i)
            t0 = time.perf_counter_ns()
            rt.publish(request)
            reply = answers.recv(timeout=10)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            assert reply.order_id == i
    return samples


def py_request_reply(contracts: ModuleType, n: int) -> List[float]:
    """Request/reply: the main thread requests (GIL released while it waits), a Python service
    on its own responder thread answers: the same two threads as the callback echo above."""
    with Runtime(contracts) as rt:
        rt.serve(contracts.Order, contracts.OrderDecision, lambda o: decision(contracts, o.order_id))
        samples: List[float] = []
        for i in range(n):
            request = order(contracts, i)
            t0 = time.perf_counter_ns()
            reply = rt.request(request, contracts.OrderDecision, timeout=10)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            assert reply.order_id == i
    return samples


def py_round_trip_pull(contracts: ModuleType, n: int, spin_us: int = 0) -> List[float]:
    """The topology of pyzmq's PAIR echo: the main thread publishes Order and waits on a pull
    queue; a Python echo thread takes each Order from its pull queue and publishes the
    OrderDecision."""
    with Runtime(contracts) as rt:
        requests = rt.subscription(contracts.Order, spin_us=spin_us)
        answers = rt.subscription(contracts.OrderDecision, spin_us=spin_us)

        def echo() -> None:
            for _ in range(n):
                request = requests.recv()
                rt.publish(decision(contracts, request.order_id))

        responder = threading.Thread(target=echo)
        responder.start()
        samples: List[float] = []
        for i in range(n):
            request = order(contracts, i)
            t0 = time.perf_counter_ns()
            rt.publish(request)
            reply = answers.recv(timeout=10)
            samples.append((time.perf_counter_ns() - t0) / 1000)
            assert reply.order_id == i
        responder.join()
    return samples


def rust_round_trip(contracts: ModuleType, n: int) -> List[float]:
    """The same request/reply between two Rust threads on pull receivers, through the C ABI:
    the floor the bus itself sets under the Python round trips."""
    request = order(contracts, 1).to_bytes()
    reply = decision(contracts, 1).to_bytes()
    with Runtime(contracts) as rt:
        return _native.bench_rust_round_trip(
            rt._native, contracts.Order.TYPE_ID, request, contracts.OrderDecision.TYPE_ID, reply, n
        )


# ---- iceoryx2, one process -----------------------------------------------------------------


def iceoryx2_py_to_py(contracts: ModuleType, n: int, window: int = 512) -> float:
    """iceoryx2's Python binding, publisher and subscriber in one process (a local service of
    byte slices), a consumer thread polling ``receive`` and decoding each payload. Its
    publisher cannot wait for room without holding the GIL (our try with a blocking
    back-pressure strategy hung), so the publisher keeps at most ``window`` messages in flight
    itself, and both threads yield the GIL (``time.sleep(0)``) while they wait."""
    import ctypes

    import iceoryx2 as iox2

    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Local)
    service = (
        node.service_builder(iox2.ServiceName.new(f"mycelium-bench-{next(_ENDPOINTS)}"))
        .publish_subscribe(iox2.Slice[ctypes.c_uint8])
        .subscriber_max_buffer_size(window)
        .history_size(0)
        .open_or_create()
    )
    publisher = service.publisher_builder().initial_max_slice_len(64).create()
    subscriber = service.subscriber_builder().create()
    decode = contracts.TradeTick.from_bytes
    received = 0

    def receive() -> None:
        nonlocal received
        while received < n:
            sample = subscriber.receive()
            if sample is None:
                time.sleep(0)
                continue
            decode(bytes(sample.payload().as_memory_view()))
            received += 1

    receiver = threading.Thread(target=receive)
    start = time.perf_counter()
    receiver.start()
    for i in range(n):
        while i - received >= window - 8:
            time.sleep(0)
        data = payloads[i & 1023]
        sample = publisher.loan_slice_uninit(len(data))
        ctypes.memmove(sample.payload().data_ptr, data, len(data))
        sample.assume_init().send()
    receiver.join()
    return n / (time.perf_counter() - start)


# ---- pyzmq inproc:// ------------------------------------------------------------------------

_ENDPOINTS = itertools.count()


def zmq_py_to_py(contracts: ModuleType, n: int, native_decoder: bool = False) -> float:
    """pyzmq's receiver decodes with the generated ``from_bytes``, or (``native_decoder``) with
    the native decoder our callbacks use, which separates the transport from the decoder."""
    import zmq

    ctx: Any = zmq.Context.instance()
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    pull = ctx.socket(zmq.PULL)
    endpoint = f"inproc://bench-pushpull-{next(_ENDPOINTS)}"  # closed sockets unbind lazily
    pull.bind(endpoint)
    push = ctx.socket(zmq.PUSH)
    push.connect(endpoint)
    decode = _decoder_of(contracts.TradeTick) if native_decoder else contracts.TradeTick.from_bytes

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


# ---- eclipse-zenoh, one session ----------------------------------------------------------------


def zenoh_py_to_py_callback(contracts: ModuleType, n: int) -> float:
    """Issue 16's zenoh peer: a publisher and a callback subscriber on one zenoh session (no
    network: scouting off, no listeners), the callback decoding each payload into a dataclass
    as ours does. Zenoh runs callbacks on its own threads, like our delivery thread."""
    import zenoh

    config = zenoh.Config()
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("listen/endpoints", "[]")
    payloads = [tick(contracts, i).to_bytes() for i in range(1024)]
    decode = contracts.TradeTick.from_bytes
    done = threading.Event()
    count = 0

    def on_sample(sample: Any) -> None:
        nonlocal count
        decode(sample.payload.to_bytes())
        count += 1
        if count == n:
            done.set()

    session = zenoh.open(config)
    try:
        subscriber = session.declare_subscriber("mycelium/bench/ticks", on_sample)
        publisher = session.declare_publisher("mycelium/bench/ticks")
        put = publisher.put
        start = time.perf_counter()
        for i in range(n):
            put(payloads[i & 1023])
        assert done.wait(60), f"zenoh delivered {count} of {n}"
        elapsed = time.perf_counter() - start
        publisher.undeclare()
        subscriber.undeclare()
    finally:
        session.close()
    return n / elapsed


def zmq_round_trip(contracts: ModuleType, n: int) -> List[float]:
    import zmq

    ctx: Any = zmq.Context.instance()
    a = ctx.socket(zmq.PAIR)
    endpoint = f"inproc://bench-pair-{next(_ENDPOINTS)}"
    a.bind(endpoint)
    b = ctx.socket(zmq.PAIR)
    b.connect(endpoint)

    def echo() -> None:
        for _ in range(n):
            request = contracts.Order.from_bytes(b.recv())
            b.send(decision(contracts, request.order_id).to_bytes())

    responder = threading.Thread(target=echo)
    responder.start()
    samples: List[float] = []
    for i in range(n):
        request = order(contracts, i)
        t0 = time.perf_counter_ns()
        a.send(request.to_bytes())
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
    parser.add_argument("--spin-us", type=int, default=200,
                        help="spin_us of the opt-in spinning rows (0 to 10000)")
    args = parser.parse_args()
    sys.path.insert(0, str(args.contracts))
    contracts = importlib.import_module("contracts")

    n, rtn, runs = args.messages, args.round_trips, args.runs
    rows: Dict[str, str] = {}

    def rate(f: Callable[[ModuleType, int], float]) -> str:
        return f"{median_rate(lambda: f(contracts, n), runs):>12,.0f} msg/s"

    def latency(f: Callable[[ModuleType, int], List[float]]) -> str:
        p50, p99 = median_latency(lambda: f(contracts, rtn), runs)
        return f"{p50:>8.1f} / {p99:.1f} us"

    rows["Python publish -> Rust subscriber (pre-encoded payloads)"] = rate(py_to_rust_raw)
    rows["Python publish -> Rust subscriber (generated dataclasses)"] = rate(py_to_rust_dataclass)
    rows["  the same through to_bytes + publish_raw (before the native encoder)"] = rate(
        lambda c, k: py_to_rust_dataclass(c, k, via_to_bytes=True))
    rows["Rust publish -> Python callback (decoded dataclasses)"] = rate(rust_to_py_callback)
    rows["Python publish -> Python callback (2 threads: main + library delivery thread)"] = rate(py_to_py_callback)
    rows["  the same decoding with from_bytes (before the native decoder)"] = rate(
        lambda c, k: py_to_py_callback(c, k, generated_decoder=True))
    rows["Python publish_raw_many, 64 per call -> Python callback (same 2 threads)"] = rate(py_to_py_callback_batched)
    rows["Python publish -> Python pull queue (2 threads: main + consumer thread)"] = rate(py_to_py_pull)
    rows["Python send -> Python recv (pyzmq inproc PUSH/PULL, 2 threads: main + consumer thread)"] = rate(zmq_py_to_py)
    rows["  the same, decoding with mycelium's native decoder instead of from_bytes"] = rate(
        lambda c, k: zmq_py_to_py(c, k, native_decoder=True))
    has_zenoh = importlib.util.find_spec("zenoh") is not None
    rows["Python put -> Python callback (eclipse-zenoh, one session, callback on zenoh's thread)"] = (
        rate(zenoh_py_to_py_callback) if has_zenoh else "not measured: `pip install eclipse-zenoh` into the venv")
    has_iceoryx2 = importlib.util.find_spec("iceoryx2") is not None
    rows["Python publish -> Python receive (iceoryx2, one process, polling consumer thread)"] = (
        rate(iceoryx2_py_to_py) if has_iceoryx2 else "not measured: `pip install iceoryx2` into the venv")
    rows["Round trip, mycelium, echo in a callback (main + delivery thread), p50 / p99"] = latency(py_round_trip)
    rows["Round trip, mycelium, echo thread on a pull queue (main + echo thread), p50 / p99"] = latency(py_round_trip_pull)
    rows["Round trip, pyzmq inproc PAIR, echo thread (main + echo thread), p50 / p99"] = latency(zmq_round_trip)
    rows["Request/reply, mycelium, Python service (main + responder thread), p50 / p99"] = latency(py_request_reply)
    rows["Round trip, two Rust threads on the C ABI, no Python (the bus's floor), p50 / p99"] = latency(rust_round_trip)
    # Opt-in: receivers poll for up to SPIN_US before they sleep (a busy core while waiting;
    # pyzmq has no such mode, so these rows have no pyzmq twin).
    spin = args.spin_us
    rows[f"Python publish -> Python pull queue, spin_us={spin}"] = rate(
        lambda c, k: py_to_py_pull(c, k, spin_us=spin))
    rows[f"Round trip, mycelium, echo in a callback, spin_us={spin}, p50 / p99"] = latency(
        lambda c, k: py_round_trip(c, k, spin_us=spin))
    rows[f"Round trip, mycelium, echo thread on a pull queue, spin_us={spin}, p50 / p99"] = latency(
        lambda c, k: py_round_trip_pull(c, k, spin_us=spin))

    import zmq

    peers = f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"
    if has_zenoh:
        peers += f", eclipse-zenoh {importlib.metadata.version('eclipse-zenoh')}"
    if has_iceoryx2:
        peers += f", iceoryx2 {importlib.metadata.version('iceoryx2')}"
    print(f"Python {sys.version.split()[0]}, {peers}; "
          f"median of {runs} runs, {n:,} messages per throughput run, {rtn:,} round trips per latency run")
    width = max(len(k) for k in rows)
    print(f"| {'benchmark':<{width}} | result |")
    print(f"| {'-' * width} | --- |")
    for name, value in rows.items():
        print(f"| {name:<{width}} | {value.strip()} |")


if __name__ == "__main__":
    main()
