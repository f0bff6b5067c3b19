"""Entries: wire format v2 (one field ``<type>@<version>``, binary header + MessagePack payload),
and reading v1 (docs/WIRE.md § Entries (v2), § v1 entries, § Decoding rules and errors)."""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

from . import codec
from .errors import InvalidField, MissingField, NotMessagePack

FORMAT_V2 = 0x02
FLAG_CORRELATION = 0x01
FLAG_CAUSATION = 0x02
FLAG_HEADERS = 0x04

_VERSION = re.compile(rb"[1-9][0-9]{0,4}\Z")

FieldsLike = Union[Mapping[Any, Any], Iterable[tuple[Any, Any]]]


def uuid7(ms: Optional[int] = None) -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000 if ms is None else ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


@dataclass(frozen=True)
class Envelope:
    """One event entry, decoded up to (not including) its payload."""

    event_type: str
    version: int
    fingerprint: int
    event_id: uuid.UUID
    timestamp_ms: int
    service: str
    payload: bytes
    correlation_id: Optional[uuid.UUID] = None
    causation_id: Optional[uuid.UUID] = None
    headers: dict[str, str] = field(default_factory=dict)
    wire_version: int = 2

    @property
    def conversation(self) -> uuid.UUID:
        """The correlation id; the event id for the first event of a conversation."""
        return self.correlation_id if self.correlation_id is not None else self.event_id

    @property
    def field_name(self) -> str:
        return f"{self.event_type}@{self.version}"


def encode_v2(env: Envelope) -> tuple[bytes, bytes]:
    """The entry's one field, ``(name, value)``, exactly as the Rust publisher writes it."""
    if not env.event_type or "@" in env.event_type:
        raise ValueError(f"event type {env.event_type!r} is empty or contains '@'")
    if not 1 <= env.version <= 65535:
        raise ValueError(f"version {env.version} is not in 1..=65535")
    service = env.service.encode()
    if len(service) > 255:
        raise ValueError("the service name is longer than 255 bytes")
    flags = 0
    tail = bytearray()
    if env.correlation_id is not None and env.correlation_id != env.event_id:
        flags |= FLAG_CORRELATION
        tail += env.correlation_id.bytes
    if env.causation_id is not None:
        flags |= FLAG_CAUSATION
        tail += env.causation_id.bytes
    if env.headers:
        flags |= FLAG_HEADERS
        h = codec.pack({str(k): str(v) for k, v in env.headers.items()})
        tail += len(h).to_bytes(4, "big") + h
    header = (
        bytes([flags])
        + (env.fingerprint & ((1 << 64) - 1)).to_bytes(8, "big")
        + env.event_id.bytes
        + env.timestamp_ms.to_bytes(8, "big")
        + bytes([len(service)])
        + service
        + bytes(tail)
    )
    value = bytes([FORMAT_V2]) + len(header).to_bytes(4, "big") + header + env.payload
    return env.field_name.encode(), value


def _pairs(fields: FieldsLike) -> list[tuple[bytes, bytes]]:
    items = fields.items() if isinstance(fields, Mapping) else fields
    out = []
    for k, v in items:
        out.append((k.encode() if isinstance(k, str) else bytes(k), v.encode() if isinstance(v, str) else bytes(v)))
    return out


def peek_type(fields: FieldsLike) -> Optional[str]:
    """The event type of an entry without parsing anything else; ``None`` when the entry has no
    single event type (no event field, two ``@`` fields, two ``event_type`` fields).

    A consumer compares this with its type first and skips entries of other types; an entry
    without a type is decoded (and dead-lettered as ``decode_error``), as in Rust."""
    pairs = _pairs(fields)
    named = [k for k, _ in pairs if b"@" in k]
    if len(named) == 1:
        return named[0].split(b"@", 1)[0].decode(errors="replace")
    if named:
        return None
    v1 = [v for k, v in pairs if k == b"event_type"]
    return v1[0].decode(errors="replace") if len(v1) == 1 else None


def decode(fields: FieldsLike) -> Envelope:
    """An entry's envelope, v2 or v1; raises a :class:`DecodeError` subclass."""
    pairs = _pairs(fields)
    named = [(k, v) for k, v in pairs if b"@" in k]
    if len(named) > 1:
        names = " and ".join(repr(k.decode(errors="replace")) for k, _ in named)
        raise InvalidField(named[0][0].decode(errors="replace"), f"two event fields: {names}")
    if named:
        return _decode_v2(*named[0])
    if any(k == b"event_type" for k, _ in pairs):
        return _decode_v1(pairs)
    raise MissingField("event_type")


def _decode_v2(name: bytes, value: bytes) -> Envelope:
    fname = name.decode(errors="replace")
    type_b, _, ver_b = name.partition(b"@")
    try:
        event_type = type_b.decode()
    except UnicodeDecodeError:
        raise InvalidField(fname, "the event type is not UTF-8") from None
    if not event_type or not _VERSION.match(ver_b) or int(ver_b) > 65535:
        raise InvalidField(fname, "the name is not <event_type>@<version> (version 1..=65535)")
    version = int(ver_b)
    if not value:
        raise InvalidField(fname, "empty value")
    if value[0] != FORMAT_V2:
        raise InvalidField(fname, f"format byte 0x{value[0]:02x}, expected 0x02")
    if len(value) < 5:
        raise InvalidField("header", "truncated: the header length needs 4 bytes")
    hlen = int.from_bytes(value[1:5], "big")
    if 5 + hlen > len(value):
        raise InvalidField("header", f"header length {hlen} is past the end of the value")
    header = value[5 : 5 + hlen]
    payload = value[5 + hlen :]
    pos = 0

    def take(n: int, what: str) -> bytes:
        nonlocal pos
        if pos + n > len(header):
            raise InvalidField(
                "header",
                f"truncated: {what} needs {n} bytes at header offset {pos}, the header has {len(header)}",
            )
        b = header[pos : pos + n]
        pos += n
        return b

    flags = take(1, "flags")[0]
    fp = int.from_bytes(take(8, "fingerprint"), "big")
    event_id = uuid.UUID(bytes=take(16, "event id"))
    ts = int.from_bytes(take(8, "timestamp"), "big")
    slen = take(1, "service length")[0]
    try:
        service = take(slen, "service").decode()
    except UnicodeDecodeError:
        raise InvalidField("service", "not UTF-8") from None
    corr = uuid.UUID(bytes=take(16, "correlation id")) if flags & FLAG_CORRELATION else None
    cause = uuid.UUID(bytes=take(16, "causation id")) if flags & FLAG_CAUSATION else None
    headers: dict[str, str] = {}
    if flags & FLAG_HEADERS:
        hl = int.from_bytes(take(4, "headers length"), "big")
        headers = _headers(take(hl, "headers"))
    return Envelope(
        event_type, version, fp, event_id, ts, service, bytes(payload), corr, cause, headers, 2
    )


def _headers(data: bytes) -> dict[str, str]:
    try:
        obj = codec.unpack(data)
    except ValueError as e:
        raise NotMessagePack("headers", str(e)) from None
    if not isinstance(obj, dict):
        raise NotMessagePack("headers", "not a map")
    out: dict[str, str] = {}
    for k, v in obj.items():
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            raise NotMessagePack("headers", "a key or value is not a string")
        try:
            out[k.decode()] = v.decode()
        except UnicodeDecodeError:
            raise NotMessagePack("headers", "a key or value is not UTF-8") from None
    return out


_V1_FIELDS = (
    b"event_type", b"version", b"schema", b"event_id", b"service", b"timestamp",
    b"correlation_id", b"causation_id", b"headers", b"data",
)  # fmt: skip


def _uuid_text(field: str, raw: bytes) -> uuid.UUID:
    s = raw.decode(errors="replace")
    body = s
    if len(s) == 38 and s[0] == "{" and s[-1] == "}":
        body = s[1:-1]
    elif len(s) == 45 and s.startswith("urn:uuid:"):
        body = s[9:]
    ok = (len(body) == 36 and all(body[i] == "-" for i in (8, 13, 18, 23))) or (
        len(s) == 32 and body == s
    )
    hexpart = body.replace("-", "") if len(body) == 36 else body
    if not ok or len(hexpart) != 32 or not all(c in "0123456789abcdefABCDEF" for c in hexpart):
        raise InvalidField(field, f"not a UUID: {raw[:64]!r}")
    return uuid.UUID(hex=hexpart)


def _decode_v1(pairs: list[tuple[bytes, bytes]]) -> Envelope:
    seen: dict[bytes, bytes] = {}
    for k, v in pairs:
        if k in _V1_FIELDS:
            if k in seen:
                raise InvalidField(k.decode(), "the field appears twice")
            seen[k] = v

    def req(name: bytes) -> bytes:
        if name not in seen:
            raise MissingField(name.decode())
        return seen[name]

    def text(name: bytes) -> str:
        try:
            return req(name).decode()
        except UnicodeDecodeError:
            raise InvalidField(name.decode(), "not UTF-8") from None

    def digits(name: bytes, limit: int) -> int:
        raw = req(name)
        if not raw or not raw.isdigit() or int(raw) > limit:
            raise InvalidField(name.decode(), f"not a number in range: {raw[:64]!r}")
        return int(raw)

    event_type = text(b"event_type")
    version = digits(b"version", 65535)
    if version == 0:
        raise InvalidField("version", "version 0")
    schema = req(b"schema")
    if len(schema) != 16 or not all(c in b"0123456789abcdefABCDEF" for c in schema):
        raise InvalidField("schema", f"not 16 hex digits: {schema[:64]!r}")
    event_id = _uuid_text("event_id", req(b"event_id"))
    service = text(b"service")
    ts = digits(b"timestamp", 2**64 - 1)
    corr = _uuid_text("correlation_id", req(b"correlation_id"))
    cause = _uuid_text("causation_id", seen[b"causation_id"]) if b"causation_id" in seen else None
    headers = _headers(seen[b"headers"]) if b"headers" in seen else {}
    data = req(b"data")
    return Envelope(
        event_type, version, int(schema, 16), event_id, ts, service, data, corr, cause, headers, 1
    )
