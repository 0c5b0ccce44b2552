# ---------------------------------------------------------------------------------------
# Wire helpers shared by every message class (private to this module).
#
# The per-message fast paths below do no per-field checking: they let `struct`, `str` and
# slicing raise on bad input and then hand the value or payload to the slow, generic
# walkers here, which find the first problem and describe it exactly as the Rust decoder
# does ("truncated at byte 7: needed 4 more byte(s) for TradeTick.price").
# ---------------------------------------------------------------------------------------

_Buffer = _t.Union[bytes, bytearray, memoryview]
# A field type as the walkers see it: ("int", name, size, code, min, max), ("f32", "f32", 4,
# "f"), ("f64", "f64", 8, "d"), ("bool", "bool", 1, "B"), ("str",), ("bytes",),
# ("array", n), ("list", element kind, smallest element size) or ("msg", message name).
_Kind = _t.Tuple[_t.Any, ...]

FRAME_HEADER_LEN: _t.Final = 6
"""Bytes in a frame header: a u16 type id and a u32 payload length, little-endian."""
MAX_PAYLOAD: _t.Final = 16 * 1024 * 1024
"""The largest payload a frame may carry (16 MiB)."""

_U32_MAX = 0xFFFFFFFF
# Class bodies use this for list defaults: a field called `list` would shadow the builtin
# for the fields after it.
_new_list = list
_HEADER = _struct.Struct("<HI")
_U32 = _struct.Struct("<I")
_BOOLS = (False, True)

# What the fast paths raise on bad input; anything else is a bug and propagates as is.
_ENCODE_SLIPS = (_struct.error, TypeError, ValueError, OverflowError, AttributeError)
_DECODE_SLIPS = (_struct.error, ValueError, IndexError)

_K_U8: _Kind = ("int", "u8", 1, "B", 0, 0xFF)
_K_U16: _Kind = ("int", "u16", 2, "H", 0, 0xFFFF)
_K_U32: _Kind = ("int", "u32", 4, "I", 0, 0xFFFFFFFF)
_K_U64: _Kind = ("int", "u64", 8, "Q", 0, 0xFFFFFFFFFFFFFFFF)
_K_I8: _Kind = ("int", "i8", 1, "b", -0x80, 0x7F)
_K_I16: _Kind = ("int", "i16", 2, "h", -0x8000, 0x7FFF)
_K_I32: _Kind = ("int", "i32", 4, "i", -0x80000000, 0x7FFFFFFF)
_K_I64: _Kind = ("int", "i64", 8, "q", -0x8000000000000000, 0x7FFFFFFFFFFFFFFF)
_K_F32: _Kind = ("f32", "f32", 4, "f")
_K_F64: _Kind = ("f64", "f64", 8, "d")
_K_BOOL: _Kind = ("bool", "bool", 1, "B")
_K_STR: _Kind = ("str",)
_K_BYTES: _Kind = ("bytes",)
_FIXED_TAGS = frozenset(("int", "f32", "f64"))


# f32 values are Python floats, i.e. doubles. `struct`'s "f" converts through a C float, and
# that conversion sets a NaN's quiet bit: a signalling NaN would come out of a decode and
# re-encode changed. NaNs are therefore converted by hand (sign kept, the f32's 23-bit payload,
# quiet bit included, in the top of the double's), so f32 bits round-trip exactly.
_F32 = _struct.Struct("<f")
_F64 = _struct.Struct("<d")
_U64 = _struct.Struct("<Q")


def _f32_bits(value: float) -> int:
    """The f32 bits of `value` (raises as `struct.pack("<f")` does on a bad value)."""
    if value != value:
        bits: int = _U64.unpack(_F64.pack(value))[0]
        payload = (bits >> 29) & 0x7FFFFF
        # A payload only in bits an f32 has no room for: the quiet NaN, as C gives.
        return ((bits >> 32) & 0x80000000) | 0x7F800000 | (payload or 0x400000)
    bits32: int = _U32.unpack(_F32.pack(value))[0]
    return bits32


def _f32_of_bits(bits: int) -> float:
    """The float holding the f32 with these bits; NaNs as `_f32_bits` reads them back."""
    if bits & 0x7F800000 == 0x7F800000 and bits & 0x7FFFFF:
        wide = ((bits & 0x80000000) << 32) | 0x7FF0000000000000 | ((bits & 0x7FFFFF) << 29)
        nan: float = _F64.unpack(_U64.pack(wide))[0]
        return nan
    value: float = _F32.unpack(_U32.pack(bits))[0]
    return value


def _pack_f32s(items: _t.Sequence[float]) -> bytes:
    """A u32 count and the f32 items; by hand only when a NaN is among them."""
    if all(item == item for item in items):
        return _pack_scalars("f", items)
    return _pack_scalars("I", [_f32_bits(item) for item in items])


def _unpack_f32s(data: _Buffer, off: int, count: int) -> _t.List[float]:
    """`count` f32 items at `off`; NaNs re-read from their bits."""
    items: _t.List[float] = list(_struct.unpack_from(f"<{count}f", data, off))
    if all(item == item for item in items):
        return items
    return [_f32_of_bits(bits) for bits in _struct.unpack_from(f"<{count}I", data, off)]


def _pack_scalars(code: str, items: _t.Sequence[_t.Any]) -> bytes:
    """A u32 count and the items packed with one struct format (lists of numbers/bools)."""
    count = len(items)
    return _struct.pack(f"<I{count}{code}", count, *items)


def _pack_strs(items: _t.Sequence[str]) -> bytes:
    parts = [_U32.pack(len(items))]
    for item in items:
        raw = item.encode()
        parts.append(_U32.pack(len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _pack_value(kind: _Kind, value: _t.Any, out: _t.List[bytes]) -> None:
    """Appends the encoding of `value` (rarely used shapes such as list<list<u8>>)."""
    tag = kind[0]
    if tag == "f32":
        out.append(_U32.pack(_f32_bits(value)))
    elif tag in _FIXED_TAGS:
        out.append(_struct.pack("<" + kind[3], value))
    elif tag == "bool":
        out.append(b"\x01" if value else b"\x00")
    elif tag == "str":
        raw = value.encode()
        out.append(_U32.pack(len(raw)))
        out.append(raw)
    elif tag == "bytes":
        out.append(_U32.pack(len(value)))
        out.append(bytes(value))
    elif tag == "array":
        if len(value) != kind[1]:
            raise ValueError("wrong length")
        out.append(bytes(value))
    elif tag == "list":
        out.append(_U32.pack(len(value)))
        for item in value:
            _pack_value(kind[1], item, out)
    else:
        out.append(_CLASSES[kind[1]].to_bytes(value))


def _pack_list(kind: _Kind, items: _t.Sequence[_t.Any]) -> bytes:
    out: _t.List[bytes] = []
    _pack_value(kind, items, out)
    return b"".join(out)


def _unpack_value(kind: _Kind, data: bytes, off: int) -> _t.Tuple[_t.Any, int]:
    """Decodes one value at `off`; returns it and the offset after it. Bounds are checked
    by the caller's final length check and by the walker, except for list counts, which
    are checked here before anything is allocated."""
    tag = kind[0]
    if tag == "f32":
        return _f32_of_bits(_U32.unpack_from(data, off)[0]), off + 4
    if tag in _FIXED_TAGS:
        return _struct.unpack_from("<" + kind[3], data, off)[0], off + kind[2]
    if tag == "bool":
        return _BOOLS[data[off]], off + 1
    if tag == "str" or tag == "bytes":
        (count,) = _U32.unpack_from(data, off)
        start = off + 4
        end = start + count
        if tag == "str":
            return data[start:end].decode(), end
        return data[start:end], end
    if tag == "array":
        end = off + kind[1]
        return data[off:end], end
    if tag == "list":
        (count,) = _U32.unpack_from(data, off)
        off += 4
        return _unpack_items(kind[1], kind[2], count, data, off)
    return _READERS[kind[1]](data, off)


def _unpack_items(
    kind: _Kind, min_size: int, count: int, data: bytes, off: int
) -> _t.Tuple[_t.List[_t.Any], int]:
    if count * max(min_size, 1) > len(data) - off:
        raise ValueError("count larger than the input")
    items: _t.List[_t.Any] = []
    for _ in range(count):
        item, off = _unpack_value(kind, data, off)
        items.append(item)
    return items, off


class _Walk:
    """Re-reads a payload the fast decoder rejected and raises DecodeError for the first
    problem, worded and located as by the Rust decoder (offsets count from the first
    payload byte)."""

    __slots__ = ("data", "pos")

    def __init__(self, data: _Buffer) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int, what: str) -> int:
        start = self.pos
        rest = len(self.data) - start
        if count > rest:
            raise DecodeError(
                f"truncated at byte {start}: needed {count - rest} more byte(s) for {what}"
            )
        self.pos = start + count
        return start

    def u32(self, what: str) -> int:
        at = self.take(4, what)
        value: int = _U32.unpack_from(self.data, at)[0]
        return value

    def message(self, name: str) -> None:
        for field, kind in _LAYOUTS[name]:
            self.value(kind, f"{name}.{field}")

    def value(self, kind: _Kind, what: str) -> None:
        tag = kind[0]
        if tag in _FIXED_TAGS:
            self.take(kind[2], what)
        elif tag == "bool":
            at = self.take(1, what)
            byte = self.data[at]
            if byte > 1:
                raise DecodeError(f"invalid bool value {byte} in {what} at byte {at}")
        elif tag == "str":
            count = self.u32(what)
            at = self.take(count, what)
            try:
                str(self.data[at : at + count], "utf-8")
            except UnicodeDecodeError as error:
                raise DecodeError(f"invalid UTF-8 in {what} at byte {at + error.start}") from None
        elif tag == "bytes":
            self.take(self.u32(what), what)
        elif tag == "array":
            self.take(kind[1], what)
        elif tag == "list":
            element = kind[1]
            if element is _K_U8:
                # list<u8> is laid out (and read by Rust) exactly like `bytes`.
                self.take(self.u32(what), what)
                return
            at = self.pos
            count = self.u32(what)
            available = len(self.data) - self.pos
            if count * max(kind[2], 1) > available:
                raise DecodeError(
                    f"{what} at byte {at} claims {count} element(s); "
                    f"only {available} byte(s) remain"
                )
            for _ in range(count):
                self.value(element, what + "[]")
        else:
            self.message(kind[1])

    def finish(self) -> None:
        left = len(self.data) - self.pos
        if left:
            raise DecodeError(f"{left} trailing byte(s) after the last field at byte {self.pos}")


def _decode_failure(name: str, data: _Buffer) -> DecodeError:
    """The DecodeError describing why `data` is not a valid `name` payload."""
    walk = _Walk(data)
    try:
        walk.message(name)
        walk.finish()
    except DecodeError as error:
        return error
    return DecodeError(f"{name}: payload rejected without a known cause (please report this bug)")


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_value(kind: _Kind, value: object, path: str) -> None:
    """Raises EncodeError naming `path` if `value` cannot be encoded as `kind`."""
    tag = kind[0]
    if tag == "int":
        if not isinstance(value, int):
            raise EncodeError(f"{path}: expected an int ({kind[1]}), got {_type_name(value)}")
        if not kind[4] <= value <= kind[5]:
            raise EncodeError(
                f"{path}: {value} is out of range for {kind[1]} ({kind[4]}..={kind[5]})"
            )
    elif tag == "f32" or tag == "f64":
        if not isinstance(value, (int, float)):
            raise EncodeError(f"{path}: expected a float ({tag}), got {_type_name(value)}")
        try:
            _struct.pack("<" + kind[3], value)
        except (OverflowError, _struct.error):
            # An int too large for a float is a struct.error, a float too large for f32 an
            # OverflowError.
            raise EncodeError(f"{path}: {value!r:.40} is out of range for {tag}") from None
    elif tag == "str":
        if not isinstance(value, str):
            raise EncodeError(f"{path}: expected a str, got {_type_name(value)}")
        try:
            raw = value.encode()
        except UnicodeEncodeError as error:
            raise EncodeError(
                f"{path}: not encodable as UTF-8 ({error.reason} at index {error.start})"
            ) from None
        _check_length(len(raw), path)
    elif tag == "bytes" or tag == "array":
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"{path}: expected bytes, got {_type_name(value)}")
        if tag == "array" and len(value) != kind[1]:
            raise EncodeError(
                f"{path}: bytes[{kind[1]}] needs exactly {kind[1]} bytes, got {len(value)}"
            )
        _check_length(len(value), path)
    elif tag == "list":
        if not isinstance(value, (list, tuple)):
            raise EncodeError(f"{path}: expected a list, got {_type_name(value)}")
        _check_length(len(value), path)
        if kind[1] is _K_U8 and isinstance(value, (bytes, bytearray)):
            return
        for index, item in enumerate(value):
            _check_value(kind[1], item, f"{path}[{index}]")
    elif tag == "msg":
        _check_message(kind[1], value, path)


def _check_length(length: int, path: str) -> None:
    if length > _U32_MAX:
        raise EncodeError(f"{path}: length {length} does not fit the u32 length prefix")


def _check_message(name: str, value: object, path: str) -> None:
    if not isinstance(value, _CLASSES[name]):
        raise EncodeError(f"{path}: expected a {name}, got {_type_name(value)}")
    for field, kind in _LAYOUTS[name]:
        _check_value(kind, getattr(value, field), f"{path}.{field}")


def _encode_failure(name: str, message: object, cause: BaseException) -> EncodeError:
    """The EncodeError naming the field of `message` that made encoding fail."""
    try:
        _check_message(name, message, name)
    except EncodeError as error:
        return error
    return EncodeError(f"{name}: cannot encode: {cause}")
