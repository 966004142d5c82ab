"""A revocation applied in two zones that share an authority is kept for both, across a
restart (it names no zone, so one row key for both let the second replace the first)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from nacl.signing import SigningKey

from meshnode.config import NodeConfig, ZoneSection
from meshnode.store import Store
from meshnode.zones import Zones
from protocols.governance.bundle import ZoneBundle
from protocols.governance.signing import Authority
from protocols.identity.host import sign_revocation

ZONES = ("alpha", "beta")


def _zones(data_dir: Path, key: SigningKey) -> tuple[Zones, Store]:
    config = NodeConfig.for_data_dir(data_dir)
    sections = tuple(ZoneSection(z, (bytes(key.verify_key),)) for z in ZONES)
    config = NodeConfig(node=config.node, zones=sections)
    store = Store.open(config.store_path)
    return Zones(config, store), store


def test_a_revocation_in_two_zones_is_kept_for_both(tmp_path: Path) -> None:
    key = SigningKey(hashlib.sha256(b"authority").digest())
    authority = Authority.of([bytes(key.verify_key)], 1)
    revoked = bytes(32)
    rev = sign_revocation(revoked, 3, key)
    zones, store = _zones(tmp_path, key)
    for zone in ZONES:
        bundle = ZoneBundle(zone=zone, authority=authority, revocations=[rev])
        assert zones.apply_control(zone, bundle.encode(), 5)["revocations"] == 1
    for zone in ZONES:
        (row,) = store.host_records(zone)
        assert (row.revoked, row.host_key) == (True, revoked)
    store.close()
    _, reopened = _zones(tmp_path, key)  # what a restarted node replays, zone by zone
    assert [len(reopened.host_records(z)) for z in ZONES] == [1, 1]
