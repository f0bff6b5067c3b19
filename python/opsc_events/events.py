"""Event types: ``@event(stream=..., name=..., version=...)`` on a dataclass."""

from __future__ import annotations

import re
from dataclasses import dataclass, is_dataclass
from typing import Any, Callable, Optional, TypeVar

from . import codec
from .errors import DataMismatch, NotMessagePack
from .schema import SchemaError, Shape, Struct, fingerprint, shape_of

STREAM_NAME = re.compile(r"[a-z0-9_-]{1,64}\Z")
EVENT_NAME = re.compile(r"[a-z0-9_.-]{1,128}\Z")

T = TypeVar("T")


def snake_case(name: str) -> str:
    """serde's rule: an underscore before every upper-case letter but the first, then lower."""
    out = []
    for i, ch in enumerate(name):
        if i > 0 and ch.isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


@dataclass(frozen=True)
class EventType:
    """What the Rust derive knows of an event: stream, name, version, shape and fingerprint."""

    stream: str
    name: str
    version: int
    shape: Shape
    fingerprint: int
    cls: Optional[type] = None

    @property
    def field_name(self) -> str:
        """The v2 field name, ``<name>@<version>``."""
        return f"{self.name}@{self.version}"

    @property
    def fingerprint_hex(self) -> str:
        return f"{self.fingerprint:016x}"

    def encode_payload(self, value: Any) -> bytes:
        """The MessagePack payload of ``value`` (raises :class:`EncodeError`)."""
        return codec.pack(codec.to_wire(value, self.shape))

    def decode_payload(self, payload: bytes) -> Any:
        """The value of a payload (``NotMessagePack`` or ``DataMismatch`` when it is not one)."""
        try:
            obj = codec.unpack(payload)
        except ValueError as e:
            raise NotMessagePack("data", str(e)) from None
        try:
            return codec.from_wire(obj, self.shape)
        except (codec.Mismatch, TypeError, ValueError) as e:
            raise DataMismatch(self.name, self.version, str(e)) from None


def event_type(
    shape: Any, *, stream: str, name: str, version: int = 1, cls: Optional[type] = None
) -> EventType:
    """An event type from a shape (or an annotation), checked as the Rust macro checks it."""
    if not STREAM_NAME.match(stream):
        raise SchemaError(f"stream {stream!r} breaks [a-z0-9_-]{{1,64}}")
    if not EVENT_NAME.match(name):
        raise SchemaError(f"event name {name!r} breaks [a-z0-9_.-]{{1,128}}")
    if not 1 <= version <= 65535:
        raise SchemaError(f"version {version} is not in 1..=65535")
    s = shape_of(shape)
    return EventType(stream, name, version, s, fingerprint(s), cls)


def event(
    *, stream: str, name: Optional[str] = None, version: int = 1
) -> Callable[[type[T]], type[T]]:
    """Class decorator for a dataclass: ``@event(stream="assets", name="asset_created")``.

    The class gets ``__opsc_event__``, an :class:`EventType`; :func:`event_type_of` returns it.
    """

    def wrap(cls: type[T]) -> type[T]:
        if not is_dataclass(cls):
            raise SchemaError(f"{cls.__name__} must be a dataclass (apply @dataclass first)")
        s = shape_of(cls)
        assert isinstance(s, Struct)
        et = event_type(
            s, stream=stream, name=name or snake_case(cls.__name__), version=version, cls=cls
        )
        setattr(cls, "__opsc_event__", et)
        return cls

    return wrap


def event_type_of(obj: Any) -> EventType:
    """The :class:`EventType` of an event class, an instance of one, or an ``EventType``."""
    if isinstance(obj, EventType):
        return obj
    et = getattr(obj, "__opsc_event__", None)
    if not isinstance(et, EventType):
        raise SchemaError(f"{obj!r} is not an event (decorate its class with @event)")
    return et
