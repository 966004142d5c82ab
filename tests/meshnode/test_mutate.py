"""``POST /mutate`` and ``meshnode agent mutate`` on three real node processes in a line.

n0 hosts an agent whose mutation descriptor allows ``memory`` and ``intent``. A memory change
is signed by n0, admitted there, published, and reaches both members (its state carries the
new ledger event; every member's head for the agent moves on). A role change (not in the
descriptor) and a ``wipe`` verb (the zone's contract DENYs it) are refused by n0 with their
typed codes: nothing is committed or published, and the head's secret is still held (the
next permitted mutation works). A member that is not the agent's host refuses too.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.agent.schema import LedgerKind
from protocols.agent.validate import validate_bytes
from tests.meshnode.svc_harness import start_zone_line
from tests.meshnode.zone_harness import ZONE, ZoneNode, admit_all, cli, poll, zone_nodes

N = 3


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def mutate(node: ZoneNode, uid: str, *sets: str) -> tuple[int, dict[str, Any]]:
    args = ["agent", "mutate", "--zone", ZONE, uid, "--api", node.api, "--json"]
    for s in sets:
        args += ["--set", s]
    done = cli(*args)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def depths(node: ZoneNode, genesis: str) -> list[int]:
    rows = node.get(f"/agents?zone={ZONE}&limit=10000")["agents"]
    return sorted(r["depth"] for r in rows if r["genesis"] == genesis)


def verified_cached(node: ZoneNode) -> float:
    with urllib.request.urlopen(f"http://{node.api}/metrics", timeout=10) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith("meshnode_verified_signatures "):
            return float(line.split()[1])
    raise AssertionError("no verified-signature metric")


def settled(nodes: list[ZoneNode]) -> set[str]:
    """Wait until every node holds the same agent states; return them."""

    def same() -> set[str] | None:
        sets = [n.agent_ids() for n in nodes]
        return sets[0] if all(s == sets[0] for s in sets) else None

    return set(poll(same, 20, "all nodes to hold the same states"))


def test_mutation_reaches_members_and_forbidden_ones_stay_local(line: list[ZoneNode]) -> None:
    t0 = time.monotonic()
    start_zone_line(line)
    admit_all(line, via=line[0])
    host, far = line[0], line[-1]

    agent = host.make_agent(
        {"verb": "note", "args": {"text": "hi"}, "mutable": ["memory", "intent"]}
    )
    status, answer = host.publish_agent(agent)
    assert status == 200, answer
    made = validate_bytes(agent).agent
    assert made is not None
    assert made.lineage is not None
    genesis = made.lineage.genesis_dah.hex()
    executed = poll(lambda: host.executions(), 20, "the first execution")
    for n in line:
        poll(lambda n=n: executed[0]["result_id"] in n.agent_ids(), 20, f"result at {n.name}")

    # A permitted mutation (memory), addressed by a genesis prefix through the CLI.
    rc, result = mutate(host, genesis[:12], "memory.colour=blue", "memory.size=3")
    assert rc == 0, result
    assert result["published"] is True, result
    assert (result["wire"], result["code"]) == ("ACCEPT", "permit-host"), result
    assert result["depth"] == 2, result
    cid = result["content_id"]
    for n in line:
        poll(lambda n=n: cid in n.agent_ids(), 20, f"mutated state at {n.name}")
        assert max(depths(n, genesis)) >= 2, n.name
    state = validate_bytes(far.stored_agent(cid)).agent
    assert state is not None
    assert state.memory is not None
    last = state.memory.ledger[-1]
    assert last.kind is LedgerKind.MUTATION_RESULT
    assert dict(last.data) == {"set": {"colour": "blue", "size": "3"}}
    # The host executes the mutated state (its head is not an execution entry).
    rerun = poll(
        lambda: [e for e in host.executions() if e["content_id"] == cid], 20, "re-execution"
    )
    poll(lambda: rerun[0]["result_id"] in host.agent_ids(), 20, "re-execution result")

    before = settled(line)
    # Forbidden by the agent's descriptor: the role is not mutable.
    rc, refused = mutate(host, genesis, "context.role=suspect")
    assert rc == 1, refused
    assert (refused["code"], refused["published"]) == ("not-mutable", False), refused
    # Forbidden by the zone's policy: the contract DENYs the verb wipe.
    rc, denied = mutate(host, genesis, "intent.verb=wipe")
    assert rc == 1, denied
    assert (denied["wire"], denied["code"], denied["published"]) == (
        "REJECT",
        "policy-deny",
        False,
    ), denied
    assert any(d["subject"] == denied["content_id"] for d in host.decisions())
    # Not the host: a member refuses.
    rc, other = mutate(far, genesis, "memory.colour=red")
    assert (rc, other["code"]) == (1, "not-host"), other
    time.sleep(1.5)  # anything published would have reached the far end by now
    for n in line:
        assert n.agent_ids() == before, n.name
        assert denied["content_id"] not in n.agent_ids()

    # The refusals spent nothing: the next permitted mutation still extends the slope.
    deepest = max(depths(host, genesis))
    rc, again = mutate(host, genesis, "memory.colour=green")
    assert rc == 0, again
    assert again["depth"] == deepest + 1, again
    for n in line:
        poll(lambda n=n: again["content_id"] in n.agent_ids(), 20, f"second change at {n.name}")
        # Admission verified host signatures through the node's bounded cache.
        assert verified_cached(n) > 0, n.name
    assert time.monotonic() - t0 < 60
