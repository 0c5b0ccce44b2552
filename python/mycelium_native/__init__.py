"""mycelium_native: Python on a Mycelium message bus, in the same process as Rust.

Quick start (``contracts`` is the module ``mycelium codegen --lang python`` generated)::

    import contracts
    from mycelium_native import Runtime

    with Runtime(contracts) as rt:
        rt.subscribe(contracts.TradeTick, lambda tick: print(tick.price))
        rt.publish(contracts.TradeTick(symbol="ABC", price=1.5, ...))
        rt.flush()

See docs/python.md for callbacks vs pull queues vs asyncio, the GIL rules, embedding in a Rust
host (``Runtime.attach``), and shutdown/fork behaviour.

``mycelium_native.errors`` is pure Python and importable without the compiled extension
(generated modules use it); everything else needs ``mycelium_native._native``.
"""

from __future__ import annotations

from typing import Any

from .errors import (
    STATUS_ERRORS,
    AbiMismatchError,
    BufferTooSmallError,
    ClosedError,
    DecodeError,
    EncodeError,
    InternalError,
    InvalidArgumentError,
    MyceliumError,
    NullPointerError,
    QueueFullError,
    SchemaError,
    SchemaMismatchError,
    TimedOutError,
    TooLargeError,
    UnknownSubscriptionError,
    UnknownTypeError,
    WrongThreadError,
    BridgeError,
    NoResponderError,
    ResponderFailedError,
    error_for_status,
)

def _package_version() -> str:
    """The installed distribution's version (from the wheel's metadata, i.e. Cargo.toml's)."""
    from importlib import metadata

    try:
        return metadata.version("mycelium-native")
    except metadata.PackageNotFoundError:  # imported from a source tree without installing
        return "0+unknown"


__version__ = _package_version()

_RUNTIME_NAMES = (
    "Bridge",
    "Gathered",
    "Message",
    "MessageQueue",
    "MessageStream",
    "Policy",
    "Runtime",
    "Service",
    "Subscription",
    "TopicQueue",
    "TopicStream",
)

__all__ = [
    "STATUS_ERRORS",
    "AbiMismatchError",
    "BufferTooSmallError",
    "ClosedError",
    "DecodeError",
    "EncodeError",
    "InternalError",
    "InvalidArgumentError",
    "MyceliumError",
    "NullPointerError",
    "QueueFullError",
    "SchemaError",
    "SchemaMismatchError",
    "TimedOutError",
    "TooLargeError",
    "UnknownSubscriptionError",
    "UnknownTypeError",
    "WrongThreadError",
    "BridgeError",
    "NoResponderError",
    "ResponderFailedError",
    "error_for_status",
    "Bridge",
    "Gathered",
    "Message",
    "MessageQueue",
    "MessageStream",
    "Policy",
    "Runtime",
    "Service",
    "Subscription",
    "TopicQueue",
    "TopicStream",
]

try:
    from . import _native
except ImportError as _exc:
    _missing_extension = _exc

    def __getattr__(name: str) -> Any:
        if name in _RUNTIME_NAMES:
            raise ImportError(
                f"mycelium_native.{name} needs the compiled extension mycelium_native._native, which "
                f"could not be imported ({_missing_extension}); install the mycelium-native wheel, or "
                "run `maturin develop` in python/"
            ) from _missing_extension
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

else:
    import atexit as _atexit

    from ._runtime import (
        Bridge,
        Gathered,
        Message,
        MessageQueue,
        MessageStream,
        Policy,
        Runtime,
        Service,
        Subscription,
        TopicQueue,
        TopicStream,
    )

    # Closes runtimes still open at interpreter exit, with the GIL released, before
    # finalization starts: delivery threads must not try to take the GIL after that.
    _atexit.register(_native._shutdown)

    # The library's log records go to the `mycelium.*` loggers of `logging` (see _logs.py).
    from . import _logs

    _logs.start()
