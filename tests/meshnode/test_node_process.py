"""Real node processes on loopback: a 3-node line relays plain-topic messages both ways,
survives kill -9 and restart of its middle node, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a real-process condition with a bounded deadline; returns its truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class NodeProc:
    name: str
    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    peer_id: str = ""
    api: str = ""

    @property
    def config(self) -> Path:
        return self.dir / "node.toml"

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def write_config(self, bootstrap: list[str]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"""
[node]
data_dir = "data"
[network]
listen = ["/ip4/127.0.0.1/tcp/{self.port}"]
bootstrap = {json.dumps(bootstrap)}
reconnect_initial_s = 0.1
reconnect_max_s = 0.5
[api]
port = 0
[pubsub]
topics = ["chat"]
[log]
level = "INFO"
"""
        )

    def start(self) -> None:
        info = self.dir / "data" / "node.json"
        info.unlink(missing_ok=True)
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(self.config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        data = poll(lambda: _read_json(info), 20, f"{self.name} to be ready")
        assert data["pid"] == self.proc.pid
        self.peer_id, self.api = data["peer_id"], data["api"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.api}{path}", timeout=5) as r:
            return json.loads(r.read())

    def publish(self, text: str) -> str:
        req = urllib.request.Request(
            f"http://{self.api}/publish?topic=chat", data=text.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return str(json.loads(r.read())["msg_id"])

    def texts(self) -> list[str]:
        return [m["text"] for m in self.get("/messages?topic=chat&limit=1000")["messages"]]

    def stop(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=15)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[NodeProc]]:
    made = [NodeProc(n, tmp_path / n, free_port()) for n in ("a", "b", "c")]
    yield made
    for n in made:  # kill only the processes this test started, by pid
        if n.proc is not None and n.proc.poll() is None:
            os.kill(n.proc.pid, signal.SIGKILL)
            n.proc.wait(timeout=10)


def test_line_relays_both_ways_survives_kill_9_and_stops_cleanly(nodes: list[NodeProc]) -> None:
    a, b, c = nodes
    a.write_config([])
    a.start()
    b.write_config([a.addr()])
    b.start()
    c.write_config([b.addr()])
    c.start()
    poll(lambda: b.get("/status")["pubsub_peers"] == 2, 10, "b to link a and c")
    assert a.get("/status")["pubsub_peers"] == 1  # a line: a and c are not connected
    peers = {p["peer_id"]: p for p in b.get("/peers")["peers"]}
    assert sorted(peers) == sorted([a.peer_id, c.peer_id])
    poll(
        lambda: all(p["topics"] == ["chat"] for p in b.get("/peers")["peers"]),
        5,
        "b to learn its peers' subscriptions",
    )
    assert peers[a.peer_id]["outbound"] is True  # b dialled a
    assert peers[c.peer_id]["outbound"] is False  # c dialled b
    assert peers[a.peer_id]["protocol"] == "/meshsub/1.1.0"

    a.publish("from a")
    c.publish("from c")
    poll(lambda: "from a" in c.texts(), 10, "a's message at c")
    poll(lambda: "from c" in a.texts(), 10, "c's message at a")
    assert sorted(b.texts()) == ["from a", "from c"]

    # kill -9 the middle node, restart it: same identity, links come back, relay resumes
    b_id = b.peer_id
    assert b.stop(signal.SIGKILL) == -signal.SIGKILL
    b.start()
    assert b.peer_id == b_id
    assert sorted(b.texts()) == ["from a", "from c"]  # its store survived
    poll(lambda: b.get("/status")["pubsub_peers"] == 2, 15, "b to re-link after restart")
    a.publish("after restart")
    poll(lambda: "after restart" in c.texts(), 10, "relay through the restarted node")

    metrics = urllib.request.urlopen(f"http://{b.api}/metrics", timeout=5).read().decode()
    assert 'meshnode_bridge_events_total{kind="frames_in"}' in metrics

    for n, sig in ((c, signal.SIGINT), (b, signal.SIGTERM), (a, signal.SIGTERM)):
        assert n.stop(sig) == 0
        assert not (n.dir / "data" / "node.json").exists()
        assert "Traceback" not in (n.dir / "stderr.log").read_text()


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\ndata_dir = "d"\n[network]\nlisten = ["/ip4/127.0.0.1/udp/1"]\n')
    proc = subprocess.run(
        [sys.executable, "-m", "meshnode.node", "--config", str(cfg)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: network.listen[0]: must be a TCP multiaddr, got '/ip4/127.0.0.1/udp/1' (in {cfg})"
    ]


def test_api_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "node.toml"
        cfg.write_text(f'[node]\ndata_dir = "d"\n[api]\nport = {port}\n')
        proc = subprocess.run(
            [sys.executable, "-m", "meshnode.node", "--config", str(cfg)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert proc.returncode == 2
    lines = [x for x in proc.stderr.strip().splitlines() if x.startswith("error:")]
    assert len(lines) == 1
    assert "Traceback" not in proc.stderr
    assert "in use" in lines[0].lower()
