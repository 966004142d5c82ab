"""``meshnode agent migrate`` against three real node processes in a line.

n0 hosts an agent; the CLI, given n2's libp2p peer id and a genesis prefix, runs the
handoff through n0's ``POST /migrate``: the seal and the admission reach every member and
n2 executes the agent. Asking n0 again, or naming a peer that holds no host record, fails
with one line and exit 1, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocols.agent.validate import validate_bytes
from tests.meshnode.svc_harness import start_zone_line
from tests.meshnode.zone_harness import ZONE, ZoneNode, admit_all, cli, poll, zone_nodes

N = 3


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def test_cli_migrate_moves_the_agent_to_the_named_peer(line: list[ZoneNode]) -> None:
    start_zone_line(line)
    admit_all(line, via=line[0])
    old, new = line[0], line[2]
    agent = old.make_agent({"verb": "note", "args": {"text": "move me"}})
    status, answer = old.publish_agent(agent)
    assert status == 200, answer
    made = validate_bytes(agent).agent
    assert made is not None
    assert made.lineage is not None
    genesis = made.lineage.genesis_dah.hex()
    executed = poll(lambda: old.executions(), 20, "execution at the old host")
    for n in line:
        poll(lambda n=n: executed[0]["result_id"] in n.agent_ids(), 20, f"result at {n.name}")

    done = cli(
        "agent", "migrate", "--zone", ZONE, genesis[:10], "--to", new.peer_id, "--api", old.api,
        "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    moved = json.loads(done.stdout)
    assert moved["to"] == new.get("/status")["host_key"]
    assert moved["admission"]["wire"] == "ACCEPT", moved
    ids = {moved["seal"]["content_id"], moved["admission"]["content_id"]}
    for n in line:
        poll(lambda n=n: ids <= n.agent_ids(), 20, f"seal and admission at {n.name}")
    ran = poll(lambda: new.executions(), 20, "execution at the new host")
    assert [e["content_id"] for e in ran] == [moved["admission"]["content_id"]]

    # n0 is no longer the host: one line on stderr, exit 1 (without --json).
    again = cli("agent", "migrate", "--zone", ZONE, genesis, "--to", new.peer_id, "--api", old.api)
    assert again.returncode == 1, again.stdout
    assert "migration refused" in again.stderr, again.stderr
    assert "next signer" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr + again.stdout
    # A peer id that no host record names.
    nobody = cli(
        "agent", "migrate", "--zone", ZONE, genesis, "--to", "12D3KooWNoSuchPeer", "--api", new.api
    )
    assert nobody.returncode == 1
    assert "no admitted host" in nobody.stderr, nobody.stderr
    assert "Traceback" not in nobody.stderr
