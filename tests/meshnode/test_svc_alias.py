"""``/meshnode/alias/1.1.0`` on five real node processes in a line on loopback.

Four nodes hold the anchor role (r = 3), one does not. An alias registered through one node
resolves from the far end with the agent's lineage head; a scoped alias is refused to a zone
outside its scope; another admitted node's takeover attempt with a deeper head of its own
(and its attempt to re-bind the alias to its own agent) is refused by every anchor over the
wire and the alias keeps its head; after kill -9 of the anchor asked first the alias still
resolves; the killed anchor restarts with its registrations from its SQLite file.
"""

from __future__ import annotations

import hashlib
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
from protocols.agent.schema import Agent, MutationClass
from protocols.identity import dah
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
    _put(n0, c.zone, step.agent, step.agent.lineage.genesis_dah)
    # The intruder n1 (an admitted anchor) runs a deeper slope of its own, filed in its
    # store under the victim's UID too, so its API will try to register it for that UID.
    n1, rng = c.nodes[1], random.Random(2)
    own = new_agent(
        AgentSpec(verb="note", zone=c.zone, epoch=n1.host.ddh.epoch), n1.host, HostSecrets(), rng
    )
    agent, secrets = own.agent, own.secrets
    for _ in range(3):
        made = dah.mutate(
            agent,
            dah.Change(MutationClass.STATE_TRANSITION),
            n1.host,
            secrets,
            n1.host.ddh.epoch,
            rng,
        )
        agent, secrets = made.agent, made.secrets
    assert agent.lineage is not None
    c.intruder = agent
    _put(n1, c.zone, agent, agent.lineage.genesis_dah)
    _put(n1, c.zone, agent, step.agent.lineage.genesis_dah)
    yield from harness.running(c)


def _put(node: Any, zone: str, agent: Agent, genesis: bytes) -> None:
    assert agent.lineage is not None
    head = agent.lineage.entries[-1]
    store = Store.open(node.data / "store.sqlite3")
    try:
        store.put_agent(
            AgentRow(
                hashlib.sha256(agent_content_id(agent) + genesis).digest(),
                zone,
                genesis,
                head.dah,
                "EXECUTE",
                head.epoch,
                encode_agent(agent),
            )
        )
    finally:
        store.close()


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
        {"uid": uid, "alias": "fetch:secrets", "head": head, "scope": ["bravo"]},
    )
    assert status == 200, scoped
    refused = resolve(n4, "fetch:secrets")
    assert refused["outcome"] == "refused"
    assert "outside the alias scope" in refused["reason"]
    done = cluster.cli("resolve", "fetch:secrets", "--api", n4.api)
    assert done.returncode == 1
    # Claiming the other zone does not help: n4's host record does not admit it to "bravo".
    assert resolve(n4, "fetch:secrets", zone="bravo")["outcome"] == "refused"

    # Takeover attempt over the wire: n1 (admitted, an anchor) registers its own deeper head
    # for the victim's UID, then tries to re-bind the alias to its own UID. Every anchor
    # refuses; nothing is stored and the alias keeps its head.
    n1 = cluster.nodes[1]
    deeper = cluster.intruder.lineage.entries[-1]
    assert deeper.totals.depth > lineage.entries[-1].totals.depth
    status, taken = n1.request("POST", "/alias/register", {"uid": uid, "alias": "truck-17"})
    assert status == 503, taken
    assert "not-descendant" in json.dumps(taken), taken
    own_uid = cluster.intruder.lineage.genesis_dah.hex()
    status, rebound = n1.request("POST", "/alias/register", {"uid": own_uid, "alias": "truck-17"})
    assert status == 503, rebound
    assert "alias-bound" in json.dumps(rebound), rebound
    kept = resolve(n4, "truck-17")
    assert kept["registration"]["uid"] == uid
    assert kept["registration"]["head"] == head
    refused_total = sum(
        n.get("/alias/anchors")["counters"]["registrations_refused"] for n in cluster.nodes
    )
    assert refused_total >= 6

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
