"""Replay the hand-written agent conformance vectors (tests/vectors/agent)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from protocols.agent import SCHEMA_VERSION, validate_bytes

VECTORS = sorted((Path(__file__).resolve().parents[2] / "vectors" / "agent").glob("*.json"))


def test_there_are_enough_vectors() -> None:
    assert len(VECTORS) >= 40
    statuses = {json.loads(p.read_text())["status"] for p in VECTORS}
    assert statuses == {"FULL", "PARTIAL", "INVALID"}
    assert {json.loads(p.read_text())["schema_version"] for p in VECTORS} == {SCHEMA_VERSION}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    data = bytes.fromhex(vector["input_hex"])
    result = validate_bytes(data)
    assert result.status.value == vector["status"]
    assert sorted({p.path for p in result.problems}) == sorted(vector["problem_paths"])
    assert hashlib.sha256(data).hexdigest() == vector["content_id"]
    assert (result.agent is None) == (vector["status"] == "INVALID")
