"""The schema registry, ``<prefix>:{schemas}:registry`` (docs/CONTRACTS.md § The schema
registry): one hash field per event type a service publishes and per handler, its value a JSON
object. Rust runtimes record themselves at ``build()``; a Python :class:`~opsc_events.Publisher`
records a producer entry the first time it publishes a type, a :class:`~opsc_events.Consumer`
its consumer entry when it creates its group — the same fields and values as Rust writes."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Literal, Optional, Sequence

import redis

from .events import EventType
from .schema import Array, Enum, Field, Leaf, Map, Opaque, Option, Seq, Shape, Struct, Tuple

log = logging.getLogger("opsc_events")

Role = Literal["producer", "consumer"]
_ROLES: tuple[Role, ...] = ("producer", "consumer")


def registry_key(prefix: str) -> str:
    """``<prefix>:{schemas}:registry``."""
    return f"{prefix}:{{schemas}}:registry"


def _hex(fp: int) -> str:
    return f"{fp:016x}"


def _parse_hex(v: Any, what: str) -> int:
    if not isinstance(v, str) or len(v) != 16:
        raise ValueError(f"{what} {v!r} is not 16 hex digits")
    try:
        return int(v, 16)
    except ValueError:
        raise ValueError(f"{what} {v!r} is not 16 hex digits") from None


def _int(obj: dict[str, Any], key: str, top: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= top:
        raise ValueError(f"`{key}` is not an integer in 0..={top}: {v!r}")
    return v


def _str(obj: dict[str, Any], key: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        raise ValueError(f"`{key}` is not a string: {v!r}")
    return v


@dataclass(frozen=True)
class Readable:
    """A ``(version, fingerprint)`` a consumer decodes."""

    version: int
    fingerprint: int

    @property
    def fingerprint_hex(self) -> str:
        return _hex(self.fingerprint)


@dataclass(frozen=True)
class HandlerPolicy:
    """The delivery policy of a consumer entry's handler."""

    handler: str
    group: str
    retries: int
    dead_letter: bool
    concurrency: int
    timeout_ms: int


@dataclass(frozen=True)
class RegistryEntry:
    """One field of the registry: an event type as one service writes or reads it."""

    service: str
    role: Role
    stream: str
    name: str
    version: int
    fingerprint: int
    shape: Any
    """The payload's shape in its JSON form (:func:`shape_json`)."""
    reads: tuple[Readable, ...] = ()
    handler: Optional[HandlerPolicy] = None
    last_seen_ms: int = 0

    @property
    def fingerprint_hex(self) -> str:
        return _hex(self.fingerprint)

    @property
    def field(self) -> str:
        """The hash field: ``producer|<service>|<name>|<version>|<fingerprint>`` or
        ``consumer|<service>|<group>|<name>|<version>|<fingerprint>``."""
        if self.handler is not None:
            return (
                f"consumer|{self.service}|{self.handler.group}|{self.name}|{self.version}|"
                f"{self.fingerprint_hex}"
            )
        return f"{self.role}|{self.service}|{self.name}|{self.version}|{self.fingerprint_hex}"

    def can_read(self, version: int, fingerprint: int) -> bool:
        """Whether a consumer entry decodes ``(version, fingerprint)``."""
        return any(r.version == version and r.fingerprint == fingerprint for r in self.reads)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of the field's value, with Rust's keys in Rust's order."""
        out: dict[str, Any] = {
            "service": self.service,
            "role": self.role,
            "stream": self.stream,
            "name": self.name,
            "version": self.version,
            "fingerprint": self.fingerprint_hex,
            "shape": self.shape,
            "reads": [{"version": r.version, "fingerprint": r.fingerprint_hex} for r in self.reads],
        }
        if self.handler is not None:
            h = self.handler
            out["handler"] = {
                "handler": h.handler, "group": h.group, "retries": h.retries,
                "dead_letter": h.dead_letter, "concurrency": h.concurrency,
                "timeout_ms": h.timeout_ms,
            }  # fmt: skip
        out["last_seen_ms"] = self.last_seen_ms
        return out

    def dumps(self) -> str:
        """The field's value as stored (compact JSON; the shape's keys sorted, as Rust writes)."""
        value = self.to_json()
        value["shape"] = json.loads(json.dumps(self.shape, sort_keys=True))
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, value: Any) -> RegistryEntry:
        """An entry from the field's value (a JSON object; unknown keys are ignored). Raises
        :class:`ValueError` naming what is wrong."""
        if not isinstance(value, dict):
            raise ValueError(f"not a JSON object: {value!r}")
        role = value.get("role")
        if role not in _ROLES:
            raise ValueError(f"`role` is not producer or consumer: {role!r}")
        if "shape" not in value:
            raise ValueError("`shape` is missing")
        reads = []
        raw_reads = value.get("reads", [])
        if not isinstance(raw_reads, list):
            raise ValueError(f"`reads` is not a list: {raw_reads!r}")
        for r in raw_reads:
            if not isinstance(r, dict):
                raise ValueError(f"a `reads` item is not an object: {r!r}")
            reads.append(
                Readable(_int(r, "version", 65535), _parse_hex(r.get("fingerprint"), "fingerprint"))
            )
        handler = None
        raw = value.get("handler")
        if raw is not None:
            if not isinstance(raw, dict):
                raise ValueError(f"`handler` is not an object: {raw!r}")
            dead_letter = raw.get("dead_letter")
            if not isinstance(dead_letter, bool):
                raise ValueError(f"`dead_letter` is not a boolean: {dead_letter!r}")
            handler = HandlerPolicy(
                _str(raw, "handler"), _str(raw, "group"), _int(raw, "retries", 2**32 - 1),
                dead_letter, _int(raw, "concurrency", 2**32 - 1),
                _int(raw, "timeout_ms", 2**64 - 1),
            )  # fmt: skip
        return cls(
            service=_str(value, "service"),
            role=role,
            stream=_str(value, "stream"),
            name=_str(value, "name"),
            version=_int(value, "version", 65535),
            fingerprint=_parse_hex(value.get("fingerprint"), "fingerprint"),
            shape=value["shape"],
            reads=tuple(reads),
            handler=handler,
            last_seen_ms=_int(value, "last_seen_ms", 2**64 - 1),
        )

    @classmethod
    def producer(cls, event_type: EventType, service: str, *, now_ms: int = 0) -> RegistryEntry:
        """The producer entry of ``service`` publishing ``event_type``."""
        et = event_type
        return cls(
            service, "producer", et.stream, et.name, et.version, et.fingerprint,
            shape_json(et.shape), (), None, now_ms,
        )  # fmt: skip

    @classmethod
    def consumer(
        cls,
        event_type: EventType,
        service: str,
        handler: HandlerPolicy,
        *,
        older: Sequence[EventType] = (),
        now_ms: int = 0,
    ) -> RegistryEntry:
        """The consumer entry of a handler of ``event_type`` that also reads the ``older``
        versions (by upcasting); ``reads`` lists its own version first, then those, newest
        first."""
        et = event_type
        reads = [Readable(et.version, et.fingerprint)]
        reads += [
            Readable(o.version, o.fingerprint) for o in sorted(older, key=lambda o: -o.version)
        ]
        return cls(
            service, "consumer", et.stream, et.name, et.version, et.fingerprint,
            shape_json(et.shape), tuple(reads), handler, now_ms,
        )  # fmt: skip


@dataclass(frozen=True)
class Unreadable:
    """A registry field whose value is not a valid entry."""

    field: str
    reason: str


def _sort_key(e: RegistryEntry) -> tuple[str, int, str, int, str]:
    return (e.name, _ROLES.index(e.role), e.service, e.version, e.field)


def read_registry(
    client: redis.Redis, *, prefix: str = "opsconductor"
) -> tuple[list[RegistryEntry], list[Unreadable]]:
    """Every entry of the registry, sorted by event name, role (producers first), service and
    version as ``opsc schema registry`` lists them, and the fields that are not valid entries
    (reported, never raised)."""
    raw: Any = client.hgetall(registry_key(prefix))
    entries: list[RegistryEntry] = []
    bad: list[Unreadable] = []
    for k, v in raw.items():
        name = k.decode(errors="replace") if isinstance(k, bytes) else str(k)
        try:
            text = v.decode() if isinstance(v, bytes) else str(v)
            entries.append(RegistryEntry.from_json(json.loads(text)))
        except (ValueError, UnicodeDecodeError) as e:
            bad.append(Unreadable(name, str(e)))
    entries.sort(key=_sort_key)
    bad.sort(key=lambda u: u.field)
    return entries, bad


def registry(client: redis.Redis, *, prefix: str = "opsconductor") -> list[RegistryEntry]:
    """Every valid entry of the registry (see :func:`read_registry`, which also returns the
    unreadable fields)."""
    return read_registry(client, prefix=prefix)[0]


def record(
    client: redis.Redis, entries: Sequence[RegistryEntry], *, prefix: str = "opsconductor"
) -> bool:
    """Writes ``entries`` with one ``HSET``. A registry that cannot be written (an ACL without
    the key, a lost connection) is logged and ``False`` is returned: like the Rust runtime's, the
    registry informs, it never gates delivery."""
    if not entries:
        return True
    mapping: dict[Any, Any] = {e.field: e.dumps() for e in entries}
    try:
        client.hset(registry_key(prefix), mapping=mapping)
    except redis.RedisError as e:
        log.warning("the schema registry %s could not be written: %s", registry_key(prefix), e)
        return False
    return True


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- shapes in their JSON form ----------------------------------------------------------


def _fields_json(fields: Sequence[Field]) -> list[dict[str, Any]]:
    return [{"name": f.name, "optional": False, "shape": shape_json(f.shape)} for f in fields]


def shape_json(shape: Shape) -> dict[str, Any]:
    """The JSON form of a shape, as the registry and the lock file hold it (docs/CONTRACTS.md
    § Key layout, *Shape JSON*). A struct is named after its dataclass, an enum by its ``name``;
    names do not enter the fingerprint. Python fields are never ``optional``: the client always
    writes every field."""
    if isinstance(shape, Leaf):
        return {"type": shape.name}
    if isinstance(shape, Option):
        return {"type": "option", "of": shape_json(shape.inner)}
    if isinstance(shape, Seq):
        return {"type": "seq", "of": shape_json(shape.item)}
    if isinstance(shape, Array):
        return {"type": "array", "of": shape_json(shape.item), "len": shape.length}
    if isinstance(shape, Tuple):
        return {"type": "tuple", "items": [shape_json(s) for s in shape.items]}
    if isinstance(shape, Map):
        return {"type": "map", "key": shape_json(shape.key), "value": shape_json(shape.value)}
    if isinstance(shape, Struct):
        name = shape.cls.__name__ if shape.cls is not None else ""
        return {"type": "struct", "name": name, "fields": _fields_json(shape.fields)}
    if isinstance(shape, Opaque):
        return {"type": "opaque", "name": shape.name}
    if isinstance(shape, Enum):
        t = shape.tagging
        if t[0] == "internal":
            tagging: dict[str, Any] = {"kind": "internal", "tag": t[1]}
        elif t[0] == "adjacent":
            tagging = {"kind": "adjacent", "tag": t[1], "content": t[2]}
        else:
            tagging = {"kind": "external"}
        variants: list[dict[str, Any]] = []
        for v in shape.variants:
            if v.kind == "newtype":
                variants.append({"name": v.name, "kind": "newtype", "of": shape_json(v.payload)})
            elif v.kind == "tuple":
                items = [shape_json(s) for s in v.payload]
                variants.append({"name": v.name, "kind": "tuple", "items": items})
            elif v.kind == "struct":
                fields = _fields_json(tuple(v.payload))
                variants.append({"name": v.name, "kind": "struct", "fields": fields})
            else:
                variants.append({"name": v.name, "kind": "unit"})
        return {"type": "enum", "name": shape.name, "tagging": tagging, "variants": variants}
    raise TypeError(f"not a shape: {shape!r}")
