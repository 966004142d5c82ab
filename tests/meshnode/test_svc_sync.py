"""``/meshnode/sync/1.0.0``: partition and heal of five real node processes in a line.

The middle node stops; an agent is made and executed on each side of the cut; once gossip's
history of them has expired, the middle node restarts, and anti-entropy brings the newest
state of both agents to every node (each admitted through the pipeline there). A node
joining late pulls the zone file from its neighbour and is admitted to the zone.
"""

from __future__ import annotations

import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.agent.validate import validate_bytes
from tests.meshnode.svc_harness import start_zone_line
from tests.meshnode.zone_harness import ZoneNode, admit_all, poll, zone_nodes

N = 5


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


def genesis_of(data: bytes) -> str:
    agent = validate_bytes(data).agent
    assert agent is not None
    assert agent.lineage is not None
    return agent.lineage.genesis_dah.hex()


def heads(node: ZoneNode) -> dict[str, str]:
    """genesis -> content id of the deepest state the node stores."""
    rows = node.get("/agents?zone=alpha&limit=10000")["agents"]
    best: dict[str, tuple[int, str]] = {}
    for r in rows:
        if r["depth"] >= best.get(r["genesis"], (-1, ""))[0]:
            best[r["genesis"]] = (r["depth"], r["content_id"])
    return {g: cid for g, (_, cid) in best.items()}


def sync_counters(node: ZoneNode) -> Any:
    return node.get("/sync/status")["counters"]


def heartbeats(node: ZoneNode) -> float:
    """The router's heartbeat count, from the node's Prometheus metrics."""
    with urllib.request.urlopen(f"http://{node.api}/metrics", timeout=10) as r:
        text = r.read().decode()
    for row in text.splitlines():
        if row.startswith('meshnode_router_events_total{kind="heartbeats"}'):
            return float(row.split()[-1])
    return 0.0


def test_partition_heal_brings_both_sides_everywhere(line: list[ZoneNode]) -> None:
    start_zone_line(line)
    admit_all(line, via=line[0])
    left, middle, right = line[0], line[2], line[4]

    middle.stop(signal.SIGTERM)
    for n in (line[1], line[3]):
        poll(lambda n=n: n.get("/status")["pubsub_peers"] == 1, 30, f"{n.name} to lose n2")

    made: dict[str, ZoneNode] = {}
    for side in (left, right):
        data = side.make_agent({"verb": "note", "args": {"text": f"made at {side.name}"}})
        status, answer = side.publish_agent(data)
        assert status == 200, answer
        made[genesis_of(data)] = side
    results: dict[str, str] = {}
    for genesis, side in made.items():
        done = poll(lambda s=side: s.executions(), 20, f"execution at {side.name}")
        results[genesis] = done[0]["result_id"]
    left_g = next(g for g, s in made.items() if s is left)
    right_g = next(g for g, s in made.items() if s is right)
    poll(lambda: heads(line[1]).get(left_g) == results[left_g], 20, "left agent at n1")
    poll(lambda: heads(line[3]).get(right_g) == results[right_g], 20, "right agent at n3")
    # The cut holds: neither side has the other's agent.
    for n in line[:2]:
        assert right_g not in heads(n)
    for n in line[3:]:
        assert left_g not in heads(n)

    # Gossip can no longer re-offer them (IHAVE covers the last 3 heartbeats): only sync can.
    for n in (line[1], line[3]):
        since = heartbeats(n)
        poll(lambda n=n, t=since: heartbeats(n) >= t + 4, 15, f"{n.name}'s gossip history")
    middle.start()
    for n in line:
        try:
            poll(lambda n=n: all(heads(n).get(g) == r for g, r in results.items()), 30, n.name)
        except AssertionError as exc:
            seen = [(d["verdict"], d["reason"]) for d in n.decisions()[-6:]]
            raise AssertionError(f"{exc}: {sync_counters(n)} {seen}") from None
    # They came by sync: the middle node and both ends admitted states it delivered.
    assert sync_counters(middle)["states_accepted"] >= 2
    assert sync_counters(left)["states_accepted"] >= 1
    assert sync_counters(right)["states_accepted"] >= 1
    # Once converged, a round costs a digest: the peers answer "same".
    poll(lambda: sync_counters(left)["head_pulls_same"] > 0, 20, "a converged digest round")
    # The zone file is asked for every round too (a lost revocation must not wait for a
    # reconnect), by digest: unchanged, the answer is "same", not the file.
    poll(lambda: sync_counters(left)["zone_pulls_same"] > 0, 20, "a zone digest round")
    # Nothing was executed twice, nor by anyone but each agent's host.
    assert len(left.executions()) == 1
    assert len(right.executions()) == 1
    for n in line[1:4]:
        assert n.executions() == []


def test_late_joiner_pulls_the_zone_file(line: list[ZoneNode]) -> None:
    first, second = line[0], line[1]
    first.write_config([])
    first.start()
    admit_all([first], via=first)
    # Only sync may bring the file: wait until it has left first's gossip window (IHAVE
    # re-offers the last 3 heartbeats' messages, also to a newly grafted peer).
    published_at = heartbeats(first)
    poll(lambda: heartbeats(first) >= published_at + 4, 15, "the file to leave gossip history")
    second.write_config([first.addr()])
    second.start()
    # The newcomer was given no zone objects; sync brings the zone file from its neighbour.
    zone = poll(
        lambda: (z := second.get("/zones")["zones"][0])["descriptors"] and z, 15, "zone file"
    )
    assert zone["active_descriptor"] == 1
    assert zone["policy_refs"] >= 1
    assert sync_counters(second)["zone_objects_new"] >= 3
