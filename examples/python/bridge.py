"""Two buses joined over a Unix socket: one runtime listens, another connects, and a TextMessage
published on the connecting side reaches a pull queue on the listening side. The two runtimes
live in one program to keep the sample self-contained; in real use each side is its own process
(Python, OCaml, C or a Rust service, e.g. ``mycelium bridge --listen unix:/tmp/bus.sock``) and
only the address is shared.

Run (``contracts`` is the module ``mycelium codegen --lang python`` generates from contracts.yaml)::

    PYTHONPATH=target/python-contracts python examples/python/bridge.py

Exits 0 only when the message crossed the socket unchanged.
"""

import os
import sys
import tempfile
import time

import contracts
from mycelium_native import Runtime


def peer_subscribed(rt: Runtime, type_id: int) -> bool:
    """The other side's subscription shows up on this bus as the bridge's forwarding
    subscription; a publish crosses the socket only once it is there."""
    return any(s["type_id"] == type_id for s in rt.metrics()["subscribers"])


def main() -> int:
    address = f"unix:{tempfile.gettempdir()}/myc-py-sample-{os.getpid()}.sock"
    with Runtime(contracts) as server, Runtime(contracts) as client:
        inbox = server.subscription(contracts.TextMessage)
        server.listen(address)  # closed with its runtime, which also removes the socket file
        bridge = client.connect(address)
        bridge.wait(timeout=10)  # the handshake checked that both sides have the same schema
        print(f"connected to {bridge.endpoints[0]}")

        deadline = time.monotonic() + 10
        while not peer_subscribed(client, contracts.TextMessage.TYPE_ID):
            if time.monotonic() > deadline:
                print("the listener's subscription never arrived", file=sys.stderr)
                return 1
            time.sleep(0.005)

        sent = contracts.TextMessage(sender="python-client", body="hello over the socket", sent_at_ns=1)
        client.publish(sent)
        got = inbox.recv(timeout=10)
        print(f"the listening side received {got.body!r} from {got.sender}")
        print(f"client bridge counters: {bridge.stats()['messages_out']} out, {bridge.stats()['messages_in']} in")
    if got != sent:
        print(f"mismatch: sent {sent}, received {got}", file=sys.stderr)
        return 1
    print("ok: the message crossed the socket unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
