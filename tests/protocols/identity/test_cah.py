"""Content anchor hashes (SPEC 2.14): static ids and the same band function as the index."""

from __future__ import annotations

import pytest

from protocols.errors import SchemaError
from protocols.identity.cah import anchor, band, cah
from protocols.index.band import IndexParams, band_of, uid_name


def test_the_same_bytes_give_the_same_cah() -> None:
    assert cah(b"picture", "image") == cah(b"picture", "image")
    assert cah(b"picture", "image") != cah(b"picture", "text")
    assert cah(b"picture", "image") != cah(b"picturf", "image")
    assert len(cah(b"")) == 32


@pytest.mark.parametrize("bits", [2, 8, 16])
def test_the_band_is_the_index_band_of_the_uid(bits: int) -> None:
    for n in range(50):
        uid = cah(bytes([n]) * 10)
        assert band(uid, bits) == band_of(
            uid_name(uid), IndexParams(band_bits=bits, adjacent_bound=0)
        )


def test_anchor_and_bounds() -> None:
    made = anchor(b"abc", "blob", 8)
    assert (made.uid, made.band, made.size) == (cah(b"abc", "blob"), band(made.uid, 8), 3)
    with pytest.raises(SchemaError):
        band(made.uid, 0)
