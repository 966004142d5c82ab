"""``/meshnode/alias/1.0.0`` on five real node processes in a line on loopback.

Four nodes hold the anchor role (r = 3), one does not. An alias registered through one node
resolves from the far end with the agent's lineage head; a scoped alias is refused to a zone
outside its scope; after kill -9 of the anchor asked first the alias still resolves; the
killed anchor restarts with its registrations from its SQLite file.
"""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshnode.cli import main as cli_main
from meshnode.store import AgentRow, Store
from protocols.agent.build import AgentSpec, agent_content_id, encode_agent, new_agent
from protocols.identity.host_secrets import HostSecrets
from tests.meshnode import svc_harness as harness

ANCHOR = ("anchor",)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    roles = [(), ANCHOR, ANCHOR, ANCHOR, ANCHOR]
    line = [(1, 0), (2, 1), (3, 2), (4, 3)]
    c = harness.make_cluster(tmp_path, roles, line)
    # An agent hosted by n0, already in n0's store (as if admitted from its zone topic).
    n0 = c.nodes[0]
    step = new_agent(
        AgentSpec(verb="note", zone=c.zone, epoch=n0.host.ddh.epoch),
        n0.host,
        HostSecrets(),
        random.Random(1),
    )
    assert step.agent.lineage is not None
    c.agent = step.agent
    data = encode_agent(step.agent)
    store = Store.open(n0.data / "store.sqlite3")
    try:
        store.put_agent(
            AgentRow(
                agent_content_id(step.agent),
                c.zone,
                step.agent.lineage.genesis_dah,
                step.entry.dah,
                "EXECUTE",
                step.entry.epoch,
                data,
            )
        )
    finally:
        store.close()
    yield from harness.running(c)


def resolve(node: Any, alias: str, **extra: str) -> Any:
    return node.get("/alias/resolve", alias=alias, **extra)


def test_alias_register_resolve_refuse_and_survive_anchor_loss(cluster: Any) -> None:
    harness.start(cluster.nodes)
    n0, n4 = cluster.nodes[0], cluster.nodes[4]
    anchor_keys = {n.host.key.hex() for n in cluster.nodes if n.roles}

    # Every node hears all four anchors through push-pull exchange along the line.
    for node in cluster.nodes:
        harness.poll(
            lambda node=node: (
                {a["key"] for a in node.get("/alias/anchors")["anchors"]} == anchor_keys
            ),
            30,
            f"{node.name} to hear every anchor",
        )
    # Converged views cost a digest per exchange, not the announcement list.
    harness.poll(
        lambda: n0.get("/alias/anchors")["counters"]["exchanges_same"] > 0, 20, "digest rounds"
    )
    assert not n0.get("/alias/anchors")["anchor"]
    assert n4.get("/alias/anchors")["anchor"]

    # Register through the CLI on n0 (not an anchor): the head comes from n0's store.
    lineage = cluster.agent.lineage
    uid, head = lineage.genesis_dah.hex(), lineage.entries[-1].dah.hex()
    done = cluster.cli("alias", "register", uid, "truck-17", "--api", n0.api, "--json")
    assert done.returncode == 0, done.stderr
    registered = json.loads(done.stdout)
    assert registered["head"] == head
    assert registered["stored"] == len(registered["anchors"]) >= 3
    assert all(row["anchor"] in anchor_keys for row in registered["anchors"])

    # Resolve from the far end of the line (CLI, JSON): found, with the lineage head.
    done = cluster.cli("resolve", "truck-17", "--api", n4.api, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout)
    assert found["outcome"] == "found"
    assert found["registration"]["uid"] == uid
    assert found["registration"]["head"] == head
    assert found["hops"] == 1
    by_uid = cluster.nodes[2].get("/alias/resolve", uid=uid)
    assert by_uid["outcome"] == "found"
    assert by_uid["registration"]["alias"] == "truck-17"

    # Unknown alias: not found after the group and the adjacent bands.
    missing = resolve(n4, "no-such-alias")
    assert missing["outcome"] == "not-found"
    assert missing["hops"] >= 2

    # A scoped action alias: our zone may not resolve it (the anchors refuse it).
    status, scoped = n0.request(
        "POST",
        "/alias/register",
        {"uid": uid, "alias": "fetch:secrets", "head": head, "depth": 0, "scope": ["bravo"]},
    )
    assert status == 200, scoped
    refused = resolve(n4, "fetch:secrets")
    assert refused["outcome"] == "refused"
    assert "outside the alias scope" in refused["reason"]
    done = cluster.cli("resolve", "fetch:secrets", "--api", n4.api)
    assert done.returncode == 1
    # Claiming the other zone does not help: n4's host record does not admit it to "bravo".
    assert resolve(n4, "fetch:secrets", zone="bravo")["outcome"] == "refused"

    # kill -9 the anchor n0 (not an anchor itself) asks first; the alias still resolves.
    first = resolve(n0, "truck-17")["asked"][0]
    victim = next(n for n in cluster.nodes if n.host.key.hex() == first)
    stored_before = victim.get("/alias/anchors")["registrations"]
    assert stored_before >= 1
    victim.stop(signal.SIGKILL)
    for node in (n for n in cluster.nodes if n is not victim):
        again = resolve(node, "truck-17")
        assert again["outcome"] == "found", again
        assert again["registration"]["head"] == head
        assert first in again["asked"]

    # The killed anchor restarts with its registrations (committed before acknowledged).
    harness.start([victim])
    assert victim.get("/alias/anchors")["registrations"] == stored_before


def test_alias_cli_help() -> None:
    runner = CliRunner()
    for args in (["alias", "register", "--help"], ["resolve", "--help"], ["alias", "--help"]):
        done = runner.invoke(cli_main, args)
        assert done.exit_code == 0, done.output
        assert "Usage" in done.output
    bad = runner.invoke(cli_main, ["alias", "register", "xyz", "a", "--api", "127.0.0.1:1"])
    assert bad.exit_code == 2
    assert "UID must be hex" in bad.output
