"""v2 entries against tests/golden/wire_v2.txt, the payload conventions of WIRE.md and the
decoder's typed errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from conftest import golden_blocks
from golden_types import ADJACENT, EXTERNAL, INTERNAL, Enums, Primitives
from opsc_events import (
    DataMismatch,
    EncodeError,
    Envelope,
    InvalidField,
    MissingField,
    NotMessagePack,
    Publisher,
    Tagged,
    U64,
    decode_entry,
    encode_v2,
    event,
    event_type_of,
)
from opsc_events.codec import from_wire, pack, to_wire, unpack


@event(stream="assets", name="asset_created", version=1)
@dataclass
class AssetCreated:
    asset_id: U64
    hostname: str
    tags: list[str]


SAMPLE = AssetCreated(asset_id=7, hostname="db-1", tags=["prod"])
BLOCKS = golden_blocks()


def hx(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


def parse_headers(s: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in s.split(",")) if s else {}


def opt_uuid(s: str) -> "uuid.UUID | None":
    return uuid.UUID(s) if s else None


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_golden_entries_decode(block: str) -> None:
    g = BLOCKS[block]
    env = decode_entry([(g["field"].encode(), hx(g["value"]))])
    assert env.event_type == g["event_type"]
    assert env.version == int(g["version"])
    assert f"{env.fingerprint:016x}" == g["fingerprint"]
    assert str(env.event_id) == g["event_id"]
    assert env.service == g["service"]
    assert env.timestamp_ms == int(g["timestamp_ms"])
    assert str(env.conversation) == g["correlation_id"]
    assert env.causation_id == opt_uuid(g["causation_id"])
    assert env.headers == parse_headers(g["headers"])
    assert env.payload == hx(g["payload"])
    assert event_type_of(AssetCreated).decode_payload(env.payload) == SAMPLE


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_golden_entries_encode_byte_for_byte(block: str) -> None:
    g = BLOCKS[block]
    publisher = Publisher(None, g["service"])  # type: ignore[arg-type]  # entry() sends nothing
    et, name, value = publisher.entry(
        SAMPLE,
        event_id=uuid.UUID(g["event_id"]),
        correlation_id=uuid.UUID(g["correlation_id"]),
        causation_id=opt_uuid(g["causation_id"]),
        headers=parse_headers(g["headers"]),
        timestamp_ms=int(g["timestamp_ms"]),
    )
    assert et.fingerprint_hex == g["fingerprint"]
    assert name.decode() == g["field"]
    assert value.hex(" ") == g["value"]


def test_payload_conventions() -> None:
    # Smallest integer encodings, u128 as bin 16, f32 as float 32, unit as nil.
    p = Primitives(
        unit=None, flag=True, i8=-4, i16=300, i32=-70000, i64=-(2**40), i128=-1, u8=255,
        u16=65535, u32=2**32 - 1, u64=2**64 - 1, u128=1, f32=0.5, f64=1.5, ch="é",
    )  # fmt: skip
    et = event_type_of(Primitives)
    data = et.encode_payload(p)
    obj = unpack(data)
    assert obj[b"i8"] == -4 and pack(-4) == b"\xfc"
    assert pack(7) == b"\x07"
    assert data.count(b"\xc4\x10" + b"\x00" * 15 + b"\x01") == 1  # u128 1
    assert b"\xc4\x10" + b"\xff" * 16 in data  # i128 -1, two's complement
    assert b"\xca\x3f\x00\x00\x00" in data  # f32 0.5
    assert b"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00" in data  # f64 1.5
    assert et.decode_payload(data) == p


def test_enum_forms_match_wire_md() -> None:
    e = Enums(
        external=Tagged("Struct", {"id": 1, "label": None}),
        internal=Tagged("Struct", {"id": 2}),
        adjacent=Tagged("Tuple", (3, "y")),
        many=[Tagged("Unit"), Tagged("Newtype", 4), Tagged("Tuple", (5, "z"))],
        maybe=Tagged("Unit"),
    )
    et = event_type_of(Enums)
    obj = unpack(et.encode_payload(e))
    assert obj == {
        b"external": {b"Struct": {b"id": 1, b"label": None}},
        b"internal": {b"type": b"Struct", b"id": 2},
        b"adjacent": {b"t": b"Tuple", b"c": [3, b"y"]},
        b"many": [b"Unit", {b"Newtype": 4}, {b"Tuple": [5, b"z"]}],
        b"maybe": {b"t": b"Unit"},
    }
    assert et.decode_payload(et.encode_payload(e)) == e
    newtype = to_wire(Tagged("Newtype", {"value": -1}), INTERNAL)
    assert newtype == {"type": "Newtype", "value": -1}
    assert from_wire(unpack(pack(newtype)), INTERNAL) == Tagged("Newtype", {"value": -1})
    assert to_wire(Tagged("Newtype", 9), ADJACENT) == {"t": "Newtype", "c": 9}
    assert to_wire("Unit", EXTERNAL) == "Unit"


def test_bad_values_raise_encode_error() -> None:
    et = event_type_of(AssetCreated)
    with pytest.raises(EncodeError, match="out of range"):
        et.encode_payload(AssetCreated(asset_id=-1, hostname="x", tags=[]))
    with pytest.raises(EncodeError, match="expected str"):
        et.encode_payload(AssetCreated(asset_id=1, hostname=3, tags=[]))  # type: ignore[arg-type]


def minimal() -> tuple[bytes, bytes]:
    g = BLOCKS["minimal"]
    return g["field"].encode(), hx(g["value"])


def test_decode_errors_are_typed() -> None:
    name, value = minimal()
    cases = [
        ([(b"asset_created@01", value)], InvalidField),
        ([(b"asset_created@70000", value)], InvalidField),
        ([(name, b"")], InvalidField),
        ([(name, b"\x03" + value[1:])], InvalidField),
        ([(name, value[:1] + b"\x00\x00\xff\xff" + value[5:])], InvalidField),
        ([(name, value[:5] + b"\x07" + value[6:])], InvalidField),  # flags announce missing parts
        ([(name, value), (b"other@1", value)], InvalidField),
        ([(b"data", b"x")], MissingField),
    ]
    for fields, error in cases:
        with pytest.raises(error) as info:
            decode_entry(fields)
        assert info.value.reason == "decode_error"
    env = decode_entry([(name, value)])
    et = event_type_of(AssetCreated)
    with pytest.raises(NotMessagePack):
        et.decode_payload(env.payload + b"\x00")
    with pytest.raises(NotMessagePack):
        et.decode_payload(b"\xc1")
    with pytest.raises(DataMismatch):
        et.decode_payload(pack({"asset_id": "seven", "hostname": "h", "tags": []}))
    with pytest.raises(DataMismatch, match="missing field"):
        et.decode_payload(pack({"asset_id": 1}))
    # 128 nested arrays are MessagePack (that does not fit the type), 129 are not.
    with pytest.raises(DataMismatch):
        et.decode_payload(b"\x91" * 128 + b"\x00")
    with pytest.raises(NotMessagePack, match="depth"):
        et.decode_payload(b"\x91" * 129 + b"\x00")


def test_v1_entries_are_read() -> None:
    fields = [
        (b"event_type", b"asset_created"), (b"version", b"1"), (b"schema", b"706876dfd3739d5d"),
        (b"event_id", b"0193717c-4a2b-7c3d-8e4f-5a6b7c8d9e0f"), (b"service", b"inventory"),
        (b"timestamp", b"1732809600000"),
        (b"correlation_id", b"0193717c-4a00-7000-8000-000000000001"),
        (b"causation_id", b"0193717c-4a00-7000-8000-000000000002"),
        (b"headers", hx("81 ab") + b"traceparent" + b"\xa1x"),
        (b"data", hx(BLOCKS["minimal"]["payload"])),
    ]  # fmt: skip
    env = decode_entry(fields)
    assert env.wire_version == 1
    assert (env.event_type, env.version, f"{env.fingerprint:016x}") == ("asset_created", 1, "706876dfd3739d5d")
    assert str(env.conversation) == "0193717c-4a00-7000-8000-000000000001"
    assert env.headers == {"traceparent": "x"}
    assert event_type_of(AssetCreated).decode_payload(env.payload) == SAMPLE
    with pytest.raises(InvalidField, match="twice"):
        decode_entry(fields + [(b"version", b"1")])


def test_round_trip_through_encode_v2() -> None:
    env = Envelope("t", 3, 42, uuid.uuid4(), 5, "svc", b"\x80")
    assert decode_entry([encode_v2(env)]) == env
