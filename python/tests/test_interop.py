"""Rust ⇄ Python over a private redis-server, through the Rust binary `py-interop`
(tests/bin/py_interop.rs). Its path: $OPSC_PY_INTEROP, else $CARGO_TARGET_DIR/debug/py-interop,
else target/debug/py-interop (`cargo build --bin py-interop`)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest
import redis

from conftest import REPO, RedisServer
from interop_event import InteropEvent, as_serde_json, sample
from opsc_events import (
    Consumer,
    Message,
    PermanentError,
    Publisher,
    dead_letters,
    event_type_of,
    events_key,
)


def interop_bin() -> str:
    candidates = [os.environ.get("OPSC_PY_INTEROP", "")]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(str(Path(target) / "debug" / "py-interop"))
    candidates.append(str(REPO / "target" / "debug" / "py-interop"))
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    pytest.fail("py-interop not found: run `cargo build --bin py-interop` or set OPSC_PY_INTEROP")


def run(*args: str) -> list[str]:
    out = subprocess.run([interop_bin(), *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


class Lines:
    """A child process's stdout lines, read by a thread, taken with deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))

    def next(self, seconds: float = 30) -> str:
        try:
            return self.q.get(timeout=seconds)
        except queue.Empty:
            pytest.fail(f"no line from py-interop within {seconds} s")


@pytest.fixture
def server(redis_server: RedisServer) -> Iterator[RedisServer]:
    redis.Redis.from_url(redis_server.url).flushall()
    yield redis_server


def poll_until(consumer: Consumer, done: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not done within {seconds} s"
        consumer.poll(block_ms=100)


def test_the_shared_event_has_one_fingerprint() -> None:
    et = event_type_of(InteropEvent)
    assert run("fingerprint") == [f"interop_event 1 {et.fingerprint_hex}"]


def test_rust_publishes_python_handles(server: RedisServer) -> None:
    r = redis.Redis.from_url(server.url)
    got: list[tuple[InteropEvent, str]] = []

    def on_event(e: InteropEvent, msg: Message) -> None:
        got.append((e, msg.envelope.service))

    consumer = Consumer(r, "py_side", InteropEvent, on_event)
    consumer.ensure_group()  # at `$`, before Rust publishes
    assert run("publish", server.url, "6") == ["published 6"]
    poll_until(consumer, lambda: len(got) == 6)
    assert got == [(sample(i, "rust"), "py_interop") for i in range(6)]
    assert r.xpending(events_key("interop"), consumer.group)["pending"] == 0


def test_python_publishes_rust_handles(server: RedisServer) -> None:
    r = redis.Redis.from_url(server.url)
    # The Rust handler's group, created first so that no event is published before it exists.
    r.xgroup_create(events_key("interop"), "py_interop.record", id="$", mkstream=True)
    proc = subprocess.Popen(
        [interop_bin(), "handle", server.url, "7"], stdout=subprocess.PIPE, text=True
    )
    try:
        lines = Lines(proc)
        assert lines.next() == "ready"
        pub = Publisher(r, "py_side")
        conversation = uuid.UUID(int=0x0193717C4A0070008000000000000001)
        for i in range(6):
            pub.publish(sample(i, "py"), correlation_id=conversation, headers={"tenant": "t1"})
        refused = sample(6, "py")
        refused.label = "fail-6"
        refused_id = pub.publish(refused)
        handled, other = [], []
        # The runtime may handle entries concurrently: lines in any order, until `done`.
        while (line := lines.next()) != "done":
            if line.startswith("handled "):
                body, service, _event_id, correlation = line[len("handled ") :].rsplit(" ", 3)
                handled.append((json.loads(body), service, correlation))
            else:
                other.append(line)
        handled.sort(key=lambda h: h[0]["seq"])
        assert other == ["refused 6"]
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    expected = [(as_serde_json(sample(i, "py")), "py_side", str(conversation)) for i in range(6)]
    assert handled == expected
    # The Rust runtime's dead letter, read by the Python client.
    (letter,) = dead_letters(r, "interop")
    assert (letter.original_id, letter.group, letter.handler, letter.reason) == (
        refused_id, "py_interop.record", "py_interop::record", "permanent",
    )  # fmt: skip
    assert (letter.attempts, letter.replays, letter.error) == (1, 0, "refused fail-6")
    env = letter.envelope()
    assert (env.service, env.field_name) == ("py_side", "interop_event@1")
    assert event_type_of(InteropEvent).decode_payload(env.payload) == refused


def test_python_dead_letters_are_read_by_rust(server: RedisServer) -> None:
    r = redis.Redis.from_url(server.url)

    def audit(e: InteropEvent, m: Message) -> None:
        raise PermanentError(f"cannot audit {e.label}")

    consumer = Consumer(r, "py_side", InteropEvent, audit)
    assert consumer.group == "py_side.audit"
    consumer.ensure_group()
    poison = r.xadd(events_key("interop"), {"interop_event@1": b"\x02\x00\x00\x00\x01"})
    good = Publisher(r, "py_side").publish(sample(1, "py"))
    poll_until(consumer, lambda: len(dead_letters(r, "interop")) == 2)
    letters = [json.loads(line) for line in run("dead-letters", server.url, "interop")]
    assert [l["original_id"] for l in letters] == [poison.decode(), good]
    for l in letters:
        assert (l["stream"], l["group"], l["handler"], l["replays"]) == (
            "interop", "py_side.audit", "test_interop.test_python_dead_letters_are_read_by_rust.<locals>.audit", 0,
        )  # fmt: skip
        assert l["event_type"] == "interop_event"
        assert l["failed_at"] >= l["first_failed_at"] > 0
    bad, failed = letters
    # The Rust reader finds no version in an entry whose header does not decode.
    assert (bad["reason"], bad["attempts"]) == ("decode_error", 0)
    assert "header" in bad["error"]
    assert (failed["reason"], failed["attempts"], failed["version"]) == ("permanent", 1, 1)
    assert failed["error"] == "cannot audit py-1"
    assert failed["data_len"] > 0
