"""A cluster of real node processes on loopback, admitted to one zone, for the service tests.

Each node gets a libp2p key, a host signing key and DDH genesis (in its store's
``host_identity`` row) and every node's host record signed by a test zone authority (in its
store's ``host_records``), as a node that had synced its zone's control topic would hold
them. Nodes run as OS processes (``python -m meshnode.node``); the harness stops only the
processes it started, by pid.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from libp2p.peer.id import ID
from nacl.signing import SigningKey

from meshnode.keys import load_or_create_key
from meshnode.store import DescriptorRow, HostRecordRow, Store
from protocols import codec
from protocols.governance.signing import Authority, Signed
from protocols.governance.zone import QuorumParams, ZoneDescriptor
from protocols.identity.host import HostGrant, HostRecord, LocalHost, new_host, sign_record
from tests.meshnode.zone_harness import REPO, _read_json, free_port
from tests.meshnode.zone_harness import cli as run_cli
from tests.meshnode.zone_harness import poll as _poll


def poll(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """The zone harness's bounded poll, at this harness's 50 ms step."""
    return _poll(cond, timeout, what, every=step)


@dataclass
class SvcNode:
    name: str
    dir: Path
    port: int
    host: LocalHost
    peer_id: ID
    roles: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    api: str = ""

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def config(self) -> Path:
        return self.dir / "node.toml"

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id.to_base58()}"

    def spawn(self) -> None:
        (self.data / "node.json").unlink(missing_ok=True)
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(self.config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        proc = self.proc

        def ready() -> Any:
            if proc.poll() is not None:
                log = (self.dir / "stderr.log").read_text()[-3000:]
                raise AssertionError(f"{self.name} exited with {proc.returncode}:\n{log}")
            return _read_json(self.data / "node.json")

        info = poll(ready, timeout, f"{self.name} to be ready")
        assert info["pid"] == proc.pid
        self.api = info["api"]

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://{self.api}{path}", data=data, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str, **params: Any) -> Any:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        status, body = self.request("GET", path + query)
        assert status == 200, (status, body)
        return body

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        return self.proc.wait(timeout=20)


@dataclass
class Cluster:
    root: Path
    zone: str
    authority: SigningKey
    nodes: list[SvcNode] = field(default_factory=list)
    records: list[HostRecord] = field(default_factory=list)
    descriptor: ZoneDescriptor | None = None
    signed_descriptor: Signed | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args)

    def stop_all(self) -> None:
        """SIGTERM every process this cluster started (by pid), then reap them."""
        live = [n.proc for n in self.nodes if n.proc is not None and n.proc.poll() is None]
        for proc in live:
            os.kill(proc.pid, signal.SIGTERM)
        for proc in live:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def make_cluster(
    root: Path,
    roles: Sequence[tuple[str, ...]],
    links: Sequence[tuple[int, int]],
    zone: str = "alpha",
    seed: int = 7,
    quorum: QuorumParams | None = None,
) -> Cluster:
    """Write configs and stores for ``len(roles)`` nodes; ``links`` are (dialler, dialled).

    With ``quorum``, a descriptor (version 1, active from epoch 0) lists the hosts granted
    the ``validator`` role and is stored on every node.
    """
    rng = random.Random(seed)
    authority = SigningKey(rng.randbytes(32))
    cluster = Cluster(root, zone, authority)
    for i, node_roles in enumerate(roles):
        d = root / f"n{i}"
        (d / "data").mkdir(parents=True)
        key = load_or_create_key(d / "data" / "node.key")
        host = new_host(random.Random(rng.randbytes(16)), epoch=int(time.time()) // 10)
        cluster.nodes.append(
            SvcNode(f"n{i}", d, free_port(), host, ID.from_pubkey(key.public_key), node_roles)
        )
    for node in cluster.nodes:
        grant = HostGrant(
            peer_id=node.peer_id.to_bytes(),
            addrs=(f"/ip4/127.0.0.1/tcp/{node.port}",),
            zones=(zone,),
            roles=node.roles,
        )
        cluster.records.append(sign_record(node.host.key, node.host.ddh.genesis, grant, authority))
    if quorum is not None:
        authority_set = Authority.of([bytes(authority.verify_key)])
        desc = ZoneDescriptor(
            zone=zone,
            version=1,
            activation_epoch=0,
            contracts=(),
            validators=tuple(sorted(n.host.key for n in cluster.nodes if "validator" in n.roles)),
            meta_authority=authority_set,
            quorum=quorum,
        )
        cluster.descriptor, cluster.signed_descriptor = desc, desc.sign(authority)
    for i, node in enumerate(cluster.nodes):
        store = Store.open(node.data / "store.sqlite3")
        try:
            store.set_host_identity(node.host.seed, codec.encode(node.host.ddh.to_cbor()))
            if cluster.descriptor is not None and cluster.signed_descriptor is not None:
                v = cluster.descriptor
                blob = cluster.signed_descriptor.encode()
                store.put_descriptor(DescriptorRow(zone, v.version, v.activation_epoch, v.id, blob))
            for record in cluster.records:
                store.put_host_record(
                    HostRecordRow(record.name, zone, record.host_key, 0, False, record.encode())
                )
        finally:
            store.close()
        bootstrap = [cluster.nodes[b].addr() for a, b in links if a == i]
        node.config.write_text(
            f"""
[node]
data_dir = "data"
[network]
listen = ["/ip4/127.0.0.1/tcp/{node.port}"]
bootstrap = {json.dumps(bootstrap)}
reconnect_initial_s = 0.1
reconnect_max_s = 0.5
[api]
port = 0
[[zone]]
id = "{zone}"
authority_keys = ["{bytes(authority.verify_key).hex()}"]
[log]
level = "INFO"
"""
        )
    return cluster


def start(nodes: Sequence[SvcNode]) -> None:
    for node in nodes:
        node.spawn()
    for node in nodes:
        node.wait_ready()


def running(cluster: Cluster) -> Iterator[Cluster]:
    """Generator for a fixture: yields the cluster, then stops what it started."""
    try:
        yield cluster
    finally:
        cluster.stop_all()


def start_zone_line(nodes: Sequence[Any]) -> None:
    """Start ``zone_harness.ZoneNode``s in a line, all processes at once (not one by one).

    Each node's libp2p key is made first so its peer id, and so its neighbour's bootstrap
    address, is known before any process starts.
    """
    for node in nodes:
        key = load_or_create_key(node.dir / "data" / "node.key")
        node.peer_id = ID.from_pubkey(key.public_key).to_base58()
    for i, node in enumerate(nodes):
        node.write_config([nodes[i - 1].addr()] if i else [])
    for node in nodes:
        (node.dir / "data" / "node.json").unlink(missing_ok=True)
        with open(node.dir / "stderr.log", "ab") as err:
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(node.config)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
    for node in nodes:
        info = poll(lambda node=node: _read_json(node.dir / "data" / "node.json"), 60, node.name)
        assert info["peer_id"] == node.peer_id
        node.api = info["api"]
    last = len(nodes) - 1
    for i, node in enumerate(nodes):
        want = 1 if i in (0, last) else 2
        poll(lambda n=node, w=want: n.get("/status")["pubsub_peers"] == w, 30, f"{node.name} links")
