"""Exceptions of ``mycelium_native``, one class per ``mycelium_status`` code.

Pure Python on purpose: generated message modules import ``DecodeError`` and ``EncodeError``
from here and must work without the compiled extension. The extension builds its exceptions
through :func:`error_for_status`, so this file is the one table from C status codes to classes.
"""

from __future__ import annotations

import builtins
from typing import ClassVar, Dict, Type

__all__ = [
    "MyceliumError",
    "NullPointerError",
    "InvalidArgumentError",
    "SchemaError",
    "SchemaMismatchError",
    "UnknownTypeError",
    "DecodeError",
    "EncodeError",
    "TooLargeError",
    "QueueFullError",
    "ClosedError",
    "UnknownSubscriptionError",
    "TimedOutError",
    "AbiMismatchError",
    "BufferTooSmallError",
    "InternalError",
    "WrongThreadError",
    "BridgeError",
    "NoResponderError",
    "ResponderFailedError",
    "STATUS_ERRORS",
    "error_for_status",
]


class MyceliumError(Exception):
    """Base class of every error raised by mycelium_native.

    ``status`` is the ``mycelium_status`` code of the C ABI (0 when the error was detected by
    the Python adapter itself, e.g. a runtime used after ``os.fork()``), ``status_name`` its
    constant's name.
    """

    status: ClassVar[int] = 0
    status_name: ClassVar[str] = ""


class NullPointerError(MyceliumError):
    """A required pointer was NULL (an adapter bug or a zero handle given to ``attach``)."""

    status = 1
    status_name = "MYCELIUM_ERR_NULL_POINTER"


class InvalidArgumentError(MyceliumError, ValueError):
    """An argument is out of range or malformed (e.g. an unknown overflow policy)."""

    status = 2
    status_name = "MYCELIUM_ERR_INVALID_ARGUMENT"


class SchemaError(MyceliumError, ValueError):
    """The schema text could not be parsed or failed validation; the message lists every problem."""

    status = 3
    status_name = "MYCELIUM_ERR_SCHEMA"


class SchemaMismatchError(MyceliumError):
    """The schema of the generated code differs from the runtime's; the message names each difference."""

    status = 4
    status_name = "MYCELIUM_ERR_SCHEMA_MISMATCH"


class UnknownTypeError(MyceliumError, KeyError):
    """The type id is not defined by the runtime's schema."""

    status = 5
    status_name = "MYCELIUM_ERR_UNKNOWN_TYPE"

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return Exception.__str__(self)


class DecodeError(MyceliumError, ValueError):
    """A payload does not decode as its message type (raised by the runtime and by generated ``from_bytes``)."""

    status = 6
    status_name = "MYCELIUM_ERR_DECODE"


class EncodeError(MyceliumError, ValueError):
    """A message cannot be encoded: a value out of range or of the wrong size (raised by generated ``to_bytes``)."""

    status = 0
    status_name = ""


class TooLargeError(MyceliumError, ValueError):
    """The payload exceeds the maximum payload size (16 MiB)."""

    status = 7
    status_name = "MYCELIUM_ERR_TOO_LARGE"


class QueueFullError(MyceliumError):
    """A subscriber with the FAIL overflow policy had a full queue; the other subscribers got the message."""

    status = 8
    status_name = "MYCELIUM_ERR_QUEUE_FULL"


class ClosedError(MyceliumError):
    """The runtime, its bus, or the subscription was closed."""

    status = 9
    status_name = "MYCELIUM_ERR_CLOSED"


class UnknownSubscriptionError(MyceliumError):
    """The subscription id is not live on this runtime."""

    status = 10
    status_name = "MYCELIUM_ERR_UNKNOWN_SUBSCRIPTION"


class TimedOutError(MyceliumError, builtins.TimeoutError):
    """A wait (``recv``, ``flush``) ended before its condition was met; also a builtin ``TimeoutError``."""

    status = 11
    status_name = "MYCELIUM_ERR_TIMEOUT"


class AbiMismatchError(MyceliumError):
    """The handle given to ``attach`` comes from a library with another ABI major version."""

    status = 12
    status_name = "MYCELIUM_ERR_ABI_MISMATCH"


class BufferTooSmallError(MyceliumError):
    """Internal: a buffer handed to the C library was too small."""

    status = 13
    status_name = "MYCELIUM_ERR_BUFFER_TOO_SMALL"


class InternalError(MyceliumError):
    """Rust code panicked inside the library; the panic was caught. Please report it."""

    status = 14
    status_name = "MYCELIUM_ERR_PANIC"


class WrongThreadError(MyceliumError):
    """The call is not allowed from this thread (e.g. ``flush`` from one of the runtime's own callbacks)."""

    status = 15
    status_name = "MYCELIUM_ERR_WRONG_THREAD"


class BridgeError(MyceliumError):
    """A socket bridge could not listen or connect, or its peer refused the handshake (the
    message says why: the messages whose schemas differ, a wrong token, an address in use).
    Raised by ``Runtime.listen``/``connect`` and ``Bridge.wait``."""

    status = 16
    status_name = "MYCELIUM_ERR_BRIDGE"


class NoResponderError(MyceliumError):
    """Nobody serves the request's (request type, reply type) right now, locally or across a
    bridge; raised at once, without waiting for the timeout (C ABI 1.3 request/reply)."""

    status = 17
    status_name = "MYCELIUM_ERR_NO_RESPONDER"


class ResponderFailedError(MyceliumError):
    """Every responder that got the request failed (its handler raised or returned an error,
    its queue was full, or it went away); the message is the first responder's reason. The
    responders keep serving (C ABI 1.3 request/reply)."""

    status = 18
    status_name = "MYCELIUM_ERR_RESPONDER_FAILED"


STATUS_ERRORS: Dict[int, Type[MyceliumError]] = {
    cls.status: cls
    for cls in (
        NullPointerError,
        InvalidArgumentError,
        SchemaError,
        SchemaMismatchError,
        UnknownTypeError,
        DecodeError,
        TooLargeError,
        QueueFullError,
        ClosedError,
        UnknownSubscriptionError,
        TimedOutError,
        AbiMismatchError,
        BufferTooSmallError,
        InternalError,
        WrongThreadError,
        BridgeError,
        NoResponderError,
        ResponderFailedError,
    )
}
"""``mycelium_status`` code -> exception class (``MYCELIUM_OK`` = 0 has none)."""


def error_for_status(status: int, message: str) -> MyceliumError:
    """The exception for a failed C ABI call: its class chosen by ``status``, ``MyceliumError``
    for codes this version does not know (a newer library)."""
    cls = STATUS_ERRORS.get(status, MyceliumError)
    return cls(message)
