"""``meshnode demo`` end to end: five real node processes, its summary numbers, and that it
leaves no node process behind, neither after a normal run nor after Ctrl-C (SIGINT to the
demo process alone, so the demo itself must stop its children)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[2]
DEMO = [sys.executable, "-m", "meshnode.cli", "demo"]


def node_process_alive(pid: int) -> bool:
    """Is ``pid`` a live meshnode node process (not a zombie, not a reused pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return b"meshnode.node" in cmdline and state != "Z"


@pytest.fixture
def node_pids() -> Iterator[list[int]]:
    """Node pids the test learns of; any still alive afterwards is killed (and fails the test
    through its own assertion first)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if node_process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_quick_demo_summary_and_no_survivors(node_pids: list[int]) -> None:
    run = subprocess.run(
        [*DEMO, "--quick", "--json"], cwd=REPO, capture_output=True, timeout=240, check=False
    )
    summary: dict[str, Any] = json.loads(run.stdout.decode().strip().splitlines()[-1])
    nodes = summary["nodes"]
    node_pids.extend(n["pid"] for n in nodes)
    assert run.returncode == 0, run.stderr.decode()[-3000:]

    # every process it started is gone, each stopped cleanly by SIGTERM (exit code 0)
    assert len(nodes) == 5
    assert len(set(node_pids)) == 5
    assert [pid for pid in node_pids if node_process_alive(pid)] == []
    assert [n["exit_code"] for n in nodes] == [0, 0, 0, 0, 0]
    assert summary["workspace"] is None  # temp dir removed

    steps = {s["name"]: s for s in summary["steps"]}
    assert [s["status"] for s in summary["steps"] if s["status"] == "failed"] == []
    for name in ("authority key", "start 5 nodes", "ring up", "plain topic"):
        assert steps[name]["status"] == "ok", steps[name]

    # plain topic: the ring carried every node's message to every node
    assert [n["peers"] for n in nodes] == [2, 2, 2, 2, 2]
    assert [n["messages"] for n in nodes] == [5, 5, 5, 5, 5]

    if not all(n["zone_api"] for n in nodes):
        assert steps["zones"]["status"] == "not available"
        return
    # zones: alpha = n0..n3, beta = n2..n4
    assert [n["zones"] for n in nodes] == [
        ["alpha"],
        ["alpha"],
        ["alpha", "beta"],
        ["alpha", "beta"],
        ["beta"],
    ]
    for name in ("zone files", "zones published", "honest agents", "records match"):
        assert steps[name]["status"] == "ok", steps[name]
    agents = {a["label"]: a for a in summary["agents"]}
    base = ["honest note (n0)", "honest note (n2)", "honest report (n4)", "suspect"]
    base += ["denied wipe", "forged claim", "partial echo"]
    migrated = steps["migration"]["status"] == "ok"
    if migrated:
        base += ["migration seal", "migrated agent"]
    else:
        assert steps["migration"]["status"] == "not available", steps["migration"]
    assert sorted(agents) == sorted(base)
    assert [a["label"] for a in summary["agents"] if a["ok"] is not True] == []
    observed = agents["honest note (n0)"]["observed"]
    assert observed == "stored at 4/4; executed by n0; new state at 4/4"
    assert agents["forged claim"]["observed"] == "REJECT at n2; seen at n2"
    assert agents["suspect"]["observed"] == "quarantined at 4/4; stored at 0; executed nowhere"

    # each node's own tally. Accepted: each honest agent and its host's executed state at
    # every member of its zone, the partial agent in alpha, and (migration) the seal in alpha,
    # the admitted agent and its new host's executed state in beta. Quarantined: the suspect
    # at every alpha member. Refused: the wipe at n1 and the forgery at n2, nowhere else.
    # Executed: each honest agent by its host only (n3 runs the migrated one).
    if migrated:
        assert [n["accept"] for n in nodes] == [6, 6, 10, 10, 4]
        assert [n["execute"] for n in nodes] == [1, 0, 1, 1, 1]
    else:
        assert [n["accept"] for n in nodes] == [5, 5, 7, 7, 2]
        assert [n["execute"] for n in nodes] == [1, 0, 1, 0, 1]
    assert [n["reject"] for n in nodes] == [0, 1, 1, 0, 0]
    assert [n["quarantine"] for n in nodes] == [1, 1, 1, 1, 0]


def children_of(pid: int) -> list[int]:
    """Child pids of ``pid``'s main thread (Linux /proc; the demo spawns from that thread)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_while_nodes_start_stops_every_node(node_pids: list[int]) -> None:
    demo = subprocess.Popen(
        [*DEMO, "--json"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert demo.stderr is not None
        first = demo.stderr.readline()  # "demo workspace /tmp/meshnode-demo-..."
        match = re.search(r"demo workspace (\S+)", first)
        assert match, first
        root = Path(match.group(1))
        deadline = time.monotonic() + 60
        # five children that exec'd the node (right after fork a child is still the demo)
        while not (
            len(kids := children_of(demo.pid)) == 5 and all(node_process_alive(k) for k in kids)
        ):
            assert time.monotonic() < deadline, "the demo did not start 5 nodes within 60 s"
            assert demo.poll() is None, "the demo exited before starting its nodes"
            time.sleep(0.05)
        node_pids.extend(kids)
        time.sleep(1.0)  # some nodes are importing, some may be up: both must be stopped

        os.kill(demo.pid, signal.SIGINT)  # the demo alone, not its process group
        assert demo.wait(timeout=60) == 130
        assert [pid for pid in node_pids if node_process_alive(pid)] == []
        assert "interrupted" in demo.stderr.read()
        assert not root.exists()  # the temp workspace is removed on Ctrl-C too
    finally:
        if demo.poll() is None:
            os.kill(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
