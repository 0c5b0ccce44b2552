"""Two buses joined through a NATS server: each runtime joins with ``connect("nats://...")`` and a
TextMessage published on one reaches a pull queue on the other. The two runtimes live in one
program to keep the sample self-contained; in real use each is its own process, on any machine
that reaches the server (Python, OCaml, C, a Rust service, or ``mycelium bridge --nats URL``).

Run against a server (Debian: ``apt install nats-server``; ``nats-server -a 127.0.0.1 -p 4222``)::

    PYTHONPATH=target/python-contracts python examples/python/nats.py [nats://127.0.0.1:4222]

Add ``?jetstream=STREAM&durable=NAME`` to the address for at-least-once delivery that survives a
restart (docs/distributed.md). Exits 0 only when the message crossed the server unchanged.
"""

import sys

import contracts
from mycelium_native import Runtime


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"
    with Runtime(contracts) as desk, Runtime(contracts) as office:
        inbox = office.subscription(contracts.TextMessage)
        # Connecting fails at once (BridgeError) if the server is down or refuses us.
        joined = office.connect(url)
        # Ready: the server has this bus's subscriptions. Core NATS delivers only to
        # subscribers it already has, so wait before anything is published elsewhere.
        joined.wait(timeout=10)
        desk.connect(url).wait(timeout=10)
        print(f"both buses joined {joined.endpoints[0]}")

        sent = contracts.TextMessage(sender="desk", body="hello over NATS", sent_at_ns=1)
        desk.publish(sent)
        got = inbox.recv(timeout=10)
        print(f"office got {got.body!r} from {got.sender}; the join counted {joined.stats()['received']} received")
        return 0 if got == sent else 1


if __name__ == "__main__":
    sys.exit(main())
