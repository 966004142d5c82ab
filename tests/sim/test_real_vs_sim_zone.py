"""The same zone scenario on five real node processes and in the simulator: same decisions,
same lineage heads.

Five ``meshnode.node`` processes on loopback form a line and join zone ``alpha``; the [node]
line test's agents, all hosted by the east end (n4), are made once by n4's API and published
at the west end (n0): an honest note (executed by n4 only), a forged slope (REJECTed where it
enters), a quarantine-worthy agent and a partial one. The simulator then runs a five-node line
fed the very same inputs: the zone file the real nodes verified, each node's host key, n4's
signer and the slope secrets it held (read from its store before anything ran), and the same
agent bytes published from the same node in the same order.

Compared, per node: the decision (wire verdict, disposition, outcome code) on every agent,
including the state n4's execution made; and the head DAH each node stores per slope. The
executed state's new entry carries host entropy (a fresh slope secret and salt: the real
executor draws them from ``SystemRandom``), so its DAH differs between the two runs by design;
it is compared as "the head n4's own execution made" on each side, and the two executed
states must agree on everything else (entry type, signer, prev, depth, ledger, output).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, LineageEntry
from protocols.agent.validate import validate_bytes
from protocols.governance.bundle import ZoneBundle
from protocols.governance.pipeline import encode_envelope
from protocols.governance.policy import make_policy_ref
from protocols.governance.world import WorldParams, build_world
from protocols.identity.ddh import DdhState
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from sim.report import digest
from sim.run import Simulation, ZoneInput
from sim.scenario import from_dict
from tests.meshnode.zone_harness import (
    ZONE,
    ZoneNode,
    content_id,
    forge,
    poll,
    start_line,
    zone_file,
    zone_nodes,
)

N = 5
HOST = N - 1  # every agent is hosted by the east end and enters at the west end
ORDER = ("honest", "forged", "suspect", "partial")
SPECS: dict[str, dict[str, Any]] = {
    "honest": {"verb": "note", "args": {"text": "hello"}},
    "forged": {"verb": "note", "args": {"text": "forged"}},
    "suspect": {"verb": "note", "args": {"text": "x"}, "role": "suspect"},
    "partial": {"verb": "note", "args": {"text": "p"}, "omit": ["memory"]},
}
Decisions = list[dict[str, tuple[str, str, str]]]
Heads = list[dict[str, str]]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    with zone_nodes(tmp_path, N) as nodes:
        yield nodes


# ---------------------------------------------------------------------------- shared inputs


def host_state(
    node: ZoneNode, bundle: bytes, agents: dict[str, bytes]
) -> tuple[LocalHost, HostSecrets]:
    """The node's signer (as its zone record names it) and the slope secrets it holds for
    ``agents``' heads, read from its store before any of them is published."""
    with closing(node.db()) as db:
        seed, raw = db.execute("SELECT host_key, ddh_state FROM host_identity").fetchone()
        secrets: dict[bytes, bytes] = {}
        for data in agents.values():
            agent = _agent(data)
            assert agent.lineage is not None
            commit = agent.lineage.entries[-1].commit
            row = db.execute(
                "SELECT secret FROM slope_secrets WHERE commitment = ?", (commit,)
            ).fetchone()
            assert row is not None, "the host keeps the secret of every agent it made"
            secrets[commit] = bytes(row[0])
    ddh = DdhState.from_cbor(codec.decode(bytes(raw), max_bytes=4096))
    host = LocalHost(bytes(seed), ddh)
    (record,) = [r for r in ZoneBundle.decode(bundle).host_records if r.host_key == host.key]
    return host.with_record(record.name), HostSecrets(MappingProxyType(secrets))


def _agent(data: bytes) -> Agent:
    agent = validate_bytes(data).agent
    assert agent is not None
    return agent


# ---------------------------------------------------------------------------- real processes


def on_every(line: list[ZoneNode], cond: Callable[[ZoneNode], bool], what: str) -> None:
    for n in line:
        poll(partial(cond, n), 10, f"{what} at {n.name}")


def holds(cid: str, n: ZoneNode) -> bool:
    return cid in n.agent_ids()


def quarantines(cid: str, n: ZoneNode) -> bool:
    return cid in n.quarantine_ids()


def zone_ready(n: ZoneNode) -> bool:
    (z,) = n.get("/zones")["zones"]
    return bool(z["host_admitted"] and z["hosts"] == N and z["policy_refs"])


def real_setup(line: list[ZoneNode]) -> tuple[bytes, dict[str, bytes]]:
    """Start the line, publish the zone file at n0, make the agents at n4 (not published)."""
    start_line(line)
    bundle = zone_file(line)
    status, answer = line[0].call("POST", f"/zone/publish?zone={ZONE}", bundle)
    assert status == 200, answer
    on_every(line, zone_ready, "the zone file")
    agents = {name: line[HOST].make_agent(SPECS[name]) for name in ORDER}
    agents["forged"] = forge(agents["forged"])
    return bundle, agents


def real_run(line: list[ZoneNode], agents: dict[str, bytes]) -> tuple[Decisions, Heads, bytes]:
    """Publish at n0 in order, each once the previous one has settled everywhere."""
    west, east = line[0], line[HOST]
    cids = {name: content_id(data) for name, data in agents.items()}
    for name in ORDER:
        status, answer = west.publish_agent(agents[name])
        assert status == (422 if name == "forged" else 200), answer
        cid = cids[name]
        if name == "honest":
            (done,) = poll(east.executions, 10, "the execution at n4")
            result = cids["executed"] = done["result_id"]
            on_every(line, partial(holds, result), "the executed state")
        elif name == "suspect":
            on_every(line, partial(quarantines, cid), "the quarantined agent")
        elif name == "partial":
            on_every(line, partial(holds, cid), "the partial agent")
    label = {c: name for name, c in cids.items()}
    decisions: Decisions = []
    heads: Heads = []
    for n in line:
        mine: dict[str, tuple[str, str, str]] = {}
        for d in n.decisions():  # oldest first; a later copy (e.g. by sync) is not a decision
            known = label.get(d["subject"])
            if known is not None and known not in mine:
                mine[known] = (d["verdict"], d["disposition"], d["reason"].split(":")[0])
        decisions.append(mine)
        deepest: dict[str, tuple[int, str]] = {}
        for r in n.get(f"/agents?zone={ZONE}&limit=10000")["agents"]:
            if r["depth"] >= deepest.get(r["genesis"], (-1, ""))[0]:
                deepest[r["genesis"]] = (r["depth"], r["head"])
        heads.append({g: h for g, (_, h) in deepest.items()})
    executed = east.stored_agent(cids["executed"])
    return decisions, heads, executed


# ---------------------------------------------------------------------------- simulator


def sim_run(
    bundle: bytes, keys: list[bytes], host: tuple[LocalHost, HostSecrets], agents: dict[str, bytes]
) -> tuple[Decisions, Heads, bytes]:
    epoch = _head(_agent(agents["honest"])).epoch
    doc = {
        "run": {"name": "zone-line-5", "duration_s": 8.0},
        "topology": {"kind": "line", "nodes": N},
        "zone": {"name": ZONE, "epoch": epoch},
        "link_class": [{"name": "default", "latency_ms": 1.0}],
    }
    zi = ZoneInput(bundle, tuple(keys), {HOST: host})
    sim = Simulation(from_dict(doc), zone_input=zi)

    def publish(data: bytes) -> None:
        sim.publish_zone(0, encode_envelope(ZONE, data))

    for k, name in enumerate(ORDER):  # one second apart, as the real run waits per agent
        sim.engine.at(3_000_000 + k * 1_000_000, publish, agents[name])
    sim.run()
    cids = {name: hashlib.sha256(data).digest() for name, data in agents.items()}
    for done in sim.executions:  # one, at n4 (asserted through the decisions)
        cids["executed"] = done.result_id
    label = {c: name for name, c in cids.items()}
    decisions: Decisions = [{} for _ in range(N)]
    for d in sim.decision_log:
        known = label.get(d.content_id)
        if known is not None and known not in decisions[d.node]:
            decisions[d.node][known] = (d.wire, d.disposition, d.code)
    heads: Heads = []
    executed = b""
    for nd in sim.nodes:
        assert nd.member is not None
        states = nd.member.states
        heads.append({g.hex(): _head(a).dah.hex() for g, a in states.items()})
        for a in states.values():
            data = encode_agent(a)
            if hashlib.sha256(data).digest() == cids.get("executed"):
                executed = data
    return decisions, heads, executed


def _head(agent: Agent) -> LineageEntry:
    assert agent.lineage is not None
    return agent.lineage.entries[-1]


# ---------------------------------------------------------------------------- comparison


def canonical_heads(heads: Heads, executed: bytes) -> Heads:
    """Heads with the executed state's own DAH (host entropy) named as such."""
    mark = _head(_agent(executed)).dah.hex() if executed else "-"
    return [{g: ("executed-by-host" if h == mark else h) for g, h in hs.items()} for hs in heads]


def executed_shape(data: bytes) -> dict[str, Any]:
    """Everything about an executed state that host entropy does not decide."""
    agent = _agent(data)
    assert agent.lineage is not None
    assert agent.memory is not None
    *before, head = agent.lineage.entries
    return {
        "type": head.type.value,
        "host": head.host.hex(),
        "next_signer": head.next_signer.hex(),
        "prev": head.prev.hex(),
        "prev_is_previous_head": head.prev == entry_hash(before[-1]),
        "earlier_entries": [entry_hash(e).hex() for e in before],
        "depth": head.totals.depth,
        "ledger": [(e.kind.value, dict(e.data)) for e in agent.memory.ledger],
        "intent": (agent.intent.verb, dict(agent.intent.args)) if agent.intent else None,
    }


def test_real_processes_and_simulator_decide_and_store_alike_on_a_zone(
    line: list[ZoneNode],
) -> None:
    t0 = time.monotonic()
    bundle, agents = real_setup(line)
    keys = [bytes.fromhex(n.get("/status")["host_key"]) for n in line]
    host = host_state(line[HOST], bundle, agents)
    assert host[0].key == keys[HOST]
    real_decisions, real_heads, real_executed = real_run(line, agents)
    sim_decisions, sim_heads, sim_executed = sim_run(bundle, keys, host, agents)

    assert sim_decisions == real_decisions
    assert canonical_heads(sim_heads, sim_executed) == canonical_heads(real_heads, real_executed)
    assert executed_shape(sim_executed) == executed_shape(real_executed)

    # the scenario is the [node] line test's: pin what both sides agreed on
    assert real_decisions[0]["forged"] == ("REJECT", "DROP", "bad-signature")
    assert all("forged" not in d for d in real_decisions[1:])
    assert real_decisions[HOST]["honest"] == ("ACCEPT", "EXECUTE", "permit-host")
    assert all(d["honest"] == ("ACCEPT", "STORE", "permit") for d in real_decisions[:HOST])
    assert all(d["executed"] == ("ACCEPT", "STORE", "already-executed") for d in real_decisions)
    assert all(d["suspect"][1] == "QUARANTINE" for d in real_decisions)
    assert all(d["partial"] == ("ACCEPT", "FALLBACK", "partial") for d in real_decisions)
    lineage = _agent(agents["honest"]).lineage
    assert lineage is not None
    honest = lineage.genesis_dah.hex()
    assert all(h[honest] == "executed-by-host" for h in canonical_heads(real_heads, real_executed))
    assert len(real_heads[0]) == 2  # honest (executed) and partial; never the suspect
    for n in line:
        assert "Traceback" not in n.log_text()
    assert time.monotonic() - t0 < 45


# ---------------------------------------------------------------------------- simulator alone


def world_inputs() -> tuple[ZoneInput, dict[str, bytes]]:
    """The same shape of scenario without processes: a deterministic world's zone file, five
    hosts (n4 hosts every agent) and the same four kinds of agent, made with the real code."""
    w = build_world(WorldParams(zone=ZONE, hosts=N))
    bundle = ZoneBundle(
        zone=ZONE,
        authority=w.authority_set,
        descriptors=[w.signed["descriptor"]],
        contracts=[w.signed["contract"]],
        policy_refs=[make_policy_ref(ZONE, w.contract.id, w.authority[0])],
        host_records=[w.record_of(h) for h in w.hosts],
    ).encode()
    rng = random.Random("agents")
    made = {
        "honest": w.body(args={"text": "hello"}),
        "forged": w.body(args={"text": "forged"}),
        "suspect": w.body(args={"text": "x"}, role="suspect"),
        "partial": replace(w.body(args={"text": "p"}), memory=None),
    }
    agents = {k: encode_agent(w.spawn(body, HOST, EPOCH, rng)) for k, body in made.items()}
    agents["forged"] = forge(agents["forged"])
    h = w.hosts[HOST]
    signer = h.with_record(w.record_of(h).name)
    zi = ZoneInput(bundle, tuple(x.key for x in w.hosts), {HOST: (signer, w.secrets[h.key])})
    return zi, agents


EPOCH = 100


def sim_alone(zi: ZoneInput, agents: dict[str, bytes], seed: int) -> tuple[Simulation, str]:
    doc = {
        "run": {"name": "zone-line-5", "duration_s": 8.0, "seed": seed},
        "topology": {"kind": "line", "nodes": N},
        "zone": {"name": ZONE, "epoch": EPOCH},
        "link_class": [{"name": "default", "latency_ms": 1.0}],
    }
    sim = Simulation(from_dict(doc), zone_input=zi)

    def publish(data: bytes) -> None:
        sim.publish_zone(0, encode_envelope(ZONE, data))

    for k, name in enumerate(ORDER):
        sim.engine.at(3_000_000 + k * 1_000_000, publish, agents[name])
    return sim, digest(sim.run())


def test_simulated_host_executes_once_members_store_and_runs_repeat() -> None:
    zi, agents = world_inputs()
    (a, da), (b, db), (c, dc) = (sim_alone(zi, agents, seed) for seed in (1, 1, 2))
    (done,) = a.executions
    assert done.node == HOST
    assert done.content_id == hashlib.sha256(agents["honest"]).digest()
    assert done.output == {"noted": "hello"}
    assert a.execution_skips == {}
    executes = [d for d in a.decision_log if d.disposition == "EXECUTE"]
    assert [(d.node, d.content_id) for d in executes] == [(HOST, done.content_id)]
    after = [d for d in a.decision_log if d.content_id == done.result_id]
    assert sorted(d.node for d in after) == list(range(N))  # stored everywhere, run nowhere
    assert {d.code for d in after} == {"already-executed"}
    honest = _head(_agent(agents["honest"]))
    for nd in a.nodes:
        assert nd.member is not None
        (state,) = [s for s in nd.member.states.values() if _head(s).type.value == "execution"]
        assert _head(state).prev == entry_hash(honest)
        assert hashlib.sha256(encode_agent(state)).digest() == done.result_id
    # same seed: the same decisions and the same executed bytes; another seed: the same
    # (content-determined) decisions, another executed state (the host's own randomness)
    assert a.decision_log == b.decision_log
    assert a.executions == b.executions
    assert [(d.node, d.code) for d in c.decision_log] == [(d.node, d.code) for d in a.decision_log]
    assert c.executions[0].result_id != done.result_id
    assert da == db != dc
