"""The five-node demo behind ``meshnode demo`` (and ``make run``): real node processes on
loopback, two zones, and a tally of every node's decisions read from its control API.

Why it is shaped so:
- Every node is a real ``python -m meshnode.node`` OS process with its own temp data dir and
  config. The demo makes the libp2p key files first, so it knows every peer id before any
  node starts: all five start at once, each bootstrapped to its ring neighbour.
- The zones are made the way an operator makes them: an authority key and zone files from the
  governance CLI (``meshnode keygen``, ``zone new``, ``zone admit-host``, invoked in-process),
  host keys read from each node's ``/status``, the zone file handed to each member's
  ``/zone/publish``. The two hosts in both zones get one host record valid in both (signed
  with the governance library: the CLI admits to one zone per record), which migration needs.
- Steps that need node features which are not there (an API route answering 404) are shown
  as "not available", never faked. Counts come only from the nodes' own records:
  ``/decisions`` (ACCEPT / REJECT / QUARANTINE), ``/executions`` (EXECUTE), ``/messages``.
- The demo owns its processes: it stops each by its pid (SIGTERM, then SIGKILL after a bound)
  on every exit path, Ctrl-C included.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

TOPIC = "demo"
NODE_NAMES = ("n0", "n1", "n2", "n3", "n4")
ZONE_MEMBERS: dict[str, tuple[int, ...]] = {"alpha": (0, 1, 2, 3), "beta": (2, 3, 4)}
CROSS_ZONE: dict[str, tuple[str, ...]] = {"beta": ("alpha",)}
"""Zones whose agents may enter a zone (its descriptor's cross-zone list): alpha -> beta."""
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
API_TIMEOUT_S = 5.0

POLICY = """\
# Demo policy for zone {zone}: first matching rule decides (see examples/zone-policy.toml).
[contract]
zone = "{zone}"
name = "{zone}-demo"
version = 1
default = "deny"
default_reason = "no rule of {zone}-demo permits it"

[[rule]]
name = "hold-suspects"
verdict = "quarantine"
reason = "agents in the suspect role are held for review"
roles = ["suspect"]

[[rule]]
name = "no-wipes"
verdict = "deny"
reason = "wiping is never allowed in {zone}"
verbs = ["wipe"]

[[rule]]
name = "ordinary-work"
verdict = "permit"
reason = "notes, echoes, claims and reports by workers and scouts"
verbs = ["note", "echo", "claim", "report"]
roles = ["worker", "scout"]
"""


class DemoError(Exception):
    """A demo step could not go on (a node died, a bounded wait ran out)."""


class RouteMissing(DemoError):
    """The node has no such API route (a feature that is not built)."""


# -- one node process -----------------------------------------------------------------------


@dataclass
class Tally:
    """What one node's own records say, as of the last poll."""

    up: bool = False
    peers: int = 0
    messages: int = 0
    accept: int = 0
    reject: int = 0
    quarantine: int = 0
    execute: int = 0
    zone_api: bool = False
    last_decision: int = 0


@dataclass
class DemoNode:
    name: str
    root: Path
    port: int
    peer_id: str
    zones: tuple[str, ...]
    proc: subprocess.Popen[bytes] | None = None
    api: str = ""
    host_key: str = ""
    ddh_genesis: str = ""
    tally: Tally = field(default_factory=Tally)
    exit_code: int | None = None
    terminated: bool = False

    @property
    def config(self) -> Path:
        return self.root / "node.toml"

    @property
    def info_path(self) -> Path:
        return self.root / "data" / "node.json"

    @property
    def log_path(self) -> Path:
        return self.root / "node.log"

    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_config(self, bootstrap: Sequence[str], authority: dict[str, str]) -> None:
        zones = "".join(
            f'\n[[zone]]\nid = "{z}"\nauthority_keys = ["{authority[z]}"]\n' for z in self.zones
        )
        self.config.write_text(
            f"""# meshnode demo node {self.name}
[node]
data_dir = "data"

[network]
listen = ["/ip4/127.0.0.1/tcp/{self.port}"]
bootstrap = {json.dumps(list(bootstrap))}
reconnect_initial_s = 0.2
reconnect_max_s = 2.0

[api]
port = 0

[pubsub]
topics = ["{TOPIC}"]

[log]
level = "INFO"
{zones}"""
        )

    def start(self) -> None:
        self.info_path.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "meshnode.node", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def ready(self) -> bool:
        """True once the node wrote its node.json (with our child's pid); raises if it died."""
        if self.proc is None:
            raise DemoError(f"{self.name} was never started")
        if self.proc.poll() is not None:
            raise DemoError(f"{self.name} exited with {self.proc.returncode}: {self.log_tail()}")
        try:
            info = json.loads(self.info_path.read_text())
        except (FileNotFoundError, ValueError):
            return False
        if info.get("pid") != self.proc.pid:
            return False
        self.api = str(info["api"])
        return True

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def terminate(self) -> None:
        """SIGTERM our child by pid, once (a second SIGTERM would cut its clean shutdown)."""
        proc = self.proc
        if proc is not None and proc.poll() is None and not self.terminated:
            self.terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)

    def stop(self) -> None:
        """SIGTERM our child by pid, wait (bounded), SIGKILL if it is still there."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        self.exit_code = proc.returncode

    # -- control API ----------------------------------------------------------------------

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        """One API request: (HTTP status, decoded JSON). RouteMissing for an unknown route."""
        if not self.api:
            raise DemoError(f"{self.name} has no API address (not started)")
        request = urllib.request.Request(f"http://{self.api}{path}", data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = {"error": str(exc.reason)}
            if exc.code in (404, 405) and answer.get("error") in (
                "not found",
                "method not allowed",
            ):
                raise RouteMissing(f"{self.name}: no {method} {path.split('?')[0]}") from None
            return exc.code, answer
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DemoError(f"{self.name}: API {method} {path}: {exc}") from exc

    def get(self, path: str) -> Any:
        status, answer = self.call("GET", path)
        if status != 200:
            raise DemoError(f"{self.name}: GET {path}: HTTP {status}: {answer.get('error')}")
        return answer

    def poll(self) -> None:
        """Refresh the tally from the node's own records (never raises for a dead node)."""
        t = self.tally
        if not self.alive() or not self.api:
            t.up = False
            return
        try:
            status = self.get("/status")
            t.up = True
            t.peers = int(status.get("pubsub_peers", 0))
            query = urllib.parse.urlencode({"topic": TOPIC, "limit": 1000})
            t.messages = len(self.get(f"/messages?{query}")["messages"])
            try:
                self._poll_zones()
                t.zone_api = True
            except RouteMissing:
                t.zone_api = False
        except DemoError:
            t.up = self.alive()

    def _poll_zones(self) -> None:
        t = self.tally
        while True:
            rows = self.get(f"/decisions?after={t.last_decision}&limit=1000")["decisions"]
            for row in rows:
                t.last_decision = max(t.last_decision, int(row["id"]))
                if row.get("disposition") == "QUARANTINE":
                    t.quarantine += 1
                elif row.get("verdict") == "ACCEPT":
                    t.accept += 1
                elif row.get("verdict") == "REJECT":
                    t.reject += 1
            if len(rows) < 1000:
                break
        t.execute = len(self.get("/executions?limit=10000")["executions"])


# -- the mesh of five -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ring_bootstrap(index: int, count: int) -> int | None:
    """Node i dials node i-1; node 0 dials the last one, closing the ring."""
    if count < 2:
        return None
    if count == 2 and index == 0:
        return None
    return (index - 1) % count


class DemoMesh:
    """Five node processes in a ring; a context manager that always stops what it started."""

    def __init__(self, root: Path, names: Sequence[str] = NODE_NAMES) -> None:
        from libp2p.peer.id import ID

        from meshnode.keys import load_or_create_key

        self.root = root
        self.nodes: list[DemoNode] = []
        for i, name in enumerate(names):
            node_root = root / name
            (node_root / "data").mkdir(parents=True, exist_ok=True)
            key = load_or_create_key(node_root / "data" / "node.key")
            zones = tuple(z for z, members in ZONE_MEMBERS.items() if i in members)
            peer = ID.from_pubkey(key.public_key).to_base58()
            self.nodes.append(DemoNode(name, node_root, free_port(), peer, zones))

    def __enter__(self) -> DemoMesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes if n.pid is not None]

    def start(self, authority: dict[str, str], timeout: float = START_TIMEOUT_S) -> None:
        count = len(self.nodes)
        for i, node in enumerate(self.nodes):
            j = ring_bootstrap(i, count)
            node.write_config([self.nodes[j].addr()] if j is not None else [], authority)
        with deferred_interrupts():  # a Ctrl-C between fork and bookkeeping leaks no child
            for node in self.nodes:
                node.start()
        wait_for(lambda: all(n.ready() for n in self.nodes), timeout, "every node to be ready")

    def stop(self) -> None:
        for node in self.nodes:  # SIGTERM all first, so they shut down in parallel
            node.terminate()
        for node in self.nodes:
            node.stop()

    def poll(self) -> None:
        for node in self.nodes:
            node.poll()


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while child processes are spawned, then raise KeyboardInterrupt.

    Only in the main thread (where Python runs signal handlers); elsewhere a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll ``cond`` until truthy, at most ``timeout`` seconds; DemoError when it runs out."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


# -- the scenario ---------------------------------------------------------------------------


OK = "ok"
FAILED = "failed"
NOT_AVAILABLE = "not available"


@dataclass
class Step:
    name: str
    status: str = "running"
    detail: str = ""
    seconds: float = 0.0


@dataclass
class DemoAgent:
    """One agent the scenario published, with what should happen to it."""

    label: str
    kind: str  # honest | quarantine | refused | partial | stored
    zone: str
    origin: str
    """The node it was handed to; for ``honest`` also its host (the one that executes)."""
    content_id: str
    expect: str
    answer: dict[str, Any] = field(default_factory=dict)
    observed: str = ""
    ok: bool | None = None


@dataclass
class Records:
    """One node's own records, as read from its API at one moment."""

    agents: set[str] = field(default_factory=set)
    quarantine: set[str] = field(default_factory=set)
    executions: dict[str, str] = field(default_factory=dict)  # content id -> result id
    decisions: dict[str, set[str]] = field(default_factory=dict)  # subject -> verdicts

    @classmethod
    def read(cls, node: DemoNode) -> Records:
        r = cls()
        for zone in node.zones:
            rows = node.get(f"/agents?zone={zone}&limit=10000")["agents"]
            r.agents |= {row["content_id"] for row in rows}
        r.quarantine = {
            row["content_id"] for row in node.get("/quarantine?limit=10000")["quarantine"]
        }
        for row in node.get("/executions?limit=10000")["executions"]:
            r.executions[row["content_id"]] = row["result_id"]
        for row in node.get("/decisions?limit=10000")["decisions"]:
            r.decisions.setdefault(row["subject"], set()).add(row["verdict"])
        return r


def judge(agent: DemoAgent, members: Sequence[DemoNode], records: dict[str, Records]) -> None:
    """Compare what every node recorded about ``agent`` with what should have happened."""
    cid = agent.content_id
    names = [n.name for n in members]
    m = len(names)
    stored = [x for x in names if cid in records[x].agents]
    executed = [x for x, r in records.items() if cid in r.executions]
    held = [x for x in names if cid in records[x].quarantine]
    seen = [x for x, r in records.items() if cid in r.decisions or cid in r.agents]
    where = f"by {', '.join(executed)}" if executed else "nowhere"
    if agent.kind == "honest":
        result = records[agent.origin].executions.get(cid, "")
        carried = [x for x in names if result and result in records[x].agents]
        agent.ok = len(stored) == m and executed == [agent.origin] and len(carried) == m
        agent.observed = (
            f"stored at {len(stored)}/{m}; executed {where}; new state at {len(carried)}/{m}"
        )
    elif agent.kind == "quarantine":
        agent.ok = len(held) == m and not executed and not stored
        agent.observed = (
            f"quarantined at {len(held)}/{m}; stored at {len(stored)}; executed {where}"
        )
    elif agent.kind == "stored":
        agent.ok = len(stored) == m
        agent.observed = f"stored at {len(stored)}/{m}; executed {where}"
    elif agent.kind == "partial":
        agent.ok = len(stored) == m and not executed
        agent.observed = f"stored (fallback) at {len(stored)}/{m}; executed {where}"
    else:  # refused where it entered, seen nowhere else
        rejected = [x for x, r in records.items() if "REJECT" in r.decisions.get(cid, set())]
        agent.ok = bool(cid) and rejected == [agent.origin] and seen == [agent.origin]
        agent.observed = (
            f"REJECT at {', '.join(rejected) or 'none'}; seen at {', '.join(seen) or 'none'}"
        )


@dataclass
class Scenario:
    """Runs the demo's steps against a started :class:`DemoMesh`; records each step."""

    mesh: DemoMesh
    workdir: Path
    pause: float = 0.0
    """Seconds to wait after each step, so a viewer can follow the live table."""
    steps: list[Step] = field(default_factory=list)
    agents: list[DemoAgent] = field(default_factory=list)
    zone_files: dict[str, Path] = field(default_factory=dict)
    authority_key: Path | None = None

    @property
    def nodes(self) -> list[DemoNode]:
        return self.mesh.nodes

    def members(self, zone: str) -> list[DemoNode]:
        return [n for n in self.nodes if zone in n.zones]

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[Step]:
        step = Step(name)
        self.steps.append(step)
        started = time.monotonic()
        try:
            yield step
            if step.status == "running":
                step.status = OK
        except RouteMissing as exc:
            step.status, step.detail = NOT_AVAILABLE, str(exc)
        except DemoError as exc:
            step.status = FAILED
            step.detail = f"{step.detail}; {exc}" if step.detail else str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug shows as a failed step; cleanup still runs
            step.status = FAILED
            step.detail = f"{type(exc).__name__}: {exc}"
        finally:
            step.seconds = time.monotonic() - started
            if self.pause and step.status == OK:
                time.sleep(self.pause)

    def skip(self, name: str, why: str) -> None:
        self.steps.append(Step(name, NOT_AVAILABLE, why))

    # -- plain topic ----------------------------------------------------------------------

    def mesh_up(self) -> None:
        with self.step("ring up") as s:
            wait_for(
                lambda: all(n.get("/status")["pubsub_peers"] >= 2 for n in self.nodes),
                30,
                "every node to have its two ring neighbours",
                every=0.2,
            )
            wait_for(
                lambda: all(
                    all(TOPIC in p["topics"] for p in n.get("/peers")["peers"]) for n in self.nodes
                ),
                15,
                f"every node to learn its neighbours' subscription to {TOPIC!r}",
                every=0.2,
            )
            s.detail = f"ring n0..n4: each node has 2 meshsub peers subscribed to {TOPIC!r}"

    def plain_topic(self) -> None:
        with self.step("plain topic") as s:
            for n in self.nodes:
                status, answer = n.call(
                    "POST",
                    f"/publish?{urllib.parse.urlencode({'topic': TOPIC})}",
                    f"hello from {n.name}".encode(),
                )
                if status != 200:
                    raise DemoError(f"{n.name}: publish: HTTP {status}: {answer.get('error')}")
            want = {f"hello from {n.name}" for n in self.nodes}

            def everywhere() -> bool:
                query = urllib.parse.urlencode({"topic": TOPIC, "limit": 1000})
                return all(
                    want <= {m["text"] for m in n.get(f"/messages?{query}")["messages"]}
                    for n in self.nodes
                )

            wait_for(everywhere, 15, "every message at every node", every=0.2)
            s.detail = (
                f"each node published one; {len(want)} messages at each of {len(self.nodes)} nodes"
            )

    # -- zones ----------------------------------------------------------------------------

    def zones_available(self) -> bool:
        """Do the running nodes have the zone API (``/zones`` and a host key in /status)?"""
        try:
            self.nodes[0].get("/zones")
        except RouteMissing:
            return False
        return all("host_key" in n.get("/status") for n in self.nodes)

    def prepare(self) -> dict[str, str]:
        """The zone authority key (before the nodes start: their configs name it)."""
        self.authority_key = self.workdir / "authority.key"
        with self.step("authority key") as s:
            wrote = governance(["keygen", "--out", str(self.authority_key)]).split()
            s.detail = f"meshnode keygen: public key {wrote[-1][:16]}… (both zones)"
        from meshnode.cli_governance import read_key
        from protocols.governance.signing import public_key

        try:
            pub = public_key(read_key(self.authority_key)).hex()
        except (OSError, ValueError) as exc:
            raise DemoError(f"cannot read {self.authority_key}: {exc}") from exc
        return {zone: pub for zone in ZONE_MEMBERS}

    def start(self) -> bool:
        authority = self.prepare()
        with self.step("start 5 nodes") as s:
            self.mesh.start(authority)
            s.detail = "temp data dirs; pids " + ", ".join(str(p) for p in self.mesh.pids())
        return self.steps[-1].status == OK

    def make_zones(self) -> None:
        workdir = self.workdir
        assert self.authority_key is not None
        with self.step("zone files") as s:
            for n in self.nodes:
                status = n.get("/status")
                n.host_key = str(status["host_key"])
                n.ddh_genesis = str(status["ddh"]["genesis"])
            key = str(self.authority_key)
            for zone in ZONE_MEMBERS:
                policy = workdir / f"{zone}-policy.toml"
                policy.write_text(POLICY.format(zone=zone))
                path = workdir / f"zone-{zone}.cbor"
                new = ["zone", "new", "--id", zone, "--policy", str(policy), "--key", key]
                cross = [a for z in CROSS_ZONE.get(zone, ()) for a in ("--cross-zone", z)]
                governance([*new, *cross, "--out", str(path)])
                self.zone_files[zone] = path
            for n in self.nodes:
                if len(n.zones) == 1:
                    (zone,) = n.zones
                    admit = ["zone", "admit-host", str(self.zone_files[zone]), "--key", key]
                    host = ["--host-key", n.host_key, "--ddh", n.ddh_genesis, "--addr", n.addr()]
                    governance([*admit, *host])
                else:
                    admit_multi_zone(self.authority_key, n, self.zone_files)
            s.detail = "meshnode zone new, zone admit-host: " + ", ".join(
                f"{z} ({', '.join(n.name for n in self.members(z))})" for z in self.zone_files
            )

    def publish_zones(self) -> None:
        with self.step("zones published") as s:
            for zone, path in self.zone_files.items():
                data = path.read_bytes()
                for n in self.members(zone):
                    status, answer = n.call("POST", f"/zone/publish?zone={zone}", data)
                    if status != 200:
                        raise DemoError(f"{n.name}: zone {zone}: {answer.get('error')}")

            def admitted() -> bool:
                for n in self.nodes:
                    for z in n.get("/zones")["zones"]:
                        if not z.get("host_admitted") or z.get("active_descriptor") is None:
                            return False
                return True

            wait_for(admitted, 15, "every member to hold its zone's descriptor and host record")
            s.detail = "/zone/publish at every member: descriptor active, host admitted"

    def new_agent(
        self, node: DemoNode, zone: str, spec: dict[str, Any], *, publish: bool = True
    ) -> tuple[int, dict[str, Any]]:
        query = urllib.parse.urlencode({"zone": zone, "publish": "1" if publish else "0"})
        status, answer = node.call("POST", f"/agents/new?{query}", json.dumps(spec).encode())
        return status, dict(answer)

    def agents_step(self) -> None:
        """Honest, denied, quarantine-worthy, forged and partial agents."""
        n = self.nodes
        with self.step("honest agents") as s:
            for node, zone, spec in (
                (n[0], "alpha", {"verb": "note", "args": {"text": "hello"}, "role": "worker"}),
                (n[2], "alpha", {"verb": "note", "args": {"text": "moving"}, "role": "worker"}),
                (n[4], "beta", {"verb": "report", "args": {"fuel": 63}, "role": "scout"}),
            ):
                status, answer = self.new_agent(node, zone, spec)
                if status != 200:
                    raise DemoError(f"{node.name}: {answer.get('error')}")
                self.agents.append(
                    DemoAgent(
                        f"honest {spec['verb']} ({node.name})",
                        "honest",
                        zone,
                        node.name,
                        answer["content_id"],
                        f"accepted by every {zone} member; executed by {node.name} only",
                        answer,
                    )
                )
            s.detail = "; ".join(
                f"{a.origin} {a.label.split()[1]!r} in {a.zone}: {a.answer.get('disposition')}"
                for a in self.agents
            )
        with self.step("quarantine-worthy") as s:
            status, answer = self.new_agent(
                n[3], "alpha", {"verb": "note", "args": {"text": "psst"}, "role": "suspect"}
            )
            if "content_id" not in answer:
                raise DemoError(f"n3: HTTP {status}: {answer.get('error')}")
            self.agents.append(
                DemoAgent(
                    "suspect",
                    "quarantine",
                    "alpha",
                    "n3",
                    answer["content_id"],
                    "quarantined by every alpha member; executed nowhere",
                    answer,
                )
            )
            s.detail = (
                f"n3, role 'suspect' in alpha: {answer.get('wire')} {answer.get('disposition')}"
            )
        with self.step("denied by policy") as s:
            status, answer = self.new_agent(
                n[1], "alpha", {"verb": "wipe", "args": {}, "role": "worker"}
            )
            if "content_id" not in answer:
                raise DemoError(f"n1: HTTP {status}: {answer.get('error')}")
            self.agents.append(
                DemoAgent(
                    "denied wipe",
                    "refused",
                    "alpha",
                    "n1",
                    answer["content_id"],
                    "refused by n1 (policy deny); nowhere else",
                    answer,
                )
            )
            s.detail = f"n1, verb 'wipe' in alpha: {answer.get('wire')} {answer.get('disposition')}"
        with self.step("forged") as s:
            status, answer = self.new_agent(
                n[1],
                "alpha",
                {"verb": "claim", "args": {"amount": 1}, "role": "worker"},
                publish=False,
            )
            if "agent_b64" not in answer:
                raise DemoError(f"n1: HTTP {status}: {answer.get('error')}")
            forged = forge(base64.b64decode(answer["agent_b64"]))
            status, answer = n[2].call("POST", "/publish?zone=alpha", forged)
            self.agents.append(
                DemoAgent(
                    "forged claim",
                    "refused",
                    "alpha",
                    "n2",
                    answer.get("content_id", ""),
                    "REJECTed by n2 (first hop); nowhere else",
                    answer,
                )
            )
            s.detail = (
                f"n1's agent, intent edited after signing, sent to n2: "
                f"{answer.get('wire')} {answer.get('code')}"
            )
        with self.step("partial") as s:
            spec = {"verb": "echo", "args": {"text": "x"}, "role": "worker", "omit": ["memory"]}
            status, answer = self.new_agent(n[1], "alpha", spec, publish=False)
            if "agent_b64" not in answer:
                raise DemoError(f"n1: HTTP {status}: {answer.get('error')}")
            status, answer = n[0].call(
                "POST", "/publish?zone=alpha", base64.b64decode(answer["agent_b64"])
            )
            self.agents.append(
                DemoAgent(
                    "partial echo",
                    "partial",
                    "alpha",
                    "n0",
                    answer.get("content_id", ""),
                    "forwarded (FALLBACK) to every alpha member; executed nowhere",
                    answer,
                )
            )
            s.detail = (
                f"n1's agent without memory (signed so), sent to n0: "
                f"{answer.get('wire')} {answer.get('disposition')}"
            )

    def settle(self) -> None:
        """Wait (bounded) until every node's records show what should happen to each agent."""
        with self.step("records match") as s:

            def judged() -> bool:
                records = {n.name: Records.read(n) for n in self.nodes}
                for a in self.agents:
                    judge(a, self.members(a.zone), records)
                return all(a.ok for a in self.agents)

            if not self.agents:
                raise DemoError("no agents were published")
            try:
                wait_for(judged, 20, "every agent's expected outcome", every=0.3)
            finally:
                good = sum(bool(a.ok) for a in self.agents)
                s.detail = f"{good}/{len(self.agents)} agents as expected"

    def migrate(self) -> None:
        """n2's agent moves from alpha to beta, to host n3 (both hosts are in both zones, as
        the handoff needs): n2 seals it in alpha, n3 admits it into beta."""
        old, new = self.nodes[2], self.nodes[3]
        with self.step("migration") as s:
            moving = next((a for a in self.agents if a.label == "honest note (n2)"), None)
            if moving is None or not moving.ok:
                raise DemoError("n2's honest agent is not settled; nothing to migrate")
            rows = old.get("/agents?zone=alpha&limit=10000")["agents"]
            genesis = next(r["genesis"] for r in rows if r["content_id"] == moving.content_id)
            body = {"zone": "alpha", "to_zone": "beta", "genesis": genesis, "to": new.host_key}
            status, answer = old.call("POST", "/migrate", json.dumps(body).encode())
            if status != 200:
                raise DemoError(f"n2: POST /migrate: HTTP {status}: {answer.get('error')}")
            seal = DemoAgent(
                "migration seal",
                "stored",
                "alpha",
                "n2",
                str(answer["seal"]["content_id"]),
                "n2 seals it to n3: stored at every alpha member",
                answer,
            )
            admitted = DemoAgent(
                "migrated agent",
                "honest",
                "beta",
                "n3",
                str(answer["admission"]["content_id"]),
                "n3 admits it into beta: every beta member; executed by n3 (new host) only",
                answer,
            )
            self.agents += [seal, admitted]

            def arrived() -> bool:
                records = {n.name: Records.read(n) for n in self.nodes}
                for a in (seal, admitted):
                    judge(a, self.members(a.zone), records)
                return bool(seal.ok and admitted.ok)

            wait_for(arrived, 15, "the seal in alpha, the admission (executed) in beta", every=0.3)
            s.detail = f"n2 -> n3, alpha -> beta: {seal.observed} / {admitted.observed}"

    def run(self) -> None:
        """Every step after :meth:`start`, in order; later steps need the earlier ones."""
        self.mesh_up()
        if self.steps[-1].status != OK:
            return
        self.plain_topic()
        if not self.zones_available():
            why = "the nodes have no zone API (/zones, host identity in /status)"
            for name in ("zones", "agents", "migration"):
                self.skip(name, why)
            return
        self.make_zones()
        if self.steps[-1].status != OK:
            return
        self.publish_zones()
        if self.steps[-1].status != OK:
            return
        self.agents_step()
        self.settle()
        if self.steps[-1].status == OK:
            self.migrate()

    # -- results --------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        return {
            "nodes": [
                {
                    "name": n.name,
                    "peer_id": n.peer_id,
                    "pid": n.pid,
                    "zones": list(n.zones),
                    "exit_code": n.exit_code,
                    "peers": n.tally.peers,
                    "messages": n.tally.messages,
                    "accept": n.tally.accept,
                    "reject": n.tally.reject,
                    "quarantine": n.tally.quarantine,
                    "execute": n.tally.execute,
                    "zone_api": n.tally.zone_api,
                }
                for n in self.nodes
            ],
            "steps": [
                {"name": s.name, "status": s.status, "detail": s.detail, "seconds": s.seconds}
                for s in self.steps
            ],
            "agents": [
                {
                    "label": a.label,
                    "zone": a.zone,
                    "origin": a.origin,
                    "content_id": a.content_id,
                    "kind": a.kind,
                    "expect": a.expect,
                    "observed": a.observed,
                    "ok": a.ok,
                }
                for a in self.agents
            ],
        }


def governance(args: list[str]) -> str:
    """Run a governance CLI command in-process (``meshnode keygen``, ``zone ...``); its output."""
    from meshnode import cli_governance

    commands: dict[str, click.Command] = {"keygen": cli_governance.keygen}
    commands["zone"] = cli_governance.zone
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            commands[args[0]].main(args[1:], prog_name=f"meshnode {args[0]}", standalone_mode=False)
    except click.ClickException as exc:
        raise DemoError(f"meshnode {' '.join(args[:2])}: {exc.format_message()}") from None
    return out.getvalue()


def admit_multi_zone(authority_key: Path, node: DemoNode, zone_files: dict[str, Path]) -> None:
    """One host record admitting ``node`` to all its zones, added to each zone's file.

    ``meshnode zone admit-host`` signs a record for the file's one zone. A host that carries
    an agent from one zone into another needs one record valid in both: the seal it signs in
    the source zone names its record, and members of the destination zone that are not in
    the source zone must know that record to verify the migrated agent's lineage.
    """
    from meshnode.cli_governance import load_zone, read_key, save_zone
    from protocols.identity.host import HostGrant, sign_record

    try:
        signer = read_key(authority_key)
        grant = HostGrant(addrs=(node.addr(),), zones=node.zones)
        record = sign_record(
            bytes.fromhex(node.host_key), bytes.fromhex(node.ddh_genesis), grant, signer
        )
        for zone in node.zones:
            bundle = load_zone(zone_files[zone])
            bundle.host_records.append(record)
            save_zone(zone_files[zone], bundle)
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot admit {node.name}: {exc}") from exc


def forge(agent_bytes: bytes) -> bytes:
    """The agent with its intent's args edited after the host signed it (still canonical)."""
    from protocols import codec
    from protocols.errors import MeshError

    try:
        tree = codec.decode(agent_bytes, max_bytes=len(agent_bytes))
        tree["intent"]["args"]["amount"] = 1_000_000
        return codec.encode(tree)
    except (MeshError, KeyError, TypeError) as exc:
        raise DemoError(f"cannot forge the node's agent: {exc}") from None


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    """A temp dir for the demo's data dirs and zone files (removed unless ``keep``)."""
    root = Path(tempfile.mkdtemp(prefix="meshnode-demo-"))
    try:
        yield root
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


class Poller:
    """A background thread refreshing every node's tally (bounded, stops with the demo)."""

    def __init__(self, mesh: DemoMesh, every: float) -> None:
        self.mesh = mesh
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-poller", daemon=True)
        self.lock = threading.Lock()

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=API_TIMEOUT_S * 4)

    def poll_once(self) -> None:
        with self.lock:
            self.mesh.poll()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.poll_once()
