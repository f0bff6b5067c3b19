"""opsc-events for Python: typed events over Redis Streams, wire-compatible with the Rust
framework (docs/WIRE.md, docs/CONTRACTS.md § Python services)."""

from .client import (
    Consumer,
    DeadLetter,
    Message,
    Outcome,
    Publisher,
    RetryPolicy,
    dead_letter_key,
    dead_letters,
    events_key,
)
from .codec import Tagged
from .errors import (
    DataMismatch,
    DecodeError,
    EncodeError,
    FingerprintMismatch,
    InvalidField,
    MissingField,
    NotMessagePack,
    OpscError,
    PermanentError,
    UnknownEventType,
    UnknownVersion,
)
from .events import EventType, event, event_type, event_type_of, snake_case
from .schema_registry import (
    HandlerPolicy,
    Readable,
    RegistryEntry,
    Unreadable,
    read_registry,
    record as record_entries,
    registry,
    registry_key,
    shape_json,
)
from .schema import (
    BOOL,
    CHAR,
    F32,
    F64,
    I8,
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
    UNIT,
    Array,
    Char,
    Enum,
    Field,
    Json,
    Leaf,
    Map,
    Opaque,
    Option,
    SchemaError,
    Seq,
    Struct,
    Tuple,
    Variant,
    fingerprint,
    fingerprint_hex,
    shape_of,
    wire as wire_name,
)
from .wire import Envelope, decode as decode_entry, encode_v2, uuid7

__all__ = [name for name in dir() if not name.startswith("_")]
