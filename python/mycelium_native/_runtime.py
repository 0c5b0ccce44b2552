"""The public API: :class:`Runtime` and the three ways to receive messages (callbacks, pull
queues, asyncio streams). A thin typed layer over the compiled ``_native`` module."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import sys
import weakref
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Callable,
    ClassVar,
    Dict,
    Generic,
    Iterable,
    Iterator,
    List,
    Literal,
    Optional,
    Protocol,
    Set,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

from . import _native
from ._schema import ResolvedSchema, SchemaSource, parse_canonical, resolve_schema
from .errors import (
    ClosedError,
    MyceliumError,
    NoResponderError,
    ResponderFailedError,
    SchemaMismatchError,
    TimedOutError,
)


__all__ = [
    "Message",
    "Policy",
    "Runtime",
    "Subscription",
    "MessageQueue",
    "MessageStream",
    "Service",
    "Gathered",
]


class Message(Protocol):
    """What a generated message class provides (see ``mycelium codegen --lang python``)."""

    TYPE_ID: ClassVar[int]
    NAME: ClassVar[str]
    FINGERPRINT: ClassVar[str]

    def to_bytes(self) -> bytes: ...


M = TypeVar("M", bound=Message)
Req = TypeVar("Req", bound=Message)
Rep = TypeVar("Rep", bound=Message)
T = TypeVar("T")


# A generated service class (``services:`` in the schema) is passed as ``Any``: it has
# ``NAME``, ``Request`` and ``Reply`` (its message classes), but ``Request = Order`` in a class
# body is a type alias to mypy, which no Protocol attribute matches.

#: Default ``timeout`` of :meth:`Runtime.request` and friends, in seconds.
DEFAULT_REQUEST_TIMEOUT = 5.0


class Gathered(Generic[M]):
    """What :meth:`Runtime.request_all` gathered: every successful reply in arrival order, and
    how many responders failed or had not answered when the timeout passed."""

    __slots__ = ("replies", "failed", "unanswered")

    def __init__(self, replies: List[M], failed: int, unanswered: int) -> None:
        self.replies = replies
        self.failed = failed
        self.unanswered = unanswered

    def __repr__(self) -> str:
        return f"Gathered(replies={self.replies!r}, failed={self.failed}, unanswered={self.unanswered})"


class Policy(enum.IntEnum):
    """What happens when a subscriber's queue is full."""

    BLOCK = 0
    """The publisher waits for room: nothing is lost (the default)."""
    DROP_OLDEST = 1
    """The oldest queued message is dropped and counted in the metrics."""
    FAIL = 2
    """``publish`` raises QueueFullError (other subscribers still get the message)."""


PolicyLike = Union[Policy, str, int]


def _policy(value: PolicyLike) -> int:
    if isinstance(value, str):
        try:
            return int(Policy[value.upper()])
        except KeyError:
            raise ValueError(f"unknown overflow policy {value!r}: use 'block', 'drop_oldest' or 'fail'") from None
    return int(Policy(value))


def _count(name: str, value: Optional[int]) -> int:
    """0 tells the C library to use its default."""
    if value is None:
        return 0
    if value < 1 or value > 0xFFFF_FFFF:
        raise ValueError(f"{name} must be between 1 and 4294967295, not {value}")
    return value


#: Largest queue ``capacity`` a subscription may ask for: 1 Mi messages (the bus's
#: ``MAX_QUEUE_CAPACITY``; the C library refuses larger ones too, but names its own field).
MAX_CAPACITY = 1 << 20


def _capacity(value: Optional[int]) -> int:
    """0 tells the C library to use its default (1024)."""
    if value is None:
        return 0
    if value < 1 or value > MAX_CAPACITY:
        raise ValueError(f"capacity must be between 1 and {MAX_CAPACITY} (1 Mi messages), not {value}")
    return value


#: Longest ``spin_us`` a subscription may ask for (the C library's limit).
MAX_SPIN_US = 10_000


def _timeout(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, not {type(value).__name__}")
    if not (value >= 0 and value < float("inf")):
        raise ValueError(f"timeout must be a finite number of seconds >= 0, not {value}")
    return float(value)


def _spin(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"spin_us must be an int (microseconds), not {type(value).__name__}")
    if value < 0 or value > MAX_SPIN_US:
        raise ValueError(f"spin_us must be between 0 and {MAX_SPIN_US} microseconds, not {value}")
    return value


_DECODERS: "weakref.WeakKeyDictionary[type, Callable[[bytes], Any]]" = weakref.WeakKeyDictionary()


def _decoder_of(message_type: Type[M]) -> Callable[[bytes], M]:
    """The fastest decoder of a message class: a native ``_native.Decoder`` for a class
    generated with a flat ``_WIRE`` layout (numbers, bools, strings, byte strings: about twice
    as fast as the generated ``from_bytes``, and on a callback subscription it reads the
    payload without copying it into ``bytes`` first), else its ``from_bytes``. The class must
    define both itself: a subclass keeps ``from_bytes``, which it may have overridden.
    Malformed payloads still raise the generated decoder's ``DecodeError``."""
    cached = _DECODERS.get(message_type)
    if cached is not None:
        return cached
    from_bytes: Callable[[bytes], M] = getattr(message_type, "from_bytes")
    decoder = from_bytes
    own = vars(message_type)
    wire = own.get("_WIRE")
    if isinstance(wire, tuple) and "from_bytes" in own:
        try:
            # The generated dataclass's __init__ only sets its fields, so the decoder may set
            # them itself (in declaration order, which is wire order).
            names: List[str] = []
            if dataclasses.is_dataclass(message_type):
                names = [f.name for f in dataclasses.fields(message_type)]
            fast = "__post_init__" not in dir(message_type) and len(names) == len(wire)
            decoder = _native.Decoder(message_type, list(wire), from_bytes, names if fast else None)
        except (TypeError, ValueError):
            # A layout token this build does not know (contracts from a newer codegen).
            decoder = from_bytes
    _DECODERS[message_type] = decoder
    return decoder


def _encoder_of(message_type: type) -> Optional[_native.Encoder]:
    """A native ``_native.Encoder`` for a class generated with a flat ``_WIRE`` layout and no
    f32 field, which defines ``to_bytes`` itself (a subclass may have overridden it); else None
    (publish then calls ``to_bytes``). The encoder writes exactly the bytes ``to_bytes`` would,
    and leaves any value it is not sure of (a subclass of int or str, an int where a float
    goes, a value out of range) to ``to_bytes``, so errors stay the generated ``EncodeError``."""
    own = vars(message_type)
    wire = own.get("_WIRE")
    if not (isinstance(wire, tuple) and "to_bytes" in own and dataclasses.is_dataclass(message_type)):
        return None
    names = [f.name for f in dataclasses.fields(message_type)]
    try:
        return _native.Encoder(getattr(message_type, "TYPE_ID"), list(wire), names)
    except (TypeError, ValueError, OverflowError):
        # An f32 field, or a layout token this build does not know.
        return None


_REQUEST_ERRORS = (NoResponderError, ResponderFailedError, TimedOutError)


def _naming(error: MyceliumError, request_type: type, reply_type: type, service: Optional[str]) -> MyceliumError:
    """The same error with the service it concerns in front (the library names only type ids):
    ``request Order -> OrderDecision: ...`` or ``service RiskCheck (Order -> OrderDecision): ...``."""
    pair = f"{getattr(request_type, 'NAME', request_type.__name__)} -> {getattr(reply_type, 'NAME', reply_type.__name__)}"
    what = f"service {service} ({pair})" if service else f"request {pair}"
    return type(error)(f"{what}: {error}")


class Runtime:
    """A schema-bound handle onto a Mycelium bus.

    ``Runtime(contracts)`` (a generated module) or ``Runtime("contracts.yaml")`` makes a bus of
    its own; :meth:`attach` joins the bus of a Rust host in the same process. Use it as a
    context manager, or call :meth:`close`; runtimes still open at interpreter exit are closed
    by an ``atexit`` hook.
    """

    def __init__(self, schema: SchemaSource) -> None:
        resolved = resolve_schema(schema)
        native = _native.NativeRuntime.create(resolved.yaml)
        try:
            self._setup(native, resolved)
        except BaseException:
            native.close()
            raise

    @classmethod
    def attach(cls, handle: int, schema: SchemaSource) -> "Runtime":
        """Joins the bus behind ``handle`` (``mycelium_ffi::Runtime::address()`` of a Rust host,
        or any ``mycelium_runtime_t*`` as an integer). The handle is cloned; the host keeps its
        own. Raises InvalidArgumentError when ``handle`` is not a runtime handle of this process
        (checked without crashing), ClosedError for a destroyed one, and SchemaMismatchError
        naming every message that differs when the host's schema is not ``schema``."""
        resolved = resolve_schema(schema)
        native = _native.NativeRuntime.attach(handle)
        try:
            canonical = resolved.canonical
            if canonical is None:
                # A YAML path: let the library compute its canonical description.
                probe = _native.NativeRuntime.create(resolved.yaml)
                try:
                    canonical = probe.schema_description()
                finally:
                    probe.close()
            native.verify_schema(canonical)
            self = cls.__new__(cls)
            self._setup(native, resolved)
        except BaseException:
            native.close()
            raise
        return self

    def _setup(self, native: _native.NativeRuntime, resolved: ResolvedSchema) -> None:
        self._native = native
        self._origin = resolved.origin
        if resolved.canonical is not None:
            native.verify_schema(resolved.canonical)
        description = native.schema_description()
        self._fingerprints: Dict[int, Tuple[str, str]] = {
            m.type_id: (m.name, m.fingerprint) for m in parse_canonical(description)
        }
        self._checked: Set[type] = set()
        # Per checked class: its native encoder, or None for `to_bytes` (see `_encoder_of`).
        self._encoders: Dict[type, Optional[_native.Encoder]] = {}
        for cls in resolved.messages.values():
            self._check_class(cls)

    # ---- schema --------------------------------------------------------------------------

    def _check_class(self, cls: type) -> None:
        """Verifies once per class that a message class matches the runtime's schema."""
        type_id = getattr(cls, "TYPE_ID", None)
        fingerprint = getattr(cls, "FINGERPRINT", None)
        if not isinstance(type_id, int) or not isinstance(fingerprint, str):
            raise TypeError(
                f"{getattr(cls, '__name__', cls)!r} is not a generated message class "
                "(it needs TYPE_ID, FINGERPRINT, to_bytes and from_bytes)"
            )
        ours = self._fingerprints.get(type_id)
        if ours is None:
            raise SchemaMismatchError(
                f"{cls.__name__} (type id {type_id}) is not defined by the runtime's schema"
            )
        if ours[1] != fingerprint:
            raise SchemaMismatchError(
                f"{cls.__name__} (type id {type_id}) was generated from a different definition than the "
                f"runtime's {ours[0]}{self._differences(cls, ours[0])}; regenerate the Python module "
                "from the same contracts.yaml"
            )
        self._checked.add(cls)

    def _differences(self, cls: type, name: str) -> str:
        """What differs for message ``name`` between the runtime's schema and the schema the
        class's module was generated from (its SCHEMA_CANONICAL), as attach reports it:
        " (TradeTick: field price f64 -> f32)"; empty when the module carries no such text."""
        module = sys.modules.get(getattr(cls, "__module__", ""))
        canonical = getattr(module, "SCHEMA_CANONICAL", None)
        if not isinstance(canonical, str):
            return ""
        try:
            self._native.verify_schema(canonical)
        except SchemaMismatchError as e:
            text = str(e).split("schemas differ: ", 1)[-1]
            text = text.rsplit(" (MYCELIUM_", 1)[0]
            mine = [d for d in text.split("; ") if d.startswith((f"{name}:", f"{name} "))]
            return f" ({'; '.join(mine)})" if mine else ""
        return ""

    @property
    def schema_digest(self) -> str:
        """The runtime's schema digest (64 lowercase hex characters)."""
        return self._native.schema_digest()

    @property
    def schema_description(self) -> str:
        """The runtime's canonical schema description."""
        return self._native.schema_description()

    @property
    def address(self) -> int:
        """This runtime's own handle as an integer (valid until :meth:`close`)."""
        return self._native.address

    @property
    def closed(self) -> bool:
        return self._native.closed

    # ---- publishing ----------------------------------------------------------------------

    def publish(self, message: Message, *, topic: Optional[str] = None) -> None:
        """Encodes and publishes one message. Validated against the schema before any
        subscriber sees it. With the BLOCK policy it waits (GIL released) while a subscriber's
        queue is full; Ctrl-C ends that wait with KeyboardInterrupt, the message then delivered
        to the subscribers that had room and counted as dropped by each full one.

        ``topic`` (e.g. ``"ticks/BTC-USD"``, see docs/topics.md): subscribers without a pattern
        get the message as always, and those whose ``pattern`` matches the topic get it too. A
        malformed topic raises InvalidArgumentError naming the reason."""
        cls = type(message)
        try:
            encoder = self._encoders[cls]
        except KeyError:
            self._check_class(cls)
            encoder = self._encoders[cls] = _encoder_of(cls)
        if encoder is None:
            self._native.publish(cls.TYPE_ID, message.to_bytes(), topic)
        else:
            self._native.publish_message(encoder, message, topic)

    def publish_many(self, messages: Iterable[Message], *, topic: Optional[str] = None) -> int:
        """Publishes ``messages`` in order, crossing into the library once for the whole batch
        instead of once per message: each is encoded here, then validated, routed and (with
        BLOCK) waited for exactly as by ``publish``. Messages may be of different types.

        Returns how many were published. On the first failure it stops and raises that error;
        the messages before it stay published, and their number is the exception's
        ``published`` attribute."""
        items = []
        for message in messages:
            cls = type(message)
            if cls not in self._checked:
                self._check_class(cls)
            items.append((cls.TYPE_ID, message.to_bytes()))
        return self._native.publish_many(items, topic)

    def publish_raw_many(self, items: Iterable[Tuple[int, bytes]], *, topic: Optional[str] = None) -> int:
        """``publish_many`` for already encoded ``(type_id, payload)`` pairs (as ``publish_raw``)."""
        return self._native.publish_many(items, topic)

    def publish_raw(self, type_id: int, payload: bytes, *, topic: Optional[str] = None) -> None:
        """Publishes an already encoded TLV payload (no frame header) of ``type_id``; it is
        validated like any other publish (DecodeError, UnknownTypeError)."""
        self._native.publish(type_id, payload, topic)

    # ---- receiving -----------------------------------------------------------------------

    @overload
    def subscribe(
        self,
        message_type: Type[M],
        callback: Callable[[M], object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[False] = False,
    ) -> "Subscription": ...

    @overload
    def subscribe(
        self,
        message_type: Type[M],
        callback: Callable[[M, Optional[str]], object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[True],
    ) -> "Subscription": ...

    def subscribe(
        self,
        message_type: Type[M],
        callback: Callable[..., object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: bool = False,
    ) -> "Subscription":
        """Calls ``callback(message)`` for each message of ``message_type``, in order, on a
        delivery thread of this subscription (never inside ``publish``). An exception in the
        callback goes to ``sys.unraisablehook`` and counts as a handler error; delivery goes on.
        The subscription lasts until ``close()`` or the runtime's close.

        ``spin_us`` (0 to 10 000, default 0): the longest the delivery thread polls its empty
        queue before it sleeps. Waking a sleeping thread costs tens of microseconds on an idle
        VM; a spinning one catches the next message at once, at the price of a busy core while
        it spins. The spin adapts (halves when it runs out, doubles when it catches a message).
        Use it for a few latency-critical subscriptions with a core to spare; it does nothing
        for throughput.

        ``pattern`` (e.g. ``"ticks/*"``, see docs/topics.md): only messages published with a
        matching ``topic``; ``*`` matches one ``/``-separated segment, a final ``>`` one or
        more. Without one (the default) every message of the type arrives, with a topic or
        without. The same parameter exists on :meth:`subscription` and :meth:`stream`.

        ``with_topic=True`` calls ``callback(message, topic)`` instead, ``topic`` being the
        ``str`` the message was published with, or ``None``: which symbol a ``"ticks/*"``
        subscriber just got, say."""
        if not callable(callback):
            raise TypeError(
                f"callback must be callable (a function taking the message), not {type(callback).__name__}"
            )
        self._check_class(message_type)
        decode = _decoder_of(message_type)
        native = self._native.subscribe(
            message_type.TYPE_ID,
            callback,
            decode,
            _capacity(capacity),
            _policy(policy),
            _count("max_batch", max_batch),
            label,
            _spin(spin_us),
            pattern,
            bool(with_topic),
        )
        return Subscription(self, native, message_type.NAME)

    @overload
    def subscribe_raw(
        self,
        type_id: int,
        callback: Callable[[bytes], object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[False] = False,
    ) -> "Subscription": ...

    @overload
    def subscribe_raw(
        self,
        type_id: int,
        callback: Callable[[bytes, Optional[str]], object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[True],
    ) -> "Subscription": ...

    def subscribe_raw(
        self,
        type_id: int,
        callback: Callable[..., object],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        max_batch: Optional[int] = None,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: bool = False,
    ) -> "Subscription":
        """Like :meth:`subscribe`, but ``callback`` receives the payload bytes undecoded (and,
        with ``with_topic=True``, the topic as a second argument)."""
        if not callable(callback):
            raise TypeError(
                f"callback must be callable (a function taking the message), not {type(callback).__name__}"
            )
        native = self._native.subscribe(
            type_id,
            callback,
            None,
            _capacity(capacity),
            _policy(policy),
            _count("max_batch", max_batch),
            label,
            _spin(spin_us),
            pattern,
            bool(with_topic),
        )
        name = self._fingerprints.get(type_id, (str(type_id), ""))[0]
        return Subscription(self, native, name)

    @overload
    def subscription(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[False] = False,
    ) -> "MessageQueue[M]": ...

    @overload
    def subscription(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[True],
    ) -> "TopicQueue[M]": ...

    def subscription(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: bool = False,
    ) -> "Union[MessageQueue[M], TopicQueue[M]]":
        """A pull subscription: messages wait in the bus-side queue until a thread takes them
        with :meth:`MessageQueue.recv` (no delivery thread in between).

        ``capacity`` (default 1024) bounds that queue; when it is full, ``policy`` applies:
        BLOCK makes publishers wait, DROP_OLDEST evicts the oldest message (counted in
        ``rt.metrics()["subscribers"]``), FAIL makes ``publish`` raise QueueFullError.

        ``spin_us`` (0 to 10 000, default 0): how long ``recv`` polls the empty queue (with the
        GIL released) before its thread sleeps; see :meth:`subscribe`.

        ``with_topic=True`` returns a :class:`TopicQueue`, whose ``recv`` gives
        ``(message, topic)`` pairs (``topic`` ``None`` for a message published without one)."""
        self._check_class(message_type)
        native = self._native.open_receiver(
            message_type.TYPE_ID,
            _capacity(capacity),
            _policy(policy),
            label,
            _spin(spin_us),
            pattern,
            bool(with_topic),
        )
        if with_topic:
            return TopicQueue(self, native, message_type)
        return MessageQueue(self, native, message_type)

    @overload
    def stream(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[False] = False,
    ) -> "MessageStream[M]": ...

    @overload
    def stream(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: Literal[True],
    ) -> "TopicStream[M]": ...

    def stream(
        self,
        message_type: Type[M],
        *,
        capacity: Optional[int] = None,
        policy: PolicyLike = Policy.BLOCK,
        label: Optional[str] = None,
        spin_us: int = 0,
        pattern: Optional[str] = None,
        with_topic: bool = False,
    ) -> "Union[MessageStream[M], TopicStream[M]]":
        """An asyncio stream: ``async for msg in rt.stream(Cls)``. The delivery thread wakes the
        event loop through a pipe watched with ``loop.add_reader``; no thread polls.
        ``spin_us`` applies to that delivery thread (see :meth:`subscribe`); the event loop's
        own wake-up is unchanged. ``with_topic=True`` returns a :class:`TopicStream` of
        ``(message, topic)`` pairs."""
        self._check_class(message_type)
        native = self._native.subscribe_stream(
            message_type.TYPE_ID,
            _capacity(capacity),
            _policy(policy),
            label,
            _spin(spin_us),
            pattern,
            bool(with_topic),
        )
        if with_topic:
            return TopicStream(self, native, message_type)
        return MessageStream(self, native, message_type)

    # ---- request/reply -------------------------------------------------------------------

    def serve(
        self,
        request_type: Type[Req],
        reply_type: Type[Rep],
        handler: Callable[[Req], Rep],
        *,
        capacity: Optional[int] = None,
        label: Optional[str] = None,
    ) -> "Service":
        """Answers requests of ``request_type`` with ``reply_type``: ``handler(request)`` runs
        on a responder thread of its own, one request at a time, and returns the reply. An
        exception in it (or a return value that is not a ``reply_type``) fails that request: the
        requester gets ResponderFailedError with the exception's text, the exception is logged
        on ``mycelium.python.service``, and the service goes on. Several services may answer
        the same pair (see :meth:`request` and :meth:`request_all`). ``capacity``: requests that
        may wait (default 256; one arriving when full fails at once). Lasts until
        :meth:`Service.close` or the runtime's close."""
        if not callable(handler):
            raise TypeError(
                f"handler must be callable (a function taking the request), not {type(handler).__name__}"
            )
        self._check_class(request_type)
        self._check_class(reply_type)
        decode = _decoder_of(request_type)

        def answer(payload: bytes) -> bytes:
            reply = handler(decode(payload))
            if not isinstance(reply, reply_type):
                raise TypeError(
                    f"the handler of {request_type.NAME} returned {type(reply).__name__}, "
                    f"not a {reply_type.NAME}"
                )
            return reply.to_bytes()

        native = self._native.serve(
            request_type.TYPE_ID, reply_type.TYPE_ID, answer, _capacity(capacity), label
        )
        return Service(native, request_type.NAME, reply_type.NAME)

    def serve_service(
        self,
        service: Any,
        handler: Callable[[Any], Any],
        *,
        capacity: Optional[int] = None,
    ) -> "Service":
        """:meth:`serve` for a generated service class (``contracts.RiskCheck``), labelled
        with its name."""
        return self.serve(service.Request, service.Reply, handler, capacity=capacity, label=service.NAME)

    def request(self, message: Message, reply_type: Type[Rep], *, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Rep:
        """Sends ``message`` to the services of (its type, ``reply_type``) and returns the
        first successful reply. Waits without the GIL, up to ``timeout`` seconds; Ctrl-C ends
        the wait with KeyboardInterrupt. Raises NoResponderError at once when nobody serves it,
        ResponderFailedError when every responder failed (with the first reason),
        TimedOutError after ``timeout``. Callable from callbacks and handlers too."""
        return self._request(message, reply_type, timeout, None)

    def _request(self, message: Message, reply_type: Type[Rep], timeout: float, service: Optional[str]) -> Rep:
        cls = type(message)
        if cls not in self._checked:
            self._check_class(cls)
        if reply_type not in self._checked:
            self._check_class(reply_type)
        try:
            payload = self._native.request(cls.TYPE_ID, message.to_bytes(), reply_type.TYPE_ID, _timeout(timeout))
        except _REQUEST_ERRORS as e:
            raise _naming(e, cls, reply_type, service) from None
        reply: Rep = _decoder_of(reply_type)(payload)
        return reply

    def request_all(
        self, message: Message, reply_type: Type[Rep], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> Gathered[Rep]:
        """Sends ``message`` to **every** service of (its type, ``reply_type``) present now and
        waits until each answered or ``timeout`` passed, whichever comes first; a timeout is
        not an error here: what arrived is returned, with the count of responders that failed
        or did not answer. Raises NoResponderError at once when nobody serves it."""
        cls = type(message)
        if cls not in self._checked:
            self._check_class(cls)
        if reply_type not in self._checked:
            self._check_class(reply_type)
        try:
            payloads, failed, unanswered = self._native.request_all(
                cls.TYPE_ID, message.to_bytes(), reply_type.TYPE_ID, _timeout(timeout)
            )
        except _REQUEST_ERRORS as e:
            raise _naming(e, cls, reply_type, None) from None
        decode = _decoder_of(reply_type)
        return Gathered([decode(p) for p in payloads], failed, unanswered)

    def call(self, service: Any, message: Message, *, timeout: float = DEFAULT_REQUEST_TIMEOUT) -> Any:
        """:meth:`request` for a generated service class: ``rt.call(contracts.RiskCheck, order)``."""
        if not isinstance(message, service.Request):
            raise TypeError(f"{service.NAME} takes a {service.Request.__name__}, not {type(message).__name__}")
        return self._request(message, service.Reply, timeout, service.NAME)

    async def request_async(
        self, message: Message, reply_type: Type[Rep], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> Rep:
        """:meth:`request` for asyncio: the wait runs on the loop's default executor (without
        the GIL), so the event loop keeps running. Cancelling the task stops waiting for the
        answer here; the request itself runs on until it is answered or times out."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.request(message, reply_type, timeout=timeout))

    async def request_all_async(
        self, message: Message, reply_type: Type[Rep], *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> Gathered[Rep]:
        """:meth:`request_all` for asyncio (see :meth:`request_async`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.request_all(message, reply_type, timeout=timeout))

    async def call_async(
        self, service: Any, message: Message, *, timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> Any:
        """:meth:`call` for asyncio (see :meth:`request_async`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.call(service, message, timeout=timeout))

    # ---- housekeeping --------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> None:
        """Waits until the messages published so far were handled by this runtime's
        subscriptions; raises TimedOutError after ``timeout`` seconds. Not from a callback."""
        self._native.flush(timeout)

    def metrics(self) -> Dict[str, Any]:
        """A snapshot of the bus metrics (per type and per subscriber), parsed from JSON."""
        parsed: Dict[str, Any] = json.loads(self._native.metrics_json())
        return parsed

    def enable_topic_metrics(self, max_topics: int = 1000) -> None:
        """Counts publishes per topic (``published``, ``published_bytes``) in
        :meth:`metrics`' ``"topics"`` list and the Prometheus ``mycelium_topic_*`` series, for
        the first ``max_topics`` distinct (type, topic) pairs published from now on; publishes
        under further topics are counted together in ``"topics_untracked"``. Off by default,
        since topics can be unbounded in number; ``0`` turns it off and forgets the counts.
        Bus-wide: every runtime attached to the bus sees the same counts."""
        if not isinstance(max_topics, int) or isinstance(max_topics, bool) or not 0 <= max_topics <= 0xFFFFFFFF:
            raise ValueError(f"max_topics must be an int from 0 to 4294967295, not {max_topics!r}")
        self._native.enable_topic_metrics(max_topics)

    def metrics_prometheus(self) -> str:
        """The bus metrics in the Prometheus text exposition format."""
        return self._native.metrics_prometheus()

    def listen(self, address: str, *, token: Optional[str] = None, socket_mode: Optional[int] = None) -> "Bridge":
        """Joins this bus with every process that connects to ``address`` (``"unix:/path"`` or
        ``"tcp:127.0.0.1:PORT"``; port 0 picks a free one, see :attr:`Bridge.endpoints`).
        A Unix socket is created with mode ``socket_mode`` (default ``0o600``). Both sides must
        use the same ``token`` if either gives one. Raises BridgeError when it cannot listen
        (address in use), InvalidArgumentError for a malformed or non-loopback address."""
        if socket_mode is not None and not 0 < socket_mode <= 0o777:
            raise ValueError(f"socket_mode must be permission bits between 0o1 and 0o777, not {socket_mode:#o}")
        mode = 0 if socket_mode is None else socket_mode
        return Bridge(self._native.listen(address, token, mode))

    def connect(self, address: str, *, token: Optional[str] = None) -> "Bridge":
        """Joins this bus with the process listening at ``address`` (``unix:PATH``,
        ``tcp:HOST:PORT``). Returns at once; the connection is made (and remade after a drop)
        in the background: call :meth:`Bridge.wait` before relying on it.

        ``nats://HOST:PORT`` (or ``tls://``, or a comma-separated cluster list) joins the bus
        to a NATS server instead: the first connection is made before this returns (GIL
        released; BridgeError at once if the server is down or refuses the credentials),
        ``token`` is the server's auth token (``nats://user:password@host`` works too), and
        :meth:`Bridge.wait` then waits until the server knows this bus's subscriptions.
        See docs/distributed.md."""
        return Bridge(self._native.connect(address, token))

    def close(self) -> None:
        """Ends every subscription and socket bridge of this runtime (waiting for running
        callbacks, with the GIL released) and releases its handle. An attached runtime leaves the host's bus open.
        Idempotent."""
        self._native.close()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<mycelium_native.Runtime schema={self._origin!r} {state}>"


class Service:
    """A responder (from :meth:`Runtime.serve`)."""

    def __init__(self, native: _native.NativeService, request_name: str, reply_name: str) -> None:
        self._native = native
        self.request_name = request_name
        self.reply_name = reply_name

    @property
    def id(self) -> int:
        return self._native.id

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Stops serving: new requests no longer reach it and queued ones fail (another
        service of the same pair may still answer them). When it returns the handler is not
        running (from inside the handler itself it returns at once). Idempotent."""
        self._native.close()

    def __enter__(self) -> "Service":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<mycelium_native.Service {self.request_name} -> {self.reply_name} id={self.id}{state}>"


class Subscription:
    """A callback subscription (from :meth:`Runtime.subscribe`)."""

    def __init__(self, runtime: Runtime, native: _native.NativeSubscription, name: str) -> None:
        self._runtime = runtime
        self._native = native
        self.message_name = name

    @property
    def id(self) -> int:
        return self._native.id

    @property
    def closed(self) -> bool:
        return self._native.closed

    def close(self) -> None:
        """Ends the subscription. When it returns, the callback is not running and will not
        run again, and the callback object has been released. From inside the callback itself
        it returns at once and no further message is delivered. Idempotent."""
        self._native.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mycelium_native.Subscription {self.message_name} id={self.id}{' closed' if self.closed else ''}>"


class _PullQueue:
    """What every pull subscription has, whatever its ``recv`` returns."""

    def __init__(self, runtime: Runtime, native: _native.NativeReceiver) -> None:
        self._runtime = runtime
        self._native = native

    @property
    def id(self) -> int:
        return self._native.id

    @property
    def finished(self) -> bool:
        """True when the queue is empty and nothing more will arrive."""
        return self._native.finished

    @property
    def dropped(self) -> int:
        """Messages this queue did not get: DROP_OLDEST evictions, FAIL refusals, and messages
        still queued on the bus when it ended (``close`` first moves up to ``capacity`` of them
        into the queue, where they stay readable). The same count appears per subscriber in
        ``rt.metrics()["subscribers"]`` while the queue is open."""
        return self._native.dropped

    def __len__(self) -> int:
        """Messages waiting (counted up to the queue's capacity)."""
        return len(self._native)

    def close(self) -> None:
        """Ends the subscription; messages already queued can still be received, and a thread
        waiting in ``recv`` on the empty queue is woken. Never waits: if another thread is
        inside ``recv`` while messages of this type are queued, that thread completes the
        close within its 100 ms wait slice (and may still receive messages published until
        then)."""
        self._native.close()


class MessageQueue(_PullQueue, Generic[M]):
    """A pull subscription (from :meth:`Runtime.subscription`). Iterating yields messages
    until the subscription is closed and drained."""

    def __init__(self, runtime: Runtime, native: _native.NativeReceiver, message_type: Type[M]) -> None:
        super().__init__(runtime, native)
        self.message_type = message_type
        self._decode: Callable[[bytes], M] = _decoder_of(message_type)

    def recv(self, timeout: Optional[float] = None) -> M:
        """The next message, waiting up to ``timeout`` seconds (forever if None) with the GIL
        released. Messages are taken from the bus up to 64 at a time; the ones already taken
        (and, while the consumer is behind, ones already queued) come without releasing the GIL.
        Raises TimedOutError, or ClosedError once closed and drained. Ctrl-C works."""
        return self._decode(self._native.recv(timeout))

    def try_recv(self) -> Optional[M]:
        """The next message if one is queued, else None."""
        data = self._native.try_recv()
        return None if data is None else self._decode(data)

    def __iter__(self) -> Iterator[M]:
        while True:
            try:
                data = self._native.recv(None)
            except ClosedError:
                return
            yield self._decode(data)

    def __enter__(self) -> "MessageQueue[M]":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class TopicQueue(_PullQueue, Generic[M]):
    """A pull subscription that keeps each message's topic (``Runtime.subscription(...,
    with_topic=True)``): ``recv`` returns ``(message, topic)``, ``topic`` being the ``str`` the
    message was published with or ``None``. Otherwise as :class:`MessageQueue`."""

    def __init__(self, runtime: Runtime, native: _native.NativeReceiver, message_type: Type[M]) -> None:
        super().__init__(runtime, native)
        self.message_type = message_type
        self._decode: Callable[[bytes], M] = _decoder_of(message_type)

    def recv(self, timeout: Optional[float] = None) -> Tuple[M, Optional[str]]:
        """The next message and its topic; waits, raises and honours Ctrl-C as
        :meth:`MessageQueue.recv`."""
        data, topic = self._native.recv_with_topic(timeout)
        return self._decode(data), topic

    def try_recv(self) -> Optional[Tuple[M, Optional[str]]]:
        """The next message and its topic if one is queued, else None."""
        got = self._native.try_recv_with_topic()
        return None if got is None else (self._decode(got[0]), got[1])

    def __iter__(self) -> Iterator[Tuple[M, Optional[str]]]:
        while True:
            try:
                data, topic = self._native.recv_with_topic(None)
            except ClosedError:
                return
            yield self._decode(data), topic

    def __enter__(self) -> "TopicQueue[M]":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class _StreamBase(Generic[T]):
    """The asyncio side of a stream: what ``async for`` needs, whatever the items are."""

    def __init__(self, runtime: Runtime, native: _native.NativeStream) -> None:
        self._runtime = runtime
        self._native = native
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._waiter: Optional["asyncio.Future[None]"] = None
        self._buffer: List[T] = []

    def _fetch(self, max: int) -> List[T]:
        raise NotImplementedError

    @property
    def dropped(self) -> int:
        """Messages this stream did not get: DROP_OLDEST evictions from its own queue (the event
        loop fell behind) and from its bus-side queue (its delivery thread fell behind), and FAIL
        refusals. Messages received + ``dropped`` = messages published to it. Kept after
        ``close``."""
        return self._native.dropped

    def _on_readable(self) -> None:
        self._native.drain_notifications()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _watch(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self._native.fileno(), self._on_readable)

    def _unwatch(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._native.fileno())
            self._loop = None

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        self._watch()
        while True:
            if not self._buffer:
                self._buffer = self._fetch(256)
                self._buffer.reverse()
            if self._buffer:
                return self._buffer.pop()
            if self._native.finished:
                self._unwatch()
                raise StopAsyncIteration
            assert self._loop is not None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def close(self) -> None:
        """Ends the subscription; the iteration ends after the messages already queued."""
        self._native.close()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def aclose(self) -> None:
        self.close()
        self._unwatch()


class MessageStream(_StreamBase[M]):
    """An asyncio stream of messages (from :meth:`Runtime.stream`).

    ``async for msg in stream`` ends when the subscription is closed (by :meth:`close` or the
    runtime's close) and drained. Use it from one event loop; close it from that loop's thread.
    """

    def __init__(self, runtime: Runtime, native: _native.NativeStream, message_type: Type[M]) -> None:
        super().__init__(runtime, native)
        self.message_type = message_type
        self._decode: Callable[[bytes], M] = _decoder_of(message_type)

    def _fetch(self, max: int) -> List[M]:
        return [self._decode(data) for data in self._native.recv_many(max)]

    async def __aenter__(self) -> "MessageStream[M]":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()


class TopicStream(_StreamBase[Tuple[M, Optional[str]]]):
    """An asyncio stream that keeps each message's topic (``Runtime.stream(...,
    with_topic=True)``): ``async for msg, topic in stream``, ``topic`` being the ``str`` the
    message was published with or ``None``. Otherwise as :class:`MessageStream`."""

    def __init__(self, runtime: Runtime, native: _native.NativeStream, message_type: Type[M]) -> None:
        super().__init__(runtime, native)
        self.message_type = message_type
        self._decode: Callable[[bytes], M] = _decoder_of(message_type)

    def _fetch(self, max: int) -> List[Tuple[M, Optional[str]]]:
        return [(self._decode(data), topic) for data, topic in self._native.recv_many_with_topic(max)]

    async def __aenter__(self) -> "TopicStream[M]":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()


class Bridge:
    """A socket bridge (from :meth:`Runtime.listen` or :meth:`Runtime.connect`): messages
    published on either bus reach the other side's subscribers, for the message types the other
    side subscribes to. Closed by :meth:`close`, a ``with`` block, or the runtime's close.
    A NATS join (``connect("nats://...")``) is one too: its :meth:`stats` are the join's
    counters (``sent``, ``received``, ``refused``, ``reconnects``, ``slow_consumer``...)."""

    def __init__(self, native: _native.NativeBridge) -> None:
        self._native = native
        # Read once: the endpoints (with the port a "tcp:...:0" address picked) do not change,
        # and stay readable after close for messages and logs.
        self._endpoints: List[str] = list(json.loads(native.stats_json()).get("endpoints", []))

    @property
    def id(self) -> int:
        return self._native.id

    @property
    def endpoints(self) -> List[str]:
        """The addresses a listener is bound to, or the one a connector dials."""
        return list(self._endpoints)

    @property
    def closed(self) -> bool:
        return self._native.closed

    def wait(self, timeout: float = 10.0, sessions: int = 1) -> None:
        """Waits (GIL released, Ctrl-C honoured) until the bridge has ``sessions`` open sessions
        with completed handshakes. Raises BridgeError when the bridge stopped, e.g. the peer
        refused the handshake (the message names the reason: a wrong token, the messages whose
        schemas differ), TimedOutError after ``timeout`` seconds."""
        self._native.wait(_count("sessions", sessions), timeout)

    def stats(self) -> Dict[str, Any]:
        """The bridge's counters (``messages_in``/``_out``, frames, bytes, sessions...) as a dict."""
        parsed: Dict[str, Any] = json.loads(self._native.stats_json())["stats"]
        return parsed

    def close(self) -> None:
        """Stops listening or reconnecting and closes the connections (GIL released). Idempotent."""
        self._native.close()

    def __enter__(self) -> "Bridge":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self.closed else ""
        return f"<mycelium_native.Bridge id={self.id} {' '.join(self._endpoints)}{state}>"
