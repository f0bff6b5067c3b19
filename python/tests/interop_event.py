"""The event shared with the Rust binary tests/bin/py_interop.rs (`InteropEvent`, `Status`,
`sample`): a change on either side fails test_interop.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Optional

from opsc_events import (
    F32,
    I64,
    STRING,
    U64,
    U128,
    Enum,
    Field,
    Leaf,
    Option,
    Tagged,
    Variant,
    event,
)

STATUS = Enum(
    (
        Variant("Up"),
        Variant("Code", "newtype", Leaf("u16")),
        Variant(
            "Degraded", "struct", (Field("since_ms", Leaf("u64")), Field("reason", Option(STRING)))
        ),
    ),
    name="Status",  # the Rust enum's name, as the schema registry shows it
)


@event(stream="interop", name="interop_event", version=1)
@dataclass
class InteropEvent:
    seq: U64
    label: str
    tags: list[str]
    note: Optional[str]
    id: uuid.UUID
    big: U128
    delta: I64
    ratio: F32
    status: Annotated[Tagged, STATUS]
    attrs: dict[str, I64]


def sample(seq: int, side: str) -> InteropEvent:
    """Event number ``seq``, as `sample` in py_interop.rs builds it (label ``<side>-<seq>``)."""
    if seq % 3 == 0:
        status = Tagged("Up")
    elif seq % 3 == 1:
        status = Tagged("Code", 500 + seq)
    else:
        status = Tagged("Degraded", {"since_ms": 1_700_000_000_000 + seq, "reason": f"r{seq}"})
    return InteropEvent(
        seq=seq,
        label=f"{side}-{seq}",
        tags=[f"t{i}" for i in range(seq % 3)],
        note=f"note {seq}" if seq % 2 == 0 else None,
        id=uuid.UUID(int=0x0193717C4A0070008000000000000000 + seq),
        big=2**128 - 1 - seq,
        delta=-seq * 1000,
        ratio=0.5,
        status=status,
        attrs={"n": seq, "neg": -1},
    )


def as_serde_json(e: InteropEvent) -> dict[str, Any]:
    """What serde_json writes for the Rust value of ``e`` (the `handle` command prints it)."""
    s = e.status
    status: Any = s.variant if s.value is None else {s.variant: s.value}
    return {
        "seq": e.seq, "label": e.label, "tags": e.tags, "note": e.note, "id": str(e.id),
        "big": e.big, "delta": e.delta, "ratio": e.ratio, "status": status, "attrs": e.attrs,
    }  # fmt: skip

