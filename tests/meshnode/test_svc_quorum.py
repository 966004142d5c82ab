"""``/meshnode/quorum/1.0.0`` on five real node processes: four validators, one proposer.

A proposal gets a certificate that verifies against the descriptor; a second proposal for
the same scope gets no vote (each validator signed one proposal per scope); the vote is on
disk before it is sent, so a validator killed with -9 and restarted still refuses; losing
one validator still certifies (k = 3 of 4), losing two does not.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols import codec
from protocols.governance.quorum import QuorumCertificate, scope_of, verify_certificate
from protocols.governance.zone import QuorumParams
from tests.meshnode import svc_harness as harness

VALIDATOR = ("validator",)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    roles = [(), VALIDATOR, VALIDATOR, VALIDATOR, VALIDATOR]
    line = [(1, 0), (2, 1), (3, 2), (4, 3)]
    params = QuorumParams(n=4, k_min=3, health_ceiling=4, local_min=3)
    yield from harness.running(harness.make_cluster(tmp_path, roles, line, quorum=params))


def propose(node: Any, genesis: bytes, subject: bytes) -> Any:
    epoch = int(time.time()) // 10
    body = {"genesis": genesis.hex(), "genesis_epoch": epoch, "subject": subject.hex()}
    status, answer = node.request("POST", "/quorum/propose", body)
    assert status == 200, answer
    return answer


def stored_vote(node: Any, scope: bytes) -> bytes | None:
    conn = sqlite3.connect(f"file:{node.data / 'store.sqlite3'}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT proposal_hash FROM votes_cast WHERE zone = 'alpha' AND scope = ?", (scope,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else bytes(row[0])


def errors(result: Any) -> dict[str, str]:
    return {v["key"]: v["error"] for v in result["voters"]}


def test_quorum_certifies_once_per_scope_durably(cluster: Any) -> None:
    harness.start(cluster.nodes)
    n0, n1, n2, n3, n4 = cluster.nodes
    validators = {n.host.key.hex(): n for n in cluster.nodes if n.roles}
    genesis, a, b = os.urandom(32), os.urandom(32), os.urandom(32)
    scope = scope_of("alpha", genesis)

    # The non-validator n0 collects a certificate from all four validators.
    first = propose(n0, genesis, a)
    assert first["outcome"] == "CERTIFIED", first
    assert (first["n"], first["k"], first["approvals"]) == (4, 3, 4)
    assert set(errors(first)) == set(validators)
    cert = QuorumCertificate.from_cbor(
        codec.decode(bytes.fromhex(first["certificate"]), max_bytes=1 << 16)
    )
    assert verify_certificate(cert, cluster.descriptor, scope, a).ok
    assert not verify_certificate(cert, cluster.descriptor, scope, b).ok

    # Every validator recorded its vote for `a`; the proposer voted nothing.
    for node in validators.values():
        assert stored_vote(node, scope) == a
    assert stored_vote(n0, scope) is None

    # A competing proposal for the same scope (even from a validator) gets no vote.
    second = propose(n2, genesis, b)
    assert second["outcome"] != "CERTIFIED"
    assert second["approvals"] == 0
    assert set(errors(second).values()) == {"already-voted"}
    assert second["certificate"] is None

    # kill -9 and restart a validator: its vote survived; it still refuses `b`.
    n3.stop(signal.SIGKILL)
    harness.start([n3])
    third = propose(n0, genesis, b)
    assert errors(third)[n3.host.key.hex()] == "already-voted"
    assert third["approvals"] == 0
    # Asking again for the same proposal is a resend, not a second vote.
    again = propose(n1, genesis, a)
    assert again["outcome"] == "CERTIFIED"

    # One validator down: 3 of 4 is still k. Two down: k - 1 never certifies.
    n4.stop(signal.SIGKILL)
    lossy = propose(n0, os.urandom(32), a)
    assert lossy["outcome"] == "CERTIFIED"
    assert lossy["approvals"] == 3
    assert errors(lossy)[n4.host.key.hex()] == "unreachable"
    n3.stop(signal.SIGKILL)
    short = propose(n0, os.urandom(32), a)
    assert short["outcome"] == "PENDING"
    assert short["approvals"] == 2
    assert short["certificate"] is None

    # Bad proposals are typed API errors.
    status, body = n0.request("POST", "/quorum/propose", {"genesis": "zz", "genesis_epoch": 0})
    assert status == 400
    assert "genesis" in body["error"]
    status, body = n0.request(
        "POST", "/quorum/propose", {"zone": "nope", "genesis": "00" * 32, "genesis_epoch": 0}
    )
    assert status == 400
    assert "not joined" in body["error"]
