"""The schema registry (docs/CONTRACTS.md § The schema registry) from Python: reading it, and a
Python service recording itself in it with the fields and values the Rust runtime writes —
checked against the Rust binary `py-interop` both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from conftest import RedisServer
from interop_event import InteropEvent, sample
from opsc_events import (
    U64,
    Consumer,
    HandlerPolicy,
    Message,
    Publisher,
    Readable,
    RegistryEntry,
    RetryPolicy,
    Unreadable,
    event,
    event_type_of,
    read_registry,
    registry,
    registry_key,
    shape_json,
)
from test_interop import run

KEY = registry_key("opsconductor")


def on_event(e: InteropEvent, m: Message) -> None:
    pass


@event(stream="reg", name="reg_created", version=1)
@dataclass
class CreatedV1:
    item_id: U64


@event(stream="reg", name="reg_created", version=2)
@dataclass
class Created:
    item_id: U64
    tags: list[str]


def test_a_python_service_records_its_producer_and_consumer_entries(r: redis.Redis) -> None:
    et = event_type_of(InteropEvent)
    fp = et.fingerprint_hex
    pub = Publisher(r, "py_side")
    pub.publish(sample(0, "py"))
    first = r.hget(KEY, f"producer|py_side|interop_event|1|{fp}")
    assert first is not None
    pub.publish_all([sample(1, "py"), sample(2, "py")])
    # Recorded once per publisher and type, not on every publish.
    assert r.hget(KEY, f"producer|py_side|interop_event|1|{fp}") == first
    consumer = Consumer(r, "py_side", InteropEvent, on_event, retry=RetryPolicy(attempts=6))
    consumer.ensure_group()

    assert {k.decode() for k in r.hkeys(KEY)} == {
        f"producer|py_side|interop_event|1|{fp}",
        f"consumer|py_side|py_side.on_event|interop_event|1|{fp}",
    }
    producer, cons = registry(r)
    assert (producer.role, producer.service, producer.name, producer.version) == (
        "producer", "py_side", "interop_event", 1,
    )  # fmt: skip
    assert (producer.stream, producer.fingerprint, producer.reads, producer.handler) == (
        "interop", et.fingerprint, (), None,
    )  # fmt: skip
    assert producer.shape == shape_json(et.shape)
    assert producer.last_seen_ms > 0
    assert cons.role == "consumer"
    assert cons.reads == (Readable(1, et.fingerprint),)
    assert cons.can_read(1, et.fingerprint) and not cons.can_read(1, et.fingerprint ^ 1)
    assert cons.handler == HandlerPolicy(
        handler="test_registry.on_event", group="py_side.on_event", retries=5,
        dead_letter=True, concurrency=1, timeout_ms=0,
    )  # fmt: skip
    # The stored value is the entry's JSON, read back unchanged.
    raw = r.hget(KEY, cons.field)
    assert raw is not None
    assert RegistryEntry.from_json(json.loads(raw)) == cons
    assert json.loads(raw) == cons.to_json()


def test_a_publisher_without_registration_records_nothing(r: redis.Redis) -> None:
    Publisher(r, "quiet", register=False).publish(sample(0, "py"))
    Consumer(r, "quiet", InteropEvent, on_event, register=False).ensure_group()
    assert r.exists(KEY) == 0
    assert registry(r) == []


def test_an_upcasting_consumer_lists_every_version_it_reads(r: redis.Redis) -> None:
    def on_created(e: Created, m: Message) -> None:
        pass

    Consumer(
        r, "inventory", Created, on_created,
        older_versions=[(CreatedV1, lambda v1: Created(v1.item_id, []))],
    ).ensure_group()  # fmt: skip
    (entry,) = registry(r)
    v1, v2 = event_type_of(CreatedV1), event_type_of(Created)
    assert (entry.version, entry.fingerprint) == (2, v2.fingerprint)
    assert entry.reads == (Readable(2, v2.fingerprint), Readable(1, v1.fingerprint))
    assert entry.shape == {
        "type": "struct", "name": "Created", "fields": [
            {"name": "item_id", "optional": False, "shape": {"type": "u64"}},
            {"name": "tags", "optional": False, "shape": {"type": "seq", "of": {"type": "string"}}},
        ],
    }  # fmt: skip


def test_unreadable_fields_are_reported_never_raised(r: redis.Redis) -> None:
    Publisher(r, "py_side").publish(sample(0, "py"))
    good = registry(r)[0].to_json()
    r.hset(KEY, "producer|bad|x|1|0000000000000000", "not json")
    r.hset(KEY, "producer|short|x|1|00", json.dumps({**good, "fingerprint": "00"}))
    # Keys a later version may add are ignored.
    r.hset(KEY, "producer|newer|x|1|f", json.dumps({**good, "service": "newer", "since": 2}))
    entries, bad = read_registry(r)
    assert [e.service for e in entries] == ["newer", "py_side"]
    assert [u.field for u in bad] == ["producer|bad|x|1|0000000000000000", "producer|short|x|1|00"]
    assert all(isinstance(u, Unreadable) and u.reason for u in bad)
    assert "16 hex digits" in bad[1].reason
    assert registry(r) == entries


# --- across languages ---------------------------------------------------------------------


def test_python_reads_the_entries_a_rust_runtime_records(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    et = event_type_of(InteropEvent)
    assert run("publish", redis_server.url, "1") == ["published 1"]
    (producer,) = registry(r)
    assert (producer.service, producer.role, producer.stream) == ("py_interop", "producer", "interop")
    assert (producer.name, producer.version, producer.fingerprint) == (
        "interop_event", 1, et.fingerprint,
    )  # fmt: skip
    # The shape Rust writes is the one Python writes for the same event, names included.
    assert producer.shape == shape_json(et.shape)
    assert producer.reads == () and producer.handler is None
    assert producer.last_seen_ms > 0

    assert run("handle", redis_server.url, "0") == ["ready", "done"]
    consumers = [e for e in registry(r) if e.role == "consumer"]
    (consumer,) = consumers
    assert consumer.service == "py_interop"
    assert consumer.field == f"consumer|py_interop|py_interop.record|interop_event|1|{et.fingerprint_hex}"
    assert consumer.reads == (Readable(1, et.fingerprint),)
    assert consumer.handler is not None
    assert (consumer.handler.handler, consumer.handler.group) == (
        "py_interop::record", "py_interop.record",
    )  # fmt: skip
    assert consumer.handler.dead_letter is True
    assert consumer.handler.timeout_ms > 0


def rust_registry(server: RedisServer) -> dict[str, Any]:
    (line,) = run("registry", server.url)
    out: dict[str, Any] = json.loads(line)
    return out


def test_rust_reads_the_entries_a_python_service_records(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    Publisher(r, "py_side").publish(sample(0, "py"))
    Consumer(r, "py_side", InteropEvent, on_event).ensure_group()
    ours = {e.field: e.to_json() for e in registry(r)}
    seen = rust_registry(redis_server)
    assert seen["unreadable"] == []
    # Rust reads every Python entry and writes it back identically.
    theirs = {
        e["role"] + "|" + e["service"]: e for e in seen["entries"] if e["service"] == "py_side"
    }
    assert sorted(theirs) == ["consumer|py_side", "producer|py_side"]
    assert sorted(ours.values(), key=lambda e: e["role"]) == sorted(
        theirs.values(), key=lambda e: e["role"]
    )
    # The Rust producer (py_interop) and the Python consumer fit: no mismatch.
    assert seen["mismatches"] == []


@event(stream="interop", name="interop_event", version=1)
@dataclass
class RogueInterop:
    """Same name and version as InteropEvent, another payload: a change without a version bump."""

    seq: U64


def test_rust_flags_a_python_producer_no_consumer_can_read(redis_server: RedisServer) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.flushall()
    Consumer(r, "py_side", InteropEvent, on_event).ensure_group()
    Publisher(r, "py_rogue").publish(RogueInterop(1))
    seen = rust_registry(redis_server)
    assert seen["unreadable"] == []
    rogue = event_type_of(RogueInterop).fingerprint_hex
    problems = [m["problem"] for m in seen["mismatches"]]
    assert any("py_rogue" in p and rogue in p for p in problems), problems
