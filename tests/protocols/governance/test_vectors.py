"""Replay the hand-written admission conformance vectors (tests/vectors/governance)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from protocols import codec
from protocols.agent import SCHEMA_VERSION
from protocols.agent.schema import Agent
from protocols.agent.validate import validate_bytes
from protocols.governance.pipeline import AdmitInput, admit
from protocols.governance.signing import TAG_OVERRIDE, Authority, decode_signed
from protocols.governance.view import ZoneView
from protocols.identity.host import Revocation, decode_record

VECTORS = sorted((Path(__file__).resolve().parents[2] / "vectors" / "governance").glob("*.json"))


def view_of(k: dict[str, object]) -> ZoneView:
    auth = k["authority"]
    assert isinstance(auth, dict)
    authority = Authority(tuple(bytes.fromhex(x) for x in auth["keys"]), auth["threshold"])
    peers = tuple(bytes.fromhex(x) for x in k["peer_authorities"])  # type: ignore[attr-defined]
    view = ZoneView(str(k["zone"]), authority, peer_authorities=peers)
    for d in k["descriptors"]:  # type: ignore[attr-defined]
        view.descriptors.add_bytes(bytes.fromhex(d))
    for c in k["contracts"]:  # type: ignore[attr-defined]
        view.add_contract_bytes(bytes.fromhex(c))
    for r in k["host_records"]:  # type: ignore[attr-defined]
        view.admit_host(decode_record(bytes.fromhex(r)))
    for r in k["peer_host_records"]:  # type: ignore[attr-defined]
        view.admit_peer_host(decode_record(bytes.fromhex(r)))
    for r in k["revocations"]:  # type: ignore[attr-defined]
        tree = codec.decode(bytes.fromhex(r), max_bytes=4096)
        view.revoke_host(Revocation(**tree))
    return view


def previous_of(k: dict[str, object]) -> Agent | None:
    """The predecessor state the judging node holds (optional key ``previous``)."""
    raw = k.get("previous")
    if raw is None:
        return None
    assert isinstance(raw, str)
    agent = validate_bytes(bytes.fromhex(raw)).agent
    assert agent is not None
    return agent


class Load:
    """A quarantine counter that reports the vector's load for every host."""

    def __init__(self, n: int) -> None:
        self.n = n

    def count(self, host: bytes) -> int:
        return self.n


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 30
    wires = {json.loads(p.read_text())["expected"]["wire"] for p in VECTORS}
    assert wires == {"ACCEPT", "REJECT", "IGNORE"}
    assert {json.loads(p.read_text())["schema_version"] for p in VECTORS} == {SCHEMA_VERSION}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    data = bytes.fromhex(v["envelope_hex"])
    assert hashlib.sha256(data).hexdigest() == v["envelope_sha256"]
    view = view_of(v["knowledge"])
    for o in v["knowledge"]["overrides"]:
        view.add_override(decode_signed(bytes.fromhex(o), TAG_OVERRIDE), v["epoch"])
    d = admit(
        AdmitInput(
            data,
            view,
            v["epoch"],
            bytes.fromhex(v["local_host"]),
            via_sync=v["via_sync"],
            quarantine=Load(v["quarantine_load"]),
            previous=previous_of(v["knowledge"]),
        )
    )
    got = {"wire": d.wire.value, "disposition": d.disposition.value, "code": d.code}
    assert got == v["expected"], d.reason
