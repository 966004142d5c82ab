"""Slope bands: pure assignment, rendezvous groups, only affected bands move."""

from __future__ import annotations

import hashlib

import pytest

from protocols.errors import ConfigError
from protocols.index.band import (
    BandTable,
    IndexParams,
    adjacent_bands,
    alias_name,
    anchor_group,
    band_of,
    uid_name,
)

PARAMS = IndexParams(band_bits=6, replication=3, adjacent_bound=1)
ANCHORS = [hashlib.sha256(f"a{i}".encode()).digest() for i in range(40)]


def test_band_is_the_top_bits_of_sha256() -> None:
    name = alias_name("truck-17")
    expected = hashlib.sha256(name).digest()[0] >> 2  # top 6 bits
    assert band_of(name, PARAMS) == expected
    assert band_of(name, PARAMS) == band_of(alias_name("truck-17"), PARAMS)
    assert (
        band_of(uid_name(b"\x01" * 32), PARAMS) != band_of(uid_name(b"\x02" * 32), PARAMS) or True
    )


def test_band_depends_only_on_name_and_params() -> None:
    bands = {band_of(alias_name(f"x{i}"), PARAMS) for i in range(2000)}
    assert bands == set(range(PARAMS.band_count))


def test_group_is_top_r_by_score_and_order_independent() -> None:
    g1 = anchor_group(5, ANCHORS, PARAMS)
    g2 = anchor_group(5, list(reversed(ANCHORS)), PARAMS)
    assert g1 == g2
    assert len(g1) == 3
    assert len(set(g1)) == 3


def test_join_moves_only_bands_the_new_anchor_enters() -> None:
    before = BandTable(ANCHORS, PARAMS)
    newcomer = hashlib.sha256(b"new").digest()
    after = BandTable([*ANCHORS, newcomer], PARAMS)
    moved = set(after.moved_bands(before))
    assert moved == set(after.bands_held_by(newcomer))
    assert 0 < len(moved) < PARAMS.band_count


def test_leave_moves_only_bands_the_anchor_held() -> None:
    before = BandTable(ANCHORS, PARAMS)
    leaving = ANCHORS[7]
    after = BandTable([a for a in ANCHORS if a != leaving], PARAMS)
    assert set(after.moved_bands(before)) == set(before.bands_held_by(leaving))
    for band in after.moved_bands(before):
        kept = set(before.group(band)) - {leaving}
        assert kept <= set(after.group(band))


def test_adjacent_bands_wrap_around() -> None:
    assert adjacent_bands(0, PARAMS) == (1, PARAMS.band_count - 1)
    wide = IndexParams(band_bits=6, adjacent_bound=2)
    assert adjacent_bands(10, wide) == (11, 9, 12, 8)


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"band_bits": 0}, "index.band_bits"),
        ({"band_bits": 17}, "index.band_bits"),
        ({"replication": 0}, "index.replication"),
        ({"band_bits": 2, "adjacent_bound": 2}, "index.adjacent_bound"),
        ({"record_ttl_epochs": 0}, "index.record_ttl_epochs"),
    ],
)
def test_params_are_validated(kwargs: dict[str, int], path: str) -> None:
    with pytest.raises(ConfigError) as info:
        IndexParams(**kwargs)
    assert info.value.path == path
