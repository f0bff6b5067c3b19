"""Shapes and the schema fingerprint (docs/WIRE.md § The schema fingerprint).

A *shape* describes an event's payload the way the Rust derive does. Build one directly
(``Struct([Field("id", U64)])``) or let :func:`shape_of` derive it from a dataclass whose
fields are annotated with the integer and float aliases of this module (``U64``, ``F32``, ...),
``str``, ``bool``, ``list[T]``, ``Optional[T]``, ``dict[K, V]``, ``tuple[...]``,
``uuid.UUID`` or another dataclass. Python's ``int`` and ``float`` are refused: the Rust side
has one shape per width, so the width must be said.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Optional, Union

MASK = (1 << 64) - 1
OFFSET = 0xCBF29CE484222325
PRIME = 0x100000001B3

INTEGERS = ("i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128")
LEAVES = ("unit", "bool", "f32", "f64", "char", "string") + INTEGERS


class SchemaError(TypeError):
    """A Python type that has no shape (``int`` without a width, an unsupported annotation)."""


# --- shapes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """``unit``, ``bool``, ``f32``, ``f64``, ``char``, ``string`` or an integer type."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in LEAVES:
            raise SchemaError(f"unknown leaf shape {self.name!r}")


@dataclass(frozen=True)
class Option:
    inner: Shape


@dataclass(frozen=True)
class Seq:
    item: Shape


@dataclass(frozen=True)
class Array:
    item: Shape
    length: int


@dataclass(frozen=True)
class Tuple:
    items: tuple[Shape, ...]


@dataclass(frozen=True)
class Map:
    key: Shape
    value: Shape


@dataclass(frozen=True)
class Field:
    """A struct field: its wire name (after renames), its shape and the Python attribute."""

    name: str
    shape: Shape
    attr: Optional[str] = None

    @property
    def py_name(self) -> str:
        return self.attr if self.attr is not None else self.name


@dataclass(frozen=True)
class Struct:
    fields: tuple[Field, ...]
    cls: Optional[type] = dataclasses.field(default=None, compare=False)


@dataclass(frozen=True)
class Opaque:
    """A type with its own serde format, compared by name (``uuid``, ``json``, ...)."""

    name: str


@dataclass(frozen=True)
class Variant:
    """An enum variant: ``kind`` is ``unit``, ``newtype`` (payload: a shape), ``tuple``
    (payload: a tuple of shapes) or ``struct`` (payload: a tuple of fields)."""

    name: str
    kind: str = "unit"
    payload: Any = None


@dataclass(frozen=True)
class Enum:
    """An enum; ``tagging`` is ``("external",)``, ``("internal", tag)`` or
    ``("adjacent", tag, content)``. ``name`` (the Rust type's, for the schema registry) does not
    enter the fingerprint."""

    variants: tuple[Variant, ...]
    tagging: tuple[str, ...] = ("external",)
    name: str = dataclasses.field(default="", compare=False)


Shape = Union[Leaf, Option, Seq, Array, Tuple, Map, Struct, Opaque, Enum]

UNIT = Leaf("unit")
BOOL = Leaf("bool")
STRING = Leaf("string")
CHAR = Leaf("char")

# Annotation aliases: ``seq: U64``. The metadata is the shape; the base type is for type checkers.
I8 = Annotated[int, Leaf("i8")]
I16 = Annotated[int, Leaf("i16")]
I32 = Annotated[int, Leaf("i32")]
I64 = Annotated[int, Leaf("i64")]
I128 = Annotated[int, Leaf("i128")]
U8 = Annotated[int, Leaf("u8")]
U16 = Annotated[int, Leaf("u16")]
U32 = Annotated[int, Leaf("u32")]
U64 = Annotated[int, Leaf("u64")]
U128 = Annotated[int, Leaf("u128")]
F32 = Annotated[float, Leaf("f32")]
F64 = Annotated[float, Leaf("f64")]
Char = Annotated[str, CHAR]
Json = Annotated[Any, Opaque("json")]


def wire(name: str) -> dict[str, str]:
    """Field metadata for a renamed field: ``field(metadata=wire("host"))``."""
    return {"opsc_wire_name": name}


def shape_of(tp: Any) -> Shape:
    """The shape of a Python annotation (see the module documentation)."""
    if isinstance(tp, (Leaf, Option, Seq, Array, Tuple, Map, Struct, Opaque, Enum)):
        return tp
    origin = typing.get_origin(tp)
    if origin is Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, (Leaf, Option, Seq, Array, Tuple, Map, Struct, Opaque, Enum)):
                return meta
        return shape_of(tp.__origin__)
    if tp is str:
        return STRING
    if tp is bool:
        return BOOL
    if tp is None or tp is type(None):
        return UNIT
    if tp is uuid.UUID:
        return Opaque("uuid")
    if tp is int or tp is float:
        raise SchemaError(
            f"{tp.__name__} has no width: annotate with U64, I32, F64, ... from opsc_events"
        )
    if origin in (Union, types.UnionType):
        present = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(present) == 1 and len(typing.get_args(tp)) == 2:
            return Option(shape_of(present[0]))
        raise SchemaError(f"only Optional[T] unions have a shape, not {tp!r}")
    if origin in (list, set, frozenset):
        (item,) = typing.get_args(tp)
        return Seq(shape_of(item))
    if origin is dict:
        k, v = typing.get_args(tp)
        return Map(shape_of(k), shape_of(v))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return Seq(shape_of(args[0]))
        # Python 3.10 spells tuple[()] with the argument ().
        return Tuple(tuple(shape_of(a) for a in args if a != ()))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return struct_of(tp)
    raise SchemaError(f"no shape for {tp!r}")


def struct_of(cls: type) -> Struct:
    """The struct shape of a dataclass: its fields by wire name (``metadata=wire(...)``)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for f in dataclasses.fields(cls):
        name = f.metadata.get("opsc_wire_name", f.name)
        fields.append(Field(name, shape_of(hints[f.name]), f.name))
    return Struct(tuple(fields), cls)


# --- hashing ------------------------------------------------------------------------------


def _fnv(h: int, data: bytes) -> int:
    for b in data:
        h = ((h ^ b) * PRIME) & MASK
    return h


def _word(h: int, v: int) -> int:
    return _fnv(h, (v & MASK).to_bytes(8, "little"))


def _text(h: int, s: str) -> int:
    b = s.encode()
    return _fnv(_word(h, len(b)), b)


def _tag(t: str) -> int:
    return _text(OFFSET, t)


def mix(z: int) -> int:
    """The splitmix64 finalizer."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def _fields(fs: tuple[Field, ...]) -> int:
    total = 0
    for f in fs:
        total = (total + mix(_word(_text(_tag("field"), f.name), shape_hash(f.shape)))) & MASK
    return _word(_word(_tag("fields"), len(fs)), total)


def _tuple(items: tuple[Shape, ...]) -> int:
    h = _word(_tag("tuple"), len(items))
    for s in items:
        h = _word(h, shape_hash(s))
    return h


def _variant(v: Variant) -> int:
    h = _text(_tag("variant"), v.name)
    if v.kind == "unit":
        return _word(h, _tag("unit"))
    if v.kind == "newtype":
        return _word(_word(h, _tag("newtype")), shape_hash(v.payload))
    if v.kind == "tuple":
        return _word(_word(h, _tag("tuple_variant")), _tuple(tuple(v.payload)))
    if v.kind == "struct":
        return _word(_word(h, _tag("struct_variant")), _fields(tuple(v.payload)))
    raise SchemaError(f"unknown variant kind {v.kind!r}")


def shape_hash(s: Shape) -> int:
    """``H`` of docs/WIRE.md § Hashing."""
    if isinstance(s, Leaf):
        return _tag(s.name)
    if isinstance(s, Option):
        return _word(_tag("option"), shape_hash(s.inner))
    if isinstance(s, Seq):
        return _word(_tag("seq"), shape_hash(s.item))
    if isinstance(s, Array):
        return _word(_word(_tag("array"), shape_hash(s.item)), s.length)
    if isinstance(s, Tuple):
        return _tuple(s.items)
    if isinstance(s, Map):
        return _word(_word(_tag("map"), shape_hash(s.key)), shape_hash(s.value))
    if isinstance(s, Struct):
        return _word(_tag("struct"), _fields(s.fields))
    if isinstance(s, Opaque):
        return _text(_tag("opaque"), s.name)
    if isinstance(s, Enum):
        t = s.tagging
        if t[0] == "external":
            h = _tag("enum_external")
        elif t[0] == "internal":
            h = _text(_tag("enum_internal"), t[1])
        elif t[0] == "adjacent":
            h = _text(_text(_tag("enum_adjacent"), t[1]), t[2])
        else:
            raise SchemaError(f"unknown tagging {t!r}")
        total = 0
        for v in s.variants:
            total = (total + mix(_variant(v))) & MASK
        return _word(_word(h, len(s.variants)), total)
    raise SchemaError(f"not a shape: {s!r}")


def fingerprint(s: Any) -> int:
    """The schema fingerprint (``u64``) of a shape or of an annotation :func:`shape_of` takes."""
    return mix(shape_hash(shape_of(s)))


def fingerprint_hex(s: Any) -> str:
    """The fingerprint as 16 lowercase hex digits, as ``opsc schema`` shows it."""
    return f"{fingerprint(s):016x}"
