"""Quarantine store (SPEC 5 item 11): TTL, release by re-validation or override, quota."""

from __future__ import annotations

from protocols.governance.quarantine import (
    Event,
    Held,
    MemoryQuarantine,
    release_by_overrides,
    revalidate,
)


def held(i: int, host: bytes = b"h", ttl: int = 5) -> Held:
    return Held(bytes([i]) * 32, b"data", host, "fleet", bytes([i]) * 32, 10, 10 + ttl, "suspect")


def test_expiry_is_a_rejection_and_is_recorded() -> None:
    store = MemoryQuarantine()
    store.hold(held(1, ttl=2), quota=8, epoch=10)
    store.hold(held(2, ttl=5), quota=8, epoch=10)
    assert store.expire(11) == []
    out = store.expire(12)
    assert [(r.event, r.key[0]) for r in out] == [(Event.EXPIRED, 1)]
    assert len(store.held_keys()) == 1


def test_release_by_revalidation_and_by_override() -> None:
    store = MemoryQuarantine()
    for i in range(3):
        store.hold(held(i), quota=8, epoch=10)
    out = revalidate(store, lambda h: {0: False, 1: True, 2: None}[h.key[0]], epoch=11)
    assert [(r.event, r.key[0]) for r in out] == [
        (Event.RELEASED_REVALIDATED, 0),
        (Event.EXPIRED, 2),
    ]
    out = release_by_overrides(store, lambda h: b"\x09" * 32, epoch=12)
    assert [r.event for r in out] == [Event.RELEASED_OVERRIDE]
    assert store.held_keys() == []


def test_per_host_quota_refuses_and_records() -> None:
    store = MemoryQuarantine()
    assert store.hold(held(1, b"a"), quota=1, epoch=1).event is Event.HELD
    assert store.hold(held(2, b"a"), quota=1, epoch=1).event is Event.REFUSED_QUOTA
    assert store.hold(held(3, b"b"), quota=1, epoch=1).event is Event.HELD
    assert len(store.records) == 3
