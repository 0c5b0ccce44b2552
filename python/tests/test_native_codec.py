"""The native decoder and encoder (`_native.Decoder` / `_native.Encoder`, python/src/decoder.rs
and encoder.rs) against the generated `from_bytes` / `to_bytes`: the same message or bytes for
every golden vector and for random input, the same `DecodeError` / `EncodeError` for every bad
one, and the runtime choosing them only where it may."""

from __future__ import annotations

import json
import math
import queue
import random
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

import pytest

from mycelium_native import Runtime, _native
from mycelium_native._runtime import _decoder_of, _encoder_of
from mycelium_native.errors import DecodeError

from conftest import VECTORS_JSON
from test_vectors import build

VECTORS: List[Dict[str, Any]] = json.loads(VECTORS_JSON.read_text())["vectors"]


def flat_classes(contracts: ModuleType) -> List[Any]:
    return [cls for cls in contracts.MESSAGES.values() if "_WIRE" in vars(cls)]


def outcome(decode: Callable[[Any], Any], data: Any) -> Tuple[str, Any]:
    """What `decode(data)` gives: ("ok", the message's fields, or the bytes or None it
    returned) or ("error", type and text)."""
    try:
        message = decode(data)
    except Exception as error:  # noqa: BLE001 - comparing whatever either side raises
        return "error", (type(error).__name__, str(error))
    if message is None or isinstance(message, bytes):
        return "ok", message
    return "ok", same_nans(message)


def same_nans(message: Any) -> Tuple[Any, ...]:
    """The message's fields, NaNs by their bits (NaN != NaN would fail every comparison)."""
    import struct

    def key(v: Any) -> Any:
        if isinstance(v, float) and math.isnan(v):
            return ("nan", struct.pack("<d", v))
        return (type(v).__name__, v)

    return tuple(key(getattr(message, name)) for name in message.__dataclass_fields__)


def test_flat_classes_get_the_native_decoder_and_the_rest_from_bytes(contracts: ModuleType) -> None:
    flat = flat_classes(contracts)
    assert contracts.TradeTick in flat, "TradeTick is all flat fields"
    for cls in contracts.MESSAGES.values():
        decoder = _decoder_of(cls)
        if cls in flat:
            assert isinstance(decoder, _native.Decoder), cls.NAME
        else:
            assert decoder == cls.from_bytes, cls.NAME
    assert len(flat) < len(contracts.MESSAGES), "the schema has nested messages too (no _WIRE)"

    class Custom(contracts.TradeTick):  # type: ignore[misc, name-defined]
        @classmethod
        def from_bytes(cls, data: bytes) -> Any:
            return "custom"

    assert _decoder_of(Custom)(b"") == "custom", "a subclass keeps its own from_bytes"


def test_every_golden_vector_decodes_as_from_bytes_does(contracts: ModuleType) -> None:
    checked = 0
    for vector in VECTORS:
        cls = getattr(contracts, vector["message"])
        if "_WIRE" not in vars(cls):
            continue
        payload = bytes.fromhex(vector["frame_hex"])[6:]
        native = _decoder_of(cls)
        assert outcome(native, payload) == outcome(cls.from_bytes, payload), vector["name"]
        assert outcome(native, payload)[0] == "ok", vector["name"]
        # Every truncation and one trailing byte: the generated decoder's own DecodeError.
        for bad in [payload[:cut] for cut in range(len(payload))] + [payload + b"\0"]:
            got = outcome(native, bad)
            assert got == outcome(cls.from_bytes, bad), (vector["name"], bad.hex())
            assert got[0] == "error" and got[1][0] == "DecodeError", (vector["name"], bad.hex())
        checked += 1
    assert checked >= 20, f"only {checked} vectors of flat messages"


def test_random_and_mutated_payloads_decode_as_from_bytes_does(contracts: ModuleType) -> None:
    rng = random.Random(16)
    by_class: Dict[Any, List[bytes]] = {}
    for vector in VECTORS:
        cls = getattr(contracts, vector["message"])
        if "_WIRE" in vars(cls):
            by_class.setdefault(cls, []).append(bytes.fromhex(vector["frame_hex"])[6:])
    oks = errors = 0
    for cls, payloads in by_class.items():
        native = _decoder_of(cls)
        for _ in range(400):
            data = bytearray(rng.choice(payloads))
            for _ in range(rng.randint(1, 3)):  # flip bytes: lengths, bools, UTF-8 all get hit
                if data:
                    data[rng.randrange(len(data))] = rng.randrange(256)
            if rng.random() < 0.2:
                data = bytearray(rng.randbytes(rng.randint(0, 40)))
            got = outcome(native, bytes(data))
            assert got == outcome(cls.from_bytes, bytes(data)), (cls.NAME, bytes(data).hex())
            # bytearray and memoryview go the same way
            assert outcome(native, data) == got and outcome(native, memoryview(bytes(data))) == got  # type: ignore[arg-type]
            oks += got[0] == "ok"
            errors += got[0] == "error"
    assert oks > 100 and errors > 100, (oks, errors)


def test_a_malformed_payload_raises_the_generated_decode_error(contracts: ModuleType) -> None:
    native = _decoder_of(contracts.TradeTick)
    good = contracts.TradeTick(symbol="BTC-USD", price=1.5, size=3, ts_ns=7, side=1).to_bytes()
    assert native(good) == contracts.TradeTick.from_bytes(good)
    bad_utf8 = bytearray(good)
    bad_utf8[4] = 0xFF
    with pytest.raises(DecodeError) as native_error:
        native(bytes(bad_utf8))
    with pytest.raises(DecodeError) as generated_error:
        contracts.TradeTick.from_bytes(bytes(bad_utf8))
    assert str(native_error.value) == str(generated_error.value)


def test_a_decoder_refuses_a_layout_it_does_not_know(contracts: ModuleType) -> None:
    with pytest.raises(ValueError, match='unknown wire token "x" in the _WIRE of TradeTick'):
        _native.Decoder(contracts.TradeTick, ["S", "x"], contracts.TradeTick.from_bytes)
    with pytest.raises(ValueError, match="fallback must be callable"):
        _native.Decoder(contracts.TradeTick, ["S"], 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="2 names for 1 wire fields"):
        _native.Decoder(contracts.TradeTick, ["S"], contracts.TradeTick.from_bytes, ["a", "b"])
    # The encoder leaves f32 fields to to_bytes (its NaN handling is the generated code's).
    with pytest.raises(ValueError, match="wire token \"f\" \\(field x\\) has no native encoder"):
        _native.Encoder(1, ["f"], ["x"])
    with pytest.raises(ValueError, match="unknown|no native encoder"):
        _native.Encoder(1, ["S", "7"], ["a", "b"])
    with pytest.raises(ValueError, match="1 names for 2 wire fields"):
        _native.Encoder(1, ["S", "Q"], ["a"])


def test_callbacks_get_natively_decoded_messages_equal_to_what_was_published(
    rt: Runtime, contracts: ModuleType
) -> None:
    import threading

    sent = [contracts.TradeTick(symbol=f"S{i}é", price=i / 3, size=i, ts_ns=1 << 40 | i, side=i & 1) for i in range(500)]
    got: List[Any] = []
    done = threading.Event()

    def on_tick(tick: Any) -> None:
        got.append(tick)
        if len(got) == len(sent):
            done.set()

    rt.subscribe(contracts.TradeTick, on_tick, capacity=1024)
    for tick in sent:
        rt.publish(tick)
    assert done.wait(10)
    assert got == sent
    assert all(type(t) is contracts.TradeTick for t in got)


# ---- encoder ------------------------------------------------------------------------------


def test_flat_classes_get_the_native_encoder_and_the_rest_to_bytes(contracts: ModuleType) -> None:
    for cls in contracts.MESSAGES.values():
        wire = vars(cls).get("_WIRE")
        natively = wire is not None and "f" not in wire  # f32 fields stay with to_bytes
        assert (_encoder_of(cls) is not None) == natively, cls.NAME

    class Custom(contracts.TradeTick):  # type: ignore[misc, name-defined]
        def to_bytes(self) -> bytes:
            return b"custom"

    assert _encoder_of(Custom) is None, "a subclass keeps its own to_bytes"


def test_every_golden_vector_encodes_as_to_bytes_does(contracts: ModuleType) -> None:
    checked = 0
    for vector in VECTORS:
        cls = getattr(contracts, vector["message"])
        encoder = _encoder_of(cls)
        if encoder is None:
            continue
        message = build(contracts, vector["message"], vector["value"])
        payload = bytes.fromhex(vector["frame_hex"])[6:]
        assert message.to_bytes() == payload, vector["name"]
        assert encoder.encode_or_none(message) == payload, vector["name"]
        checked += 1
    assert checked >= 20, f"only {checked} vectors of natively encoded messages"


def raw_collector(rt: Runtime, type_id: int) -> "queue.Queue[bytes]":
    """The payloads of `type_id` as they arrive, in order."""
    arrived: "queue.Queue[bytes]" = queue.Queue()
    rt.subscribe_raw(type_id, arrived.put, capacity=256)
    return arrived


class Text(str):
    pass


class Number(int):
    pass


def odd_ticks(contracts: ModuleType) -> List[Any]:
    """Ticks with values the encoder must leave to to_bytes: each either encodes as struct
    does or raises the generated EncodeError."""
    T = contracts.TradeTick
    base = dict(symbol="BTC", price=1.5, size=3, ts_ns=7, side=1)
    odd: List[Dict[str, Any]] = [
        {"size": True},  # a bool where an int goes: struct packs 1
        {"size": Number(5)},  # an int subclass
        {"size": 2**32},  # out of range
        {"size": -1},
        {"ts_ns": 2**64},
        {"side": 256},
        {"price": 3},  # an int where a float goes: struct converts it
        {"price": "1.5"},  # wrong type
        {"symbol": Text("BTC")},  # a str subclass
        {"symbol": "\ud800"},  # a lone surrogate: str.encode() refuses it
        {"symbol": b"BTC"},  # bytes where a str goes
        {"symbol": None},
    ]
    return [T(**{**base, **change}) for change in odd]


def test_values_the_encoder_is_not_sure_of_go_to_to_bytes(rt: Runtime, contracts: ModuleType) -> None:
    encoder = _encoder_of(contracts.TradeTick)
    assert encoder is not None
    got: List[bytes] = []
    sub = raw_collector(rt, contracts.TradeTick.TYPE_ID)
    for tick in odd_ticks(contracts):
        assert encoder.encode_or_none(tick) is None, tick
        expected = outcome(lambda t: t.to_bytes(), tick)
        published = outcome(rt.publish, tick)
        if expected[0] == "ok":
            assert published[0] == "ok", (tick, published)
            got.append(sub.get(timeout=5))
            assert got[-1] == tick.to_bytes(), tick
        else:
            assert published == ("error", expected[1]), (tick, published, expected)
            assert published[1][0] == "EncodeError", tick
    assert len(got) >= 4, "some odd values encode (bool, int subclass, int for float, str subclass)"
    assert sub.empty()


def test_random_valid_messages_encode_as_to_bytes_does(contracts: ModuleType) -> None:
    rng = random.Random(1616)
    T = contracts.TradeTick
    encoder = _encoder_of(T)
    assert encoder is not None
    for _ in range(2000):
        tick = T(
            symbol="".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0xA0, 0xD7FF), rng.randrange(0x10000, 0x10FFFF)])) for _ in range(rng.randint(0, 12))),
            price=rng.choice([rng.uniform(-1e12, 1e12), math.inf, -0.0, math.nan, 5e-324]),
            size=rng.randrange(2**32),
            ts_ns=rng.randrange(2**64),
            side=rng.randrange(256),
        )
        assert encoder.encode_or_none(tick) == tick.to_bytes(), tick


def test_published_messages_arrive_as_to_bytes_encodes_them(rt: Runtime, contracts: ModuleType) -> None:
    ticks = [contracts.TradeTick(symbol=f"S{i}€", price=i * 0.25, size=i, ts_ns=i << 33, side=i % 3) for i in range(200)]
    sub = raw_collector(rt, contracts.TradeTick.TYPE_ID)
    for tick in ticks:
        rt.publish(tick)
    assert [sub.get(timeout=5) for _ in ticks] == [t.to_bytes() for t in ticks]
