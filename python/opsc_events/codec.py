"""The payload: MessagePack written as rmp-serde writes it (docs/WIRE.md § The payload), encoded
and decoded under the event's shape, so widths (``u128`` as 16-byte bin, ``f32`` as float 32),
UUIDs (16-byte bin) and enum representations match the Rust side."""

from __future__ import annotations

import struct
import uuid
from typing import Any, NamedTuple

import msgpack  # type: ignore[import-untyped]

from .errors import EncodeError
from .schema import (
    Array,
    Enum,
    Field,
    Leaf,
    Map,
    Opaque,
    Option,
    Seq,
    Shape,
    Struct,
    Tuple,
    Variant,
)

MAX_NESTING = 128

_RANGES = {
    "u8": (0, 2**8 - 1),
    "u16": (0, 2**16 - 1),
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "u128": (0, 2**128 - 1),
    "i8": (-(2**7), 2**7 - 1),
    "i16": (-(2**15), 2**15 - 1),
    "i32": (-(2**31), 2**31 - 1),
    "i64": (-(2**63), 2**63 - 1),
    "i128": (-(2**127), 2**127 - 1),
}


class Tagged(NamedTuple):
    """An enum value: the variant's wire name and its payload (``None`` for a unit variant, the
    value for a newtype, a tuple for a tuple variant, a dict of field values for a struct)."""

    variant: str
    value: Any = None


class _F32(float):
    """A float written as MessagePack float 32."""


# --- MessagePack writer (smallest integer encoding, float 32 where the shape says so) -------


def pack(obj: Any) -> bytes:
    out = bytearray()
    _pack(obj, out)
    return bytes(out)


def _pack(o: Any, out: bytearray) -> None:
    if o is None:
        out.append(0xC0)
    elif o is True:
        out.append(0xC3)
    elif o is False:
        out.append(0xC2)
    elif isinstance(o, int):
        _pack_int(o, out)
    elif isinstance(o, _F32):
        out.append(0xCA)
        out += struct.pack(">f", o)
    elif isinstance(o, float):
        out.append(0xCB)
        out += struct.pack(">d", o)
    elif isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 2**8:
            out += bytes((0xD9, n))
        elif n < 2**16:
            out.append(0xDA)
            out += n.to_bytes(2, "big")
        else:
            out.append(0xDB)
            out += n.to_bytes(4, "big")
        out += b
    elif isinstance(o, (bytes, bytearray)):
        n = len(o)
        if n < 2**8:
            out += bytes((0xC4, n))
        elif n < 2**16:
            out.append(0xC5)
            out += n.to_bytes(2, "big")
        else:
            out.append(0xC6)
            out += n.to_bytes(4, "big")
        out += o
    elif isinstance(o, (list, tuple)):
        _pack_len(len(o), out, 0x90, 0xDC, 0xDD)
        for x in o:
            _pack(x, out)
    elif isinstance(o, dict):
        _pack_len(len(o), out, 0x80, 0xDE, 0xDF)
        for k, v in o.items():
            _pack(k, out)
            _pack(v, out)
    else:
        raise EncodeError(f"cannot write {type(o).__name__} as MessagePack")


def _pack_len(n: int, out: bytearray, fix: int, b16: int, b32: int) -> None:
    if n < 16:
        out.append(fix | n)
    elif n < 2**16:
        out.append(b16)
        out += n.to_bytes(2, "big")
    else:
        out.append(b32)
        out += n.to_bytes(4, "big")


def _pack_int(v: int, out: bytearray) -> None:
    if 0 <= v < 128:
        out.append(v)
    elif -32 <= v < 0:
        out.append(v & 0xFF)
    elif v >= 0:
        for code, size in ((0xCC, 1), (0xCD, 2), (0xCE, 4), (0xCF, 8)):
            if v < 2 ** (8 * size):
                out.append(code)
                out += v.to_bytes(size, "big")
                return
        raise EncodeError(f"integer {v} does not fit 64 bits")
    else:
        for code, size in ((0xD0, 1), (0xD1, 2), (0xD2, 4), (0xD3, 8)):
            if v >= -(2 ** (8 * size - 1)):
                out.append(code)
                out += v.to_bytes(size, "big", signed=True)
                return
        raise EncodeError(f"integer {v} does not fit 64 bits")


def unpack(data: bytes) -> Any:
    """Exactly one MessagePack value; raises ``ValueError`` (invalid, truncated, trailing bytes,
    nested deeper than 128)."""
    try:
        up = msgpack.Unpacker(raw=True, strict_map_key=False, max_buffer_size=max(len(data), 1))
        up.feed(data)
        value = up.unpack()
    except msgpack.OutOfData:
        raise ValueError("truncated") from None
    except Exception as e:  # msgpack raises several types for bad bytes
        raise ValueError(str(e) or type(e).__name__) from None
    if up.tell() != len(data):
        raise ValueError("trailing bytes after the value")
    if _depth(value) > MAX_NESTING:
        raise ValueError("depth limit exceeded")
    return value


def _depth(v: Any) -> int:
    if isinstance(v, (list, tuple)):
        return 1 + max((_depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((max(_depth(k), _depth(x)) for k, x in v.items()), default=0)
    return 0


# --- value → MessagePack object, under a shape ----------------------------------------------


def to_wire(value: Any, shape: Shape) -> Any:
    """The object :func:`pack` writes for ``value`` of ``shape``."""
    if isinstance(shape, Leaf):
        n = shape.name
        if n == "unit":
            if value is not None:
                raise EncodeError(f"unit must be None, not {value!r}")
            return None
        if n == "bool":
            if not isinstance(value, bool):
                raise EncodeError(f"expected bool, got {value!r}")
            return value
        if n in _RANGES:
            if not isinstance(value, int) or isinstance(value, bool):
                raise EncodeError(f"expected an integer ({n}), got {value!r}")
            lo, hi = _RANGES[n]
            if not lo <= value <= hi:
                raise EncodeError(f"{value} is out of range for {n}")
            if n in ("u128", "i128"):
                return value.to_bytes(16, "big", signed=n == "i128")
            return value
        if n in ("f32", "f64"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise EncodeError(f"expected a float ({n}), got {value!r}")
            return _F32(value) if n == "f32" else float(value)
        if n == "char":
            if not isinstance(value, str) or len(value) != 1:
                raise EncodeError(f"expected one character, got {value!r}")
            return value
        if n == "string":
            if not isinstance(value, str):
                raise EncodeError(f"expected str, got {value!r}")
            return value
    if isinstance(shape, Option):
        return None if value is None else to_wire(value, shape.inner)
    if isinstance(shape, Seq):
        return [to_wire(x, shape.item) for x in _iterable(value)]
    if isinstance(shape, Array):
        items = list(_iterable(value))
        if len(items) != shape.length:
            raise EncodeError(f"expected {shape.length} items, got {len(items)}")
        return [to_wire(x, shape.item) for x in items]
    if isinstance(shape, Tuple):
        items = list(_iterable(value))
        if len(items) != len(shape.items):
            raise EncodeError(f"expected a tuple of {len(shape.items)}, got {len(items)}")
        return [to_wire(x, s) for x, s in zip(items, shape.items)]
    if isinstance(shape, Map):
        if not isinstance(value, dict):
            raise EncodeError(f"expected a dict, got {type(value).__name__}")
        return {to_wire(k, shape.key): to_wire(v, shape.value) for k, v in value.items()}
    if isinstance(shape, Struct):
        return _fields_to_wire(value, shape.fields)
    if isinstance(shape, Opaque):
        if shape.name == "uuid":
            if not isinstance(value, uuid.UUID):
                raise EncodeError(f"expected uuid.UUID, got {value!r}")
            return value.bytes
        if shape.name == "json":
            return _json_to_wire(value)
        raise EncodeError(f"opaque {shape.name!r} values are not supported by the Python client")
    if isinstance(shape, Enum):
        return _enum_to_wire(value, shape)
    raise EncodeError(f"not a shape: {shape!r}")


def _iterable(value: Any) -> Any:
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise EncodeError(f"expected a sequence, got {type(value).__name__}")
    return value


def _get(value: Any, f: Field) -> Any:
    if isinstance(value, dict):
        if f.py_name in value:
            return value[f.py_name]
        if f.name in value:
            return value[f.name]
        raise EncodeError(f"missing field {f.py_name!r}")
    try:
        return getattr(value, f.py_name)
    except AttributeError:
        raise EncodeError(f"missing field {f.py_name!r}") from None


def _fields_to_wire(value: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    return {f.name: to_wire(_get(value, f), f.shape) for f in fields}


def _json_to_wire(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_json_to_wire(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_to_wire(x) for k, x in v.items()}
    raise EncodeError(f"not a JSON value: {v!r}")


def _variant_named(shape: Enum, name: str) -> Variant:
    for v in shape.variants:
        if v.name == name:
            return v
    raise EncodeError(f"unknown variant {name!r}")


def _enum_to_wire(value: Any, shape: Enum) -> Any:
    if isinstance(value, str):
        value = Tagged(value)
    if not isinstance(value, Tagged):
        raise EncodeError(f"an enum value is a Tagged(variant, value), not {value!r}")
    v = _variant_named(shape, value.variant)
    if v.kind == "unit":
        content: Any = None
    elif v.kind == "newtype":
        content = to_wire(value.value, v.payload)
    elif v.kind == "tuple":
        content = to_wire(value.value, Tuple(tuple(v.payload)))
    else:
        content = _fields_to_wire(value.value, tuple(v.payload))
    t = shape.tagging
    if t[0] == "external":
        return v.name if v.kind == "unit" else {v.name: content}
    if t[0] == "internal":
        if v.kind == "unit":
            return {t[1]: v.name}
        if not isinstance(content, dict):
            raise EncodeError("an internally tagged newtype variant must hold a struct")
        return {t[1]: v.name, **content}
    return {t[1]: v.name} if v.kind == "unit" else {t[1]: v.name, t[2]: content}


# --- MessagePack object → value, under a shape ----------------------------------------------


class Mismatch(ValueError):
    """The payload is MessagePack but does not fit the shape (DataMismatch)."""


def _str(o: Any, what: str = "a string") -> str:
    if isinstance(o, bytes):
        try:
            return o.decode()
        except UnicodeDecodeError:
            raise Mismatch(f"{what} is not UTF-8") from None
    raise Mismatch(f"expected {what}, got {_kind(o)}")


def _kind(o: Any) -> str:
    return "nil" if o is None else type(o).__name__


def from_wire(o: Any, shape: Shape) -> Any:
    """The Python value of the unpacked (``raw=True``) object ``o`` of ``shape``."""
    if isinstance(shape, Leaf):
        n = shape.name
        if n == "unit":
            if o is not None:
                raise Mismatch(f"expected nil, got {_kind(o)}")
            return None
        if n == "bool":
            if not isinstance(o, bool):
                raise Mismatch(f"expected bool, got {_kind(o)}")
            return o
        if n in _RANGES:
            lo, hi = _RANGES[n]
            if n in ("u128", "i128") and isinstance(o, bytes):
                if len(o) != 16:
                    raise Mismatch(f"{n} as bin must be 16 bytes, got {len(o)}")
                return int.from_bytes(o, "big", signed=n == "i128")
            if not isinstance(o, int) or isinstance(o, bool):
                raise Mismatch(f"expected an integer ({n}), got {_kind(o)}")
            if not lo <= o <= hi:
                raise Mismatch(f"{o} is out of range for {n}")
            return o
        if n in ("f32", "f64"):
            if isinstance(o, bool) or not isinstance(o, (int, float)):
                raise Mismatch(f"expected a float, got {_kind(o)}")
            return float(o)
        if n == "char":
            s = _str(o, "a character")
            if len(s) != 1:
                raise Mismatch(f"expected one character, got {len(s)}")
            return s
        return _str(o)
    if isinstance(shape, Option):
        return None if o is None else from_wire(o, shape.inner)
    if isinstance(shape, Seq):
        return [from_wire(x, shape.item) for x in _list(o)]
    if isinstance(shape, Array):
        items = _list(o)
        if len(items) != shape.length:
            raise Mismatch(f"expected {shape.length} items, got {len(items)}")
        return [from_wire(x, shape.item) for x in items]
    if isinstance(shape, Tuple):
        items = _list(o)
        if len(items) != len(shape.items):
            raise Mismatch(f"expected a tuple of {len(shape.items)}, got {len(items)}")
        return tuple(from_wire(x, s) for x, s in zip(items, shape.items))
    if isinstance(shape, Map):
        if not isinstance(o, dict):
            raise Mismatch(f"expected a map, got {_kind(o)}")
        return {from_wire(k, shape.key): from_wire(v, shape.value) for k, v in o.items()}
    if isinstance(shape, Struct):
        kwargs = _fields_from_wire(o, shape.fields)
        return shape.cls(**kwargs) if shape.cls is not None else kwargs
    if isinstance(shape, Opaque):
        if shape.name == "uuid":
            if not isinstance(o, bytes) or len(o) != 16:
                raise Mismatch("a UUID is a bin of 16 bytes")
            return uuid.UUID(bytes=o)
        if shape.name == "json":
            return _json_from_wire(o)
        raise Mismatch(f"opaque {shape.name!r} values are not supported by the Python client")
    if isinstance(shape, Enum):
        return _enum_from_wire(o, shape)
    raise Mismatch(f"not a shape: {shape!r}")


def _list(o: Any) -> list[Any]:
    if not isinstance(o, list):
        raise Mismatch(f"expected an array, got {_kind(o)}")
    return o


def _fields_from_wire(o: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    if not isinstance(o, dict):
        raise Mismatch(f"expected a map of fields, got {_kind(o)}")
    by_name: dict[str, Any] = {}
    for k, v in o.items():
        if isinstance(k, bytes):
            by_name[_str(k, "a field name")] = v
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in by_name:
            out[f.py_name] = from_wire(by_name[f.name], f.shape)
        elif isinstance(f.shape, Option):
            out[f.py_name] = None
        else:
            raise Mismatch(f"missing field {f.name!r}")
    return out


def _json_from_wire(o: Any) -> Any:
    if isinstance(o, bytes):
        return _str(o)
    if isinstance(o, list):
        return [_json_from_wire(x) for x in o]
    if isinstance(o, dict):
        return {_str(k): _json_from_wire(v) for k, v in o.items()}
    if o is None or isinstance(o, (bool, int, float)):
        return o
    raise Mismatch(f"not a JSON value: {_kind(o)}")


def _variant_content(v: Variant, content: Any) -> Any:
    if v.kind == "newtype":
        return from_wire(content, v.payload)
    if v.kind == "tuple":
        return from_wire(content, Tuple(tuple(v.payload)))
    if v.kind == "struct":
        return _fields_from_wire(content, tuple(v.payload))
    if content is not None:
        raise Mismatch(f"unit variant {v.name!r} has content")
    return None


def _find(shape: Enum, name: str) -> Variant:
    for v in shape.variants:
        if v.name == name:
            return v
    raise Mismatch(f"unknown variant {name!r}")


def _enum_from_wire(o: Any, shape: Enum) -> Tagged:
    t = shape.tagging
    if t[0] == "external":
        if isinstance(o, bytes):
            v = _find(shape, _str(o))
            if v.kind != "unit":
                raise Mismatch(f"variant {v.name!r} needs content")
            return Tagged(v.name)
        if isinstance(o, dict) and len(o) == 1:
            ((k, content),) = o.items()
            v = _find(shape, _str(k, "a variant name"))
            return Tagged(v.name, _variant_content(v, content))
        raise Mismatch(f"expected an externally tagged enum, got {_kind(o)}")
    if not isinstance(o, dict):
        raise Mismatch(f"expected a tagged enum map, got {_kind(o)}")
    m = {_str(k, "a key"): x for k, x in o.items() if isinstance(k, bytes)}
    if t[1] not in m:
        raise Mismatch(f"missing tag {t[1]!r}")
    v = _find(shape, _str(m[t[1]], "a variant name"))
    if t[0] == "internal":
        if v.kind == "unit":
            return Tagged(v.name)
        rest = {k.encode(): x for k, x in m.items() if k != t[1]}
        if v.kind == "newtype":
            return Tagged(v.name, from_wire(rest, v.payload))
        return Tagged(v.name, _fields_from_wire(rest, tuple(v.payload)))
    return Tagged(v.name, _variant_content(v, m.get(t[2])))
