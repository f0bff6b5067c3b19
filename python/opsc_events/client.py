"""Publishing v2 entries and consuming them with a consumer group, acknowledging, retrying in
process and dead-lettering with the Rust runtime's fields (docs/CONTRACTS.md § Python services)."""

from __future__ import annotations

import logging
import re
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import redis

from . import schema_registry as _registry
from . import wire
from .errors import DecodeError, FingerprintMismatch, PermanentError, UnknownVersion
from .events import EventType, event_type_of

log = logging.getLogger("opsc_events")

DEFAULT_PREFIX = "opsconductor"
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
GROUP = re.compile(r"[A-Za-z0-9_.:-]{1,128}\Z")
HEADER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}\Z")

# The dead letter's own fields (docs/WIRE.md § Dead letters); originals named so are not copied.
# `priority` is written by the Rust runtime for entries of a priority lane; this client reads
# and writes the `normal` lane only (docs/WIRE.md § Priority lanes).
LETTER_FIELDS = (
    "original_id", "original_fields", "stream", "group", "handler", "reason", "error",
    "attempts", "first_failed_at", "failed_at", "replays", "priority",
)  # fmt: skip

# KEYS: events, dead letters. ARGV: group, id, handler, reason, error, attempts,
# first_failed_at (empty: now), stream name. The acknowledgement never happens without the letter.
_DEAD_LETTER = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) == 0 then return false end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
local first = ARGV[7]
if first == '' then first = now end
local OURS = {}
for _, n in ipairs({%s}) do OURS[n] = true end
local fields = {}
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #entry == 1 then
  local orig = entry[1][2]
  for i = 1, #orig, 2 do
    if not OURS[orig[i]] then
      table.insert(fields, orig[i])
      table.insert(fields, orig[i + 1])
    end
  end
end
if #fields > 1000 then fields = {'original_fields', cmsgpack.pack(fields)} end
for _, kv in ipairs({{'original_id', ARGV[2]}, {'stream', ARGV[8]}, {'group', ARGV[1]},
    {'handler', ARGV[3]}, {'reason', ARGV[4]}, {'error', ARGV[5]}, {'attempts', ARGV[6]},
    {'first_failed_at', first}, {'failed_at', now}, {'replays', '0'}}) do
  table.insert(fields, kv[1])
  table.insert(fields, kv[2])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', unpack(fields))
""" % ", ".join(f"'{n}'" for n in LETTER_FIELDS)


def events_key(stream: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{{{stream}}}:events"


def dead_letter_key(stream: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:{{{stream}}}:dead_letter"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Publisher:
    """Publishes events as v2 entries: ``XADD <prefix>:{<stream>}:events * <name>@<v> <value>``.

    The first time it publishes an event type it records a producer entry in the schema
    registry (``register=False``: never)."""

    def __init__(
        self,
        client: redis.Redis,
        service: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        register: bool = True,
    ) -> None:
        if not NAME.match(service):
            raise ValueError(f"service {service!r} breaks [A-Za-z0-9_.-]{{1,64}}")
        if not NAME.match(prefix):
            raise ValueError(f"prefix {prefix!r} breaks [A-Za-z0-9_.-]{{1,64}}")
        self.client = client
        self.service = service
        self.prefix = prefix
        self.register = register
        self._registered: set[tuple[str, int, int]] = set()

    def _record(self, types: Sequence[EventType]) -> None:
        """Records a producer entry for each type not recorded yet by this publisher."""
        if not self.register:
            return
        new = {(et.name, et.version, et.fingerprint): et for et in types}
        for k in self._registered:
            new.pop(k, None)
        if not new:
            return
        now = _now_ms()
        entries = [
            _registry.RegistryEntry.producer(et, self.service, now_ms=now) for et in new.values()
        ]
        if _registry.record(self.client, entries, prefix=self.prefix):
            self._registered.update(new)

    def entry(
        self,
        event: Any,
        *,
        event_type: Optional[EventType] = None,
        event_id: Optional[uuid.UUID] = None,
        correlation_id: Optional[uuid.UUID] = None,
        causation_id: Optional[uuid.UUID] = None,
        headers: Optional[dict[str, str]] = None,
        timestamp_ms: Optional[int] = None,
    ) -> tuple[EventType, bytes, bytes]:
        """The event type and the entry's field ``(name, value)``, without sending anything."""
        et = event_type or event_type_of(event)
        for id_ in (event_id, correlation_id, causation_id):
            if id_ is not None and id_.int == 0:
                raise ValueError("the nil UUID is not a valid event, correlation or causation id")
        for k, v in (headers or {}).items():
            if not HEADER_NAME.match(k):
                raise ValueError(f"header name {k!r} breaks [A-Za-z0-9_.-]{{1,128}}")
            if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in v) or len(v.encode()) > 8192:
                raise ValueError(f"header {k!r}: a control character or more than 8,192 bytes")
        ts = _now_ms() if timestamp_ms is None else timestamp_ms
        env = wire.Envelope(
            event_type=et.name,
            version=et.version,
            fingerprint=et.fingerprint,
            event_id=event_id or wire.uuid7(ts),
            timestamp_ms=ts,
            service=self.service,
            payload=et.encode_payload(event),
            correlation_id=correlation_id,
            causation_id=causation_id,
            headers=dict(headers or {}),
        )
        name, value = wire.encode_v2(env)
        return et, name, value

    def publish(self, event: Any, **options: Any) -> str:
        """Publishes one event; returns the entry id Redis assigned. Options as :meth:`entry`."""
        et, name, value = self.entry(event, **options)
        self._record([et])
        return _text(self.client.xadd(events_key(et.stream, self.prefix), {name: value}))

    def publish_all(self, events: Sequence[Any]) -> list[str]:
        """Publishes several events in one round trip (a pipeline, not a transaction)."""
        entries = [self.entry(e) for e in events]
        self._record([et for et, _, _ in entries])
        pipe = self.client.pipeline(transaction=False)
        for et, name, value in entries:
            pipe.xadd(events_key(et.stream, self.prefix), {name: value})
        return [_text(i) for i in pipe.execute()]


@dataclass(frozen=True)
class Message:
    """What a handler receives besides the event."""

    entry_id: str
    envelope: wire.Envelope
    event_type: EventType
    group: str
    attempt: int


@dataclass
class RetryPolicy:
    """In-process retries: ``attempts`` calls at most (1 = no retry), sleeping
    ``min(initial * factor**(n-1), maximum)`` seconds before retry ``n``."""

    attempts: int = 4
    initial: float = 0.2
    factor: float = 2.0
    maximum: float = 5.0

    def delay(self, retry: int) -> float:
        return float(min(self.initial * self.factor ** (retry - 1), self.maximum))


@dataclass
class Outcome:
    """What became of one entry (returned by :meth:`Consumer.poll` for observability and tests)."""

    entry_id: str
    status: str  # "handled", "skipped", "dead_letter"
    reason: str = ""
    error: str = ""
    attempts: int = 0
    letter_id: Optional[str] = None


Handler = Callable[[Any, Message], None]


@dataclass
class _Route:
    types: dict[int, EventType]  # by version
    fn: Handler


class Consumer:
    """One handler's consumer: reads ``<prefix>:{<stream>}:events`` with the group ``group``
    (default ``<service>.<handler name>``, like Rust; ``handler_name`` defaults to the
    function's ``__name__``), calls the handler, acknowledges, retries
    in process and dead-letters with the Rust runtime's fields. When it creates its group it
    records its consumer entry in the schema registry (``register=False``: never)."""

    def __init__(
        self,
        client: redis.Redis,
        service: str,
        event: Any,
        handler: Handler,
        *,
        group: Optional[str] = None,
        handler_name: Optional[str] = None,
        consumer_name: Optional[str] = None,
        prefix: str = DEFAULT_PREFIX,
        retry: Optional[RetryPolicy] = None,
        start: str = "latest",
        sleep: Callable[[float], None] = time.sleep,
        older_versions: Sequence[tuple[Any, Callable[[Any], Any]]] = (),
        register: bool = True,
    ) -> None:
        if not NAME.match(service):
            raise ValueError(f"service {service!r} breaks [A-Za-z0-9_.-]{{1,64}}")
        self.client = client
        self.service = service
        self.register = register
        self.event_type = event_type_of(event)
        self.handler = handler
        self.handler_name: str = handler_name or str(getattr(handler, "__name__", "handler"))
        self.group = group or f"{service}.{self.handler_name}"
        # A dead letter's `handler`: Rust writes the fn's path (`my_crate::billing::on_order`),
        # Python the function's module and qualified name (`billing.on_order`).
        module = getattr(handler, "__module__", None)
        qualname = getattr(handler, "__qualname__", self.handler_name)
        self.handler_path: str = (
            f"{module}.{qualname}" if handler_name is None and module else self.handler_name
        )
        if not GROUP.match(self.group):
            raise ValueError(f"group {self.group!r} breaks [A-Za-z0-9_.:-]{{1,128}}")
        self.consumer_name = consumer_name or f"{service}-{uuid.uuid4().hex[:8]}"
        self.prefix = prefix
        self.stream = self.event_type.stream
        self.key = events_key(self.stream, prefix)
        self.dead_key = dead_letter_key(self.stream, prefix)
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        if start not in ("latest", "earliest"):
            raise ValueError("start is 'latest' or 'earliest'")
        self.start = start
        # Older versions: (event type, function converting its value to the current type).
        self.upcasts: dict[int, tuple[EventType, Callable[[Any], Any]]] = {}
        for old, convert in older_versions:
            et = event_type_of(old)
            if et.name != self.event_type.name or et.version >= self.event_type.version:
                raise ValueError(f"{et.field_name} is not an older version of this event")
            self.upcasts[et.version] = (et, convert)
        self._dead_letter = client.register_script(_DEAD_LETTER)
        self._group_ready = False
        self._pending_checked = False

    def ensure_group(self) -> None:
        """``XGROUP CREATE … MKSTREAM`` at ``$`` (latest, Rust's default) or ``0``."""
        try:
            self.client.xgroup_create(
                self.key, self.group, id="$" if self.start == "latest" else "0", mkstream=True
            )
        except redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        if self.register:
            _registry.record(self.client, [self.registry_entry()], prefix=self.prefix)
        self._group_ready = True

    def registry_entry(self, now_ms: Optional[int] = None) -> _registry.RegistryEntry:
        """This consumer's entry in the schema registry: its version and the older ones it
        upcasts, and its policy — ``retries`` = attempts after the first, always dead-lettered,
        one message at a time, ``timeout_ms`` 0 (no per-attempt timeout)."""
        policy = _registry.HandlerPolicy(
            handler=self.handler_path,
            group=self.group,
            retries=max(self.retry.attempts - 1, 0),
            dead_letter=True,
            concurrency=1,
            timeout_ms=0,
        )
        return _registry.RegistryEntry.consumer(
            self.event_type,
            self.service,
            policy,
            older=[et for et, _ in self.upcasts.values()],
            now_ms=_now_ms() if now_ms is None else now_ms,
        )

    def poll(self, count: int = 16, block_ms: int = 1000) -> list[Outcome]:
        """Handles up to ``count`` entries: first this consumer's own pending ones (left by a
        crash), then new ones (waiting up to ``block_ms``). Returns what became of each."""
        if not self._group_ready:
            self.ensure_group()
        start = "0" if not self._pending_checked else ">"
        reply: Any = self.client.xreadgroup(
            self.group,
            self.consumer_name,
            {self.key: start},
            count=count,
            block=None if start == "0" else block_ms,
        )
        entries: list[Any] = reply[0][1] if reply else []
        if start == "0" and not entries:
            self._pending_checked = True
            return self.poll(count, block_ms)
        out: list[Outcome] = []
        for eid, fields in entries:
            if not fields:
                # A pending entry trimmed from the stream meanwhile: nothing left to handle.
                self.client.xack(self.key, self.group, eid)
                out.append(Outcome(_text(eid), "skipped", error="entry no longer in the stream"))
            else:
                out.append(self._handle(_text(eid), fields))
        return out

    def run(self, stop: Callable[[], bool], block_ms: int = 500) -> None:
        """Polls until ``stop()`` returns true."""
        while not stop():
            self.poll(block_ms=block_ms)

    def _decode(self, fields: Any) -> tuple[wire.Envelope, EventType, Any]:
        env = wire.decode(fields)
        et = self.event_type
        if env.version != et.version:
            if env.version not in self.upcasts:
                known = sorted([et.version, *self.upcasts])
                raise UnknownVersion(env.event_type, env.version, known)
            old, convert = self.upcasts[env.version]
            if env.fingerprint != old.fingerprint:
                raise FingerprintMismatch(env.event_type, env.version, old.fingerprint, env.fingerprint)
            return env, old, convert(old.decode_payload(env.payload))
        if env.fingerprint != et.fingerprint:
            raise FingerprintMismatch(env.event_type, env.version, et.fingerprint, env.fingerprint)
        return env, et, et.decode_payload(env.payload)

    def _handle(self, entry_id: str, fields: Any) -> Outcome:
        found = wire.peek_type(fields)
        if found is not None and found != self.event_type.name:
            self.client.xack(self.key, self.group, entry_id)
            return Outcome(entry_id, "skipped")
        try:
            env, et, value = self._decode(fields)
        except DecodeError as e:
            log.warning("entry %s of %s: %s; dead-lettered", entry_id, self.key, e)
            return self._letter(entry_id, e.reason, str(e), 0, "")
        first_failed = ""
        attempt = 0
        while True:
            attempt += 1
            try:
                self.handler(value, Message(entry_id, env, et, self.group, attempt))
            except PermanentError as e:
                return self._letter(entry_id, "permanent", str(e), attempt, first_failed)
            except Exception as e:  # a handler's failure of any kind is retried
                first_failed = first_failed or str(_now_ms())
                error = f"{type(e).__name__}: {e}"
                log.debug("handler %s failed: %s", self.handler_name, traceback.format_exc())
                if attempt >= self.retry.attempts:
                    return self._letter(entry_id, "handler_error", error, attempt, first_failed)
                self.sleep(self.retry.delay(attempt))
                continue
            self.client.xack(self.key, self.group, entry_id)
            return Outcome(entry_id, "handled", attempts=attempt)

    def _letter(
        self, entry_id: str, reason: str, error: str, attempts: int, first_failed: str
    ) -> Outcome:
        letter = self._dead_letter(
            keys=[self.key, self.dead_key],
            args=[
                self.group, entry_id, self.handler_path, reason, error, str(attempts),
                first_failed, self.stream,
            ],  # fmt: skip
        )
        return Outcome(
            entry_id, "dead_letter", reason, error, attempts, _text(letter) if letter else None
        )


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as ``opsc dlq`` shows it."""

    id: str
    original_id: str
    stream: str
    group: str
    handler: str
    reason: str
    error: str
    attempts: int
    first_failed_at: int
    failed_at: int
    replays: int
    fields: list[tuple[bytes, bytes]] = field(default_factory=list)

    def envelope(self) -> wire.Envelope:
        """The original entry's envelope (raises :class:`DecodeError` for a poison entry)."""
        return wire.decode(self.fields)


def dead_letters(
    client: redis.Redis, stream: str, *, prefix: str = DEFAULT_PREFIX, count: int = 100
) -> list[DeadLetter]:
    """The oldest ``count`` dead letters of ``stream`` (written by Rust or Python)."""
    from . import codec

    out = []
    page: Any = client.xrange(dead_letter_key(stream, prefix), count=count)
    for eid, raw in page:
        own: dict[str, str] = {}
        original: list[tuple[bytes, bytes]] = []
        for k, v in raw.items():
            kb = k if isinstance(k, bytes) else k.encode()
            vb = v if isinstance(v, bytes) else v.encode()
            name = kb.decode(errors="replace")
            if name == "original_fields":
                items = codec.unpack(vb)
                original += [(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
            elif name in LETTER_FIELDS:
                own[name] = vb.decode(errors="replace")
            else:
                original.append((kb, vb))
        out.append(
            DeadLetter(
                _text(eid), own.get("original_id", ""), own.get("stream", ""),
                own.get("group", ""), own.get("handler", ""), own.get("reason", ""),
                own.get("error", ""), int(own.get("attempts", "0") or 0),
                int(own.get("first_failed_at", "0") or 0), int(own.get("failed_at", "0") or 0),
                int(own.get("replays", "0") or 0), original,
            )  # fmt: skip
        )
    return out
