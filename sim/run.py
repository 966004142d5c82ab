"""One simulation run: scenario + seed -> topology, network, real routers on the engine, metrics.

:class:`Simulation` is the driver of the routers, as ``meshnode/bridge.py`` is in a real node:
it feeds each router engine time, RPCs that crossed the virtual network and connection
changes, and carries out the outputs. It owns no protocol decision. Hot paths (``_arrive``,
``_dispatch``, ``send``) are written for speed: an event is one RPC delivery, timer or
heartbeat.
"""

from __future__ import annotations

import gc
import hashlib
import random
import resource
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent
from protocols.gossip.events import (
    Deliver,
    Dial,
    Input,
    Join,
    Output,
    PeerConnected,
    PeerDisconnected,
    Publish,
    Published,
    PublishFailed,
    RpcReceived,
    SendRpc,
)
from protocols.gossip.rpc import EMPTY_CONTROL, Rpc
from protocols.gossip.sign import SignatureCache
from protocols.gossip.validate import zone_topic
from protocols.governance.bundle import ZoneBundle
from protocols.governance.execute import NotExecuted
from protocols.governance.pipeline import Decision, encode_envelope
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeTracker
from protocols.types import PeerId, TopicId, WireVerdict
from sim import behaviours
from sim.engine import Engine
from sim.metrics import Metrics, SimTracer, percentile
from sim.network import LinkChange, LinkModel, Mobility, Network
from sim.scenario import EventSpec, Scenario, apply_override
from sim.simnode import HostState, NodeContext, SimNode, ZoneMember, gossip_params, rpc_size
from sim.topology import Topology, build, describe

if TYPE_CHECKING:
    from sim.workloads import Workload

US = 1_000_000
ProgressFn = Callable[[int, int], None]
"""(virtual now_us, end_us) -> None, called between engine slices."""


TRACKER_CAPACITY = 100_000
"""Slope heads a zone member trusts (as ``meshnode.zones``)."""


@dataclass(frozen=True, slots=True)
class ZoneInput:
    """A zone made outside the simulator (e.g. for real processes too): the signed zone file
    every node verifies into its own view, node ``i``'s host key, and the private host state
    (signer with its record name, slope secrets) of the nodes that host agents. Members of
    such a run keep slope heads and states like a real node's store, and each decision is
    logged in :attr:`Simulation.decision_log`."""

    bundle: bytes
    host_keys: tuple[bytes, ...]
    hosts: Mapping[int, tuple[LocalHost, HostSecrets]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ZoneDecision:
    """One admission at one node (the ``decision_log`` of a :class:`ZoneInput` run)."""

    node: int
    content_id: bytes
    wire: str
    disposition: str
    code: str


@dataclass(frozen=True, slots=True)
class ZoneExecution:
    """One execution by an agent's host: the state it ran and the state it published."""

    node: int
    content_id: bytes
    result_id: bytes
    output: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run produced: data (digested) and host figures (not digested)."""

    data: dict[str, Any]
    timeline: tuple[dict[str, Any], ...]
    host: dict[str, Any]


class Simulation:
    """Builds every node of a scenario and drives them on one engine."""

    def __init__(
        self, scenario: Scenario, seed: int | None = None, zone_input: ZoneInput | None = None
    ) -> None:
        t0 = time.perf_counter()
        self.scenario = scenario
        self.seed = scenario.run.seed if seed is None else seed
        self.zone_input = zone_input
        self.decision_log: list[ZoneDecision] = []
        self.executions: list[ZoneExecution] = []
        self.execution_skips: dict[str, int] = {}
        topo_spec = scenario.topology
        self.topology: Topology = build(topo_spec, self.seed)
        self.n = self.topology.n
        self.end_us = round(scenario.run.duration_s * US)
        self.engine = Engine()
        self.network = Network(scenario, self.topology, self.seed)
        zone = scenario.zone
        self.world: World | None = None
        if zone.name:
            self.world = build_world(WorldParams(zone=zone.name, hosts=zone.hosts))
            self.topic = TopicId(zone_topic(zone.name))
            self.agent_rng = random.Random(f"{self.seed}/agents")
        else:
            self.topic = TopicId(scenario.gossip.topic)
        self.rng = random.Random(f"{self.seed}/events")
        self.behaviours = [behaviours.make(g) for g in scenario.groups]
        group_of = self.network.group_of
        self.is_target = bytearray(
            0 if self.behaviours[group_of[i]].attacker else 1 for i in range(self.n)
        )
        self.withholds = bytearray(
            1 if self.behaviours[group_of[i]].withholds else 0 for i in range(self.n)
        )
        self.carriers = frozenset(
            i
            for gi, b in enumerate(self.behaviours)
            if isinstance(b, behaviours.Carrier)
            for i in self.network.members[gi]
        )
        self.index_of: dict[PeerId, int] = {}
        self.metrics = Metrics(self.n, self.index_of, self.is_target)
        self.tracer = SimTracer(self.metrics)
        self.workload: Workload | None = None
        if scenario.workload.kind != "none":
            from sim.workloads import make_workload  # the workloads import this module

            self.workload = make_workload(self)
        member: Callable[[int], ZoneMember | None] | None = None
        if self.world is not None:
            member = self._member
        if self.workload is not None:
            member = self.workload.member
        self.ctx = NodeContext(
            gossip_params(scenario.gossip),
            SignatureCache(1 << 16),
            self.tracer,
            self.seed,
            member,
        )
        with quiet_gc():
            self.nodes = [SimNode(self.ctx, i, group_of[i]) for i in range(self.n)]
        self.peer_ids = [nd.peer_id for nd in self.nodes]
        for i, pid in enumerate(self.peer_ids):
            self.index_of[pid] = i
        self.heartbeat_us = round(scenario.gossip.heartbeat_interval_ms * 1000)
        self.link_specs = {lc.name: lc for lc in scenario.link_classes}
        self.mobility: Mobility | None = (
            Mobility(scenario.mobility, self.topology.xy, self.seed)
            if scenario.mobility.model != "none" and self.topology.xy is not None
            else None
        )
        if self.workload is not None:
            self.workload.built()
        self.watched: list[int] = []
        self.timeline: list[dict[str, Any]] = []
        self.publish_count = 0
        self.publish_failed = 0
        self.setup_s = time.perf_counter() - t0

    # ================================================================ zone members

    def _member(self, i: int) -> ZoneMember:
        """Node ``i``'s own zone view; nodes ``0..hosts-1`` are the zone's hosts (they hold
        the secrets of the agents they spawn, so they can execute them)."""
        if self.zone_input is not None:
            return self._input_member(i, self.zone_input)
        assert self.world is not None
        hosts = self.world.hosts
        epoch = self.scenario.zone.epoch
        if i >= len(hosts):
            key = hashlib.sha256(f"sim/{i}".encode()).digest()
            return ZoneMember(self.world.view(), key, epoch, self._on_decision)
        h = hosts[i]
        signer = h.with_record(self.world.record_of(h).name)
        state = HostState(signer, random.Random(f"{self.seed}/exec/{i}"))
        return ZoneMember(
            self.world.view(),
            h.key,
            epoch,
            self._on_decision,
            host_state=state,
            on_execute=partial(self._on_execute, i),
        )

    def _input_member(self, i: int, zi: ZoneInput) -> ZoneMember:
        epoch = self.scenario.zone.epoch
        state = None
        if i in zi.hosts:
            host, secrets = zi.hosts[i]
            state = HostState(host, random.Random(f"{self.seed}/exec/{i}"), secrets)
        return ZoneMember(
            ZoneBundle.decode(zi.bundle).view(epoch),
            zi.host_keys[i],
            epoch,
            self._on_decision,
            tracker=SlopeTracker(TRACKER_CAPACITY),
            host_state=state,
            on_execute=partial(self._on_execute, i),
        )

    def _on_decision(self, decision: Decision) -> None:
        self.metrics.on_decision(self.tracer.node, decision.code)
        if self.zone_input is not None:
            self.decision_log.append(
                ZoneDecision(
                    self.tracer.node,
                    decision.content_id,
                    decision.wire.value,
                    decision.disposition.value,
                    decision.code,
                )
            )

    def _on_execute(self, i: int, decision: Decision) -> None:
        """An EXECUTE decision at node ``i``: run it right after the verdict (as the real
        node runs executions once the batch's verdicts went out)."""
        if decision.agent is not None:
            self.engine.after(0, self._execute, i, decision.agent, decision.content_id)

    def _execute(self, i: int, agent: Agent, content_id: bytes) -> None:
        """Node ``i`` runs the agent as its host (the node's executor path), admits the new
        state itself and publishes it; members store it, nobody executes it again."""
        member = self.nodes[i].member
        if member is None or member.host_state is None or not self.network.up[i]:
            reason = "no host state" if self.network.up[i] else "node down"
            self.execution_skips[reason] = self.execution_skips.get(reason, 0) + 1
            return
        zone = member.view.zone
        done = member.host_state.run(zone, agent, content_id, member.epoch)
        if isinstance(done, NotExecuted):
            self.execution_skips[done.reason] = self.execution_skips.get(done.reason, 0) + 1
            return
        data = encode_agent(done.agent)
        self.executions.append(
            ZoneExecution(i, content_id, hashlib.sha256(data).digest(), done.effect.output)
        )
        self.publish_zone(i, encode_envelope(zone, data))

    def publish_zone(self, i: int, data: bytes) -> Decision:
        """Node ``i`` publishes a zone envelope as a real node's ``/publish`` does: it admits
        the bytes itself first and publishes only what it ACCEPTs."""
        member = self.nodes[i].member
        assert member is not None
        tracer = self.tracer
        tracer.node = i
        tracer.now_us = self.engine.now_us
        decision = member.admit(data)
        if decision.wire is not WireVerdict.ACCEPT:
            return decision
        outs = self.nodes[i].router.handle(Publish(self.topic, data), self.engine.now)
        for o in outs:
            if type(o) is Published:
                self.metrics.published(o.msg_id, i, self.engine.now_us)
        self._dispatch(i, outs)
        return decision

    def _zone_agent(self, host: int) -> bytes:
        """A fresh agent made on zone host ``host`` with the real identity code (the host
        keeps the secret of its head's commitment)."""
        assert self.world is not None
        w = self.world
        body = w.body(args={"text": f"{self.scenario.run.name}/{self.publish_count}"})
        agent = w.spawn(body, host, self.scenario.zone.epoch, self.agent_rng)
        member = self.nodes[host].member
        assert agent.lineage is not None
        commit = agent.lineage.entries[-1].commit
        secret = w.secrets[w.hosts[host].key].get(commit)
        if member is not None and member.host_state is not None and secret is not None:
            member.host_state.keep(commit, secret)
        return w.envelope(agent)

    def forged_zone_agent(self, kind: str, tag: int) -> bytes:
        """A zone agent made on host 0 and then tampered with: ``forger`` swaps the head's
        DAH (a broken slope), ``bad_signer`` zeroes the head's host signature."""
        assert self.world is not None
        w = self.world
        body = w.body(args={"text": f"attack/{tag}"})
        agent = w.spawn(body, 0, self.scenario.zone.epoch, self.agent_rng)
        assert agent.lineage is not None
        head = agent.lineage.entries[-1]
        if kind == "forger":
            head = replace(head, dah=hashlib.sha256(f"forged/{tag}".encode()).digest())
        else:
            head = replace(head, sig=bytes(64))
        entries = (*agent.lineage.entries[:-1], head)
        return w.envelope(replace(agent, lineage=replace(agent.lineage, entries=entries)))

    # ================================================================ router calls

    def call_router(self, i: int, event: Input) -> None:
        """Feed one input to node ``i``'s router now and carry out its outputs."""
        tracer = self.tracer
        tracer.node = i
        tracer.now_us = self.engine.now_us
        self._dispatch(i, self.nodes[i].router.handle(event, self.engine.now))

    def _dispatch(self, i: int, outs: list[Output]) -> None:
        sizes: dict[int, int] | None = {} if len(outs) > 1 else None
        index_of = self.index_of
        for o in outs:
            t = type(o)
            if t is SendRpc:
                self.send(i, index_of[o.peer], o.rpc, sizes)  # type: ignore[union-attr]
            elif t is Deliver:
                if self.workload is not None:
                    self.workload.on_deliver(i, o.message)  # type: ignore[union-attr]
                beh = self.behaviours[self.nodes[i].group]
                if type(beh) is not behaviours.Behaviour:
                    beh.on_deliver(self, i, o.message)  # type: ignore[union-attr]
            elif t is PublishFailed:
                self.publish_failed += 1
            elif t is Dial:
                j = self.index_of.get(o.peer)  # type: ignore[union-attr]
                if j is not None and j != i:
                    self.apply_changes(self.network.add_links(i, [j]))
            elif t is Published:
                pass

    def send(self, i: int, j: int, rpc: Rpc, sizes: dict[int, int] | None = None) -> None:
        """Put an RPC from ``i`` to ``j`` on the wire (it may be lost or cut)."""
        if self.withholds[i] and rpc.publish:
            rpc = Rpc(rpc.subscriptions, (), rpc.control)
            if not rpc.subscriptions and rpc.control is EMPTY_CONTROL:
                return
        if sizes is None:
            size = rpc_size(rpc)
        else:
            size = sizes.get(id(rpc), -1)
            if size < 0:
                size = sizes[id(rpc)] = rpc_size(rpc)
        m = self.metrics
        m.bytes_sent[i] += size
        m.rpcs_sent[i] += 1
        if rpc.publish:
            m.publish_copies += len(rpc.publish)
        net = self.network
        if j not in net.conn[i]:
            m.rpcs_dropped_link += 1
            return
        eng = self.engine
        now_us = eng.now_us
        inc = net.incarnation
        eng.at(now_us + net.transit_us(i, j, size, now_us), self._arrive, i, j, rpc, inc[i], inc[j])

    def send_to_all(self, i: int, rpc: Rpc) -> None:
        for j in sorted(self.network.conn[i]):
            self.send(i, j, rpc)

    def _arrive(self, i: int, j: int, rpc: Rpc, inc_i: int, inc_j: int) -> None:
        """An RPC reaches ``j`` (the hot path: inlined ``call_router``)."""
        net = self.network
        inc = net.incarnation
        if inc[i] != inc_i or inc[j] != inc_j or i not in net.conn[j]:
            self.metrics.rpcs_dropped_link += 1
            return
        eng = self.engine
        tracer = self.tracer
        tracer.node = j
        now_us = tracer.now_us = eng.now_us
        outs = self.nodes[j].router.handle(RpcReceived(self.peer_ids[i], rpc), now_us / US)
        if outs:
            self._dispatch(j, outs)

    def _heartbeat(self, i: int, inc: int) -> None:
        if self.network.incarnation[i] != inc or not self.network.up[i]:
            return
        eng = self.engine
        tracer = self.tracer
        tracer.node = i
        tracer.now_us = eng.now_us
        self._dispatch(i, self.nodes[i].router.heartbeat(eng.now))
        eng.at(eng.now_us + self.heartbeat_us, self._heartbeat, i, inc)

    # ================================================================ links and life

    def apply_changes(self, changes: Sequence[LinkChange], restarted: int = -1) -> None:
        """Tell both routers about connections that came up or went down."""
        self.metrics.link_changes += len(changes)
        detect = round(self.scenario.network.detect_ms * 1000)
        for ch in changes:
            if ch.up:
                u_out = self.rng.random() < 0.5
                for a, b, outbound in ((ch.u, ch.v, u_out), (ch.v, ch.u, not u_out)):
                    if b == restarted:
                        self.call_router(a, PeerDisconnected(self.peer_ids[b]))
                    self.call_router(a, PeerConnected(self.peer_ids[b], outbound))
            elif detect:
                self.engine.after(detect, self._notice_down, ch.u, ch.v)
            else:
                self._notice_down(ch.u, ch.v)

    def _notice_down(self, u: int, v: int) -> None:
        net = self.network
        if v in net.conn[u]:
            return  # the link came back before anyone noticed
        for a, b in ((u, v), (v, u)):
            if net.up[a]:
                self.call_router(a, PeerDisconnected(self.peer_ids[b]))

    def crash(self, i: int) -> None:
        self.metrics.crashes += 1
        self.apply_changes(self.network.crash(i))

    def restart(self, i: int) -> None:
        self.metrics.restarts += 1
        self.nodes[i].restart(self.ctx)
        changes = self.network.restart(i)
        for topic in self.topics_of(i):
            self.call_router(i, Join(topic))
        self._start_heartbeat(i)
        self.apply_changes(changes, restarted=i)

    def _join(self, i: int) -> None:
        """A late node comes up for the first time (fresh state, like a restart)."""
        self.restart(i)
        self.metrics.restarts -= 1
        self.metrics.joins += 1

    def topics_of(self, i: int) -> list[TopicId]:
        """Topics node ``i`` joins (a workload gives each node its zone's)."""
        if self.workload is not None:
            return self.workload.topics_of(i)
        return [self.topic]

    def _start_heartbeat(self, i: int) -> None:
        offset = self.heartbeat_us
        if self.scenario.gossip.heartbeat_stagger:
            offset = 1 + self.nodes[i].rng.randrange(self.heartbeat_us)
        self.engine.after(offset, self._heartbeat, i, self.network.incarnation[i])

    def watch(self, nodes: Iterable[int]) -> None:
        """Nodes whose delivery the report shows separately (e.g. eclipse victims)."""
        self.watched = sorted(set(self.watched) | set(nodes))
        for i in self.watched:
            self.metrics.watched[i] = 1

    # ================================================================ timeline

    def _schedule_events(self) -> None:
        for ev in self.scenario.events:
            self.engine.at(round(ev.at_s * US), self._event, ev)

    def _event(self, ev: EventSpec) -> None:
        net = self.network
        kind = ev.kind
        if kind == "publish":
            step = round(ev.interval_ms * 1000)
            for k in range(ev.count):
                self.engine.after(k * step, self._publish_one, ev)
        elif kind == "partition":
            self.apply_changes(net.partition(self._partition_labels(ev)))
        elif kind == "heal":
            self.apply_changes(net.heal())
        elif kind == "outage":
            hit = self._pick_nodes(ev)
            for i in hit:
                if net.up[i]:
                    self.crash(i)
            self.engine.after(round(ev.duration_s * US), self._end_outage, hit)
        elif kind == "churn":
            window = max(1, round(ev.duration_s * US))
            for i in self._pick_nodes(ev):
                self.engine.after(self.rng.randrange(window), self._churn_one, i, ev.down_s)
        elif kind == "override":
            name = ev.key.split(".")[1]
            spec = apply_override(self.link_specs[name], ev)
            self.link_specs[name] = spec
            net.set_class(name, LinkModel.from_spec(spec))

    def _end_outage(self, hit: list[int]) -> None:
        for i in hit:
            if not self.network.up[i]:
                self.restart(i)

    def _churn_one(self, i: int, down_s: float) -> None:
        if self.network.up[i]:
            self.crash(i)
            down = max(1, round(self.rng.expovariate(1 / down_s) * US))
            self.engine.after(down, self._end_outage, [i])

    def _pick_nodes(self, ev: EventSpec) -> list[int]:
        if ev.group:
            gi = [g.name for g in self.scenario.groups].index(ev.group)
            return list(self.network.members[gi])
        pool = [i for i in range(self.n) if self.is_target[i]]
        return sorted(self.rng.sample(pool, round(ev.fraction * len(pool))))

    def _partition_labels(self, ev: EventSpec) -> list[int]:
        labels = [0] * self.n
        cluster = self.topology.cluster
        if ev.by_cluster and cluster is not None:
            labels = list(cluster)
        elif ev.sides:
            names = [g.name for g in self.scenario.groups]
            for side, groups in enumerate(ev.sides):
                for gname in groups:
                    for i in self.network.members[names.index(gname)]:
                        labels[i] = side
        else:
            order = list(range(self.n))
            self.rng.shuffle(order)
            cut = round(ev.fraction * self.n)
            for i in order[cut:]:
                labels[i] = 1
        for c in self.carriers:
            labels[c] = self.network.side[c]
        return labels

    def _publish_one(self, ev: EventSpec) -> None:
        pool: Sequence[int]
        if ev.group:
            gi = [g.name for g in self.scenario.groups].index(ev.group)
            pool = self.network.members[gi]
        else:
            pool = [i for i in range(self.n) if self.is_target[i]]
        if self.world is not None:
            pool = range(len(self.world.hosts))  # agents are made and published by hosts
        up = [i for i in pool if self.network.up[i]]
        if not up:
            self.publish_failed += 1
            return
        i = up[self.rng.randrange(len(up))]
        self.publish_count += 1
        if self.world is not None:
            data = self._zone_agent(i)
        else:
            data = f"{self.scenario.run.name}/{self.publish_count}".encode()
            data = data.ljust(ev.size_bytes, b".")
        tracer = self.tracer
        tracer.node = i
        tracer.now_us = self.engine.now_us
        outs = self.nodes[i].router.handle(Publish(self.topic, data), self.engine.now)
        for o in outs:
            if type(o) is Published:
                self.metrics.published(o.msg_id, i, self.engine.now_us)
        self._dispatch(i, outs)

    # ================================================================ sampling

    def _mobility_step(self, interval_us: int) -> None:
        assert self.mobility is not None
        self.mobility.advance(interval_us / US, self.engine.now)
        self.apply_changes(self.network.set_links(self.mobility.edges()))
        self.engine.after(interval_us, self._mobility_step, interval_us)

    def _sample(self, interval_us: int) -> None:
        m = self.metrics
        net = self.network
        topic = self.topic
        if self.workload is not None:  # each node's own (first) zone topic
            firsts = [self.topics_of(i)[:1] for i in range(self.n)]
            degrees = [
                len(self.nodes[i].router.overlay.mesh.get(firsts[i][0], ()))
                for i in range(self.n)
                if net.up[i] and firsts[i]
            ]
        else:
            degrees = [
                len(self.nodes[i].router.overlay.mesh.get(topic, ()))
                for i in range(self.n)
                if net.up[i]
            ]
        expected = 0
        got = 0
        for mid in m.order:
            rec = m.messages[mid]
            expected += m.targets - (1 if self.is_target[rec.publisher] else 0)
            got += rec.delivered
        line: dict[str, Any] = {
            "t_s": round(self.engine.now_us / US, 6),
            "published": len(m.order),
            "delivered": got,
            "expected": expected,
            "delivery_ratio": round(got / expected, 6) if expected else None,
            "deliveries": m.deliveries,
            "duplicates": m.duplicates,
            "bytes_sent": sum(m.bytes_sent),
            "rpcs_sent": sum(m.rpcs_sent),
            "retransmissions": net.retransmissions,
            "nodes_up": sum(net.up),
            "mesh_degree_mean": round(sum(degrees) / len(degrees), 4) if degrees else 0.0,
            "mesh_degree_min": min(degrees, default=0),
            "link_changes": m.link_changes,
            "events": self.engine.executed,
        }
        if self.workload is not None:
            self.workload.sample(line)
        if self.watched:
            line["watched_delivery_ratio"] = self._watched_ratio()
            line["watched_mesh_attacker_share"] = self._watched_mesh_share()
        self.timeline.append(line)
        if self.engine.now_us + interval_us <= self.end_us:
            self.engine.after(interval_us, self._sample, interval_us)

    def _watched_mesh_share(self) -> float:
        """Share of the watched nodes' mesh slots held by attackers (the eclipse measure)."""
        total = 0
        bad = 0
        for w in self.watched:
            for p in self.nodes[w].router.overlay.mesh.get(self.topic, ()):
                total += 1
                bad += not self.is_target[self.index_of[p]]
        return round(bad / total, 6) if total else 0.0

    def _watched_ratio(self) -> float | None:
        m = self.metrics
        total = 0
        got = 0
        for mid in m.order:
            hops = m.messages[mid].hops
            for w in self.watched:
                total += 1
                got += hops[w] >= 0
        return round(got / total, 6) if total else None

    def _scores(self) -> dict[str, Any]:
        """Scores honest nodes give their peers at the end, split by the peer's kind."""
        honest: list[float] = []
        attackers: list[float] = []
        sample = [i for i in range(self.n) if self.is_target[i] and self.network.up[i]]
        if len(sample) > 2000:
            sample = sorted(random.Random(f"{self.seed}/scores").sample(sample, 2000))
        if self.ctx.params.score is None:
            return {"enabled": False}
        for i in sample:
            r = self.nodes[i].router
            for pid in sorted(r.overlay.peers):
                s = r.peer_score(pid)
                (honest if self.is_target[self.index_of[pid]] else attackers).append(s)

        def spread(xs: list[float]) -> dict[str, float]:
            xs.sort()
            if not xs:
                return {"count": 0}
            mid = xs[len(xs) // 2]
            return {
                "count": len(xs),
                "min": round(xs[0], 4),
                "median": round(mid, 4),
                "max": round(xs[-1], 4),
            }

        return {
            "enabled": True,
            "honest_peers": spread(honest),
            "attacker_peers": spread(attackers),
        }

    # ================================================================ run

    def run(self, progress: ProgressFn | None = None) -> RunResult:
        with quiet_gc():
            return self._run(progress)

    def _run(self, progress: ProgressFn | None) -> RunResult:
        t0 = time.perf_counter()
        eng = self.engine
        for i in range(self.n):
            for topic in self.topics_of(i):
                self.call_router(i, Join(topic))
        late: list[int] = []
        for gi, group in enumerate(self.scenario.groups):
            if group.join_s > 0:
                for i in self.network.members[gi]:
                    self.network.up[i] = 0
                    eng.at(round(group.join_s * US), self._join, i)
                    late.append(i)
        for gi, beh in enumerate(self.behaviours):
            beh.start(self, self.network.members[gi])
        initial = self.network.reconcile(range(self.n))
        spread = round(self.scenario.network.connect_spread_ms * 1000)
        if spread:
            for ch in initial:
                eng.at(self.rng.randrange(spread), self.apply_changes, [ch])
        else:
            self.apply_changes(initial)
        for i in range(self.n):
            if self.network.up[i]:
                self._start_heartbeat(i)
        interval = round(self.scenario.run.metrics_interval_s * US)
        eng.at(min(interval, self.end_us), self._sample, interval)
        if self.mobility is not None:
            step = round(self.scenario.mobility.recompute_interval_s * US)
            eng.at(step, self._mobility_step, step)
        self._schedule_events()
        if self.workload is not None:
            self.workload.start()
        setup_done = time.perf_counter()
        slice_us = max(self.end_us // 200, 1000)
        now = 0
        while now < self.end_us:
            now = min(now + slice_us, self.end_us)
            eng.run_until(now)
            if progress is not None:
                progress(now, self.end_us)
        run_s = time.perf_counter() - setup_done
        if not self.timeline or self.timeline[-1]["t_s"] != round(self.end_us / US, 6):
            self._sample(0)
        return self._result(t0, run_s)

    def _result(self, t0: float, run_s: float) -> RunResult:
        m = self.metrics
        summary = m.summary()
        watched: dict[str, Any] = {}
        if self.watched:
            lat = sorted(m.watched_latencies_us)
            watched = {
                "nodes": self.watched,
                "delivery_ratio": self._watched_ratio(),
                "mesh_attacker_share_end": self._watched_mesh_share(),
                "mesh_attacker_share_max": max(
                    (x.get("watched_mesh_attacker_share", 0.0) for x in self.timeline), default=0.0
                ),
                "latency_ms": {
                    "p50": percentile(lat, 50) / 1000,
                    "p90": percentile(lat, 90) / 1000,
                    "p99": percentile(lat, 99) / 1000,
                },
            }
        data: dict[str, Any] = {
            "scenario": self.scenario.run.name,
            "config": self.scenario.to_dict(),
            "seed": self.seed,
            "nodes": self.n,
            "virtual_s": self.end_us / US,
            "topology": describe(self.topology),
            "groups": {
                g.name: {"behaviour": g.behaviour, "nodes": len(self.network.members[k])}
                for k, g in enumerate(self.scenario.groups)
            },
            "results": summary,
            "watched": watched,
            "scores": self._scores(),
            "events_executed": self.engine.executed,
            "retransmissions": self.network.retransmissions,
            "publish_failed": self.publish_failed,
            "signature_checks": self.ctx.sig_cache.verified,
            "zone": self.scenario.zone.name,
            "signature_cache_hits": self.ctx.sig_cache.hits,
        }
        if self.workload is not None:
            data["workload"] = self.workload.result()
        if self.executions or self.execution_skips:  # absent where nothing executed
            data["executions"] = {
                "executed": len(self.executions),
                "not_executed": dict(sorted(self.execution_skips.items())),
            }
        wall = time.perf_counter() - t0
        rss = peak_rss_bytes()
        host = {
            "setup_s": round(self.setup_s, 3),
            "run_s": round(run_s, 3),
            "wall_s": round(self.setup_s + wall, 3),
            "events_per_s": round(self.engine.executed / run_s) if run_s > 0 else 0,
            "peak_rss_bytes": rss,
            "bytes_per_node": round(rss / self.n),
            "python": sys.version.split()[0],
        }
        return RunResult(data, tuple(self.timeline), host)


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Hundreds of thousands of long-lived router objects make every full cyclic GC pass
    slow: freeze what exists and collect young objects less often; restored on exit."""
    thresholds = gc.get_threshold()
    gc.collect()  # garbage cycles (the networkx graph) must not be frozen forever
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def run_scenario(
    scenario: Scenario, seed: int | None = None, progress: ProgressFn | None = None
) -> RunResult:
    """Build and run one scenario (the library entry point; the CLI adds output and a bar)."""
    return Simulation(scenario, seed).run(progress)
