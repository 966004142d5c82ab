"""Zone descriptors: signing, refusal of unsigned/foreign versions, activation by epoch."""

from __future__ import annotations

import hashlib

import pytest

from protocols.errors import PolicyError, SchemaError
from protocols.governance.signing import Authority, public_key, signing_key
from protocols.governance.zone import DescriptorSet, QuorumParams, ZoneDescriptor


def _key(name: str):  # type: ignore[no-untyped-def]
    return signing_key(hashlib.sha256(name.encode()).digest())


AUTH = [_key("auth0"), _key("auth1"), _key("auth2")]
AUTHORITY = Authority.of([public_key(k) for k in AUTH], threshold=2)
META = Authority.of([public_key(_key("meta"))])


def desc(version: int, activation: int, zone: str = "fleet") -> ZoneDescriptor:
    return ZoneDescriptor(
        zone=zone,
        version=version,
        activation_epoch=activation,
        contracts=(hashlib.sha256(b"c").digest(),),
        validators=tuple(sorted(public_key(_key(f"v{i}")) for i in range(5))),
        meta_authority=META,
    )


def test_descriptor_round_trips_through_signed_bytes() -> None:
    d = desc(1, 10)
    s = d.sign(AUTH[0], AUTH[1])
    ds = DescriptorSet("fleet", AUTHORITY)
    assert ds.add_bytes(s.encode()) == d
    assert ds.get(d.id) == d


def test_unsigned_under_threshold_and_foreign_descriptors_are_refused() -> None:
    ds = DescriptorSet("fleet", AUTHORITY)
    with pytest.raises(PolicyError):
        ds.add(desc(1, 10).sign(AUTH[0]))
    with pytest.raises(PolicyError):
        ds.add(desc(1, 10).sign(_key("x"), _key("y")))
    with pytest.raises(PolicyError):
        ds.add(desc(1, 10, zone="other").sign(AUTH[0], AUTH[1]))
    assert ds.versions() == ()


def test_supersession_happens_exactly_at_the_declared_epoch() -> None:
    ds = DescriptorSet("fleet", AUTHORITY)
    v2 = ds.add(desc(2, 20).sign(*AUTH[:2]))
    v1 = ds.add(desc(1, 10).sign(*AUTH[:2]))
    assert ds.governing(9) is None
    assert ds.governing(10) == v1
    assert ds.governing(19) == v1
    assert ds.governing(20) == v2
    assert ds.governing(10**6) == v2
    assert [d.version for d in ds.versions()] == [1, 2]


def test_conflicting_or_out_of_order_versions_are_refused() -> None:
    ds = DescriptorSet("fleet", AUTHORITY)
    ds.add(desc(1, 10).sign(*AUTH[:2]))
    with pytest.raises(PolicyError):
        ds.add(desc(1, 11).sign(*AUTH[:2]))
    with pytest.raises(PolicyError):
        ds.add(desc(2, 5).sign(*AUTH[:2]))
    assert ds.add(desc(1, 10).sign(*AUTH[1:])) == desc(1, 10)


def test_quorum_params_keep_k_above_half() -> None:
    with pytest.raises(SchemaError):
        QuorumParams(n=5, k_min=2)
    with pytest.raises(SchemaError):
        QuorumParams(mode="sometimes")
    assert QuorumParams(n=5, k_min=3).k_min == 3
