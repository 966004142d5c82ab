"""Replay the hand-written trust-slope conformance vectors (tests/vectors/identity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from protocols import codec
from protocols.agent import SCHEMA_VERSION
from protocols.agent.validate import entry_from_cbor
from protocols.identity.host import MemoryHostDirectory, Revocation, decode_record
from protocols.identity.recovery import RecoveryRule
from protocols.identity.slope import SlopeParams, verify_slope

VECTORS = sorted((Path(__file__).resolve().parents[2] / "vectors" / "identity").glob("*.json"))


def _revocation(data: bytes) -> Revocation:
    tree: Any = codec.decode(data, max_bytes=1024)
    return Revocation(tree["host_key"], tree["epoch"], tree["authority"], tree["signature"])


def _rule(spec: dict[str, Any] | None) -> RecoveryRule | None:
    if spec is None:
        return None
    eligible = tuple(bytes.fromhex(k) for k in spec.pop("eligible"))
    return RecoveryRule(eligible=eligible, **spec)


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 20
    reasons = {json.loads(p.read_text())["reason"] for p in VECTORS}
    assert {"ok", "bad-reveal", "wrong-signer", "unknown-host", "non-descendant"} <= reasons


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    assert v["schema_version"] == SCHEMA_VERSION
    hosts = MemoryHostDirectory([bytes.fromhex(v["authority"])])
    for record in v["host_records"]:
        hosts.admit(decode_record(bytes.fromhex(record)))
    for revocation in v["revocations"]:
        hosts.revoke(_revocation(bytes.fromhex(revocation)))
    trees = codec.decode(bytes.fromhex(v["entries"]), max_bytes=1 << 20)
    entries = [entry_from_cbor(t, f"lineage.entries[{i}]") for i, t in enumerate(trees)]
    trusted = None
    if v["trusted_head"] is not None:
        trusted = entry_from_cbor(codec.decode(bytes.fromhex(v["trusted_head"]), max_bytes=4096))
    result = verify_slope(
        entries,
        trusted,
        hosts,
        epoch=v["epoch"],
        params=SlopeParams(window=v["window"], recovery=_rule(v["recovery"])),
        head_state=None if v["head_state"] is None else bytes.fromhex(v["head_state"]),
    )
    assert (result.reason.value, result.step) == (v["reason"], v["step"]), result.message
