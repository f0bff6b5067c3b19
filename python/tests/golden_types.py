"""The golden event types of tests/fingerprint.rs, written with the Python client's API. Their
fingerprints must equal tests/golden/fingerprints.txt (test_fingerprint.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

from opsc_events import (
    F64,
    I16,
    I32,
    I64,
    I128,
    STRING,
    U8,
    U16,
    U32,
    U64,
    U128,
    Array,
    Char,
    Enum,
    F32,
    Field,
    I8,
    Json,
    Leaf,
    Option,
    Struct,
    Tagged,
    Variant,
    event,
    wire_name,
)


@event(stream="golden", name="primitives", version=1)
@dataclass
class Primitives:
    unit: None
    flag: bool
    i8: I8
    i16: I16
    i32: I32
    i64: I64
    i128: I128
    u8: U8
    u16: U16
    u32: U32
    u64: U64
    u128: U128
    f32: F32
    f64: F64
    ch: Char


@event(stream="golden", name="strings", version=3)
@dataclass
class Strings:
    owned: str
    boxed: str
    maybe: Optional[str]
    list: list[str]
    path: str


@event(stream="golden", name="containers", version=1)
@dataclass
class Containers:
    opt: Optional[U32]
    # Option<Option<u32>>: typing collapses Optional[Optional[T]], so the shape is spelled out.
    opt_opt: Annotated[Optional[int], Option(Option(Leaf("u32")))]
    seq: list[U64]
    deque: list[I16]
    set: set[str]
    nested: list[Optional[list[U8]]]
    array: Annotated[list[int], Array(Leaf("u8"), 4)]
    pair: tuple[U8, str]
    triple: tuple[bool, I64, Optional[F64]]
    boxed: U16


@event(stream="golden", name="maps", version=1)
@dataclass
class Maps:
    counts: dict[str, U64]
    tags: dict[str, list[str]]
    by_char: dict[Char, bool]
    nested: dict[str, dict[str, I32]]


@dataclass
class Address:
    street: str
    zip: Optional[U32]


@dataclass
class Person:
    name: str
    address: Address
    previous: list[Address]


@dataclass
class Duration:
    secs: U64
    nanos: U32


Meters = F64  # a newtype struct is its inner type
Point = tuple[I32, I32]  # a tuple struct
Marker = tuple[()]  # a unit struct is the empty tuple


@event(stream="golden", name="nested", version=2)
@dataclass
class Nested:
    owner: Person
    contacts: dict[str, Person]
    distance: Meters
    at: Point
    marker: Marker
    timeout: Duration


U8_, U32_, U64_ = Leaf("u8"), Leaf("u32"), Leaf("u64")

EXTERNAL = Enum(
    (
        Variant("Unit"),
        Variant("Newtype", "newtype", U32_),
        Variant("Tuple", "tuple", (U8_, STRING)),
        Variant("Struct", "struct", (Field("id", U64_), Field("label", Option(STRING)))),
    )
)
INTERNAL = Enum(
    (
        Variant("Unit"),
        Variant("Newtype", "newtype", Struct((Field("value", Leaf("i64")),))),
        Variant("Struct", "struct", (Field("id", U64_),)),
    ),
    ("internal", "type"),
)
ADJACENT = Enum(
    (
        Variant("Unit"),
        Variant("Newtype", "newtype", U32_),
        Variant("Tuple", "tuple", (U8_, STRING)),
        Variant("Struct", "struct", (Field("id", U64_),)),
    ),
    ("adjacent", "t", "c"),
)


@event(stream="golden", name="enums", version=1)
@dataclass
class Enums:
    external: Annotated[Tagged, EXTERNAL]
    internal: Annotated[Tagged, INTERNAL]
    adjacent: Annotated[Tagged, ADJACENT]
    many: list[Annotated[Tagged, EXTERNAL]]
    maybe: Optional[Annotated[Tagged, ADJACENT]]


# rename_all = "SCREAMING_SNAKE_CASE" on variants, rename_all_fields = "camelCase", a variant
# renamed "gone", a variant with its own rename_all = "kebab-case": wire names are what count.
STATUS = Enum(
    (
        Variant("UP"),
        Variant(
            "DEGRADED", "struct", (Field("sinceMs", U64_), Field("errorRate", Leaf("f32")))
        ),
        Variant("gone"),
        Variant("MAINTENANCE", "struct", (Field("window-start", U64_),)),
    )
)


@event(stream="golden", name="renames", version=1)
@dataclass
class Renames:
    asset_id: U64 = field(metadata=wire_name("assetId"))
    hostname: str = field(metadata=wire_name("host"))
    status: Annotated[Tagged, STATUS] = Tagged("UP")
    type: str = ""


@event(stream="golden", name="ids_and_json", version=1)
@dataclass
class IdsAndJson:
    id: uuid.UUID
    parent: Optional[uuid.UUID]
    children: list[uuid.UUID]
    extra: Json
    attrs: dict[str, Json]


@event(stream="golden", name="skips_and_defaults", version=1)
@dataclass
class SkipsAndDefaults:
    kept: U32
    defaulted: list[str]
    sparse: Optional[U8]
    kind: Annotated[Tagged, Enum((Variant("Kept"),))]  # the skipped variant is left out


@event(stream="golden", name="upcast", version=1)
@dataclass
class UpcastV1:
    id: U64


@event(stream="golden", name="upcast", version=2)
@dataclass
class UpcastV2:
    id: U64
    note: Optional[str] = None


@event(stream="golden", name="empty", version=1)
@dataclass
class Empty:
    pass


ALL: list[Any] = [
    Primitives, Strings, Containers, Maps, Nested, Enums, Renames, IdsAndJson,
    SkipsAndDefaults, UpcastV1, UpcastV2, Empty,
]  # fmt: skip

