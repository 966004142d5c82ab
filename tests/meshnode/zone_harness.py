"""Real node processes joined to one zone, for the multi-process zone tests and bench/mesh.py.

A :class:`ZoneNode` is one ``python -m meshnode.node`` process on loopback with its own data
dir and config; :func:`zone_file` signs the zone's descriptor, contract, policy reference and
one host record per node with the deterministic authority of ``protocols.governance.world``,
so every process of a test trusts the same key. Nothing here is mocked: the processes speak
libp2p to each other and the tests read each node's SQLite-backed API.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocols.agent.build import encode_agent
from protocols.agent.validate import validate_bytes
from protocols.governance.bundle import ZoneBundle
from protocols.governance.policy import make_policy_ref
from protocols.governance.signing import public_key
from protocols.governance.world import WorldParams, build_world
from protocols.identity.host import HostGrant, sign_record

REPO = Path(__file__).parents[2]
ZONE = "alpha"
WORLD = build_world(WorldParams(zone=ZONE))
AUTHORITY_KEY = public_key(WORLD.authority[0]).hex()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.02) -> Any:
    """Poll a real-process condition with a bounded deadline; returns its truthy value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


@dataclass
class ZoneNode:
    """One node process; ``call`` returns (HTTP status, JSON answer) and never raises on 4xx."""

    name: str
    dir: Path
    port: int
    topics: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    peer_id: str = ""
    api: str = ""

    @property
    def config(self) -> Path:
        return self.dir / "node.toml"

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def write_config(
        self,
        bootstrap: Sequence[str],
        zones: Sequence[str] = (ZONE,),
        authority: str = AUTHORITY_KEY,
    ) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        zone_tables = "".join(
            f'[[zone]]\nid = "{z}"\nauthority_keys = ["{authority}"]\n' for z in zones
        )
        self.config.write_text(
            f"""
[node]
data_dir = "data"
[network]
listen = ["/ip4/127.0.0.1/tcp/{self.port}"]
bootstrap = {json.dumps(list(bootstrap))}
reconnect_initial_s = 0.1
reconnect_max_s = 0.5
[api]
port = 0
[pubsub]
topics = {json.dumps(list(self.topics))}
[log]
level = "INFO"
{zone_tables}"""
        )

    def start(self, timeout: float = 30) -> None:
        info = self.dir / "data" / "node.json"
        info.unlink(missing_ok=True)
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(self.config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        data = poll(lambda: _read_json(info), timeout, f"{self.name} to be ready", every=0.05)
        assert data["pid"] == self.proc.pid
        self.peer_id, self.api = data["peer_id"], data["api"]

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://{self.api}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> Any:
        status, answer = self.call("GET", path)
        assert status == 200, (path, status, answer)
        return answer

    def new_agent(self, spec: dict[str, Any], *, publish: bool) -> tuple[int, Any]:
        query = urllib.parse.urlencode({"zone": ZONE, "publish": "1" if publish else "0"})
        return self.call("POST", f"/agents/new?{query}", json.dumps(spec).encode())

    def make_agent(self, spec: dict[str, Any]) -> bytes:
        """An agent hosted by this node, not yet published (its bytes)."""
        status, answer = self.new_agent(spec, publish=False)
        assert status == 200, answer
        return base64.b64decode(answer["agent_b64"])

    def publish_agent(self, data: bytes, zone: str = ZONE) -> tuple[int, Any]:
        return self.call("POST", f"/publish?zone={zone}", data)

    def agent_ids(self) -> set[str]:
        rows = self.get(f"/agents?zone={ZONE}&limit=10000")["agents"]
        return {r["content_id"] for r in rows}

    def quarantine_ids(self) -> set[str]:
        return {r["content_id"] for r in self.get("/quarantine?limit=10000")["quarantine"]}

    def executions(self) -> list[dict[str, Any]]:
        return list(self.get("/executions?limit=10000")["executions"])

    def decisions(self) -> list[dict[str, Any]]:
        return list(self.get("/decisions?limit=10000")["decisions"])

    def stop(self, sig: signal.Signals) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        """SIGKILL this test's own process (by pid) if it is still running."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def db(self) -> sqlite3.Connection:
        """The node's store, read-only (the node keeps writing; WAL lets us read alongside)."""
        path = self.dir / "data" / "store.sqlite3"
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)

    def stored_agent(self, cid: str) -> bytes:
        """The bytes of the agent state with content id ``cid`` (hex) in this node's store."""
        with closing(self.db()) as conn:
            row = conn.execute(
                "SELECT data FROM agents WHERE content_id = ?", (bytes.fromhex(cid),)
            ).fetchone()
        assert row is not None, f"{cid} not stored at {self.name}"
        return bytes(row[0])

    def log_text(self) -> str:
        return (self.dir / "stderr.log").read_text()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``meshnode ARGS...`` as its own process (bounded), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "meshnode.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def zone_nodes(root: Path, count: int) -> Iterator[list[ZoneNode]]:
    """``count`` node processes named n0.. under ``root`` (not started); on exit every one
    still running is killed: only what this test started, by pid."""
    nodes = [ZoneNode(f"n{i}", root / f"n{i}", free_port()) for i in range(count)]
    try:
        yield nodes
    finally:
        for n in nodes:
            n.kill()


def zone_file(nodes: Sequence[ZoneNode]) -> bytes:
    """The zone's signed objects with a host record for every node (read from /status)."""
    records = []
    for n in nodes:
        status = n.get("/status")
        grant = HostGrant(zones=(ZONE,), valid_from_epoch=0, addrs=(n.addr(),))
        records.append(
            sign_record(
                bytes.fromhex(status["host_key"]),
                bytes.fromhex(status["ddh"]["genesis"]),
                grant,
                WORLD.authority[0],
            )
        )
    bundle = ZoneBundle(
        zone=ZONE,
        authority=WORLD.authority_set,
        descriptors=[WORLD.signed["descriptor"]],
        contracts=[WORLD.signed["contract"]],
        policy_refs=[make_policy_ref(ZONE, WORLD.contract.id, WORLD.authority[0])],
        host_records=records,
    )
    return bundle.encode()


def start_line(nodes: Sequence[ZoneNode]) -> None:
    """Start nodes in a line (each bootstraps to the one before) and wait for the links."""
    for i, n in enumerate(nodes):
        n.write_config([nodes[i - 1].addr()] if i else [])
        n.start()
    last = len(nodes) - 1
    for i, n in enumerate(nodes):
        want = 1 if i in (0, last) else 2
        poll(lambda n=n, w=want: n.get("/status")["pubsub_peers"] == w, 20, f"{n.name} links")


def admit_all(nodes: Sequence[ZoneNode], via: ZoneNode) -> None:
    """Publish the zone file through ``via``; wait until every node admits every host."""
    status, answer = via.call("POST", f"/zone/publish?zone={ZONE}", zone_file(nodes))
    assert status == 200, answer

    def ready(n: ZoneNode) -> bool:
        (z,) = n.get("/zones")["zones"]
        return bool(z["host_admitted"] and z["hosts"] == len(nodes) and z["policy_refs"])

    for n in nodes:
        poll(lambda n=n: ready(n), 15, f"{n.name} to learn the zone file")


def forge(agent: bytes) -> bytes:
    """The agent with its head entry's signature damaged (a forged slope step)."""
    made = validate_bytes(agent).agent
    assert made is not None
    assert made.lineage is not None
    head = made.lineage.entries[-1]
    bad = bytes([head.sig[0] ^ 0xFF]) + head.sig[1:]
    entries = (*made.lineage.entries[:-1], _replace(head, sig=bad))
    return encode_agent(_replace(made, lineage=_replace(made.lineage, entries=entries)))


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def content_id(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
