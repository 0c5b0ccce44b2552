"""NATS through the bridge entry points: ``Runtime.connect("nats://...")`` joins a runtime's bus
to a real nats-server (Debian's, started here on a free loopback port): two runtimes of this
interpreter, a second Python process relaying, token auth, and the argument errors. Counts are
reconciled with the joins' own counters. Every wait is bounded; the bounds only turn a hang into
a failure.

nats-server must be installed (scripts/test-python.sh installs it); the tests fail, not skip,
without it: a skipped suite would pass silently in CI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, List, Optional

import pytest

from mycelium_native import BridgeError, ClosedError, InvalidArgumentError, Runtime, TimedOutError

from conftest import CONTRACTS_YAML
from test_bridge import Inbox, text, tick, within
from test_bridge_process import Child, cli


def nats_binary() -> str:
    found = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None)
    if found is None:
        pytest.fail("nats-server is not installed (Debian: apt-get install nats-server; scripts/test-python.sh does)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """A nats-server on a free loopback port, killed by :meth:`stop`."""

    def __init__(self, extra_config: str = "") -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="myc-nats-")
        config = os.path.join(self.dir, "server.conf")
        with open(config, "w") as f:
            f.write(f"listen: 127.0.0.1:{self.port}\n{extra_config.replace('{dir}', self.dir)}\n")
        self._log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen([nats_binary(), "-c", config], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"nats-server did not start; its log:\n{self.log()}")
                time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def log(self) -> str:
        return Path(self.dir, "server.log").read_text(errors="replace")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def nats() -> Iterator[NatsServer]:
    server = NatsServer()
    yield server
    server.stop()


def test_two_runtimes_through_one_nats_server(nats: NatsServer, contracts: ModuleType) -> None:
    with Runtime(contracts) as a, Runtime(contracts) as b:
        ticks, texts_at_a = Inbox(), Inbox()
        a.subscribe(contracts.TradeTick, ticks.add)
        # a also hears its own texts, locally: NATS must not echo them back a second time.
        a.subscribe(contracts.TextMessage, texts_at_a.add)
        queue = b.subscription(contracts.TextMessage)
        ja = a.connect(nats.url)
        jb = b.connect(nats.url)
        assert ja.endpoints == [nats.url]
        assert ja.id != jb.id or a is not b
        # Ready means connected and the server has every subscription the bus had: after these
        # two waits a publish on either side reaches the other.
        ja.wait(timeout=30)
        jb.wait(timeout=30)
        sent_ticks = [tick(contracts, i) for i in range(300)]
        sent_texts = [text(contracts, i) for i in range(120)]
        for t in sent_ticks:
            b.publish(t)
        for m in sent_texts:
            a.publish(m)
        got_texts = [queue.recv(timeout=30) for _ in range(120)]
        within("300 ticks at a", lambda: len(ticks) >= 300)
        assert ticks.items == sent_ticks, "same values, in publish order"
        assert got_texts == sent_texts, "same values, in publish order"
        stats_a, stats_b = ja.stats(), jb.stats()
        assert stats_b["sent"] >= 300 and stats_a["received"] == 300, (stats_a, stats_b)
        assert stats_a["sent"] >= 120 and stats_b["received"] == 120, (stats_a, stats_b)
        assert stats_a["refused"] == stats_a["invalid"] == 0
        assert stats_a["connections"] == 1 and stats_a["reconnects"] == 0
        time.sleep(0.2)  # an echo, if there were one, would arrive within this
        assert len(texts_at_a) == 120, "nothing echoes back from NATS"
        assert len(ticks) == 300, "nothing delivered twice"
        prom = a.metrics_prometheus()
        assert f'mycelium_nats_received_total{{nats="{nats.url}"}} 300' in prom, prom[-2000:]
        # The same counters in the metrics JSON, next to the bus's own.
        [conn] = a.metrics()["connections"]
        assert (conn["id"], conn["kind"], conn["endpoints"]) == (ja.id, "nats", [nats.url])
        assert conn["stats"]["received"] == 300 and conn["stats"]["sent"] >= 120, conn

        ja.close()
        assert ja.closed
        with pytest.raises(ClosedError):
            ja.stats()
        assert ja.endpoints == [nats.url], "still readable after close"
    assert jb.closed, "closing the runtime closes its NATS joins"


def test_topics_cross_nats_and_the_server_filters_by_pattern(nats: NatsServer, contracts: ModuleType) -> None:
    """A topic travels as NATS subject tokens; b's pattern becomes its NATS subscription, so
    the server sends b only the matching topic (b's join counts what it received)."""
    with Runtime(contracts) as a, Runtime(contracts) as b:
        btc = b.subscription(contracts.TradeTick, pattern="ticks/BTC-USD")
        ja = a.connect(nats.url)
        jb = b.connect(nats.url)
        jb.wait(timeout=30)
        for i in range(50):
            a.publish(tick(contracts, i), topic="ticks/ETH-USD")
            a.publish(tick(contracts, i))
        wanted = [tick(contracts, 1000 + i) for i in range(5)]
        for t in wanted:
            a.publish(t, topic="ticks/BTC-USD")
        assert [btc.recv(timeout=30) for _ in wanted] == wanted, "in publish order"
        assert jb.stats()["received"] == 5, "the server filtered the 100 others"
        assert ja.stats()["sent"] >= 105


def test_request_reply_across_nats(nats: NatsServer, contracts: ModuleType) -> None:
    """b serves RiskCheck with a Python handler; a, on another bus, requests through NATS. A
    handler's exception comes back as the reason; nobody serving is a failure at once."""
    from mycelium_native import ResponderFailedError

    def decide(o: Any) -> Any:
        if o.qty > 10:
            raise ValueError(f"order {o.order_id} too big")
        return contracts.OrderDecision(order_id=o.order_id, approved=True, reason="", ts_ns=1)

    def order(i: int, qty: int = 1) -> Any:
        return contracts.Order(order_id=i, symbol="BTC-USD", side=0, qty=qty, limit_price=1.0, ts_ns=i)

    with Runtime(contracts) as a, Runtime(contracts) as b:
        ja = a.connect(nats.url)
        started = time.monotonic()
        with pytest.raises(ResponderFailedError, match="no responder serves RiskCheck"):
            a.request(order(0), contracts.OrderDecision, timeout=30)
        assert time.monotonic() - started < 25, "at once, not at the timeout"
        with b.serve(contracts.Order, contracts.OrderDecision, decide):
            jb = b.connect(nats.url)
            jb.wait(timeout=30)
            for i in range(1, 21):
                assert a.request(order(i), contracts.OrderDecision, timeout=30).order_id == i
            with pytest.raises(ResponderFailedError, match="order 99 too big"):
                a.request(order(99, qty=50), contracts.OrderDecision, timeout=30)
        assert ja.stats()["requests_sent"] == 22
        assert jb.stats()["requests_served"] == 20


def test_a_python_process_relays_through_nats(nats: NatsServer, contracts: ModuleType, contracts_dir: Path) -> None:
    """Two processes, each with its own bus: ticks from here reach the child, which answers each
    with a TextMessage naming it; both sides' counts reconcile."""
    count = 200
    code = f"""
import sys
import contracts
from mycelium_native import Runtime
with Runtime(contracts) as rt:
    ticks = rt.subscription(contracts.TradeTick)
    join = rt.connect({nats.url!r})
    join.wait(timeout=30)
    print("ready", flush=True)
    for i in range({count}):
        t = ticks.recv(timeout=30)
        rt.publish(contracts.TextMessage(sender="relay", body=t.symbol, sent_at_ns=t.ts_ns))
    rt.flush(timeout=30)
    stats = join.stats()
    print("relayed", {count}, stats["received"], stats["sent"], flush=True)
    # Stay joined until the parent has every answer (it closes our stdin).
    sys.stdin.read()
"""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(contracts_dir), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        with Runtime(contracts) as rt:
            answers = rt.subscription(contracts.TextMessage)
            join = rt.connect(nats.url)
            join.wait(timeout=30)
            line = proc.stdout.readline()
            assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
            sent = [tick(contracts, i) for i in range(count)]
            for t in sent:
                rt.publish(t)
            got = [answers.recv(timeout=30) for _ in range(count)]
            assert [m.body for m in got] == [t.symbol for t in sent], "every tick answered once, in order"
            assert [m.sent_at_ns for m in got] == [t.ts_ns for t in sent]
            done = proc.stdout.readline().split()
            assert done[:2] == ["relayed", str(count)], done
            assert int(done[2]) == count, "the child received each tick once"
            assert join.stats()["received"] == count
            proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_rust_cli_peer_over_nats(nats: NatsServer, contracts: ModuleType) -> None:
    """`mycelium bridge --nats` (Rust, another process) publishes ticks to this bus and counts
    the texts this bus publishes; both sides' counts reconcile."""
    ticks_from_rust, texts_to_rust = 400, 150
    with Runtime(contracts) as rt:
        ticks = Inbox()
        rt.subscribe(contracts.TradeTick, ticks.add)
        join = rt.connect(nats.url)
        # Ready before the peer starts: core NATS delivers only to subscribers already there.
        join.wait(timeout=30)
        tick_json = '{"symbol": "RS", "price": 2.5, "size": {i}, "ts_ns": 7, "side": 1}'
        # Its debug log (stderr) is shown if the test fails.
        child = Child(
            [
                "env", "MYCELIUM_LOG=info,mycelium_nats=debug",
                cli(), "bridge", "--schema", str(CONTRACTS_YAML), "--nats", nats.url,
                "--publish-json", "TradeTick", tick_json, "--count", str(ticks_from_rust),
                "--subscribe", "TextMessage", "--expect", str(texts_to_rust), "--stats",
            ]
        )
        try:
            # Inside pytest-timeout's 60 s, so a hang fails here with the peer's stderr.
            deadline = time.monotonic() + 40
            first = child.read_line(deadline)
            assert first == f"joined {nats.url}", f"the peer printed {first!r}; stderr:\n{child.stderr()}"
            bodies = [f"from python {i}" for i in range(texts_to_rust)]
            for i, body in enumerate(bodies):
                rt.publish(contracts.TextMessage(sender="python", body=body, sent_at_ns=i))
            within("the Rust peer's ticks", lambda: len(ticks) >= ticks_from_rust, seconds=20)
            assert [t.size for t in ticks.items] == list(range(ticks_from_rust)), "every {i}, in order, once"
            lines = child.read_all(deadline)
            code = child.wait_exit(deadline)
            assert code == 0, "the peer failed; stdout:\n" + "\n".join(lines) + f"\nstderr:\n{child.stderr()}"
            received = [json.loads(l)["value"]["body"] for l in lines if l.startswith("{")]
            assert received == bodies, "the peer printed every text, in order"
            assert f"published {ticks_from_rust}" in lines and f"received {texts_to_rust}" in lines
            (stats_line,) = [l for l in lines if l.startswith("stats ")]
            peer = json.loads(stats_line[len("stats "):])
            assert peer["kind"] == "nats" and peer["endpoints"] == [nats.url]
            assert peer["stats"]["sent"] == ticks_from_rust and peer["stats"]["received"] == texts_to_rust, peer
            ours = join.stats()
            assert ours["received"] == ticks_from_rust and ours["sent"] == texts_to_rust, ours
        finally:
            child.cleanup()


def test_a_topology_file_declares_a_nats_join_with_its_secret_in_a_file(contracts: ModuleType, tmp_path: Path) -> None:
    """`mycelium bridge --config FILE` makes the file's `nats:` joins, reading the token from
    the file it names (relative to the topology file); the ticks it publishes reach this bus."""
    server = NatsServer('authorization { token: "topo-tok-31" }')
    try:
        (tmp_path / "nats.token").write_text("topo-tok-31\n")
        topology = tmp_path / "topology.yaml"
        topology.write_text(
            f"schema: {CONTRACTS_YAML}\n"
            f"nats:\n  - url: {server.url}\n    token_file: nats.token\n"
        )
        with Runtime(contracts) as rt:
            queue = rt.subscription(contracts.TradeTick)
            join = rt.connect(server.url, token="topo-tok-31")
            join.wait(timeout=30)
            tick_json = '{"symbol": "TP", "price": 1.0, "size": {i}, "ts_ns": 1, "side": 0}'
            done = subprocess.run(
                [cli(), "bridge", "--config", str(topology), "--publish-json", "TradeTick", tick_json, "--count", "5"],
                capture_output=True, text=True, timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert f"joined {server.url}" in done.stdout.splitlines()
            assert [queue.recv(timeout=30).size for _ in range(5)] == list(range(5))
            assert "topo-tok-31" not in done.stdout + done.stderr
        # A misspelt key of a nats: entry is refused and named, not ignored.
        wrong = topology.with_name("wrong.yaml")
        wrong.write_text(f"schema: {CONTRACTS_YAML}\nnats:\n  - url: {server.url}\n    tokn_file: x\n")
        bad = subprocess.run([cli(), "bridge", "--config", str(wrong), "--publish-json", "TradeTick", tick_json],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "tokn_file" in bad.stderr, bad.stderr
    finally:
        server.stop()


def test_jetstream_through_url_options(contracts: ModuleType) -> None:
    """`?jetstream=STREAM&durable=NAME` makes the join durable: what is published while the
    subscriber's join is closed is delivered, once, when it joins again with its durable."""
    server = NatsServer('jetstream { store_dir: "{dir}/js" }')
    try:
        with Runtime(contracts) as a, Runtime(contracts) as b:
            queue = b.subscription(contracts.TradeTick)
            ja = a.connect(server.url + "?jetstream=PYTICKS")  # publishes only: no durable
            durable = server.url + "?jetstream=PYTICKS&durable=py-b&deliver=all"
            jb = b.connect(durable)
            jb.wait(timeout=30)
            first = [tick(contracts, i) for i in range(100)]
            for t in first:
                a.publish(t)
            assert [queue.recv(timeout=30) for _ in first] == first
            jb.close()
            # Published while b's join is closed: kept in the stream for its durable.
            later = [tick(contracts, 100 + i) for i in range(50)]
            for t in later:
                a.publish(t)
            a.flush(timeout=30)
            within("the stream acks every publish", lambda: ja.stats()["js_acked"] == 150)
            jb2 = b.connect(durable)
            assert [queue.recv(timeout=30) for _ in later] == later, "resumed where it stopped"
            time.sleep(0.3)
            with pytest.raises(TimedOutError):
                queue.recv(timeout=0.2)  # nothing delivered twice
            assert ja.stats()["js_publish_failed"] == 0
            jb2.close()
        with Runtime(contracts) as c:
            with pytest.raises(InvalidArgumentError, match="colour"):
                c.connect(server.url + "?colour=red")
    finally:
        server.stop()


def test_token_auth(contracts: ModuleType) -> None:
    server = NatsServer('authorization { token: "s3cret-t0ken" }')
    try:
        with Runtime(contracts) as rt:
            with rt.connect(server.url, token="s3cret-t0ken") as join:
                join.wait(timeout=30)
                # The client reports the connection through an event the join counts later.
                within("the connection counted", lambda: join.stats()["connections"] == 1)
            with pytest.raises(BridgeError) as refused:
                rt.connect(server.url, token="wrong")
            message = str(refused.value)
            assert "refused our credentials" in message, message
            assert "wrong" not in message and "s3cret" not in message, "secrets never appear in errors"
            with pytest.raises(BridgeError):
                rt.connect(server.url)
    finally:
        server.stop()


def test_nats_addresses_that_cannot_work(rt: Runtime) -> None:
    with pytest.raises(InvalidArgumentError, match="mycelium_bridge_connect"):
        rt.listen("nats://127.0.0.1:4222")
    port = free_port()  # nobody listens there
    started = time.monotonic()
    with pytest.raises(BridgeError, match=f"cannot connect to NATS at nats://127.0.0.1:{port}"):
        rt.connect(f"nats://127.0.0.1:{port}")
    assert time.monotonic() - started < 20, "a server that is down is an error, not a hang"


def test_credentials_in_the_url_are_not_shown(contracts: ModuleType) -> None:
    server = NatsServer('authorization { user: "alice", password: "pw-in-url" }')
    try:
        with Runtime(contracts) as rt:
            url = f"nats://alice:pw-in-url@127.0.0.1:{server.port}"
            with rt.connect(url) as join:
                join.wait(timeout=30)
                shown: List[str] = join.endpoints
                assert shown == [f"nats://<redacted>@127.0.0.1:{server.port}"], shown
                assert "pw-in-url" not in repr(join)
                assert "pw-in-url" not in rt.metrics_prometheus()
            bad: Optional[BaseException] = None
            try:
                rt.connect(f"nats://alice:nope@127.0.0.1:{server.port}")
            except BridgeError as e:
                bad = e
            assert bad is not None and "nope" not in str(bad), bad
    finally:
        server.stop()
