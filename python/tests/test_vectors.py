"""The golden vectors (tests/vectors/contracts.json) through the generated classes and the bus:
every value encodes to exactly the frame's payload, decodes back, and crosses the runtime
byte-identical."""

from __future__ import annotations

import json
import math
import struct
from types import ModuleType
from typing import Any, Dict, List, Tuple

import pytest

from mycelium_native import Runtime
from mycelium_native._schema import parse_canonical

from conftest import VECTORS_JSON

VECTORS: List[Dict[str, Any]] = json.loads(VECTORS_JSON.read_text())["vectors"]
INTS = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"}


def field_types(contracts: ModuleType) -> Dict[str, List[Tuple[str, str]]]:
    return {m.name: list(m.fields) for m in parse_canonical(contracts.SCHEMA_CANONICAL)}


def nan_of_bits(hex_bits: str) -> float:
    """A NaN written with its bits ("NaN:0x7f800001"): an f64 as is; an f32 as the generated
    code holds it, its payload (quiet bit included) at the top of the double's, since a
    conversion through C float would quiet a signalling NaN."""
    bits = int(hex_bits, 16)
    if len(hex_bits) == 8:
        bits = ((bits & 0x80000000) << 32) | 0x7FF0000000000000 | ((bits & 0x7FFFFF) << 29)
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def build(contracts: ModuleType, message: str, value: Dict[str, Any]) -> Any:
    """A generated message object from the JSON mapping of docs/wire-format.md."""
    types = field_types(contracts)

    def convert(ctype: str, v: Any) -> Any:
        if ctype in INTS:
            assert isinstance(v, int)
            return v
        if ctype in ("f32", "f64"):
            if isinstance(v, str) and v.startswith("NaN:0x"):
                return nan_of_bits(v[len("NaN:0x") :])
            return {"NaN": math.nan, "inf": math.inf, "-inf": -math.inf}.get(v, v) if isinstance(v, str) else float(v)
        if ctype == "bool":
            return bool(v)
        if ctype == "string":
            return str(v)
        if ctype == "bytes" or ctype.startswith("bytes["):
            return bytes.fromhex(v)
        if ctype.startswith("list<"):
            return [convert(ctype[5:-1], x) for x in v]
        return make(ctype.split("#", 1)[0], v)

    def make(name: str, obj: Dict[str, Any]) -> Any:
        cls = getattr(contracts, name)
        return cls(**{f: convert(t, obj[f]) for f, t in types[name]})

    return make(message, value)


def test_vectors_were_made_for_this_schema(contracts: ModuleType) -> None:
    assert json.loads(VECTORS_JSON.read_text())["schema_digest"] == contracts.SCHEMA_DIGEST
    assert len(VECTORS) > 0


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_encodes_and_decodes_byte_identical(contracts: ModuleType, vector: Dict[str, Any]) -> None:
    frame = bytes.fromhex(vector["frame_hex"])
    payload = frame[6:]
    msg = build(contracts, vector["message"], vector["value"])
    assert msg.TYPE_ID == vector["type_id"]
    assert msg.to_bytes() == payload
    assert type(msg).from_bytes(payload).to_bytes() == payload


def test_every_vector_crosses_the_bus_byte_identical(contracts: ModuleType) -> None:
    raw: Dict[int, List[bytes]] = {}
    decoded: Dict[int, List[Any]] = {}
    with Runtime(contracts) as rt:
        for type_id, cls in contracts.MESSAGES.items():
            raw[type_id] = []
            decoded[type_id] = []
            rt.subscribe_raw(type_id, raw[type_id].append)
            rt.subscribe(cls, decoded[type_id].append)
        expected: Dict[int, List[bytes]] = {t: [] for t in contracts.MESSAGES}
        for vector in VECTORS:
            msg = build(contracts, vector["message"], vector["value"])
            rt.publish(msg)
            expected[vector["type_id"]].append(bytes.fromhex(vector["frame_hex"])[6:])
        rt.flush(30)
    for type_id, payloads in expected.items():
        assert raw[type_id] == payloads
        assert [m.to_bytes() for m in decoded[type_id]] == payloads
