"""Multi-region deployment (SPEC §3.3): regions as zones with residency rules; one region fails.

Each cluster of a ``clustered`` topology is a region and a zone of its own (descriptor,
validators, contract). Residency is zone governance: a region's descriptor lists, in
``cross_zone``, the regions agents may enter it from (the two EU regions list each other;
``us-east`` lists none), and every destination judges an arriving agent with its own pipeline,
so an agent can only run where its residency allows (``cross-zone-unauthorised`` otherwise).

A job appears at a unit of some region; its host claims it by quorum in that region for the
least-loaded unit of an allowed region (alternating between allowed regions, so half the EU
jobs cross regions) and hands it over. ``forgeries`` jobs get a faulty placement first: the
host hands them to a unit in a forbidden region, whose pipeline must refuse them, before the
correct handoff. The baseline scheduler (primary in region 0, standby in region 1) places the
same jobs with the same rule and the same faults, and runs a job wherever it places it.
At ``fail_s`` every node of region ``fail_zone`` crashes.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any

from protocols.governance.signing import public_key
from protocols.governance.view import ZoneView
from protocols.governance.world import World, WorldParams, build_world
from protocols.governance.zone import QuorumParams
from sim.fleet import SLA_S, FleetWorkload, Task
from sim.simnode import ZoneMember
from sim.workloads import US, JudgingMember

if TYPE_CHECKING:
    from sim.run import Simulation

REGIONS = ("eu-west", "eu-central", "us-east", "ap-south", "sa-east")
JURISDICTION = (0, 0, 1, 2, 3)
"""Regions sharing a jurisdiction may hold each other's jobs (EU data stays in the EU)."""


class MultiRegionWorkload(FleetWorkload):
    """Regions as zones with residency; a region failure; faulty placements."""

    def __init__(self, sim: Simulation) -> None:
        if sim.topology.cluster is None:
            raise ValueError("multiregion needs topology.kind = clustered")
        super().__init__(sim)
        count = min(self.spec.misplacements, self.spec.tasks)
        self.misplaced_all = frozenset(self.rng.sample(range(self.spec.tasks), count))
        self.misplaced = self.misplaced_all
        self.misplace_refused = 0
        self.misplace_codes: dict[str, int] = {}
        self.forbidden_exec = 0
        self.base_forbidden_exec = 0
        self.cross_region = 0
        self.fail_us = round(self.spec.fail_s * US) if self.spec.fail_s >= 0 else -1

    # ================================================================ layout

    def region_nodes(self, z: int) -> list[int]:
        cluster = self.sim.topology.cluster
        assert cluster is not None
        return [i for i in range(self.sim.n) if cluster[i] == z]

    def coordinators(self) -> tuple[int, int]:
        """The scheduler's primary runs in region 0, its standby in region 1."""
        return self.region_nodes(0)[0], self.region_nodes(1 % self.spec.zones)[0]

    def assign_zones(self) -> None:
        cluster = self.sim.topology.cluster
        assert cluster is not None
        self.cells = []
        for i in range(self.sim.n):
            self.cells.append((0.0, 0.0, 1.0, 1.0))
            if i not in self.infra:
                self.zone_of[i] = cluster[i]

    def zone_name(self, z: int) -> str:
        return REGIONS[z] if z < len(REGIONS) else f"region-{z}"

    def jurisdiction(self, z: int) -> int:
        return JURISDICTION[z] if z < len(JURISDICTION) else z

    def make_world(self, z: int) -> World:
        w = self.spec
        quorum = QuorumParams(mode=w.quorum_mode, n=w.quorum_n, k_min=w.quorum_k_min)
        allowed = tuple(
            sorted(
                self.zone_name(y)
                for y in range(w.zones)
                if y != z and self.jurisdiction(y) == self.jurisdiction(z)
            )
        )
        return build_world(
            WorldParams(
                zone=self.zone_name(z),
                hosts=max(1, len(self.units_of[z])),
                validators=w.validators,
                quorum=quorum,
                cross_zone=allowed,
            )
        )

    def member(self, i: int) -> ZoneMember | None:
        """A region member's view also trusts the other regions' host records (agents
        arriving from there carry entries those hosts signed)."""
        z = self.zone_of[i]
        if z < 0:
            return None
        world = self.worlds[z]
        others = [wd for y, wd in enumerate(self.worlds) if y != z]
        view = ZoneView(
            world.zone,
            world.authority_set,
            peer_authorities=tuple(public_key(wd.authority[0]) for wd in others),
        )
        view.add_descriptor(world.signed["descriptor"])
        view.add_contract(world.signed["contract"])
        for h in [*world.hosts, *world.validators]:
            view.admit_host(world.record_of(h))
        for wd in others:
            for h in wd.hosts:
                view.admit_peer_host(wd.record_of(h))
        m = JudgingMember(view, world.hosts[self.host_idx[i]].key, i, self.epoch_now, self.judged)
        self.members[i] = m
        return m

    # ================================================================ events

    def start(self) -> None:
        super().start()
        if self.fail_us >= 0 and self.spec.fail_zone >= 0:
            self.sim.engine.at(self.fail_us, self._fail)
            end = self.sim.end_us / US
            self.marks.append(
                (f"{self.zone_name(self.spec.fail_zone)} down", self.spec.fail_s, end)
            )

    def _fail(self) -> None:
        sim = self.sim
        for i in self.region_nodes(self.spec.fail_zone):
            if sim.network.up[i]:
                sim.crash(i)
        if self.baseline is not None and not sim.network.up[self.publisher]:
            self.baseline.primary_down()

    # ================================================================ placement

    def allowed(self, z: int) -> list[int]:
        j = self.jurisdiction(z)
        return [y for y in range(self.spec.zones) if self.jurisdiction(y) == j]

    def _least_loaded(self, zones: list[int], load: array[int]) -> int:
        up = self.sim.network.up
        best = -1
        key = (1 << 30, 1 << 30)
        for y in zones:
            for v in self.units_of[y]:
                if up[v] and (load[v], v) < key:
                    best, key = v, (load[v], v)
        return best

    def pick(self, task: int, origin: int, load: array[int]) -> int:
        """An allowed region (alternating by job), then its least-loaded live unit."""
        zones = self.allowed(self.zone_of[origin])
        for k in range(len(zones)):
            unit = self._least_loaded([zones[(task + k) % len(zones)]], load)
            if unit >= 0:
                return unit
        return -1

    def baseline_pick(self, task: int, origin: int, load: array[int]) -> int:
        """The same placement fault hits the central scheduler's first placement."""
        if task in self.misplaced_all:
            unit = self.forbidden_unit(self.zone_of[origin], load)
            if unit >= 0:
                return unit
        return self.pick(task, origin, load)

    def forbidden_unit(self, zone: int, load: array[int]) -> int:
        j = self.jurisdiction(zone)
        zones = [y for y in range(self.spec.zones) if self.jurisdiction(y) != j]
        return self._least_loaded(zones, load)

    def _handoff(self, task: Task) -> None:
        if task.index in self.misplaced and task.agent is not None:
            self.misplaced = self.misplaced - {task.index}
            bad = self.forbidden_unit(task.zone, self.load)
            if bad >= 0:
                self.direct_msgs += 3
                _, decision = self.deliver(task, bad)
                if decision.disposition.value == "EXECUTE":
                    self.forbidden_exec += 1
                else:
                    self.misplace_refused += 1
                    self.misplace_codes[decision.code] = (
                        self.misplace_codes.get(decision.code, 0) + 1
                    )
        super()._handoff(task)

    def executed(self, task: Task) -> None:
        dz = self.zone_of[task.winner]
        if dz != task.zone:
            self.cross_region += 1
        if self.jurisdiction(dz) != self.jurisdiction(task.zone):
            self.forbidden_exec += 1

    # ================================================================ figures

    def resume(self) -> dict[str, Any]:
        """After the failure: time to the first job of the failed region's jurisdiction
        (created after it) being held, and how many of those created in the first 60 s
        were held within SLA_S of appearing."""
        if self.fail_us < 0:
            return {}
        j = self.jurisdiction(self.spec.fail_zone)
        after = [
            t
            for t in self.tasks
            if t.created_us >= self.fail_us and t.origin >= 0 and self.jurisdiction(t.zone) == j
        ]
        b = self.baseline

        def first(held: list[int]) -> float | None:
            xs = [h for h in held if h >= 0]
            return round((min(xs) - self.fail_us) / US, 3) if xs else None

        soon = [t for t in after if t.created_us < self.fail_us + 60 * US]
        sla = SLA_S * US
        out: dict[str, Any] = {
            "jobs_after_failure": len(after),
            "ours_resume_s": first([t.held_us for t in after]),
            "jobs_in_first_60s": len(soon),
            "ours_held_within_sla": sum(1 for t in soon if 0 <= t.held_us <= t.created_us + sla),
        }
        if b is not None:
            out["baseline_resume_s"] = first([b.claimed_us[t.index] for t in after])
            out["baseline_held_within_sla"] = sum(
                1 for t in soon if 0 <= b.claimed_us[t.index] <= t.created_us + sla
            )
        return out

    def result(self) -> dict[str, Any]:
        b = self.baseline
        if b is not None:
            for t in self.tasks:
                w = b.assigned[t.index] if t.origin >= 0 else -1
                if (
                    w >= 0
                    and b.claimed_us[t.index] >= 0
                    and self.jurisdiction(self.zone_of[w]) != self.jurisdiction(t.zone)
                ):
                    self.base_forbidden_exec += 1
        out = super().result()
        res = self.resume()
        out["residency"] = {
            "forbidden_executions": self.forbidden_exec,
            "baseline_forbidden_executions": self.base_forbidden_exec if b else None,
            "faulty_placements_refused": self.misplace_refused,
            "faulty_placement_codes": dict(sorted(self.misplace_codes.items())),
            "cross_region_jobs": self.cross_region,
        }
        out["resume"] = res
        head = [r for r in out["headline"] if not str(r[0]).startswith(("forgery", "policy"))]
        out["headline"] = head
        head.insert(
            0,
            [
                "time to resume after region failure (s)",
                res.get("ours_resume_s"),
                res.get("baseline_resume_s"),
            ],
        )
        head.insert(
            1,
            [
                f"jobs of the first 60 s after the failure held within {SLA_S} s"
                f" (of {res.get('jobs_in_first_60s')})",
                res.get("ours_held_within_sla"),
                res.get("baseline_held_within_sla"),
            ],
        )
        head.insert(
            2,
            [
                "executions in a forbidden region (faulty placements injected)",
                self.forbidden_exec,
                self.base_forbidden_exec if b else None,
            ],
        )
        out["plot"] = {
            "title": "Jobs held over time, mesh vs central scheduler (region failure shaded)",
            "ylabel": "jobs held (cumulative)",
            "series": [
                ["jobs appeared", "tasks_created"],
                ["mesh: held", "ours_held"],
                ["central scheduler: held", "baseline_held"],
            ],
            "file": "resume.png",
        }
        return out
