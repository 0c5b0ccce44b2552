"""Lifetimes: callables released on close, garbage-collected runtimes, interpreter exit with live
subscriptions, Ctrl-C during recv, and fork."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from types import ModuleType
from typing import Any, Callable

import pytest

from mycelium_native import MyceliumError, Runtime

from conftest import RESTORE_SIGINT

Child = Callable[..., subprocess.CompletedProcess]


class Handler:
    """A callable we can hold a weak reference to."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, _msg: Any) -> None:
        self.calls += 1


def test_close_releases_the_callable(rt: Runtime, contracts: ModuleType) -> None:
    handler = Handler()
    ref = weakref.ref(handler)
    sub = rt.subscribe(contracts.TradeTick, handler)
    rt.publish(contracts.TradeTick())
    rt.flush(10)
    assert handler.calls == 1
    del handler
    gc.collect()
    assert ref() is not None  # the live subscription keeps it
    sub.close()
    gc.collect()
    assert ref() is None


def test_runtime_close_releases_every_callable(contracts: ModuleType) -> None:
    rt = Runtime(contracts)
    handlers = [Handler() for _ in range(3)]
    refs = [weakref.ref(h) for h in handlers]
    for h in handlers:
        rt.subscribe(contracts.TradeTick, h)
    del handlers, h
    rt.close()
    gc.collect()
    assert all(r() is None for r in refs)


def test_garbage_collected_runtime_closes_without_hanging(contracts: ModuleType) -> None:
    handler = Handler()
    ref = weakref.ref(handler)
    rt = Runtime(contracts)
    rt.subscribe(contracts.TradeTick, handler)
    for _ in range(100):
        rt.publish(contracts.TradeTick())
    del rt, handler
    gc.collect()
    assert ref() is None


EXIT_WITH_LIVE_SUBSCRIPTIONS = """
import threading, time, contracts
from mycelium_native import Runtime
rt = Runtime(contracts)
busy = threading.Event()
def slow(_m):
    busy.set()
    time.sleep(0.05)
rt.subscribe(contracts.TradeTick, slow)
rt.subscribe(contracts.TradeTick, lambda m: None)
q = rt.subscription(contracts.TradeTick, capacity=4)
host = Runtime(contracts)
guest = Runtime.attach(host.address, contracts)
guest.subscribe(contracts.TradeTick, lambda m: None)
for i in range(4):  # the pull queue is left full (a fifth publish would wait for room)
    rt.publish(contracts.TradeTick(size=i))
busy.wait(5)
print("exiting with a callback running", flush=True)
"""


def test_interpreter_exit_with_live_subscriptions(child: Child) -> None:
    out = child(EXIT_WITH_LIVE_SUBSCRIPTIONS, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "exiting with a callback running" in out.stdout
    assert "Fatal" not in out.stderr and "panicked" not in out.stderr


def test_exit_from_inside_a_callback_thread_does_not_hang(child: Child) -> None:
    code = """
import os, threading, contracts
from mycelium_native import Runtime
rt = Runtime(contracts)
done = threading.Event()
def handler(_m):
    done.set()
rt.subscribe(contracts.TradeTick, handler)
rt.publish(contracts.TradeTick())
done.wait(10)
# sys.exit in the main thread while delivery threads are parked waiting for messages.
raise SystemExit(3)
"""
    out = child(code, timeout=60)
    assert out.returncode == 3, out.stderr


def test_runtime_dropped_during_interpreter_shutdown(child: Child) -> None:
    # Module globals are cleared during finalization, after the atexit hook closed the runtime.
    code = """
import contracts
from mycelium_native import Runtime
class Holder:
    def __del__(self):
        print("holder collected", flush=True)
holder = Holder()
rt = Runtime(contracts)
rt.subscribe(contracts.TradeTick, lambda m: holder)
"""
    out = child(code, timeout=60)
    assert out.returncode == 0, out.stderr


DAEMON_PUBLISHERS_AT_EXIT = """
import sys, threading, time, contracts
from mycelium_native import MyceliumError, Policy, Runtime
mode = sys.argv[1]
rt = Runtime(contracts)
if mode == "callback":
    rt.subscribe(contracts.TradeTick, lambda m: None)
elif mode == "slow-callback":
    rt.subscribe(contracts.TradeTick, lambda m: time.sleep(0.001), capacity=2, policy=Policy.BLOCK)
elif mode == "full-block-queue":
    unread = rt.subscription(contracts.TradeTick, capacity=2, policy=Policy.BLOCK)
def publish_forever():
    while True:
        try:
            rt.publish(contracts.TradeTick())
        except MyceliumError:
            pass  # ClosedError once the exit hook closed the runtime
for _ in range(4):
    threading.Thread(target=publish_forever, daemon=True).start()
time.sleep(0.05)
print("exiting", flush=True)
"""


@pytest.mark.parametrize("mode", ["no-subscriber", "callback", "slow-callback", "full-block-queue"])
def test_exit_with_daemon_threads_publishing_never_aborts(child: Child, mode: str) -> None:
    # Before the exit gate (lifecycle.rs) a daemon thread taking the GIL back inside the library
    # after finalization began was ended by CPython with pthread_exit through Rust frames:
    # SIGABRT "FATAL: exception not rethrown" in 1 of 12 runs without a subscriber, 7 of 12 with
    # a callback and 10 of 12 with a full BLOCK queue.
    results = []
    for _ in range(12):
        out = child(DAEMON_PUBLISHERS_AT_EXIT.replace("sys.argv[1]", repr(mode)), timeout=60)
        results.append((out.returncode, out.stderr.strip()[-300:]))
    failed = [r for r in results if r[0] != 0]
    assert not failed, f"{len(failed)} of {len(results)} exits failed: {failed[:3]}"


def test_ctrl_c_interrupts_a_blocking_recv(contracts_dir: Any) -> None:
    code = """
import contracts, sys
from mycelium_native import Runtime
with Runtime(contracts) as rt:
    q = rt.subscription(contracts.TradeTick)
    try:
        print("waiting", flush=True)
        q.recv()  # no timeout: without signal checks this would never return
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(0)
sys.exit(1)
"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SIGINT + code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.5)  # let it get into recv
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "interrupted" in out


PUBLISH_BLOCKED_ON_ANOTHER_HANDLES_QUEUE = """
import sys, threading, time, contracts
from mycelium_native import ClosedError, MyceliumError, Policy, Runtime
mode = sys.argv[1]
host = Runtime(contracts)
publisher_rt = Runtime.attach(host.address, contracts)
reader_rt = Runtime.attach(host.address, contracts)
unread = reader_rt.subscription(contracts.TradeTick, capacity=2, policy=Policy.BLOCK)
outcome = []
def publish_forever():
    while True:
        try:
            publisher_rt.publish(contracts.TradeTick())
        except ClosedError as e:
            outcome.append(str(e))
            return
        except MyceliumError as e:
            outcome.append(repr(e))
            return
publisher = threading.Thread(target=publish_forever, daemon=True)
publisher.start()
while len(unread) < 2:
    time.sleep(0.01)
time.sleep(0.3)  # the publisher now waits for room in `unread`, which nobody reads
if mode == "close":
    publisher_rt.close()  # waits for the blocked publish
    publisher.join(30)
    print("closed;", outcome, flush=True)
else:
    print("exiting", flush=True)  # the exit hook closes publisher_rt before reader_rt
"""


@pytest.mark.parametrize("mode", ["close", "exit"])
def test_closing_a_runtime_ends_its_publish_blocked_on_another_handles_queue(
    child: Child, mode: str
) -> None:
    # Closing waits for calls in flight; a publish blocked on a queue of another handle onto
    # the same bus never returned, so close() (and the exit hook) hung forever.
    out = child(PUBLISH_BLOCKED_ON_ANOTHER_HANDLES_QUEUE.replace("sys.argv[1]", repr(mode)), timeout=60)
    assert out.returncode == 0, out.stderr
    if mode == "close":
        assert "closed while this publish waited for room" in out.stdout, out.stdout
    else:
        assert "exiting" in out.stdout


CTRL_C_DURING_A_BLOCKED_PUBLISH = """
import sys, time, contracts
from mycelium_native import Policy, Runtime
mode = sys.argv[1]
with Runtime(contracts) as rt:
    roomy = rt.subscription(contracts.TradeTick, capacity=8, label="roomy")
    if mode == "unread-queue":
        full = rt.subscription(contracts.TradeTick, capacity=2, policy=Policy.BLOCK, label="full")
        to_fill = 2
    else:  # a callback far slower than the publisher: one message in it, one queued
        rt.subscribe(contracts.TradeTick, lambda m: time.sleep(60), capacity=1,
                     policy=Policy.BLOCK, max_batch=1, label="full")
        to_fill = 2
    for i in range(to_fill):
        rt.publish(contracts.TradeTick(size=i))
    if mode == "slow-callback":
        time.sleep(0.2)  # the callback took the first message; the second fills its queue
    print("blocking", flush=True)
    import os
    try:
        rt.publish(contracts.TradeTick(size=99))  # waits for room that never comes
        print("published without waiting", flush=True)
        os._exit(1)
    except KeyboardInterrupt:
        subs = {s["label"]: s for s in rt.metrics()["subscribers"]}
        types = {t["type_id"]: t for t in rt.metrics()["types"]}
        print("interrupted", types[contracts.TradeTick.TYPE_ID]["published"],
              subs["roomy"]["queue_depth"], subs["full"]["dropped"], flush=True)
        if mode == "unread-queue":
            print("queue", len(full), full.dropped, flush=True)
        os._exit(0)  # the slow callback would hold the close for 60 s
sys.exit(1)
"""


@pytest.mark.parametrize("mode", ["unread-queue", "slow-callback"])
def test_ctrl_c_interrupts_a_publish_blocked_on_a_full_queue(contracts_dir: Any, mode: str) -> None:
    # Before keep_waiting (C ABI 1.2) the publish waited in the library with the GIL released
    # and never looked at signals: SIGINT was ignored until the test's timeout killed it.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", RESTORE_SIGINT + CTRL_C_DURING_A_BLOCKED_PUBLISH, mode],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "blocking"
        time.sleep(0.5)  # let it get into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    # All or nothing per subscriber, and the counts reconcile: 3 published; the roomy queue has
    # all 3, the full one counted the third as dropped.
    assert lines["interrupted"].split() == ["3", "3", "1"], out
    if mode == "unread-queue":
        assert lines["queue"].split() == ["2", "1"], out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_runtime_used_after_fork_raises_in_the_child(rt: Runtime, contracts: ModuleType) -> None:
    got: list = []
    rt.subscribe(contracts.TradeTick, got.append)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what happened through the pipe, then leave without cleanup
        try:
            try:
                rt.publish(contracts.TradeTick())
                verdict = b"no error"
            except MyceliumError as e:
                verdict = b"ok" if "used after fork" in str(e) else str(e).encode()
            try:
                rt.close()  # must neither hang nor crash: the handle is leaked in the child
            except BaseException as e:  # noqa: BLE001
                verdict = f"close raised {e!r}".encode()
            os.write(write_end, verdict)
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    verdict = os.read(read_end, 4096)
    os.close(read_end)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert verdict == b"ok"
    # The parent's runtime is unaffected.
    rt.publish(contracts.TradeTick(size=5))
    rt.flush(10)
    assert [m.size for m in got] == [5]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_close_of_queues_streams_and_subscriptions_after_fork_is_a_no_op(
    rt: Runtime, contracts: ModuleType
) -> None:
    # As Runtime.close() in the child: the threads and locks behind them exist only in the
    # parent. queue.close() and stream.close() used to raise "used after fork" here.
    queue = rt.subscription(contracts.TradeTick)
    stream = rt.stream(contracts.TradeTick)
    sub = rt.subscribe(contracts.TradeTick, lambda _m: None)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            problems = []
            for name, obj in (("queue", queue), ("stream", stream), ("subscription", sub)):
                try:
                    obj.close()
                    obj.close()  # idempotent there too
                except BaseException as e:  # noqa: BLE001
                    problems.append(f"{name}.close raised {e!r}")
            try:
                rt.close()
            except BaseException as e:  # noqa: BLE001
                problems.append(f"rt.close raised {e!r}")
            os.write(write_end, ("; ".join(problems) or "ok").encode())
        finally:
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    verdict = os.read(read_end, 4096).decode()
    os.close(read_end)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert verdict == "ok"
    # The parent's subscriptions are unaffected.
    rt.publish(contracts.TradeTick(size=7))
    assert queue.recv(10).size == 7
    queue.close()
    stream.close()
    sub.close()
