"""Fingerprints equal the Rust derive's, checked against tests/golden/fingerprints.txt."""

from __future__ import annotations

import pytest

from conftest import GOLDEN
from golden_types import ALL
from opsc_events import (
    STRING,
    Field,
    Leaf,
    Option,
    SchemaError,
    Seq,
    Struct,
    event,
    event_type_of,
    fingerprint,
    fingerprint_hex,
    snake_case,
)


def golden_lines() -> list[tuple[str, int, str]]:
    out = []
    for line in (GOLDEN / "fingerprints.txt").read_text().splitlines():
        if line.strip():
            name, version, fp = line.split()
            out.append((name, int(version), fp))
    return out


def test_every_golden_type_has_the_rust_fingerprint() -> None:
    ours = [(event_type_of(c).name, event_type_of(c).version, event_type_of(c).fingerprint_hex) for c in ALL]
    assert ours == golden_lines()


@pytest.mark.parametrize("name,version,fp", golden_lines())
def test_golden_line(name: str, version: int, fp: str) -> None:
    (cls,) = [c for c in ALL if (event_type_of(c).name, event_type_of(c).version) == (name, version)]
    assert event_type_of(cls).fingerprint_hex == fp


def test_fixed_points_of_wire_md() -> None:
    asset = Struct((Field("asset_id", Leaf("u64")), Field("hostname", STRING), Field("tags", Seq(STRING))))
    assert fingerprint(Leaf("u64")) == 0x93191EBC1BC1FBA9
    assert fingerprint_hex(asset) == "706876dfd3739d5d"
    assert fingerprint_hex(STRING) == "82fd2c53e283cde5"
    assert fingerprint_hex(Leaf("unit")) == "60f06d206a056798"
    assert fingerprint_hex(Seq(Option(Leaf("u32")))) == "542eff7e29ebfaaa"
    assert fingerprint_hex(Struct(())) == "cf7eb9bdbebf4f2f"


def test_field_order_does_not_count_but_names_and_types_do() -> None:
    a = Struct((Field("a", Leaf("u64")), Field("b", STRING)))
    b = Struct((Field("b", STRING), Field("a", Leaf("u64"))))
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(Struct((Field("a", Leaf("u32")), Field("b", STRING))))
    assert fingerprint(a) != fingerprint(Struct((Field("A", Leaf("u64")), Field("b", STRING))))


def test_int_without_width_is_refused() -> None:
    from dataclasses import dataclass

    with pytest.raises(SchemaError, match="no width"):

        @event(stream="s")
        @dataclass
        class Bad:
            n: int


def test_default_name_is_serde_snake_case() -> None:
    assert snake_case("AssetCreated") == "asset_created"
    assert snake_case("HTTPServer") == "h_t_t_p_server"
