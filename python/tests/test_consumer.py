"""Publish, consume with a group, acknowledge, retry and dead-letter against a private redis."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import redis

from opsc_events import (
    Consumer,
    Message,
    PermanentError,
    Publisher,
    RetryPolicy,
    U64,
    dead_letters,
    event,
    event_type_of,
    events_key,
)


@event(stream="py-orders", name="order_placed", version=2)
@dataclass
class OrderPlaced:
    order_id: U64
    customer: str


@event(stream="py-orders", name="order_placed", version=1)
@dataclass
class OrderPlacedV1:
    order_id: U64


def poll_until(consumer: Consumer, done: Callable[[], bool], seconds: float = 10) -> list[Any]:
    """Polls (each poll blocks at most 100 ms) until ``done()`` or the deadline."""
    outcomes: list[Any] = []
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not done within {seconds} s: {outcomes}"
        outcomes += consumer.poll(block_ms=100)
    return outcomes


def test_publish_consume_ack(r: redis.Redis) -> None:
    seen: list[tuple[int, str, int]] = []

    def on_order(order: OrderPlaced, msg: Message) -> None:
        seen.append((order.order_id, msg.envelope.service, msg.attempt))

    consumer = Consumer(r, "billing", OrderPlaced, on_order)
    consumer.ensure_group()
    assert consumer.group == "billing.on_order"
    pub = Publisher(r, "shop")
    ids = pub.publish_all([OrderPlaced(i, f"c{i}") for i in range(5)])
    assert len(ids) == 5
    poll_until(consumer, lambda: len(seen) == 5)
    assert seen == [(i, "shop", 1) for i in range(5)]
    assert r.xpending(events_key("py-orders"), consumer.group)["pending"] == 0


def test_other_types_are_skipped_and_acknowledged(r: redis.Redis) -> None:
    seen: list[int] = []
    consumer = Consumer(r, "billing", OrderPlaced, lambda e, m: seen.append(e.order_id), handler_name="h")
    consumer.ensure_group()
    r.xadd(events_key("py-orders"), {"something_else@1": b"\xff garbage"})
    Publisher(r, "shop").publish(OrderPlaced(1, "c"))
    outcomes = poll_until(consumer, lambda: seen == [1])
    assert [o.status for o in outcomes] == ["skipped", "handled"]
    assert r.xpending(events_key("py-orders"), consumer.group)["pending"] == 0
    assert dead_letters(r, "py-orders") == []


def test_poison_entry_is_dead_lettered_not_fatal(r: redis.Redis) -> None:
    seen: list[int] = []
    consumer = Consumer(r, "billing", OrderPlaced, lambda e, m: seen.append(e.order_id), handler_name="h")
    consumer.ensure_group()
    key = events_key("py-orders")
    bad = r.xadd(key, {"order_placed@2": b"\x02\x00\x00\xff\xff"})
    wrong_fp = Publisher(r, "shop").entry(OrderPlaced(9, "x"))[2]
    wrong_fp = wrong_fp[:6] + b"\x00" * 8 + wrong_fp[14:]
    mismatch = r.xadd(key, {"order_placed@2": wrong_fp})
    no_type = r.xadd(key, {"data": b"\x80"})
    Publisher(r, "shop").publish(OrderPlaced(3, "c"))
    outcomes = poll_until(consumer, lambda: seen == [3])
    assert [(o.status, o.reason) for o in outcomes] == [
        ("dead_letter", "decode_error"), ("dead_letter", "schema_mismatch"),
        ("dead_letter", "decode_error"), ("handled", ""),
    ]  # fmt: skip
    letters = dead_letters(r, "py-orders")
    assert [(l.original_id, l.reason) for l in letters] == [
        (bad.decode(), "decode_error"), (mismatch.decode(), "schema_mismatch"),
        (no_type.decode(), "decode_error"),
    ]  # fmt: skip
    first = letters[0]
    assert (first.stream, first.group, first.handler, first.attempts, first.replays) == (
        "py-orders", "billing.h", "h", 0, 0,
    )  # fmt: skip
    assert first.fields == [(b"order_placed@2", b"\x02\x00\x00\xff\xff")]  # the original bytes
    assert first.failed_at >= first.first_failed_at > 0
    assert r.xpending(key, consumer.group)["pending"] == 0


def test_retries_then_dead_letter_with_the_rust_fields(r: redis.Redis) -> None:
    calls: list[int] = []
    delays: list[float] = []

    def flaky(order: OrderPlaced, msg: Message) -> None:
        calls.append(msg.attempt)
        if order.order_id == 1:
            raise PermanentError("order 1 does not exist")
        if order.order_id == 2 or msg.attempt < 2:
            raise RuntimeError("database down")

    consumer = Consumer(
        r, "billing", OrderPlaced, flaky, retry=RetryPolicy(attempts=3, initial=0.1), sleep=delays.append
    )
    consumer.ensure_group()
    pub = Publisher(r, "shop")
    pub.publish_all([OrderPlaced(0, "ok on retry"), OrderPlaced(1, "gone"), OrderPlaced(2, "always")])
    outcomes = poll_until(consumer, lambda: len(calls) >= 6)
    assert [(o.status, o.reason, o.attempts) for o in outcomes] == [
        ("handled", "", 2), ("dead_letter", "permanent", 1), ("dead_letter", "handler_error", 3),
    ]  # fmt: skip
    assert delays == [0.1, 0.1, 0.2]
    letters = dead_letters(r, "py-orders")
    assert [(l.reason, l.attempts, l.error) for l in letters] == [
        ("permanent", 1, "order 1 does not exist"),
        ("handler_error", 3, "RuntimeError: database down"),
    ]
    assert letters[1].envelope().event_type == "order_placed"
    raw = r.xrange("opsconductor:{py-orders}:dead_letter")[1][1]
    assert sorted(k.decode() for k in raw) == sorted([
        "order_placed@2", "original_id", "stream", "group", "handler", "reason", "error",
        "attempts", "first_failed_at", "failed_at", "replays",
    ])  # fmt: skip


def test_older_versions_are_upcast(r: redis.Redis) -> None:
    seen: list[OrderPlaced] = []
    consumer = Consumer(
        r, "billing", OrderPlaced, lambda e, m: seen.append(e), handler_name="h",
        older_versions=[(OrderPlacedV1, lambda v1: OrderPlaced(v1.order_id, "unknown"))],
    )  # fmt: skip
    consumer.ensure_group()
    Publisher(r, "old-shop").publish(OrderPlacedV1(5))
    poll_until(consumer, lambda: len(seen) == 1)
    assert seen == [OrderPlaced(5, "unknown")]
    assert event_type_of(OrderPlacedV1).fingerprint != event_type_of(OrderPlaced).fingerprint


def test_a_crashed_consumers_pending_entries_are_handled_on_restart(r: redis.Redis) -> None:
    seen: list[int] = []
    key = events_key("py-orders")
    first = Consumer(r, "billing", OrderPlaced, lambda e, m: seen.append(e.order_id), handler_name="h", consumer_name="c1")
    first.ensure_group()
    Publisher(r, "shop").publish(OrderPlaced(8, "c"))
    # Delivered to c1, never acknowledged: what a crash between read and ack leaves.
    r.xreadgroup(first.group, "c1", {key: ">"}, count=1)
    restarted = Consumer(r, "billing", OrderPlaced, lambda e, m: seen.append(e.order_id), handler_name="h", consumer_name="c1")
    poll_until(restarted, lambda: seen == [8])
    assert r.xpending(key, first.group)["pending"] == 0


def test_a_pending_entry_deleted_from_the_stream_is_acknowledged(r: redis.Redis) -> None:
    key = events_key("py-orders")
    seen: list[int] = []
    consumer = Consumer(r, "billing", OrderPlaced, lambda e, m: seen.append(e.order_id), handler_name="h", consumer_name="c1")
    consumer.ensure_group()
    gone = Publisher(r, "shop").publish(OrderPlaced(1, "c"))
    r.xreadgroup(consumer.group, "c1", {key: ">"}, count=1)
    r.xdel(key, gone)
    Publisher(r, "shop").publish(OrderPlaced(2, "c"))
    outcomes = poll_until(consumer, lambda: seen == [2])
    assert [(o.entry_id, o.status) for o in outcomes][0] == (gone, "skipped")
    assert r.xpending(key, consumer.group)["pending"] == 0
