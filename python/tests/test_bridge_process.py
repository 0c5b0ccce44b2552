"""A Rust peer in another process: `mycelium bridge` (the CLI built by cargo) listens on a Unix
socket, publishes TradeTicks once this process subscribes and counts the TextMessages this
process publishes; both sides' counts are reconciled exactly.

The CLI is $MYCELIUM_CLI, or target/debug/mycelium of the repository (scripts/test-python.sh
builds it and sets the variable). The test fails when it is missing: a skipped cross-process
test would pass silently in CI."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import IO, Iterator, List, Optional

import pytest

from mycelium_native import Runtime

from conftest import CONTRACTS_YAML, REPO_ROOT
from test_bridge import Inbox, sock_path, wait_for_peer_interest, within

TICKS_FROM_RUST = 400
TEXTS_TO_RUST = 150
DEADLINE_S = 60.0


def cli() -> str:
    given = os.environ.get("MYCELIUM_CLI")
    if given:
        path = Path(given)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
        path = target / "debug" / "mycelium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"the mycelium CLI is not at {path}: build it with `cargo build -p mycelium-codegen --bin mycelium` "
            "or set MYCELIUM_CLI (scripts/test-python.sh does both)"
        )
    return str(path)


class Child:
    """A child process whose standard output is read line by line with a deadline; its stderr
    goes to a file so a failure can show it."""

    def __init__(self, args: List[str]) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr)
        assert self.proc.stdout is not None
        self._out: IO[bytes] = self.proc.stdout
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._out, selectors.EVENT_READ)
        self._buf = b""
        self._eof = False

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def read_line(self, deadline: float) -> Optional[str]:
        """The next line, or None at end of output; fails the test at the deadline."""
        while b"\n" not in self._buf:
            if self._eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                pytest.fail(f"the peer printed nothing more in time; its stderr:\n{self.stderr()}")
            # os.read on the descriptor: a buffered reader could hold data the selector cannot see.
            chunk = os.read(self._out.fileno(), 4096)
            if chunk:
                self._buf += chunk
            else:
                self._eof = True
                if self._buf:
                    self._buf += b"\n"
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode()

    def read_all(self, deadline: float) -> List[str]:
        lines = []
        while (line := self.read_line(deadline)) is not None:
            lines.append(line)
        return lines

    def wait_exit(self, deadline: float) -> int:
        try:
            return self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the peer did not exit in time; its stderr:\n{self.stderr()}")

    def cleanup(self) -> None:
        """Leaves no process behind, whatever happened."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._sel.close()
        self._out.close()
        self._stderr.close()


@pytest.fixture
def rust_peer() -> Iterator[tuple[Child, str]]:
    path = sock_path("rust")
    tick = '{"symbol": "RS", "price": 2.5, "size": {i}, "ts_ns": 7, "side": 1}'
    child = Child(
        [
            cli(), "bridge", "--schema", str(CONTRACTS_YAML), "--name", "rust-peer", "--listen", "unix:" + path,
            "--publish-json", "TradeTick", tick, "--count", str(TICKS_FROM_RUST),
            "--subscribe", "TextMessage", "--expect", str(TEXTS_TO_RUST), "--stats",
        ]
    )
    try:
        yield child, path
    finally:
        child.cleanup()


def test_a_rust_peer_process_over_a_unix_socket(rust_peer: tuple[Child, str], contracts: ModuleType) -> None:
    child, path = rust_peer
    deadline = time.monotonic() + DEADLINE_S
    first = child.read_line(deadline)
    assert first == "listening unix:" + path, f"the peer printed {first!r}; stderr:\n{child.stderr()}"
    with Runtime(contracts) as rt:
        ticks = Inbox()
        # Subscribed before connecting, so the handshake already carries the interest.
        rt.subscribe(contracts.TradeTick, ticks.add)
        bridge = rt.connect("unix:" + path)
        bridge.wait(timeout=30)
        # The peer's --subscribe reaches this bus as a forwarding subscription.
        wait_for_peer_interest(rt, contracts.TextMessage.TYPE_ID)
        bodies = [f"from python {i}" for i in range(TEXTS_TO_RUST)]
        for i, body in enumerate(bodies):
            rt.publish(contracts.TextMessage(sender="python", body=body, sent_at_ns=i))
        within("the Rust peer's ticks", lambda: len(ticks) >= TICKS_FROM_RUST)
        assert [t.size for t in ticks.items] == list(range(TICKS_FROM_RUST)), "every {i}, in order, once"
        assert all(t.symbol == "RS" and t.price == 2.5 and t.ts_ns == 7 and t.side == 1 for t in ticks.items)

        # The peer exits by itself once it published and received everything.
        lines = child.read_all(deadline)
        code = child.wait_exit(deadline)
        assert code == 0, f"the peer failed; stdout:\n" + "\n".join(lines) + f"\nstderr:\n{child.stderr()}"
        received = [json.loads(l)["value"]["body"] for l in lines if l.startswith("{")]
        assert received == bodies, "the peer printed every text, in order"
        assert f"published {TICKS_FROM_RUST}" in lines
        assert f"received {TEXTS_TO_RUST}" in lines
        (stats_line,) = [l for l in lines if l.startswith("stats ")]
        peer = json.loads(stats_line[len("stats "):])
        assert peer["messages_out"] == TICKS_FROM_RUST
        assert peer["messages_in"] == TEXTS_TO_RUST
        ours = bridge.stats()
        assert ours["messages_in"] == TICKS_FROM_RUST
        assert ours["messages_out"] == TEXTS_TO_RUST
        assert not os.path.exists(path), "the peer removed its socket"
        bridge.close()
