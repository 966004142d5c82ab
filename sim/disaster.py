"""Disaster response (SPEC §3.2): teams keep covering sectors while the command post and the
network are cut, bridged only by store-and-forward carriers.

Teams of five agencies (labels: fire, EMS, USAR, utilities, NGO) coordinate in one joint zone
(the cross-agency zone of the SPEC; the agencies' own zones are not simulated). A request to
search a sector appears at a team; unless that team's own records show the sector covered, it
claims the sector for the least-loaded team in radio range under **local** quorum (the
validators it can reach, at least ``local_min``), gossips the certified claim and hands the
task over. At ``split_s`` the command node is cut off and the network splits into its
clusters; carriers move between the parts, carrying the claims they received. Teams in
different parts can therefore claim the same sector: at ``heal_s`` every node syncs records
with its neighbours (anti-entropy), detects such conflicts and resolves them with the same
rule everywhere (earliest claim epoch, then the smallest certificate digest, keeps the
sector; the other claims escalate and their teams are released).

Also: mutual-aid delegation (a team holding a sector grants a narrowed child to a team of
another agency; plus children wider than their grant, which must be refused everywhere); a
safety override ("evacuate sector 7", a meta-authority SUSPEND) issued by the reconnected
command node; one device that loses its memory and resumes its agent with a recovery token
from a peer quorum (and one attempt with too few votes, which must be refused).
The baseline is a command post with a standby in one part (``failover_s``): teams elsewhere
stall until the heal.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, DelegationPathway, MutationClass
from protocols.governance.delegation import check_child, grant_event, make_grant
from protocols.governance.meta import Action, Override
from protocols.governance.pipeline import Decision, Disposition
from protocols.governance.quorum import scope_of
from protocols.governance.signing import Signed
from protocols.governance.world import World, WorldParams, build_world
from protocols.governance.zone import QuorumParams
from protocols.identity import recovery
from protocols.identity.host_secrets import HostSecrets
from protocols.types import PeerId, WireVerdict
from sim.fleet import FleetWorkload, Task, certificate_in
from sim.workloads import US

if TYPE_CHECKING:
    from sim.run import Simulation

AGENCIES = ("fire", "ems", "usar", "utilities", "ngo")
AID = DelegationPathway(role="aid", verbs=("report",), max_depth=1)
"""What a team's sector agent may hand to mutual aid: a narrowed child that only reports."""


class DisasterWorkload(FleetWorkload):
    """One joint zone, local-quorum sector claims, partitions, carriers, heal and repair."""

    def __init__(self, sim: Simulation) -> None:
        if sim.topology.cluster is None:
            raise ValueError("disaster needs topology.kind = clustered")
        super().__init__(sim)
        w = self.spec
        self.sector_of = array("i", [0]) * w.tasks
        self.knows: list[set[int]] = [set() for _ in range(sim.n)]
        """Per node: the claims (task index) in its records."""
        self.sectors_known: list[set[int]] = [set() for _ in range(sim.n)]
        self.deduped = 0
        self.released: set[int] = set()
        self.conflicts = 0
        self.heal_us = round(w.heal_s * US) if w.heal_s >= 0 else -1
        self.consistent_us = -1
        self.first_detect_us = -1
        self.decisions_in = 0
        self.records_out = 0
        self.false_quarantines = 0
        self.override_issued_us = -1
        self.override_have = 0
        self.override_bound: list[int] = []
        self.override_affected: list[int] = []
        self.override_signed: Signed | None = None
        self.children = {"granted": 0, "within_grant": 0}
        self.recovery: dict[str, Any] = {}
        self.covered_at_heal: dict[str, Any] = {}
        self.bad_kinds |= {"wide-child", "weak-recovery"}
        self.forged_by_kind = {k: [0, 0, 0] for k in sorted(self.bad_kinds)}
        self.aux: dict[str, list[int]] = {"child": [0, 0], "recovered": [0, 0]}
        """Honest children and the recovered agent: [judged, accepted]."""
        self.sync_stale = 0

    # ================================================================ layout

    def sync_peer(self) -> Callable[[PeerId], bool] | None:
        sim = self.sim

        def from_carrier(peer: PeerId) -> bool:
            return sim.index_of.get(peer, -1) in sim.carriers

        return from_carrier

    def zone_count(self) -> int:
        return 1

    def coordinators(self) -> tuple[int, int]:
        """Command post: node 0; its standby: the first node of the second cluster."""
        cluster = self.sim.topology.cluster
        assert cluster is not None
        standby = next((i for i in range(self.sim.n) if cluster[i] == 1), 1)
        return 0, standby

    def assign_zones(self) -> None:
        self.cells = [(0.0, 0.0, 1.0, 1.0)] * self.sim.n
        for i in range(self.sim.n):
            if i not in self.infra:
                self.zone_of[i] = 0

    def zone_name(self, z: int) -> str:
        return "joint"

    def make_world(self, z: int) -> World:
        w = self.spec
        quorum = QuorumParams(mode=w.quorum_mode, n=w.quorum_n, k_min=w.quorum_k_min)
        return build_world(
            WorldParams(
                zone="joint",
                hosts=len(self.units_of[z]) + 1,  # the last one: a recovered device's new key
                validators=w.validators,
                quorum=quorum,
            )
        )

    def agency(self, i: int) -> str:
        return AGENCIES[i % len(AGENCIES)]

    # ================================================================ tasks

    def baseline_key(self) -> Callable[[int], int] | None:
        return self.sector_key

    def sector_key(self, task: int) -> int:
        return self.sector_of[task]

    def start(self) -> None:
        w = self.spec
        for k in range(w.tasks):
            self.sector_of[k] = self.rng.randrange(w.sectors)
        super().start()
        eng = self.sim.engine
        eng.at(round(w.split_s * US), self._split)
        if self.heal_us >= 0:
            eng.at(self.heal_us, self._heal)
            self.marks.append(("partitioned, command cut", w.split_s, w.heal_s))
            at = w.override_s if w.override_s >= 0 else w.heal_s + 10.0
            eng.at(round(at * US), self._override)
        end = self.heal_us if self.heal_us >= 0 else self.sim.end_us
        for k in range(w.delegations):
            at = round(w.split_s * US) + (k + 1) * (end - round(w.split_s * US)) // (
                w.delegations + 1
            )
            eng.at(at, self._mutual_aid, k)
        if w.recover_s >= 0:
            eng.at(round(w.recover_s * US), self._recover)

    def should_claim(self, task: Task) -> bool:
        """The origin claims only a sector its own records do not show covered."""
        s = self.sector_of[task.index]
        if s in self.sectors_known[task.origin]:
            self.deduped += 1
            return False
        self.sectors_known[task.origin].add(s)
        return True

    def task_body(self, world: World, task: Task) -> Agent:
        s = self.sector_of[task.index]
        return world.body(
            verb="claim",
            args={"sector": s, "task": task.index, "agency": self.agency(task.origin)},
            role="team",
            delegation=(AID,),
        )

    def judged(self, node: int, data: bytes, d: Decision) -> None:
        super().judged(node, data, d)
        self.decisions_in += 1
        self.records_out += d.audit.code == d.code
        cid = d.audit.content_id or hashlib.sha256(data).digest()
        tag = self.tags.get(cid)
        if tag is not None and tag[0] in self.aux:
            row = self.aux[tag[0]]
            row[0] += 1
            row[1] += d.wire is WireVerdict.ACCEPT
            return
        if tag is None or tag[0] != "honest":
            return
        if d.disposition is Disposition.QUARANTINE and not self._overridden(tag[1]):
            self.false_quarantines += 1
        agent = d.agent
        if (
            d.wire is WireVerdict.ACCEPT
            and agent is not None
            and agent.lineage is not None
            and agent.lineage.entries[-1].type is MutationClass.ROLE_CHANGE
        ):
            self._learn(node, tag[1])

    def _learn(self, node: int, task: int) -> None:
        self.knows[node].add(task)
        self.sectors_known[node].add(self.sector_of[task])

    def _overridden(self, task: int) -> bool:
        return self.override_issued_us >= 0 and self.sector_of[task] == self.override_sector

    @property
    def override_sector(self) -> int:
        return 7 % self.spec.sectors

    # ================================================================ split and heal

    def _split(self) -> None:
        sim = self.sim
        cluster = sim.topology.cluster
        assert cluster is not None
        if sim.network.up[self.publisher]:
            sim.crash(self.publisher)
        if self.baseline is not None:
            self.baseline.primary_down()
        labels = [sim.network.side[i] if i in sim.carriers else cluster[i] for i in range(sim.n)]
        sim.apply_changes(sim.network.partition(labels))
        self.sim.engine.after(5 * US, self._sync_tick)

    def _heal(self) -> None:
        sim = self.sim
        sim.apply_changes(sim.network.heal())
        if not sim.network.up[self.publisher]:
            sim.restart(self.publisher)
        self.covered_at_heal = self._coverage_figures()
        self.sim.engine.after(US, self._sync_round)

    def _merge(self) -> None:
        """One anti-entropy round: each team merges its neighbours' claim records (records
        only; the states were judged where they first arrived)."""
        net = self.sim.network
        snapshot = [set(k) for k in self.knows]
        for i in self.units:
            if not net.up[i]:
                continue
            for j in net.conn[i]:
                if self.zone_of[j] == 0 and snapshot[j] - self.knows[i]:
                    for t in snapshot[j] - self.knows[i]:
                        self._learn(i, t)

    def _sync_tick(self) -> None:
        """Anti-entropy while split: every 5 s, inside each part (and what carriers brought)."""
        if self.heal_us >= 0 and self.sim.engine.now_us >= self.heal_us:
            return
        self._merge()
        if self.sim.engine.now_us + 5 * US <= self.sim.end_us:
            self.sim.engine.after(5 * US, self._sync_tick)

    def _sync_round(self) -> None:
        """Anti-entropy after the heal, every second; a node holding two claims for one
        sector detects the conflict, and every node applies the same rule to the same records."""
        net = self.sim.network
        self._merge()
        if self.first_detect_us < 0 and any(self._has_conflict(self.knows[i]) for i in self.units):
            self.first_detect_us = self.sim.engine.now_us
        truth = {t.index for t in self.tasks if t.claimed_us >= 0}
        if all(self.knows[i] >= truth for i in self.units if net.up[i]):
            self.consistent_us = self.sim.engine.now_us
            self._resolve()
            return
        if self.sim.engine.now_us + US <= self.sim.end_us:
            self.sim.engine.after(US, self._sync_round)

    def _has_conflict(self, claims: set[int]) -> bool:
        sectors = [self.sector_of[t] for t in claims]
        return len(sectors) != len(set(sectors))

    def _rank(self, task: Task) -> tuple[int, bytes]:
        assert task.agent is not None
        assert task.agent.lineage is not None
        cert = certificate_in(task.agent)
        claim_epoch = task.agent.lineage.entries[-1].epoch
        for e in task.agent.lineage.entries:
            if e.type is MutationClass.ROLE_CHANGE:
                claim_epoch = e.epoch
        return (claim_epoch, cert.digest if cert is not None else b"")

    def _resolve(self) -> None:
        """The deterministic rule every node applies to the same records: per sector the
        earliest claim (then the smallest certificate digest) keeps it; the rest escalate."""
        by_sector: dict[int, list[Task]] = {}
        for t in self.tasks:
            if t.claimed_us >= 0:
                by_sector.setdefault(self.sector_of[t.index], []).append(t)
        for s in sorted(by_sector):
            claims = by_sector[s]
            if len(claims) < 2:
                continue
            self.conflicts += 1
            keep = min(claims, key=self._rank)
            for t in claims:
                if t is not keep:
                    self.released.add(t.index)

    # ================================================================ mutual aid

    def _mutual_aid(self, k: int) -> None:
        """A team holding a sector grants a narrowed child to a team of another agency in
        radio range; every other grant is followed by a child wider than its grant."""
        net = self.sim.network
        held = [t for t in self.tasks if t.final is not None and net.up[t.winner]]
        if not held:
            return
        t = held[self.rng.randrange(len(held))]
        helpers = sorted(
            v
            for v in net.conn[t.winner]
            if self.worker[v] and self.agency(v) != self.agency(t.winner)
        )
        if not helpers:
            return
        helper = helpers[0]
        world = self.worlds[0]
        parent = t.final
        assert parent is not None
        assert parent.lineage is not None
        h = world.hosts[self.host_idx[t.winner]]
        grant = make_grant(
            parent, "aid", ("report",), ("memory",), h.with_record(world.record_of(h).name)
        )
        if not isinstance(grant, Signed):
            return
        self.children["granted"] += 1
        ep = self.epoch_now()
        for wide in (False, True) if k % 2 else (False,):
            limits = parent.mutation_descriptor.limits if parent.mutation_descriptor else None
            if wide and limits is not None:
                limits = replace(limits, max_migrations=limits.max_migrations + 1)
            body = world.body(
                verb="report", args={"sector": self.sector_of[t.index]}, role="aid", limits=limits
            )
            assert body.memory is not None
            body = replace(body, memory=replace(body.memory, ledger=(grant_event(grant, ep),)))
            child = world.spawn(
                body,
                self.host_idx[helper],
                ep,
                self.agent_rng,
                link=entry_hash(parent.lineage.entries[-1]),
                delegation=1,
            )
            if not wide and check_child(child) == ():
                self.children["within_grant"] += 1
            data = world.envelope(child)
            cid = hashlib.sha256(encode_agent(child)).digest()
            self.tags[cid] = ("wide-child", k) if wide else ("child", k)
            self.publish(helper, self.topics[0], data)

    # ================================================================ safety override

    def _override(self) -> None:
        """The reconnected command post suspends every agent searching the sector."""
        if not self.sim.network.up[self.publisher]:
            return
        world = self.worlds[0]
        ep = self.epoch_now()
        s = self.override_sector
        affected = [
            t
            for t in self.tasks
            if t.final is not None and self.sector_of[t.index] == s and t.index not in self.released
        ]
        self.override_affected = [t.index for t in affected]
        self.override_issued_us = self.sim.engine.now_us
        signed: list[Signed] = []
        for t in affected:
            assert t.final is not None
            assert t.final.lineage is not None
            target = scope_of(world.zone, t.final.lineage.genesis_dah)
            ov = Override(
                world.zone, target, Action.SUSPEND, ep, ep + 10_000, f"evacuate sector {s}"
            )
            signed.append(ov.sign(*world.meta))
        for i in self.units:
            lat = self.paths.us(self.publisher, i)
            if lat is not None:
                self.sim.engine.after(lat, self._override_arrives, i, signed)

    def _override_arrives(self, i: int, signed: list[Signed]) -> None:
        view = self.members[i].view
        ep = self.epoch_now()
        for sg in signed:
            view.add_override(sg, ep)
        self.override_have += 1
        for idx in self.override_affected:
            t = self.tasks[idx]
            if t.winner == i and t.final is not None:
                d = self.members[i].judge(self.worlds[0].envelope(t.final), via_sync=True)
                if d.code == "suspended":
                    self.override_bound.append(self.sim.engine.now_us)

    # ================================================================ recovery

    def _recover(self) -> None:
        """A device loses its memory; its agent resumes under a new key with a recovery token
        from the validators it can reach (and once with too few votes, which is refused)."""
        net = self.sim.network
        held = [
            t
            for t in self.tasks
            if t.final is not None and net.up[t.winner] and t.index not in self.released
        ]
        if not held:
            self.recovery = {"attempted": False}
            return
        t = held[self.rng.randrange(len(held))]
        world = self.worlds[0]
        device = t.winner
        old = world.hosts[self.host_idx[device]]
        world.secrets[old.key] = HostSecrets()  # memory lost
        spare = world.hosts[-1]
        self.host_of[spare.key] = device
        self.key_unit[spare.key] = device
        agent = t.final
        assert agent is not None
        assert agent.lineage is not None
        desc = self.members[device].view.descriptors.governing(self.epoch_now())
        assert desc is not None
        rule = desc.recovery_rule()
        commit, secrets = HostSecrets().fresh(self.agent_rng)
        proposal = recovery.propose(agent, rule, spare.key, commit, self.epoch_now() + 2)
        g0 = recovery.generation(rule, agent.lineage.genesis_epoch)
        vset = recovery.validator_set(rule, g0, proposal.scope_id())
        by_key = {v.key: v for v in world.validators}
        votes = []
        rtt = 0
        for key in vset:
            lat = self.paths.us(device, self.vunit[key])
            if lat is not None:
                votes.append(recovery.cast_vote(proposal, rule, by_key[key]))
                rtt = max(rtt, 2 * lat)
                self.direct_msgs += 2
        token = recovery.certify(proposal, votes, rule)
        self.recovery = {
            "attempted": True,
            "device": device,
            "task": t.index,
            "votes": len(votes),
            "k": rule.k,
            "token": token is not None,
        }
        if token is None:
            return
        host = spare.with_record(world.record_of(spare).name)
        step = recovery.recover(agent, token, host, secrets, self.epoch_now(), self.agent_rng)
        weak = recovery.RecoveryToken(proposal, token.votes[: rule.k - 1])
        bad = recovery.recover(agent, weak, host, secrets, self.epoch_now(), self.agent_rng)
        self.tags[hashlib.sha256(encode_agent(step.agent)).digest()] = ("recovered", 0)
        self.tags[hashlib.sha256(encode_agent(bad.agent)).digest()] = ("weak-recovery", 0)
        self.sim.engine.after(rtt, self._rejoin, device, step.agent, bad.agent)

    def _rejoin(self, device: int, good: Agent, bad: Agent) -> None:
        world = self.worlds[0]
        self.publish(device, self.topics[0], world.envelope(good))
        self.publish(device, self.topics[0], world.envelope(bad))
        self.recovery["rejoined_at_s"] = self.sim.engine.now_us / US

    # ================================================================ figures

    def _covered(self, held_us: list[int], tasks: list[int]) -> set[int]:
        return {self.sector_of[k] for k, h in zip(tasks, held_us, strict=True) if h >= 0}

    def _coverage_figures(self) -> dict[str, Any]:
        requested = {self.sector_of[t.index] for t in self.tasks if t.origin >= 0}
        ours: dict[int, int] = {}
        for t in self.tasks:
            if t.held_us >= 0 and t.index not in self.released:
                s = self.sector_of[t.index]
                ours[s] = ours.get(s, 0) + 1
        out: dict[str, Any] = {
            "sectors_requested": len(requested),
            "ours_covered": len(ours),
            "ours_duplicate_sectors": sum(1 for c in ours.values() if c > 1),
            "ours_uncovered": len(requested - set(ours)),
        }
        b = self.baseline
        if b is not None:
            base = {self.sector_of[k] for k in range(len(self.tasks)) if b.claimed_us[k] >= 0}
            out["baseline_covered"] = len(base)
            out["baseline_duplicate_sectors"] = 0
            out["baseline_uncovered"] = len(requested - base)
        return out

    def sample(self, line: dict[str, Any]) -> None:
        super().sample(line)
        w = self.spec
        ours = {
            self.sector_of[t.index]
            for t in self.tasks
            if t.held_us >= 0 and t.index not in self.released
        }
        line["ours_coverage"] = round(len(ours) / w.sectors, 4)
        b = self.baseline
        if b is not None:
            base = {self.sector_of[k] for k in range(len(self.tasks)) if b.claimed_us[k] >= 0}
            line["baseline_coverage"] = round(len(base) / w.sectors, 4)

    def result(self) -> dict[str, Any]:
        out = super().result()
        carriers = sorted(self.sim.carriers)
        bound = self.override_bound
        heal = self.heal_us
        out["disaster"] = {
            "sectors": self.spec.sectors,
            "requests_skipped_as_covered": self.deduped,
            "conflicting_sectors_at_heal": self.conflicts,
            "claims_released_by_escalation": len(self.released),
            "heal_to_first_detection_s": (
                round((self.first_detect_us - heal) / US, 3) if self.first_detect_us >= 0 else None
            ),
            "heal_to_consistent_task_map_s": (
                round((self.consistent_us - heal) / US, 3) if self.consistent_us >= 0 else None
            ),
            "override_affected_agents": len(self.override_affected),
            "override_bound": len(bound),
            "override_latency_s": (
                round((max(bound) - self.override_issued_us) / US, 3) if bound else None
            ),
            "override_nodes_holding": self.override_have,
            "audit_completeness": (
                round(self.records_out / self.decisions_in, 6) if self.decisions_in else None
            ),
            "false_quarantines": self.false_quarantines,
            "carrier_bytes": sum(self.sim.metrics.bytes_sent[c] for c in carriers),
            "mutual_aid": {
                **self.children,
                "children_judged": self.aux["child"][0],
                "children_admitted": self.aux["child"][1],
                "wider_children_judged": self.forged_by_kind["wide-child"][1],
                "wider_children_refused": self.forged_by_kind["wide-child"][2],
            },
            "recovery": {
                **self.recovery,
                "recovered_judged": self.aux["recovered"][0],
                "recovered_admitted": self.aux["recovered"][1],
                "under_quorum_token_judged": self.forged_by_kind["weak-recovery"][1],
                "under_quorum_token_refused": self.forged_by_kind["weak-recovery"][2],
            },
        }
        out["at_heal"] = self.covered_at_heal
        at = self.covered_at_heal
        d = out["disaster"]
        head = out["headline"]
        rows = [
            ["sectors covered at heal", at.get("ours_covered"), at.get("baseline_covered")],
            ["duplicate sectors at heal", at.get("ours_duplicate_sectors"), 0],
            ["uncovered sectors at heal", at.get("ours_uncovered"), at.get("baseline_uncovered")],
            ["heal -> consistent task map (s)", d["heal_to_consistent_task_map_s"], None],
            ["conflicts escalated at heal", d["conflicting_sectors_at_heal"], None],
            ["override latency (s)", d["override_latency_s"], None],
            ["audit completeness", d["audit_completeness"], None],
            ["false quarantines", d["false_quarantines"], None],
            ["carrier bytes", d["carrier_bytes"], None],
        ]
        skip = ("policy", "forgery", "completion", "held within")  # fleet rows; see coverage
        keep = [r for r in head if not str(r[0]).startswith(skip)]
        out["headline"] = rows + keep
        out["plot"] = {
            "title": "Sector coverage over time, mesh vs command post",
            "ylabel": "share of sectors covered",
            "series": [
                ["mesh", "ours_coverage"],
                ["command post baseline", "baseline_coverage"],
            ],
            "file": "coverage.png",
        }
        return out
