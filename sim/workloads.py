"""Coordination workloads on top of the gossip layer: the hooks the driver calls, and helpers.

A workload (fleet, disaster, multi-region) gives nodes their zones and topics, creates tasks,
runs claims through the real quorum, identity and admission code, and runs its central
baseline (:mod:`sim.baseline`) on the same network and clock, so the comparison is like for
like. The driver (:mod:`sim.run`) calls the hooks below; nothing here owns a protocol decision.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from protocols.gossip.rpc import Message
from protocols.governance.pipeline import AdmitInput, Decision, admit
from protocols.governance.view import ZoneView
from protocols.types import MsgId, PeerId, TopicId, WireVerdict
from sim.metrics import percentile
from sim.simnode import ZoneMember

if TYPE_CHECKING:
    from sim.run import Simulation

US = 1_000_000


class Workload:
    """Base workload: every hook is a no-op; subclasses fill in what they need."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        w = sim.scenario.workload
        self.spec = w
        self.epoch_us = round(w.epoch_s * US)

    def member(self, i: int) -> ZoneMember | None:
        """Node ``i``'s zone state (None: the node is in no zone)."""
        return None

    def built(self) -> None:
        """Called once the driver has built every node (before the run)."""

    def topics_of(self, i: int) -> list[TopicId]:
        return [self.sim.topic]

    def on_deliver(self, i: int, msg: Message) -> None:
        """Node ``i``'s router delivered ``msg``."""

    def start(self) -> None:
        """Schedule the workload's events (after the scenario's own)."""

    def sample(self, line: dict[str, Any]) -> None:
        """Add the workload's figures to one metrics line."""

    def result(self) -> dict[str, Any]:
        return {}

    def epoch_now(self) -> int:
        """The protocol epoch every node derives from (virtual) time."""
        return self.spec.epoch0 + self.sim.engine.now_us // self.epoch_us


class JudgingMember(ZoneMember):
    """A zone member that runs the real admission pipeline at the current epoch and reports
    every decision (node, bytes, decision) to the workload, which keeps each node's records."""

    __slots__ = ("judged", "node", "now_epoch", "sync_peer")

    def __init__(
        self,
        view: ZoneView,
        local_host: bytes,
        node: int,
        now_epoch: Callable[[], int],
        judged: Callable[[int, bytes, Decision], None],
        sync_peer: Callable[[PeerId], bool] | None = None,
    ) -> None:
        super().__init__(view, local_host, 0, _no_decision)
        self.node = node
        self.now_epoch = now_epoch
        self.judged = judged
        self.sync_peer = sync_peer

    def validate(self, peer: PeerId, msg_id: MsgId, msg: Message) -> WireVerdict:
        """What a store-and-forward peer hands over is judged as sync (continuity, not
        freshness, decides), everything else as gossip."""
        via_sync = self.sync_peer is not None and self.sync_peer(peer)
        decision = self.judge(msg.data, via_sync)
        return decision.wire

    def judge(self, data: bytes, via_sync: bool = False) -> Decision:
        """``via_sync``: a stored or synced state, where slope continuity, not freshness,
        decides (DESIGN §5 "Time")."""
        epoch = self.now_epoch()
        decision = admit(AdmitInput(data, self.view, epoch, self.local_host, via_sync=via_sync))
        self.judged(self.node, data, decision)
        return decision


def _no_decision(decision: Decision) -> None:
    """Decisions are reported through ``judged`` instead."""


class Paths:
    """Direct-stream latency between two nodes of one partition (DESIGN §8): hops of the
    shortest path in the current graph times the link latency, or the network's weighted
    shortest path when links differ. BFS per source, cached per link epoch."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        net = sim.network
        single = len(net.classes) == 1 and net.inter_cluster < 0
        self.hop_us = net.classes[0].latency_us if single else -1
        self._epoch = -1
        self._cache: dict[int, dict[int, int]] = {}

    def us(self, u: int, v: int) -> int | None:
        """One-way latency u -> v now (None: no path, e.g. partitioned or down)."""
        net = self.sim.network
        if not (net.up[u] and net.up[v]):
            return None
        if u == v:
            return 0
        if self.hop_us < 0:
            return net.path_latency_us(u, v)
        if self._epoch != net.epoch:
            self._cache.clear()
            self._epoch = net.epoch
        a, b = (u, v) if u < v else (v, u)
        dist = self._cache.get(a)
        if dist is None:
            dist = {a: 0}
            frontier = deque([a])
            conn = net.conn
            while frontier:
                x = frontier.popleft()
                dx = dist[x] + 1
                for y in conn[x]:
                    if y not in dist:
                        dist[y] = dx
                        frontier.append(y)
            self._cache[a] = dist
        hops = dist.get(b)
        return None if hops is None else max(1, hops * self.hop_us)


def quantiles_ms(values_us: Sequence[int]) -> dict[str, float]:
    xs = sorted(values_us)
    return {
        "count": len(xs),
        "p50": percentile(xs, 50) / 1000,
        "p90": percentile(xs, 90) / 1000,
        "p99": percentile(xs, 99) / 1000,
        "max": (xs[-1] / 1000) if xs else 0.0,
    }


def cdf_ms(values_us: Sequence[int]) -> list[float]:
    xs = sorted(values_us)
    return [percentile(xs, q) / 1000 for q in range(1, 101)] if xs else []


def make_workload(sim: Simulation) -> Workload:
    kind = sim.scenario.workload.kind
    if kind == "fleet":
        from sim.fleet import FleetWorkload

        return FleetWorkload(sim)
    if kind == "disaster":
        from sim.disaster import DisasterWorkload

        return DisasterWorkload(sim)
    if kind == "multiregion":
        from sim.multiregion import MultiRegionWorkload

        return MultiRegionWorkload(sim)
    raise ValueError(f"unknown workload {kind!r}")
