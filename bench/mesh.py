"""Mesh benchmark on real processes over loopback: prints one JSON line of figures.

Targets ([node] issue 7): one-hop p50 <= 6 ms on a plain topic and <= 12 ms on a zone topic
(admission + durable commit); 16 node processes on a random 4-regular graph sustain >= 40
msg/s (plain) and >= 20 msg/s (zone), where the sustainable rate is the highest of 10, 15,
20, 30, 40, 60, 80, 120 msg/s at which a window of publishing (30 s; ``--quick``: 6 s) gets
100% delivery with to-all p99 <= 250 ms; py-libp2p's stock GossipSub (meshsub/1.1.0,
heartbeat 1 s, D=6, its rate limit and IP-diversity check off) measured the same way, and
the ratio; idle RSS per node <= 120 MB. 1 KiB payloads.

How each figure is taken (all processes share the machine's wall clock):
- one hop: two node processes A-B. Plain: B's receive time minus A's own delivery time of
  the same message (no HTTP in the figure). Zone: an agent made and published at A; B's
  decision time minus A's decision time (A admits and commits before it publishes, so the
  figure holds one commit, one hop and one admission).
- rates: the bench posts to a random node at the scheduled times (from a thread pool); a
  message's to-all latency is the last node's receive (plain) or decision (zone: ACCEPT, or
  IGNORE as a replay when the agent's executed state arrived first)
  time minus the publisher's own delivery or decision time (the stock workers: minus the
  time of the publish call), so the bench's HTTP call is not in it. Rates are tried in
  ascending order until one fails.
- stock: the same 16-node graph of ``bench/stock_worker.py`` processes, each a
  py-libp2p host with its own Pubsub + GossipSub, fed publish commands on stdin and logging
  receive times.

Run: ``.venv/bin/python bench/mesh.py [--quick]``
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import networkx as nx
from libp2p.peer.id import ID

from meshnode.keys import load_or_create_key
from protocols.governance.bundle import ZoneBundle
from protocols.governance.policy import make_policy_ref
from protocols.governance.signing import public_key
from protocols.governance.world import WorldParams, build_world
from protocols.identity.host import HostGrant, sign_record

ZONE = "alpha"
TOPIC = "bench"
RATES = (10, 15, 20, 30, 40, 60, 80, 120)
P99_BUDGET_MS = 250.0
PAYLOAD = 1024
SENDERS = 32  # concurrent HTTP publishes at most
WORLD = build_world(WorldParams(zone=ZONE))
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = cond()
        except (OSError, urllib.error.URLError, KeyError, ValueError):
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- our node processes ---------------------------------------------------------------------


@dataclass
class Node:
    name: str
    dir: Path
    port: int = field(default_factory=free_port)
    peer_id: str = ""
    api: str = ""
    proc: subprocess.Popen[bytes] | None = None

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def prepare(self) -> None:
        """Make the key first, so peers can bootstrap to us before we run."""
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        key = load_or_create_key(data / "node.key")
        self.peer_id = ID.from_pubkey(key.public_key).to_base58()

    def start(self, bootstrap: Sequence[str]) -> None:
        authority = public_key(WORLD.authority[0]).hex()
        (self.dir / "node.toml").write_text(
            f'[node]\ndata_dir = "data"\n[network]\n'
            f'listen = ["/ip4/127.0.0.1/tcp/{self.port}"]\n'
            f"bootstrap = {json.dumps(list(bootstrap))}\n"
            f"reconnect_initial_s = 0.1\nreconnect_max_s = 1.0\n"
            f"[api]\nport = 0\nrequest_timeout_s = 120\nmax_request_bytes = 1048576\n"
            f'[pubsub]\ntopics = ["{TOPIC}"]\nring_size = 1000000\n'
            f'[log]\nlevel = "WARNING"\n'
            f'[[zone]]\nid = "{ZONE}"\nauthority_keys = ["{authority}"]\n'
        )
        with open(self.dir / "stderr.log", "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(self.dir / "node.toml")],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def ready(self) -> bool:
        try:
            info = json.loads((self.dir / "data" / "node.json").read_text())
        except (FileNotFoundError, ValueError):
            return False
        self.api = info["api"]
        return True

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        req = urllib.request.Request(f"http://{self.api}{path}", data=body, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def rss_mb(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def zone_file(nodes: Sequence[Node]) -> bytes:
    records = []
    for n in nodes:
        status = n.call("GET", "/status")
        grant = HostGrant(zones=(ZONE,), valid_from_epoch=0, addrs=(n.addr(),))
        records.append(
            sign_record(
                bytes.fromhex(status["host_key"]),
                bytes.fromhex(status["ddh"]["genesis"]),
                grant,
                WORLD.authority[0],
            )
        )
    return ZoneBundle(
        zone=ZONE,
        authority=WORLD.authority_set,
        descriptors=[WORLD.signed["descriptor"]],
        contracts=[WORLD.signed["contract"]],
        policy_refs=[make_policy_ref(ZONE, WORLD.contract.id, WORLD.authority[0])],
        host_records=records,
    ).encode()


def start_cluster(root: Path, edges: Sequence[tuple[int, int]], n: int) -> list[Node]:
    """Start ``n`` nodes on the graph, joined to the zone and meshed; on failure stop them."""
    nodes = [Node(f"n{i}", root / f"n{i}") for i in range(n)]
    try:
        _start_cluster(nodes, edges, n)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


def _start_cluster(nodes: list[Node], edges: Sequence[tuple[int, int]], n: int) -> None:
    for node in nodes:
        node.prepare()
    for i, node in enumerate(nodes):
        node.start([nodes[j].addr() for a, b in edges for j in (a, b) if i in (a, b) and j < i])
    for node in nodes:
        wait(node.ready, 240, f"{node.name} ready")
    degree = {i: sum(1 for e in edges if i in e) for i in range(n)}
    for i, node in enumerate(nodes):
        wait(_links(node, degree[i]), 60, f"{node.name} links")
    data = zone_file(nodes)
    nodes[0].call("POST", f"/zone/publish?zone={ZONE}", data)

    def zone_ready(node: Node) -> bool:
        (z,) = node.call("GET", "/zones")["zones"]
        return bool(z["host_admitted"] and z["hosts"] == n and z["mesh_peers"] >= 1)

    for node in nodes:
        wait(functools.partial(zone_ready, node), 60, f"{node.name} zone")
        wait(_meshed(node), 30, f"{node.name} mesh")


def _links(node: Node, degree: int) -> Callable[[], bool]:
    return lambda: bool(node.call("GET", "/status")["pubsub_peers"] == degree)


def _meshed(node: Node) -> Callable[[], bool]:
    return lambda: bool(node.call("GET", "/status")["mesh"][TOPIC] >= 1)


def payload(tag: bytes, k: int) -> bytes:
    head = tag + k.to_bytes(8, "big")
    return head + bytes(PAYLOAD - len(head))


def plain_times(node: Node, tag: bytes) -> dict[int, int]:
    """Message number -> receive time (ns) of every bench message ``node`` holds."""
    out: dict[int, int] = {}
    after = 0
    while True:
        rows = node.call("GET", f"/messages?topic={TOPIC}&after={after}&limit=1000")["messages"]
        if not rows:
            return out
        for r in rows:
            data = base64.b64decode(r["data_b64"])
            if data.startswith(tag):
                out[int.from_bytes(data[len(tag) : len(tag) + 8], "big")] = r["received_ns"]
        after = rows[-1]["seq"]


def zone_times(node: Node) -> dict[str, int]:
    """Content id -> decision time (ns) of every agent state ``node`` took in: ACCEPTed, or
    IGNOREd as a replay because the state its host's execution made overtook it on the way
    (the node then already holds the newer state of that agent)."""
    out: dict[str, int] = {}
    after = 0
    while True:
        rows = node.call("GET", f"/decisions?after={after}&limit=10000")["decisions"]
        if not rows:
            return out
        for r in rows:
            if r["verdict"] == "ACCEPT" or r["reason"].startswith("replay:"):
                out.setdefault(r["subject"], r["at_ns"])
        after = rows[-1]["id"]


def one_hop(root: Path, count: int) -> dict[str, Any]:
    nodes = start_cluster(root, [(0, 1)], 2)
    a, b = nodes
    try:
        tag = os.urandom(8)
        for k in range(count):
            a.call("POST", f"/publish?topic={TOPIC}", payload(tag, k))
            time.sleep(0.02)
        wait(lambda: len(plain_times(b, tag)) == count, 20, "plain one-hop deliveries")
        ta, tb = plain_times(a, tag), plain_times(b, tag)
        plain = [(tb[k] - ta[k]) / 1e6 for k in range(count)]
        cids = []
        for k in range(count):
            spec = json.dumps({"verb": "echo", "args": {"k": k}}).encode()
            cids.append(a.call("POST", f"/agents/new?zone={ZONE}", spec)["content_id"])
            time.sleep(0.03)
        wait(lambda: set(cids) <= set(zone_times(b)), 20, "zone one-hop deliveries")
        za, zb = zone_times(a), zone_times(b)
        zone = [(zb[c] - za[c]) / 1e6 for c in cids]
        return {
            "plain_p50_ms": round(statistics.median(plain), 2),
            "plain_p99_ms": round(pct(plain, 0.99), 2),
            "zone_p50_ms": round(statistics.median(zone), 2),
            "zone_p99_ms": round(pct(zone, 0.99), 2),
            "samples": count,
        }
    finally:
        for node in nodes:
            node.stop()


@dataclass
class Window:
    """One rate trial's result."""

    rate: int
    sent: int
    delivered_all: int
    p99_ms: float
    lag_ms: float  # how far the bench's sends fell behind schedule at worst
    p50_ms: float = float("inf")

    @property
    def ok(self) -> bool:
        return self.delivered_all == self.sent and self.p99_ms <= P99_BUDGET_MS

    def to_json(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "sent": self.sent,
            "delivered_to_all": self.delivered_all,
            "to_all_p50_ms": round(self.p50_ms, 1),
            "to_all_p99_ms": round(self.p99_ms, 1),
            "send_lag_ms": round(self.lag_ms, 1),
            "ok": self.ok,
        }


def schedule(rate: int, seconds: float, send: Callable[[int], None]) -> float:
    """Call ``send(k)`` at start + k/rate from a pool of threads (a slow HTTP answer never
    delays the next send); returns the worst lag of a send behind its schedule (ms)."""
    total = int(rate * seconds)
    start = time.monotonic() + 0.2
    worst = 0.0
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        futures = []
        for k in range(total):
            due = start + k / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                worst = max(worst, now - due)
            futures.append(pool.submit(send, k))
        for f in futures:
            f.result()
    return worst * 1000


def settle(collect: Callable[[], int], want: int, grace: float) -> None:
    """Wait until ``collect()`` reaches ``want`` or the grace period passes."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and collect() < want:
        time.sleep(0.25)


def rate_plain(nodes: list[Node], rate: int, seconds: float, rng: random.Random) -> Window:
    tag = os.urandom(8)
    sent_at: dict[int, int] = {}

    def send(k: int) -> None:
        node = nodes[rng.randrange(len(nodes))]
        sent_at[k] = time.time_ns()
        try:
            node.call("POST", f"/publish?topic={TOPIC}", payload(tag, k))
        except (OSError, urllib.error.URLError) as exc:  # counted as never delivered
            progress(f"publish {k} failed: {exc!r}")

    lag = schedule(rate, seconds, send)
    times: list[dict[int, int]] = []

    def count() -> int:
        times[:] = [plain_times(n, tag) for n in nodes]
        return min(len(t) for t in times)

    settle(count, len(sent_at), 5.0)
    return _window(rate, sent_at, times, lag)


def rate_zone(nodes: list[Node], rate: int, seconds: float, rng: random.Random) -> Window:
    sent_at: dict[str, int] = {}

    def send(k: int) -> None:
        node = nodes[rng.randrange(len(nodes))]
        t = time.time_ns()
        spec = json.dumps({"verb": "echo", "args": {"k": k, "pad": "x" * 700}}).encode()
        try:
            sent_at[node.call("POST", f"/agents/new?zone={ZONE}", spec)["content_id"]] = t
        except (OSError, urllib.error.URLError) as exc:  # counted as never delivered
            sent_at[f"failed-{k}"] = t
            progress(f"publish {k} failed: {exc!r}")

    lag = schedule(rate, seconds, send)
    times: list[dict[str, int]] = []

    def count() -> int:
        times[:] = [zone_times(n) for n in nodes]
        return min(sum(1 for c in sent_at if c in t) for t in times)

    settle(count, len(sent_at), 5.0)
    return _window(rate, sent_at, times, lag)


def _window(rate: int, sent_at: dict[Any, int], times: list[dict[Any, int]], lag: float) -> Window:
    """To-all latency of a message: last node's time minus the publisher's own time (the
    earliest: its own delivery or decision, or a stock worker's publish call), so the
    bench's HTTP call or pipe write to the publisher is not in the figure."""
    to_all: list[float] = []
    for key in sent_at:
        got = [t[key] for t in times if key in t]
        if len(got) == len(times):
            to_all.append((max(got) - min(got)) / 1e6)
    p99 = pct(to_all, 0.99) if to_all else float("inf")
    p50 = pct(to_all, 0.5) if to_all else float("inf")
    return Window(rate, len(sent_at), len(to_all), p99, lag, p50)


def sync_totals(nodes: Sequence[Any]) -> dict[str, int]:
    """Anti-entropy work over all nodes (states sent by sync duplicate gossip's if young)."""
    keys = ("states_sent", "states_received", "states_accepted", "head_pulls", "zone_pulls")
    total = dict.fromkeys(keys, 0)
    for n in nodes:
        counts = n.call("GET", "/sync/status")["counters"]
        for k in keys:
            total[k] += int(counts.get(k, 0))
    return total


def progress(text: str) -> None:
    """Progress on stderr (stdout carries the one JSON line)."""
    sys.stderr.write(f"[mesh bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def search(trial: Callable[[int], Window]) -> tuple[int, list[dict[str, Any]]]:
    best, trials = 0, []
    for rate in RATES:
        w = trial(rate)
        trials.append(w.to_json())
        progress(json.dumps(w.to_json()))
        if not w.ok:
            break
        best = rate
    return best, trials


# -- py-libp2p stock GossipSub workers -------------------------------------------------------


@dataclass
class StockNode:
    seed: bytes
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    out: Path = Path()

    @property
    def peer_id(self) -> str:
        from libp2p.crypto.ed25519 import create_new_key_pair

        return ID.from_pubkey(create_new_key_pair(self.seed).public_key).to_base58()

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def times(self) -> dict[str, int]:
        got: dict[str, int] = {}
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                got.setdefault(parts[1], int(parts[2]))
        return got


def start_stock(root: Path, edges: Sequence[tuple[int, int]], n: int) -> list[StockNode]:
    nodes = [StockNode(hashlib.sha256(f"stock/{i}".encode()).digest()) for i in range(n)]
    for i, s in enumerate(nodes):
        s.out = root / f"stock{i}.log"
        peers = [nodes[j].addr() for a, b in edges for j in (a, b) if i in (a, b) and j < i]
        s.proc = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("stock_worker.py")),
                str(s.port),
                s.seed.hex(),
                json.dumps(peers),
                str(s.out),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(root / f"stock{i}.err", "wb"),  # noqa: SIM115
        )
    try:
        for s in nodes:
            assert s.proc is not None
            assert s.proc.stdout is not None
            line = s.proc.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"stock worker failed to start: {line!r}")
    except BaseException:
        stop_stock(nodes)
        raise
    time.sleep(4)  # a few 1 s heartbeats to build meshes
    return nodes


def rate_stock(nodes: list[StockNode], rate: int, seconds: float, rng: random.Random) -> Window:
    tag = os.urandom(8)
    lock = threading.Lock()
    sent_at: dict[str, int] = {}

    def send(k: int) -> None:
        node = nodes[rng.randrange(len(nodes))]
        data = payload(tag, k)
        sent_at[data[:16].hex()] = time.time_ns()
        stdin: IO[bytes] | None = node.proc.stdin if node.proc else None
        assert stdin is not None
        with lock:  # one whole line at a time on the pipe
            stdin.write(data.hex().encode() + b"\n")
            stdin.flush()

    lag = schedule(rate, seconds, send)
    times: list[dict[str, int]] = []

    def count() -> int:
        times[:] = [s.times() for s in nodes]
        return min(sum(1 for k in sent_at if k in t) for t in times)

    settle(count, len(sent_at), 5.0)
    return _window(rate, sent_at, times, lag)


def stop_stock(nodes: list[StockNode]) -> None:
    for s in nodes:
        if s.proc is not None and s.proc.poll() is None:
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait(timeout=10)


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--quick", action="store_true", help="6 s windows, fewer samples")
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    seconds = 6.0 if args.quick else 30.0
    root = Path(tempfile.mkdtemp(prefix="bench-mesh-"))
    rng = random.Random(args.seed)
    edges = [(a, b) for a, b in nx.random_regular_graph(4, args.nodes, seed=args.seed).edges()]
    result: dict[str, Any] = {
        "bench": "mesh",
        "quick": args.quick,
        "window_s": seconds,
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 1) for x in os.getloadavg()],
    }
    try:
        result["one_hop"] = one_hop(root / "hop", 50 if args.quick else 200)
        progress(f"one hop: {json.dumps(result['one_hop'])}")
        nodes = start_cluster(root / "mesh", edges, args.nodes)
        try:
            time.sleep(2)
            rss = [n.rss_mb() for n in nodes]
            result["idle_rss_mb"] = {
                "max": round(max(rss), 1),
                "mean": round(sum(rss) / len(rss), 1),
            }
            progress(f"idle RSS {result['idle_rss_mb']}; plain rates")
            plain, plain_trials = search(lambda r: rate_plain(nodes, r, seconds, rng))
            progress("zone rates")
            zone, zone_trials = search(lambda r: rate_zone(nodes, r, seconds, rng))
            result["zone_sync"] = sync_totals(nodes)
        finally:
            for n in nodes:
                n.stop()
        progress("stock py-libp2p GossipSub rates")
        stock_nodes = start_stock(root, edges, args.nodes)
        try:
            stock, stock_trials = search(lambda r: rate_stock(stock_nodes, r, seconds, rng))
        finally:
            stop_stock(stock_nodes)

        result["rate"] = {
            "nodes": args.nodes,
            "degree": 4,
            "plain_msgs_per_s": plain,
            "zone_msgs_per_s": zone,
            "stock_gossipsub_msgs_per_s": stock,
            "plain_vs_stock": round(plain / stock, 2) if stock else None,
            "trials": {"plain": plain_trials, "zone": zone_trials, "stock": stock_trials},
        }
        result["targets"] = {
            "one_hop_plain_p50_le_6ms": result["one_hop"]["plain_p50_ms"] <= 6,
            "one_hop_zone_p50_le_12ms": result["one_hop"]["zone_p50_ms"] <= 12,
            "plain_ge_40": plain >= 40,
            "zone_ge_20": zone >= 20,
            "ratio_ge_2": bool(stock) and plain / stock >= 2,
            "idle_rss_le_120mb": result["idle_rss_mb"]["max"] <= 120,
        }
    except BaseException:
        sys.stderr.write(f"bench failed; logs kept in {root}\n")
        raise
    shutil.rmtree(root, ignore_errors=True)
    result["loadavg_at_end"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
