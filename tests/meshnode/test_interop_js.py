"""Interop on a plain topic with a standard js-libp2p node (@chainsafe/libp2p-gossipsub over
TCP, Noise, yamux; ``interop/js/peer.mjs``, installed from the committed lockfile by the
Makefile's ``npm ci`` stamp). Real OS processes on loopback, both dial directions, a message
each way in each: js dials meshnode, and meshnode dials js (its bootstrap list)."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).parents[2]
JS_DIR = REPO / "interop" / "js"
NODE = shutil.which("node")
TOPIC = "chat"

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed")

Event = dict[str, Any]


class JsPeer:
    """``node peer.mjs``: JSON events on stdout (read by a thread), JSON commands on stdin."""

    def __init__(self, *args: str) -> None:
        assert NODE is not None
        self.proc = subprocess.Popen(
            [NODE, "peer.mjs", "--topic", TOPIC, "--max-seconds", "150", *args],
            cwd=JS_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._queue.put(json.loads(line))
            except ValueError:
                self._queue.put({"event": "unparsed", "line": line.decode(errors="replace")})
        self._queue.put(None)

    def wait_for(self, pred: Callable[[Event], bool], timeout: float, what: str) -> Event:
        """The first event (seen before or arriving within ``timeout``) matching ``pred``."""
        for event in self.events:
            if pred(event):
                return event
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                got = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if got is None:
                raise AssertionError(f"js peer exited ({self.stderr()}) waiting for {what}")
            self.events.append(got)
            if pred(got):
                return got
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {self.events}")

    def send(self, command: Event) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return "still running"
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


class MeshProc:
    """One ``python -m meshnode.node`` process with a plain topic and an ephemeral API port."""

    def __init__(self, root: Path, bootstrap: list[str]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        config = root / "node.toml"
        config.write_text(
            f"""[node]
data_dir = "data"
[network]
listen = ["/ip4/127.0.0.1/tcp/0"]
bootstrap = {json.dumps(bootstrap)}
reconnect_initial_s = 0.2
reconnect_max_s = 1.0
[api]
port = 0
[pubsub]
topics = ["{TOPIC}"]
"""
        )
        self.log = root / "stderr.log"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        info = root / "data" / "node.json"

        def ready() -> Any:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-2000:]
                raise AssertionError(f"meshnode exited with {self.proc.returncode}:\n{tail}")
            return _read_json(info)

        data = poll(ready, 60, "meshnode ready")
        assert data["pid"] == self.proc.pid
        self.peer_id: str = data["peer_id"]
        self.addr: str = data["addrs"][0]
        self.api: str = data["api"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.api}{path}", timeout=5) as r:
            return json.loads(r.read())

    def publish(self, text: str) -> Any:
        query = urllib.parse.urlencode({"topic": TOPIC})
        req = urllib.request.Request(
            f"http://{self.api}/publish?{query}", data=text.encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def texts(self) -> list[str]:
        return [m["text"] for m in self.get(f"/messages?topic={TOPIC}&limit=1000")["messages"]]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def poll(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def procs() -> Iterator[list[JsPeer | MeshProc]]:
    """Everything a test starts; each is killed by its own pid afterwards."""
    if not (JS_DIR / "node_modules" / "@chainsafe" / "libp2p-gossipsub").is_dir():
        pytest.fail(
            "interop/js is not installed: run `make interop/js/node_modules/.stamp` "
            "(npm ci from the committed package-lock.json; `make test` does it)"
        )
    started: list[JsPeer | MeshProc] = []
    yield started
    for p in started:
        p.close()


def _exchange(mesh: MeshProc, js: JsPeer, js_peer_id: str) -> None:
    """Both sites know the other's subscription; then a message each way, checked on the
    receiving side with its publisher's identity."""
    js.wait_for(
        lambda e: (
            e["event"] == "subscribed" and e["peer_id"] == mesh.peer_id and TOPIC in e["topics"]
        ),
        15,
        "meshnode's SUBSCRIBE at the js peer",
    )
    poll(
        lambda: any(
            p["peer_id"] == js_peer_id and p["topics"] == [TOPIC]
            for p in mesh.get("/peers")["peers"]
        ),
        15,
        "the js peer's SUBSCRIBE at meshnode",
    )

    # js -> meshnode
    js.send({"publish": "hello from js"})
    published = js.wait_for(lambda e: e["event"] == "published", 10, "js publish")
    assert published["recipients"] == [mesh.peer_id]
    poll(lambda: "hello from js" in mesh.texts(), 10, "the js message in meshnode's store")
    assert mesh.texts().count("hello from js") == 1

    # meshnode -> js
    result = mesh.publish("hello from meshnode")
    assert result["peers"] == 1
    got = js.wait_for(
        lambda e: e["event"] == "message" and e["text"] == "hello from meshnode",
        10,
        "the meshnode message at the js peer",
    )
    assert got["topic"] == TOPIC
    assert got["type"] == "signed"  # StrictSign: js verified our signature
    assert got["from"] == mesh.peer_id
    assert result["msg_id"].endswith(got["seqno_hex"])  # message id = from + seqno
    assert not any(e["event"] == "error" for e in js.events), js.events


def test_js_dials_meshnode(tmp_path: Path, procs: list[JsPeer | MeshProc]) -> None:
    mesh = MeshProc(tmp_path / "mesh", bootstrap=[])
    procs.append(mesh)
    js = JsPeer("--dial", mesh.addr)
    procs.append(js)
    ready = js.wait_for(lambda e: e["event"] == "ready", 40, "js peer ready")
    js.wait_for(lambda e: e["event"] == "connected" and e["peer_id"] == mesh.peer_id, 15, "js dial")
    _exchange(mesh, js, ready["peer_id"])


def test_meshnode_dials_js(tmp_path: Path, procs: list[JsPeer | MeshProc]) -> None:
    js = JsPeer()
    procs.append(js)
    ready = js.wait_for(lambda e: e["event"] == "ready", 40, "js peer ready")
    js_addr = ready["addrs"][0]
    assert js_addr.startswith("/ip4/127.0.0.1/tcp/")
    assert js_addr.endswith(f"/p2p/{ready['peer_id']}")
    mesh = MeshProc(tmp_path / "mesh", bootstrap=[js_addr])
    procs.append(mesh)
    poll(
        lambda: any(
            p["peer_id"] == ready["peer_id"] and p.get("outbound") is True
            for p in mesh.get("/peers")["peers"]
        ),
        15,
        "meshnode's outbound connection to the js peer",
    )
    _exchange(mesh, js, ready["peer_id"])
