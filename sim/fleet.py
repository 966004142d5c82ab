"""Fleet coordination (SPEC §3.1): units claim tasks by quorum, with no dispatcher in the loop.

Units live in area zones (cells of the square; each unit walks inside its own cell, so a
zone's radio graph stays connected). A task appears at a unit, which hosts the task agent
(real identity code), picks the least-loaded unit of its zone within radio range, and asks the
scope's validators (real :mod:`protocols.governance.quorum`: each validator's durable
ledger signs at most one proposal per scope) over direct streams. With a certificate the host
appends the certified claim, gossips it on the zone topic (every member runs the real
admission pipeline and records the claim in its own records) and hands the agent to the
claimant (:func:`protocols.governance.migration.migrate`); the claimant admits it as host and
runs it. The central baseline (:mod:`sim.baseline`) runs the same tasks on the same network.

Also: the publisher sends descriptor version 2 (all validators vote from epoch E) on the
control topic, with anti-entropy sync for nodes that missed it; forged and replayed claims
are injected by compromised (admitted) units; a sub-fleet (one zone) is cut off for a while.
"""

from __future__ import annotations

import hashlib
import math
import random
from array import array
from collections.abc import Callable
from dataclasses import replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import nacl.signing

from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, LedgerKind, MutationClass
from protocols.codec import decode
from protocols.errors import MeshError
from protocols.gossip.events import Publish
from protocols.gossip.rpc import Message, Rpc
from protocols.gossip.validate import zone_topic
from protocols.governance.migration import Hosted, migrate
from protocols.governance.pipeline import (
    QC_KEY,
    Decision,
    Disposition,
    certificate_event,
    proposal_subject,
)
from protocols.governance.policy import make_policy_ref
from protocols.governance.quorum import (
    Outcome,
    Proposal,
    QuorumCertificate,
    Vote,
    VoteLedger,
    min_k,
    new_proposal,
    scope_of,
    tally,
    validator_set,
    verify_certificate,
)
from protocols.governance.signing import TAG_DESCRIPTOR, Signed, decode_signed, signing_key
from protocols.governance.world import World, WorldParams, build_world
from protocols.governance.zone import LOCAL, QuorumParams, ZoneDescriptor
from protocols.identity.dah import Change
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.types import PeerId, TopicId, WireVerdict
from sim.baseline import CentralBaseline
from sim.network import Mobility
from sim.scenario import MobilitySpec
from sim.simnode import ZoneMember
from sim.workloads import US, JudgingMember, Paths, Workload, cdf_ms, quantiles_ms

if TYPE_CHECKING:
    from sim.run import Simulation

PUBLISHER = 0
STANDBY = 1
"""Node 0 is the policy publisher and the baseline's primary coordinator; node 1 the standby."""
SLA_S = 10
"""Seconds within which a task counts as picked up promptly (the windows' second figure)."""
ATTACKS = ("forged-dah", "forged-cert", "replayed-cert", "stale-replay")


def grid(zones: int) -> tuple[int, int]:
    """(rows, cols) of the zone cells: 10 zones -> 2 x 5."""
    rows = max(1, int(math.sqrt(zones / 2)))
    while zones % rows:
        rows -= 1
    return rows, zones // rows


class CellMobility(Mobility):
    """Random waypoint inside each node's own cell (a unit stays in its area)."""

    def __init__(
        self,
        spec: MobilitySpec,
        xy: array[float],
        seed: int,
        cells: list[tuple[float, float, float, float]],
    ) -> None:
        self.cells = cells
        super().__init__(spec, xy, seed)

    def _new_leg(self, i: int) -> None:
        x0, y0, x1, y1 = self.cells[i]
        s = self.spec
        self.target[2 * i] = (x0 + self.rng.random() * (x1 - x0)) * s.area_m
        self.target[2 * i + 1] = (y0 + self.rng.random() * (y1 - y0)) * s.area_m
        self.speed[i] = self.rng.uniform(s.speed_min_mps, s.speed_max_mps)


class Task:
    """One task: where and when it appeared, and what happened to it in the mesh."""

    __slots__ = (
        "agent",
        "claimed_us",
        "created_us",
        "done_us",
        "escalated",
        "final",
        "held_us",
        "index",
        "origin",
        "winner",
        "zone",
    )

    def __init__(self, index: int, created_us: int) -> None:
        self.index = index
        self.created_us = created_us
        self.origin = -1
        self.zone = -1
        self.winner = -1
        self.agent: Agent | None = None
        self.final: Agent | None = None
        self.claimed_us = -1
        self.held_us = -1
        self.done_us = -1
        self.escalated = False


class Claim:
    """A proposal in flight at the task's host: the votes it has collected."""

    __slots__ = ("change", "desc", "done", "proposal", "task", "voters", "votes")

    def __init__(
        self, task: Task, change: Change, desc: ZoneDescriptor, proposal: Proposal
    ) -> None:
        self.task = task
        self.change = change
        self.desc = desc
        self.proposal = proposal
        self.voters = validator_set(desc, proposal.scope, proposal.g0)
        self.votes: dict[bytes, Vote] = {}
        self.done = False


class FleetWorkload(Workload):
    """Area zones, task claims by quorum, handoff, attacks, policy v2 and the baseline."""

    def __init__(self, sim: Simulation) -> None:
        super().__init__(sim)
        w = self.spec
        self.rng = random.Random(f"{sim.seed}/workload")
        self.agent_rng = random.Random(f"{sim.seed}/workload-agents")
        self.paths = Paths(sim)
        self.exec_us = round(w.exec_s * US)
        self.publisher, self.standby = self.coordinators()
        self.infra = frozenset({self.publisher, self.standby})
        self.zone_of = array("i", [-1]) * sim.n
        self.assign_zones()
        self.units_of: list[list[int]] = [[] for _ in range(self.zone_count())]
        for i in range(sim.n):
            if self.zone_of[i] >= 0:
                self.units_of[self.zone_of[i]].append(i)
        self.units = sorted(i for i in range(sim.n) if self.zone_of[i] >= 0)
        self.worker = bytearray(sim.n)
        for i in self.units:
            self.worker[i] = i not in sim.carriers
        """Units that take tasks (carriers are zone members but only carry)."""
        self.worlds = [self.make_world(z) for z in range(self.zone_count())]
        self.topics = [TopicId(zone_topic(wd.zone)) for wd in self.worlds]
        self.host_idx = array("i", [-1]) * sim.n
        self.host_of: dict[bytes, int] = {}
        for z, units in enumerate(self.units_of):
            for j, i in enumerate(units):
                self.host_idx[i] = j
                self.host_of[self.worlds[z].hosts[j].key] = i
        self.key_unit = dict(self.host_of)
        """Host and validator keys -> the unit that holds them (for reading lineage)."""
        self.vkeys: dict[bytes, nacl.signing.SigningKey] = {}
        self.vunit: dict[bytes, int] = {}
        self.ledgers: dict[int, VoteLedger] = {}
        for z, units in enumerate(self.units_of):
            vs = self.worlds[z].validators
            for j, v in enumerate(vs):
                unit = units[(j * len(units)) // len(vs)]
                self.vkeys[v.key] = signing_key(v.seed)
                self.vunit[v.key] = unit
                self.key_unit[v.key] = unit
                self.ledgers[unit] = VoteLedger()
        self.v2: list[Signed] = []
        self.v2_desc: list[ZoneDescriptor] = []
        self.v2_at = array("q", [-1]) * sim.n
        self.v2_published_us = -1
        self.v2_all_us = -1
        """When every unit held version 2 (sync stops then)."""
        self.members: dict[int, JudgingMember] = {}
        self.tasks: list[Task] = []
        self.load = array("i", [0]) * sim.n
        self.baseline: CentralBaseline | None = None
        # records and counters
        self.records: list[dict[int, int]] = [{} for _ in range(sim.n)]
        """Per node: task -> claimant, from the claims the node admitted (its own records)."""
        self.duplicate_records = 0
        self.executions: dict[int, list[int]] = {}
        self.tags: dict[bytes, tuple[str, int]] = {}
        self.bits: dict[bytes, int] = {}
        self.codes: dict[str, int] = {}
        self.forged_judged = 0
        self.forged_refused = 0
        self.bad_kinds = set(ATTACKS)
        """Tags of states that must be refused (the rest of the non-"honest" tags are a
        workload's own and are ignored here)."""
        self.forged_by_kind: dict[str, list[int]] = {k: [0, 0, 0] for k in ATTACKS}
        """kind -> [injected, judged, refused]."""
        self.honest_judged = 0
        self.honest_refused = 0
        self.honest_refused_codes: dict[str, int] = {}
        self.direct_msgs = 0
        self.escalations = 0
        self.reproposals = 0
        self.handoffs_refused = 0
        self.created = 0
        self.held = 0
        self.done = 0
        self.certified: list[Task] = []
        self.marks: list[tuple[str, float, float]] = []

    # ================================================================ layout

    def zone_count(self) -> int:
        return self.spec.zones

    def coordinators(self) -> tuple[int, int]:
        """(publisher and primary coordinator, standby): infrastructure, not units."""
        return PUBLISHER, STANDBY

    def assign_zones(self) -> None:
        """Zones are the cells of a rows x cols grid, by each unit's starting position."""
        xy = self.sim.topology.xy
        rows, cols = grid(self.spec.zones)
        self.cells: list[tuple[float, float, float, float]] = []
        for i in range(self.sim.n):
            x, y = (xy[2 * i], xy[2 * i + 1]) if xy is not None else (0.0, 0.0)
            c, r = min(int(x * cols), cols - 1), min(int(y * rows), rows - 1)
            if i in self.infra:
                self.cells.append((x, y, x, y))
                continue
            self.zone_of[i] = r * cols + c
            self.cells.append((c / cols, r / rows, (c + 1) / cols, (r + 1) / rows))

    def zone_name(self, z: int) -> str:
        return f"area-{z}"

    def make_world(self, z: int) -> World:
        w = self.spec
        quorum = QuorumParams(mode=w.quorum_mode, n=w.quorum_n, k_min=w.quorum_k_min)
        return build_world(
            WorldParams(
                zone=self.zone_name(z),
                hosts=max(1, len(self.units_of[z])),
                validators=w.validators,
                quorum=quorum,
                activation_epoch=0,
            )
        )

    # ================================================================ driver hooks

    def member(self, i: int) -> ZoneMember | None:
        z = self.zone_of[i]
        if z < 0:
            return None
        world = self.worlds[z]
        m = JudgingMember(
            world.view(),
            world.hosts[self.host_idx[i]].key,
            i,
            self.epoch_now,
            self.judged,
            self.sync_peer(),
        )
        self.members[i] = m
        return m

    def sync_peer(self) -> Callable[[PeerId], bool] | None:
        """Which peers hand over stored states (judged as sync); None: nobody."""
        return None

    def built(self) -> None:
        sim = self.sim
        if sim.mobility is not None and sim.topology.xy is not None:
            sim.mobility = CellMobility(
                sim.scenario.mobility, sim.topology.xy, sim.seed, self.cells
            )

    def topics_of(self, i: int) -> list[TopicId]:
        z = self.zone_of[i]
        return [] if z < 0 else [self.topics[z]]

    def start(self) -> None:
        sim = self.sim
        w = self.spec
        eng = sim.engine
        if w.baseline:
            self.baseline = CentralBaseline(
                sim,
                self.paths,
                self.baseline_pick,
                self.publisher,
                self.standby,
                w.tasks,
                self.exec_us,
                self.baseline_key(),
            )
        times = sorted(
            round(self.rng.uniform(w.tasks_start_s, w.tasks_end_s) * US) for _ in range(w.tasks)
        )
        for k, t in enumerate(times):
            task = Task(k, t)
            self.tasks.append(task)
            eng.at(t, self._create, task)
        if w.outage_start_s >= 0:
            eng.at(round(w.outage_start_s * US), self._outage, True)
            if w.outage_end_s > w.outage_start_s:
                eng.at(round(w.outage_end_s * US), self._outage, False)
                self.marks.append(("publisher outage", w.outage_start_s, w.outage_end_s))
        if w.partition_zone >= 0 and w.partition_start_s >= 0:
            eng.at(round(w.partition_start_s * US), self._partition, True)
            if w.partition_end_s > w.partition_start_s:
                eng.at(round(w.partition_end_s * US), self._partition, False)
                self.marks.append(("sub-fleet cut off", w.partition_start_s, w.partition_end_s))
        if w.descriptor_publish_s >= 0 and w.descriptor_active_s >= 0:
            self._make_v2()
            eng.at(round(w.descriptor_publish_s * US), self._publish_v2)
        n_att = w.forgeries + w.replays
        kinds = [ATTACKS[k % 2] for k in range(w.forgeries)]
        kinds += [ATTACKS[2 + k % 2] for k in range(w.replays)]
        for k in range(n_att):
            at = self.rng.uniform(w.attack_start_s, max(w.attack_start_s, w.attack_end_s))
            eng.at(round(at * US), self._attack, kinds[k], k)

    # ================================================================ events

    def _outage(self, down: bool) -> None:
        sim = self.sim
        if down:
            if sim.network.up[self.publisher]:
                sim.crash(self.publisher)
            if self.baseline is not None:
                self.baseline.primary_down()
        elif not sim.network.up[self.publisher]:
            sim.restart(self.publisher)

    def _partition(self, cut: bool) -> None:
        sim = self.sim
        if cut:
            zones = self.cut_zones()
            labels = [1 if self.zone_of[i] in zones else 0 for i in range(sim.n)]
            sim.apply_changes(sim.network.partition(labels))
        else:
            sim.apply_changes(sim.network.heal())

    # ================================================================ tasks

    def cut_zones(self) -> frozenset[int]:
        """The sub-fleet: ``partition_zones`` zones from ``partition_zone`` on."""
        w = self.spec
        if w.partition_zone < 0:
            return frozenset()
        return frozenset(
            range(w.partition_zone, min(w.partition_zone + w.partition_zones, w.zones))
        )

    def pick(self, task: int, origin: int, load: array[int]) -> int:
        """The least-loaded unit of the origin's zone within radio range (ties: lowest id);
        the baseline's coordinator applies the same rule with its own view of the load."""
        z = self.zone_of[origin]
        best = origin
        key = (load[origin], origin)
        for v in self.sim.network.conn[origin]:
            if self.zone_of[v] == z and self.worker[v] and (load[v], v) < key:
                best, key = v, (load[v], v)
        return best

    def baseline_key(self) -> Callable[[int], int] | None:
        """Requests the baseline treats as one (None: every task is its own)."""
        return None

    def baseline_pick(self, task: int, origin: int, load: array[int]) -> int:
        """The baseline coordinator's placement (the same rule by default)."""
        return self.pick(task, origin, load)

    def choose_origin(self) -> int:
        up = self.sim.network.up
        pool = [i for i in self.units if up[i] and self.worker[i]]
        return pool[self.rng.randrange(len(pool))] if pool else -1

    def _create(self, task: Task) -> None:
        origin = self.choose_origin()
        if origin < 0:
            return
        self.created += 1
        task.origin = origin
        task.zone = self.zone_of[origin]
        if self.baseline is not None:
            self.baseline.submit(task.index, origin)
        if not self.should_claim(task):
            return
        world = self.worlds[task.zone]
        ep = self.epoch_now()
        desc = self.members[origin].view.descriptors.governing(ep)
        if desc is None:
            return
        body = self.task_body(world, task)
        task.agent = world.spawn(body, self.host_idx[origin], ep, self.agent_rng, desc.id)
        winner = self.pick(task.index, origin, self.load)
        task.winner = winner
        self.load[winner] += 1
        # bids: one round trip to the radio neighbours before the proposal
        self.direct_msgs += 2 * len(self.sim.network.conn[origin])
        self.sim.engine.after(2 * max(self.paths.hop_us, 1), self._propose, task, desc)

    def should_claim(self, task: Task) -> bool:
        """Whether the origin starts a claim (a workload may skip what it knows is covered)."""
        return True

    def task_body(self, world: World, task: Task) -> Agent:
        return world.body(
            verb="claim",
            args={"task": task.index, "bay": f"bay-{task.index % 40}"},
            role="task",
        )

    def _propose(self, task: Task, desc: ZoneDescriptor) -> None:
        agent = task.agent
        assert agent is not None
        assert agent.lineage is not None
        assert agent.context is not None
        wz = self.zone_of[task.winner]
        principal = self.worlds[wz].hosts[self.host_idx[task.winner]].key.hex()
        change = Change(
            cls=MutationClass.ROLE_CHANGE,
            context=replace(agent.context, role="claimed", principal=principal),
            descriptor=desc.id,
        )
        subject = proposal_subject(entry_hash(agent.lineage.entries[-1]), change.apply(agent))
        proposal = new_proposal(
            desc, agent.lineage.genesis_dah, agent.lineage.genesis_epoch, subject, self.epoch_now()
        )
        claim = Claim(task, change, desc, proposal)
        if desc.quorum.mode == LOCAL:  # the eligible validators the proposer can reach now
            claim.voters = tuple(
                sorted(
                    k
                    for k in desc.validators
                    if k in self.vunit and self.paths.us(task.origin, self.vunit[k]) is not None
                )
            )
        self._ask(claim)

    def _ask(self, claim: Claim) -> None:
        if claim.done:
            return
        if self.epoch_now() > claim.proposal.deadline:
            claim.done = True
            claim.task.escalated = True
            self.escalations += 1
            self.load[claim.task.winner] -= 1
            return
        host = claim.task.origin
        if self.sim.network.up[host]:
            for key in claim.voters:
                if key in claim.votes:
                    continue
                self.direct_msgs += 1
                lat = self.paths.us(host, self.vunit[key])
                if lat is not None:
                    self.sim.engine.after(lat, self._vote_request, claim, key)
        self.sim.engine.after(round(self.spec.vote_retry_s * US), self._ask, claim)

    def _vote_request(self, claim: Claim, key: bytes) -> None:
        unit = self.vunit[key]
        if not self.sim.network.up[unit]:
            return
        vote = self.ledgers[unit].cast(
            self.vkeys[key], claim.proposal, self.epoch_now(), eligible=claim.voters
        )
        if not isinstance(vote, Vote):
            return
        self.direct_msgs += 1
        lat = self.paths.us(unit, claim.task.origin)
        if lat is not None:
            self.sim.engine.after(lat, self._vote_back, claim, vote)

    def _vote_back(self, claim: Claim, vote: Vote) -> None:
        if claim.done or not self.sim.network.up[claim.task.origin]:
            return
        now_desc = self.members[claim.task.origin].view.descriptors.governing(self.epoch_now())
        if now_desc is not None and now_desc.id != claim.desc.id:
            # a new version governs now: the claim entry must name it, so propose again
            claim.done = True
            self.reproposals += 1
            self._propose(claim.task, now_desc)
            return
        claim.votes[vote.voter] = vote
        reached = claim.voters if claim.proposal.mode == LOCAL else ()
        result = tally(
            claim.desc, claim.proposal, claim.votes.values(), self.epoch_now(), reached=reached
        )
        if result.outcome is Outcome.CERTIFIED and result.certificate is not None:
            claim.done = True
            self._certified(claim, result.certificate)

    def _certified(self, claim: Claim, cert: QuorumCertificate) -> None:
        task = claim.task
        assert task.agent is not None
        world = self.worlds[task.zone]
        ep = self.epoch_now()
        proposed = claim.change.apply(task.agent)
        assert proposed.memory is not None
        memory = replace(
            proposed.memory, ledger=(*proposed.memory.ledger, certificate_event(cert, ep))
        )
        task.agent = world.step(
            task.agent, replace(claim.change, memory=memory), ep, self.agent_rng
        )
        task.claimed_us = self.sim.engine.now_us
        self.certified.append(task)
        data = world.envelope(task.agent)
        self.tags[hashlib.sha256(encode_agent(task.agent)).digest()] = ("honest", task.index)
        self.publish(task.origin, self.topics[task.zone], data)
        self._handoff(task)

    def publish(self, i: int, topic: TopicId, data: bytes) -> None:
        sim = self.sim
        sim.tracer.node = i
        sim.tracer.now_us = sim.engine.now_us
        sim._dispatch(i, sim.nodes[i].router.handle(Publish(topic, data), sim.engine.now))

    def _handoff(self, task: Task) -> None:
        """Three one-way trips: offer, the claimant's arrival commitment, the sealed agent."""
        if task.winner == task.origin:
            self._hold(task, task.agent)
            return
        lat = self.paths.us(task.origin, task.winner)
        self.direct_msgs += 3
        if lat is None:
            self.sim.engine.after(round(self.spec.vote_retry_s * US), self._handoff, task)
            return
        self.sim.engine.after(3 * lat, self._arrive, task)

    def hosted(self, unit: int) -> Hosted:
        world = self.worlds[self.zone_of[unit]]
        h = world.hosts[self.host_idx[unit]]
        return Hosted(
            h.with_record(world.record_of(h).name), world.secrets.get(h.key, HostSecrets())
        )

    def _arrive(self, task: Task) -> None:
        if not (self.sim.network.up[task.origin] and self.sim.network.up[task.winner]):
            self.sim.engine.after(round(self.spec.vote_retry_s * US), self._handoff, task)
            return
        agent, decision = self.deliver(task, task.winner)
        self._hold(task, agent, decision)

    def deliver(self, task: Task, unit: int) -> tuple[Agent, Decision]:
        """Seal the task agent to ``unit`` and have ``unit`` judge the admitted agent as its
        host with its own pipeline (into another zone: a migration under that zone's
        descriptor and contract)."""
        assert task.agent is not None
        z, dz = task.zone, self.zone_of[unit]
        ep = self.epoch_now()
        src, dst = self.hosted(task.origin), self.hosted(unit)
        policy_ref = None
        dview = self.members[unit].view.descriptors.governing(ep)
        descriptor = dview.id if dview is not None else None  # the version active now
        if dz != z:  # a migration into another zone: judged by that zone's governance
            dworld = self.worlds[dz]
            policy_ref = (make_policy_ref(dworld.zone, dworld.contract.id, dworld.authority[0]),)
        seal, admitted = migrate(
            task.agent,
            src,
            dst,
            self.worlds[dz].zone,
            (ep, ep),
            self.agent_rng,
            descriptor=descriptor,
            policy_ref=policy_ref,
        )
        keep(self.worlds[z], src.host, seal.secrets)
        keep(self.worlds[dz], dst.host, admitted.secrets)
        data = self.worlds[dz].envelope(admitted.agent)
        return admitted.agent, self.members[unit].judge(data)

    def _hold(self, task: Task, agent: Agent | None, decision: Decision | None = None) -> None:
        """The claimant judges the agent as its host (real pipeline) and runs it."""
        assert agent is not None
        if decision is None:
            data = self.worlds[self.zone_of[task.winner]].envelope(agent)
            decision = self.members[task.winner].judge(data)
        if decision.disposition is not Disposition.EXECUTE:
            self.handoffs_refused += 1
            self.load[task.winner] -= 1
            self.refused(task, decision)
            return
        task.final = agent
        task.held_us = self.sim.engine.now_us
        self.held += 1
        self.executions.setdefault(task.index, []).append(task.winner)
        self.executed(task)
        self.sim.engine.after(self.exec_us, self._done, task)

    def refused(self, task: Task, decision: Decision) -> None:
        """The claimant's pipeline refused the handed-off agent (a workload may re-place)."""
        self.honest_refused_codes[f"handoff:{decision.code}"] = (
            self.honest_refused_codes.get(f"handoff:{decision.code}", 0) + 1
        )

    def executed(self, task: Task) -> None:
        """The claimant runs the task (a workload may check where)."""

    def _done(self, task: Task) -> None:
        task.done_us = self.sim.engine.now_us
        self.done += 1
        self.load[task.winner] -= 1

    # ================================================================ judging and records

    def judged(self, node: int, data: bytes, d: Decision) -> None:
        self.codes[d.code] = self.codes.get(d.code, 0) + 1
        cid = d.audit.content_id or hashlib.sha256(data).digest()
        if d.wire is not WireVerdict.IGNORE:
            bit = 1 if d.wire is WireVerdict.ACCEPT else 2
            self.bits[cid] = self.bits.get(cid, 0) | bit
        tag = self.tags.get(cid)
        if tag is None or (tag[0] != "honest" and tag[0] not in self.bad_kinds):
            return
        refused = d.wire is not WireVerdict.ACCEPT
        if tag[0] != "honest":
            self.forged_judged += 1
            self.forged_refused += refused
            row = self.forged_by_kind.setdefault(tag[0], [0, 0, 0])
            row[1] += 1
            row[2] += refused
            return
        self.honest_judged += 1
        if refused:
            self.honest_refused += 1
            self.honest_refused_codes[d.code] = self.honest_refused_codes.get(d.code, 0) + 1
            return
        agent = d.agent
        if agent is None or agent.lineage is None or agent.context is None:
            return
        if agent.lineage.entries[-1].type is MutationClass.ROLE_CHANGE:
            claimant = self.host_of.get(bytes.fromhex(agent.context.principal), -1)
            rec = self.records[node]
            prev = rec.get(tag[1])
            if prev is None:
                rec[tag[1]] = claimant
            elif prev != claimant:
                self.duplicate_records += 1

    # ================================================================ attacks

    def _attack(self, kind: str, k: int) -> None:
        now = self.sim.engine.now_us
        pool = [t for t in self.certified if t.agent is not None]
        if kind == "stale-replay":
            # older than the routers' seen cache (120 s) and the freshness window
            pool = [t for t in pool if t.claimed_us <= now - max(3 * self.epoch_us, 130 * US)]
        else:  # fresh, so that the slope or quorum check (not freshness) refuses it
            pool = [t for t in pool if t.claimed_us >= now - self.epoch_us // 2]
        if not pool:
            return
        victim = pool[self.rng.randrange(len(pool))]
        z = victim.zone
        up = self.sim.network.up
        attackers = [i for i in self.units_of[z] if up[i] and i != victim.origin]
        if not attackers:
            return
        attacker = attackers[self.rng.randrange(len(attackers))]
        data = self.forge(kind, victim, attacker, k)
        if data is None:
            return
        agent_bytes = decode(data, max_bytes=1 << 20)["agent"]
        self.tags[hashlib.sha256(agent_bytes).digest()] = (kind, k)
        self.forged_by_kind[kind][0] += 1
        msg = Rpc(publish=(Message(self.topics[z], data),))
        for j in sorted(self.sim.network.conn[attacker]):
            if self.zone_of[j] == z:
                self.sim.send(attacker, j, msg)

    def forge(self, kind: str, victim: Task, attacker: int, k: int) -> bytes | None:
        """Bytes of one bad claim. A compromised unit is an admitted host: what it signs
        itself verifies; what it cannot produce is a quorum or someone else's slope."""
        world = self.worlds[victim.zone]
        agent = victim.agent
        assert agent is not None
        assert agent.lineage is not None
        if kind == "stale-replay":
            return world.envelope(agent)
        if kind == "forged-dah":
            head = agent.lineage.entries[-1]
            head = replace(head, dah=hashlib.sha256(f"forged/{k}".encode()).digest())
            entries = (*agent.lineage.entries[:-1], head)
            return world.envelope(replace(agent, lineage=replace(agent.lineage, entries=entries)))
        ep = self.epoch_now()
        desc = self.members[attacker].view.descriptors.governing(ep)
        if desc is None:
            return None
        body = world.body(verb="claim", args={"task": victim.index, "bay": "forged"}, role="task")
        own = world.spawn(body, self.host_idx[attacker], ep, self.agent_rng, desc.id)
        assert own.lineage is not None
        assert own.context is not None
        me = world.hosts[self.host_idx[attacker]].key.hex()
        change = Change(
            cls=MutationClass.ROLE_CHANGE,
            context=replace(own.context, role="claimed", principal=me),
            descriptor=desc.id,
        )
        if kind == "replayed-cert":
            cert = certificate_in(agent)
            if cert is None:
                return None
        else:  # forged-cert: k-1 colluding validators (fresh ledgers) and a claimed k
            subject = proposal_subject(entry_hash(own.lineage.entries[-1]), change.apply(own))
            proposal = new_proposal(
                desc, own.lineage.genesis_dah, own.lineage.genesis_epoch, subject, ep
            )
            vset = validator_set(desc, proposal.scope, proposal.g0)
            need = min_k(len(vset), desc.quorum)
            votes = [VoteLedger().cast(self.vkeys[key], proposal, ep) for key in vset[: need - 1]]
            yes = tuple(sorted((v.voter, v.signature) for v in votes if isinstance(v, Vote)))
            cert = QuorumCertificate(proposal, len(vset), need, yes)
        proposed = change.apply(own)
        assert proposed.memory is not None
        memory = replace(
            proposed.memory, ledger=(*proposed.memory.ledger, certificate_event(cert, ep))
        )
        forged = world.step(own, replace(change, memory=memory), ep, self.agent_rng)
        return world.envelope(forged)

    # ================================================================ policy version 2

    def _make_v2(self) -> None:
        w = self.spec
        e = self.spec.epoch0 + round(w.descriptor_active_s * US) // self.epoch_us
        n = w.validators
        quorum = QuorumParams(
            mode=w.quorum_mode, n=n, k_min=max(w.quorum_k_min, -(-2 * n // 3)), health_ceiling=n
        )
        for world in self.worlds:
            desc = replace(world.descriptor, version=2, activation_epoch=e, quorum=quorum)
            self.v2_desc.append(desc)
            self.v2.append(desc.sign(*world.authority))

    def _publish_v2(self) -> None:
        """The control topic, modelled as a flood: each node reachable from the publisher
        gets the descriptors after the shortest-path latency (what GossipSub's flood publish
        and mesh give on a healthy mesh); the rest get them by sync when they reconnect."""
        if not self.sim.network.up[self.publisher]:
            return
        self.v2_published_us = self.sim.engine.now_us
        data = [signed.encode() for signed in self.v2]
        for i in self.units:
            lat = self.paths.us(self.publisher, i)
            if lat is not None:
                self.sim.engine.after(lat, self._control, i, data[self.zone_of[i]])

    def _control(self, i: int, data: bytes) -> None:
        """Node ``i`` receives a control-topic message: it verifies and keeps the descriptor."""
        z = self.zone_of[i]
        if z < 0 or self.v2_at[i] >= 0 or not self.sim.network.up[i]:
            return
        try:
            signed = decode_signed(data, TAG_DESCRIPTOR)
        except MeshError:
            return
        if signed == self.v2[z]:
            self._learn_v2(i)

    def _learn_v2(self, i: int) -> None:
        self.members[i].view.add_descriptor(self.v2[self.zone_of[i]])  # verifies signatures
        self.v2_at[i] = self.sim.engine.now_us

    def _sync(self) -> None:
        """Anti-entropy: a unit without version 2 gets it from a zone neighbour that has it
        (sync on (re)connect, DESIGN §5 "arrive ... via sync on join")."""
        if self.v2_published_us < 0 or self.v2_all_us >= 0:
            return
        net = self.sim.network
        have = self.v2_at
        for i in self.units:
            if have[i] < 0 and net.up[i]:
                z = self.zone_of[i]
                for j in net.conn[i]:
                    if self.zone_of[j] == z and 0 <= have[j] < self.sim.engine.now_us:
                        self._learn_v2(i)
                        break
        count = sum(1 for i in self.units if have[i] >= 0)
        if count == len(self.units):
            self.v2_all_us = self.sim.engine.now_us

    # ================================================================ figures

    def sample(self, line: dict[str, Any]) -> None:
        self._sync()
        line["tasks_created"] = self.created
        line["ours_held"] = self.held
        line["ours_done"] = self.done
        b = self.baseline
        if b is not None:
            line["baseline_held"] = sum(1 for x in b.claimed_us if x >= 0)
            line["baseline_done"] = sum(1 for x in b.done_us if x >= 0)
        if self.v2_published_us >= 0:
            line["v2_units"] = sum(1 for i in self.units if self.v2_at[i] >= 0)

    def window(
        self, lo_s: float, hi_s: float, zones: frozenset[int] | None = None
    ) -> dict[str, Any]:
        """Tasks created in [lo, hi) (of some zones, or all): share done by hi, and share
        held within SLA_S of appearing, ours vs base."""
        lo, hi = round(lo_s * US), round(hi_s * US)
        ts = [
            t
            for t in self.tasks
            if lo <= t.created_us < hi and t.origin >= 0 and (zones is None or t.zone in zones)
        ]
        sla = SLA_S * US
        ours = sum(1 for t in ts if 0 <= t.done_us < hi)
        quick = sum(1 for t in ts if 0 <= t.held_us <= t.created_us + sla)
        out: dict[str, Any] = {"tasks": len(ts), "ours_done": ours}
        out["ours_share"] = round(ours / len(ts), 4) if ts else None
        out["ours_held_within_sla"] = round(quick / len(ts), 4) if ts else None
        b = self.baseline
        if b is not None:
            base = sum(1 for t in ts if 0 <= b.done_us[t.index] < hi)
            bquick = sum(1 for t in ts if 0 <= b.claimed_us[t.index] <= t.created_us + sla)
            out["baseline_done"] = base
            out["baseline_share"] = round(base / len(ts), 4) if ts else None
            out["baseline_held_within_sla"] = round(bquick / len(ts), 4) if ts else None
        return out

    @property
    def descs(self) -> list[dict[bytes, ZoneDescriptor]]:
        """Per zone: every descriptor version by id."""
        out: list[dict[bytes, ZoneDescriptor]] = []
        for z, world in enumerate(self.worlds):
            d = {world.descriptor.id: world.descriptor}
            if self.v2_desc:
                d[self.v2_desc[z].id] = self.v2_desc[z]
            out.append(d)
        return out

    def history(self) -> dict[str, Any]:
        """Every handed-off task's history rebuilt from its lineage alone, checked against
        what the simulation knows happened."""
        ok = 0
        bad = 0
        sample: list[dict[str, Any]] = []
        descs = self.descs
        for t in self.tasks:
            if t.final is None:
                continue
            h = reconstruct(t.final, self.key_unit, descs[t.zone])
            good = h["created_by"] == t.origin and h["held_by"] == t.winner and h["certified"]
            ok += good
            bad += not good
            if len(sample) < 3:
                sample.append({"task": t.index, **h})
        return {"reconstructed": ok, "mismatched": bad, "examples": sample}

    def result(self) -> dict[str, Any]:
        w = self.spec
        b = self.baseline
        ours_lat = [t.held_us - t.created_us for t in self.tasks if t.held_us >= 0]
        base_lat = (
            [b.claimed_us[t.index] - t.created_us for t in self.tasks if b.claimed_us[t.index] >= 0]
            if b is not None
            else []
        )
        dup_exec = sum(1 for v in self.executions.values() if len(v) > 1)
        disagree = sum(1 for x in self.bits.values() if x == 3)
        refused_total = self.forged_refused + self.honest_refused
        recall = self.forged_refused / self.forged_judged if self.forged_judged else None
        precision = self.forged_refused / refused_total if refused_total else None
        gossip_msgs = self.sim.metrics.publish_copies
        created = max(self.created, 1)
        out: dict[str, Any] = {
            "kind": w.kind,
            "marks": [list(m) for m in self.marks],
            "tasks": {
                "created": self.created,
                "certified": len(self.certified),
                "held": self.held,
                "done": self.done,
                "escalated": self.escalations,
                "handoffs_refused": self.handoffs_refused,
                "reproposed_under_new_descriptor": self.reproposals,
                "baseline_held": sum(1 for x in b.claimed_us if x >= 0) if b else None,
                "baseline_done": sum(1 for x in b.done_us if x >= 0) if b else None,
            },
            "latency_ms": {"ours": quantiles_ms(ours_lat), "baseline": quantiles_ms(base_lat)},
            "latency_cdf_ms": {"ours": cdf_ms(ours_lat), "baseline": cdf_ms(base_lat)},
            "invariants": {
                "duplicate_claims_in_records": self.duplicate_records,
                "tasks_executed_twice": dup_exec,
                "verdict_disagreements": disagree,
                "forgery_recall": recall,
                "forgery_precision": precision,
                "honest_claims_refused": self.honest_refused,
            },
            "attacks": {
                "judged": self.forged_judged,
                "refused": self.forged_refused,
                "by_kind": {k: v for k, v in self.forged_by_kind.items()},
                "honest_judged": self.honest_judged,
                "honest_refused_codes": dict(sorted(self.honest_refused_codes.items())),
            },
            "decisions": dict(sorted(self.codes.items())),
            "messages": {
                "direct": self.direct_msgs,
                "gossip_copies": gossip_msgs,
                "per_task": round((self.direct_msgs + gossip_msgs) / created, 2),
                "baseline": b.messages if b else None,
                "baseline_per_task": round(b.messages / created, 2) if b else None,
                "baseline_retries": b.retries if b else None,
                "baseline_takeover_s": b.takeover_us / US if b and b.takeover_us >= 0 else None,
            },
            "history": self.history(),
        }
        out["policy"] = self.policy_figures()
        windows: dict[str, Any] = {"all": self.window(0.0, self.sim.end_us / US)}
        if w.outage_start_s >= 0 and w.outage_end_s > w.outage_start_s:
            windows["outage"] = self.window(w.outage_start_s, w.outage_end_s)
        if w.partition_zone >= 0 and w.partition_end_s > w.partition_start_s >= 0:
            windows["sub_fleet_cut"] = self.window(
                w.partition_start_s, w.partition_end_s, self.cut_zones()
            )
        out["windows"] = windows
        out["headline"] = self.headline(out)
        out["plot"] = {
            "title": "Tasks done over time, mesh vs central baseline",
            "ylabel": "tasks done (cumulative)",
            "series": [
                ["tasks appeared", "tasks_created"],
                ["mesh: done", "ours_done"],
                ["central baseline: done", "baseline_done"],
            ],
            "file": "completion.png",
        }
        return out

    def policy_figures(self) -> dict[str, Any]:
        if self.v2_published_us < 0:
            return {}
        e_us = round(self.spec.descriptor_active_s * US)
        after = [t for t in self.certified if t.claimed_us >= e_us + self.epoch_us]
        v2_named = 0
        for t in after:
            assert t.agent is not None
            assert t.agent.lineage is not None
            claim = [x for x in t.agent.lineage.entries if x.type is MutationClass.ROLE_CHANGE]
            v2_named += bool(claim) and claim[-1].descriptor == self.v2_desc[t.zone].id
        return {
            "published_s": self.v2_published_us / US,
            "active_epoch": self.v2_desc[0].activation_epoch if self.v2_desc else None,
            "active_s": self.spec.descriptor_active_s,
            "convergence_99_s": self.convergence_s(0.99),
            "convergence_100_s": self.convergence_s(1.0),
            "claims_after_activation": len(after),
            "of_which_under_v2": v2_named,
        }

    def convergence_s(self, share: float) -> float | None:
        """Seconds from publication until ``share`` of the units hold version 2 (from the
        time each unit got it, so not limited by the sampling interval)."""
        got = sorted(self.v2_at[i] for i in self.units if self.v2_at[i] >= 0)
        need = math.ceil(share * len(self.units))
        if need == 0 or len(got) < need:
            return None
        return round((got[need - 1] - self.v2_published_us) / US, 6)

    def headline(self, out: dict[str, Any]) -> list[list[Any]]:
        lat = out["latency_ms"]
        inv = out["invariants"]
        rows: list[list[Any]] = []
        for name, win in out["windows"].items():
            rows.append(
                [
                    f"held within {SLA_S} s of appearing, window '{name}'",
                    win["ours_held_within_sla"],
                    win.get("baseline_held_within_sla"),
                ]
            )
            rows.append(
                [
                    f"completion, tasks created in window '{name}'",
                    win["ours_share"],
                    win.get("baseline_share"),
                ]
            )
        rows += [
            ["claim latency p50 (ms)", lat["ours"]["p50"], lat["baseline"]["p50"]],
            ["claim latency p99 (ms)", lat["ours"]["p99"], lat["baseline"]["p99"]],
            [
                "messages per task",
                out["messages"]["per_task"],
                out["messages"]["baseline_per_task"],
            ],
            ["duplicate claims (records)", inv["duplicate_claims_in_records"], 0],
            ["tasks executed twice", inv["tasks_executed_twice"], 0],
            ["verdict disagreements", inv["verdict_disagreements"], None],
            ["forgery refusal recall", inv["forgery_recall"], None],
            ["forgery refusal precision", inv["forgery_precision"], None],
            ["policy convergence, 99% (s)", out["policy"].get("convergence_99_s"), None],
            [
                "histories rebuilt from lineage",
                f"{out['history']['reconstructed']}/{out['tasks']['held']}",
                None,
            ],
            ["escalated (no certificate by deadline)", out["tasks"]["escalated"], None],
        ]
        return rows


def keep(world: World, host: LocalHost, secrets: HostSecrets) -> None:
    """The host keeps the secrets its new entry committed to (the world holds them)."""
    old = world.secrets.get(host.key, HostSecrets())
    world.secrets[host.key] = HostSecrets(MappingProxyType({**old.pending, **secrets.pending}))


def certificate_in(agent: Agent) -> QuorumCertificate | None:
    """The last quorum certificate an agent's ledger carries."""
    assert agent.memory is not None
    for ev in reversed(agent.memory.ledger):
        if ev.kind is LedgerKind.MUTATION_RESULT and isinstance(ev.data.get(QC_KEY), bytes):
            raw = ev.data[QC_KEY]
            assert isinstance(raw, bytes)
            try:
                return QuorumCertificate.from_cbor(decode(raw, max_bytes=64 * 1024))
            except MeshError:
                return None
    return None


def reconstruct(
    agent: Agent, host_of: dict[bytes, int], descs: dict[bytes, ZoneDescriptor]
) -> dict[str, Any]:
    """Who created, certified, sealed and holds a task, from its lineage and ledger alone;
    the certificate is checked against the descriptor version its claim entry names."""
    assert agent.lineage is not None
    entries = agent.lineage.entries
    cert = certificate_in(agent)
    claim = [e for e in entries if e.type is MutationClass.ROLE_CHANGE]
    certified = False
    approvers: list[int] = []
    if cert is not None and claim and claim[-1].descriptor in descs:
        desc = descs[claim[-1].descriptor]
        check = verify_certificate(cert, desc, cert.proposal.scope, cert.proposal.subject)
        certified = check.ok and cert.proposal.scope == scope_of(
            desc.zone, agent.lineage.genesis_dah
        )
        approvers = sorted(host_of.get(k, -1) for k, _ in cert.approvals)
    seal = [e for e in entries if e.type is MutationClass.MIGRATION]
    return {
        "created_by": host_of.get(entries[0].host, -1),
        "created_epoch": entries[0].epoch,
        "certified": certified,
        "approvers": approvers,
        "claim_epoch": claim[-1].epoch if claim else None,
        "sealed_by": host_of.get(seal[-1].host, -1) if seal else None,
        "held_by": host_of.get(entries[-1].next_signer, -1),
        "entries": [e.type.value for e in entries],
    }
