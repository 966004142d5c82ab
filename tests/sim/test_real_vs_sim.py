"""The same small scenario on real node processes and in the simulator gives the same result.

Five real ``meshnode.node`` processes on loopback form a line (each bootstraps to the one
before); the simulator runs a five-node line of the same routers. The same texts are published
from the same positions; every node must end up accepting exactly the same messages in both.
Plain topic here; decisions and lineage heads of zone agents (with an execution) are compared in
``test_real_vs_sim_zone.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from protocols.gossip.events import Publish, Published
from sim.run import Simulation
from sim.scenario import from_dict

ROOT = Path(__file__).resolve().parents[2]
N = 5
PUBLISHES = ((0, "from the west end"), (2, "from the middle"), (4, "from the east end"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Bounded wait on a real process (no fixed sleeps in the assertions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class RealNode:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.peer_id = ""
        self.api = ""

    def start(self, bootstrap: list[str]) -> None:
        self.dir.mkdir(parents=True)
        cfg = self.dir / "node.toml"
        cfg.write_text(
            f'[node]\ndata_dir = "data"\n[network]\n'
            f'listen = ["/ip4/127.0.0.1/tcp/{self.port}"]\nbootstrap = {json.dumps(bootstrap)}\n'
            f"reconnect_initial_s = 0.1\nreconnect_max_s = 0.5\n"
            f'[api]\nport = 0\n[pubsub]\ntopics = ["chat"]\n'
        )
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(cfg)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        info = poll(lambda: read_json(self.dir / "data" / "node.json"), 30, "node ready")
        self.peer_id, self.api = info["peer_id"], info["api"]

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.api}{path}", timeout=5) as r:
            return json.loads(r.read())

    def publish(self, text: str) -> None:
        req = urllib.request.Request(
            f"http://{self.api}/publish?topic=chat", data=text.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            r.read()

    def texts(self) -> set[str]:
        return {m["text"] for m in self.get("/messages?topic=chat&limit=1000")["messages"]}


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[RealNode]]:
    nodes = [RealNode(tmp_path / f"n{i}") for i in range(N)]
    yield nodes
    for n in nodes:  # kill only what this test started, by pid
        if n.proc is not None and n.proc.poll() is None:
            os.kill(n.proc.pid, signal.SIGKILL)
            n.proc.wait(timeout=10)


def real_accepts(line: list[RealNode]) -> list[set[str]]:
    for i, node in enumerate(line):
        node.start([line[i - 1].addr()] if i else [])
    for i, node in enumerate(line):
        want = 1 if i in (0, N - 1) else 2
        poll(lambda n=node, w=want: n.get("/status")["pubsub_peers"] == w, 20, f"n{i} links")
    for i, node in enumerate(line):
        poll(
            lambda n=node: all(p["topics"] == ["chat"] for p in n.get("/peers")["peers"]),
            10,
            f"n{i} to learn its peers' subscriptions",
        )
    for i, text in PUBLISHES:
        line[i].publish(text)
    every = {t for _, t in PUBLISHES}
    for i, node in enumerate(line):
        poll(lambda n=node: every <= n.texts(), 20, f"every message at n{i}")
    own = {i: t for i, t in PUBLISHES}
    return [node.texts() - {own.get(i, "")} for i, node in enumerate(line)]


def sim_accepts() -> list[set[str]]:
    doc = {
        "run": {"name": "line-5", "duration_s": 6.0},
        "topology": {"kind": "line", "nodes": N},
        "gossip": {"topic": "chat"},
        "link_class": [{"name": "default", "latency_ms": 1.0}],
    }
    sim = Simulation(from_dict(doc))
    texts: dict[bytes, str] = {}

    def publish(i: int, text: str) -> None:
        outs = sim.nodes[i].router.handle(Publish(sim.topic, text.encode()), sim.engine.now)
        for o in outs:
            if isinstance(o, Published):
                sim.metrics.published(o.msg_id, i, sim.engine.now_us)
                texts[o.msg_id] = text
        sim._dispatch(i, outs)

    for k, (i, text) in enumerate(PUBLISHES):
        sim.engine.at(3_000_000 + k * 100_000, publish, i, text)
    sim.run()
    m = sim.metrics
    return [{texts[mid] for mid in m.order if m.messages[mid].hops[i] > 0} for i in range(N)]


def test_real_processes_and_simulator_accept_the_same_messages(line: list[RealNode]) -> None:
    simulated = sim_accepts()
    real = real_accepts(line)
    assert simulated == real
    assert simulated[2] == {"from the west end", "from the east end"}
    for node in line:
        assert "Traceback" not in (node.dir / "stderr.log").read_text()
