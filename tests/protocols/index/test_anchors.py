"""Anchor records: signed, expiring, role-checked; views converge after one announcement round."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.errors import SignatureError
from protocols.index.anchors import (
    AnchorDirectory,
    sign_anchor_record,
    signing_key_from_seed,
    verify_anchor_record,
)
from protocols.index.band import IndexParams

PARAMS = IndexParams(band_bits=4, replication=2, record_ttl_epochs=10)
KEYS = [signing_key_from_seed(bytes([i]) * 32) for i in range(8)]


def test_record_signature_verifies_and_forgery_does_not() -> None:
    record = sign_anchor_record(KEYS[0], issued_epoch=5, ttl_epochs=10)
    verify_anchor_record(record)
    forged = replace(record, expires_epoch=10_000)
    with pytest.raises(SignatureError):
        verify_anchor_record(forged)
    stolen = replace(record, anchor_key=bytes(KEYS[1].verify_key))
    with pytest.raises(SignatureError):
        verify_anchor_record(stolen)


def test_only_hosts_granted_the_role_anchor() -> None:
    allowed = {bytes(KEYS[0].verify_key)}
    directory = AnchorDirectory(PARAMS, may_anchor=lambda key: key in allowed)
    assert directory.hear(sign_anchor_record(KEYS[0], 0, 10), epoch=0)
    assert not directory.hear(sign_anchor_record(KEYS[1], 0, 10), epoch=0)
    assert directory.live(0) == (bytes(KEYS[0].verify_key),)


def test_records_expire() -> None:
    directory = AnchorDirectory(PARAMS, may_anchor=lambda _k: True)
    directory.hear(sign_anchor_record(KEYS[0], 0, 10), epoch=0)
    assert directory.live(9) == (bytes(KEYS[0].verify_key),)
    assert directory.live(10) == ()
    assert not directory.hear(sign_anchor_record(KEYS[1], 0, 10), epoch=10)


def test_two_views_converge_after_one_announcement_round() -> None:
    a = AnchorDirectory(PARAMS, may_anchor=lambda _k: True)
    b = AnchorDirectory(PARAMS, may_anchor=lambda _k: True)
    for key in KEYS[:5]:
        a.hear(sign_anchor_record(key, 0, 10), epoch=0)
    for key in KEYS[3:]:
        b.hear(sign_anchor_record(key, 0, 10), epoch=0)
    assert a.live(0) != b.live(0)
    for record in a.records():
        b.hear(record, epoch=1)
    for record in b.records():
        a.hear(record, epoch=1)
    assert a.live(1) == b.live(1)
    assert [a.table(1).group(x) for x in range(16)] == [b.table(1).group(x) for x in range(16)]


def test_roster_publisher_is_one_live_anchor_and_rotates_by_window() -> None:
    from protocols.index.anchors import roster_publisher

    live = tuple(sorted(bytes(k.verify_key) for k in KEYS))
    chosen = {roster_publisher(live, window) for window in range(50)}
    assert chosen <= set(live)
    assert len(chosen) > 1
    assert roster_publisher(live, 3) == roster_publisher(tuple(reversed(live)), 3)
    assert roster_publisher((), 3) is None
