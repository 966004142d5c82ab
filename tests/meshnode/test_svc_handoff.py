"""``/meshnode/handoff/1.0.0`` on five real node processes in a line, joined to one zone.

n1 hosts an agent and migrates it to n3: n3 sends a commitment, n1 seals, n3 admits. After
the handoff every member stores the seal and the admission, the new host executes the agent
(its extension is accepted everywhere), and the old host, signing a successor of the agent's
current state with its own host key, is REJECTed by every member; its node refuses to
migrate the agent again.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash, extend, state_digest
from protocols.agent.schema import MutationClass
from protocols.agent.validate import validate_bytes
from protocols.identity.dah import StepMaterial, make_entry, next_totals
from protocols.identity.ddh import DdhState
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import commitment
from tests.meshnode.svc_harness import start_zone_line
from tests.meshnode.zone_harness import ZoneNode, admit_all, content_id, poll, zone_nodes

N = 5


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def host_of(node: ZoneNode) -> LocalHost:
    """The node's own host identity, read from its store (the cheating host's own key)."""
    conn = node.db()
    try:
        seed, raw = conn.execute("SELECT host_key, ddh_state FROM host_identity").fetchone()
    finally:
        conn.close()
    return LocalHost(bytes(seed), DdhState.from_cbor(codec.decode(bytes(raw), max_bytes=4096)))


def extend_as(agent_bytes: bytes, host: LocalHost) -> bytes:
    """A successor of the agent's head signed by ``host`` (which holds no secret for it)."""
    agent = validate_bytes(agent_bytes).agent
    assert agent is not None
    assert agent.lineage is not None
    head = agent.lineage.entries[-1]
    epoch = max(int(time.time()) // 10, head.epoch)
    secret = os.urandom(32)
    entry = make_entry(
        StepMaterial(
            prev=entry_hash(head),
            prev_dah=head.dah,
            cls=MutationClass.STATE_TRANSITION,
            epoch=epoch,
            zone=head.zone,
            link=b"",
            state=state_digest(agent),
            reveal=os.urandom(32),
            salt=os.urandom(16),
            commit=commitment(secret),
            next_signer=host.key,
            totals=next_totals(head, MutationClass.STATE_TRANSITION, head.zone, epoch),
            descriptor=head.descriptor,
        ),
        host.with_record(agent.lineage.entries[0].host_record),
    )
    return encode_agent(dataclasses.replace(agent, lineage=extend(agent.lineage, entry)))


def test_handoff_moves_the_agent_and_locks_out_the_old_host(line: list[ZoneNode]) -> None:
    start_zone_line(line)
    admit_all(line, via=line[0])
    old, new = line[1], line[3]
    new_key = new.get("/status")["host_key"]

    # n1 hosts an agent; it executes it once and the result reaches everyone.
    agent = old.make_agent({"verb": "note", "args": {"text": "move me"}})
    status, answer = old.publish_agent(agent)
    assert status == 200, answer
    genesis = validate_bytes(agent).agent.lineage.genesis_dah.hex()  # type: ignore[union-attr]
    executed = poll(lambda: old.executions(), 20, "execution at the old host")
    for n in line:
        poll(lambda n=n: executed[0]["result_id"] in n.agent_ids(), 20, f"result at {n.name}")

    # Migrate: commitment from n3, seal by n1, admission by n3.
    body = json.dumps({"genesis": genesis, "to": new_key}).encode()
    status, moved = old.call("POST", "/migrate", body)
    assert status == 200, moved
    seal_id = moved["seal"]["content_id"]
    admission_id = moved["admission"]["content_id"]
    assert moved["admission"]["wire"] == "ACCEPT"
    for n in line:
        poll(lambda n=n: {seal_id, admission_id} <= n.agent_ids(), 20, f"handoff at {n.name}")

    # The new host's extension: it executes the admitted agent; every member accepts it.
    ran = poll(lambda: new.executions(), 20, "execution at the new host")
    assert [e["content_id"] for e in ran] == [admission_id]
    for n in line:
        poll(lambda n=n: ran[0]["result_id"] in n.agent_ids(), 20, f"new result at {n.name}")
    assert [e["content_id"] for e in old.executions()] == [executed[0]["content_id"]]

    # The old host signs a successor of the agent's current state: every member REJECTs it.
    current = line[0].stored_agent(ran[0]["result_id"])
    forged = extend_as(current, host_of(old))
    codes = set()
    for n in line:
        status, verdict = n.publish_agent(forged)
        assert status == 422, (n.name, verdict)
        assert verdict["wire"] == "REJECT", (n.name, verdict)
        codes.add(verdict["code"])
        assert content_id(forged) not in n.agent_ids()
    assert codes == {"wrong-signer"}, codes
    # Control: the same construction signed by the new host is not refused for its signer.
    status, control = line[0].publish_agent(extend_as(current, host_of(new)))
    assert "signer" not in control["code"], control

    # The old host's node no longer hosts the agent.
    status, again = old.call("POST", "/migrate", body)
    assert status == 409
    assert "next signer" in again["error"]
