"""The virtual network: which links are up, and how long (or whether) an RPC crosses one.

Links have classes (latency distribution, jitter, loss, uplink bandwidth); a link's class is the
slower of its two ends' classes, or ``inter_cluster_link_class`` between clusters. Every
change of who may talk to whom (partition, heal, crash, restart, mobility, a carrier moving) is
a state change followed by :meth:`Network.reconcile`, which returns the connections that went
down or came up so the driver can tell both routers; that one path keeps the routers' view and
the network's in step. All randomness comes from one seeded ``random.Random`` used in event
order, so it is deterministic.
"""

from __future__ import annotations

import heapq
import math
import random
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from sim.scenario import LinkClassSpec, MobilitySpec, Scenario
from sim.topology import Topology, geometric_edges

US = 1_000_000
QUANTILES = 4096
"""Resolution of the latency quantile tables."""


@dataclass(frozen=True, slots=True)
class LinkModel:
    """A link class compiled to integer microseconds."""

    name: str
    latency_us: int
    dist: str
    jitter_us: int
    loss: float
    rto_us: int
    us_per_byte: float
    """Serialisation time per byte on the sender's uplink; 0 = unlimited bandwidth."""

    @staticmethod
    def from_spec(spec: LinkClassSpec) -> LinkModel:
        per_byte = 8000.0 / spec.bandwidth_kbps if spec.bandwidth_kbps > 0 else 0.0
        return LinkModel(
            spec.name,
            round(spec.latency_ms * 1000),
            spec.latency_dist,
            round(spec.jitter_ms * 1000),
            spec.loss,
            round(spec.rto_ms * 1000),
            per_byte,
        )

    @property
    def _lognormal(self) -> tuple[float, float]:
        """(mu, sigma) of the lognormal with this mean and standard deviation."""
        sigma2 = math.log1p((self.jitter_us / self.latency_us) ** 2)
        return math.log(self.latency_us) - sigma2 / 2, math.sqrt(sigma2)

    def sampler(self, rng: random.Random) -> Callable[[], int]:
        """A fast zero-argument latency sampler: inverse-CDF lookup in a quantile table
        (``QUANTILES`` points, midpoints of equal-probability bins), one ``random()`` each."""
        mean, j = self.latency_us, self.jitter_us
        if self.dist == "constant" or j == 0 or (mean <= 0 and self.dist == "lognormal"):
            return lambda: mean
        probs = [(k + 0.5) / QUANTILES for k in range(QUANTILES)]
        if self.dist == "uniform":
            table = [mean - j + p * 2 * j for p in probs]
        elif self.dist == "normal":
            nd = NormalDist(mean, j)
            table = [nd.inv_cdf(p) for p in probs]
        else:
            mu, sigma = self._lognormal
            nd = NormalDist(mu, sigma)
            table = [math.exp(nd.inv_cdf(p)) for p in probs]
        ints = [max(0, round(x)) for x in table]
        rand = rng.random
        return lambda: ints[int(rand() * QUANTILES)]


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A connection between ``u < v`` went down (``up`` False) or came up."""

    u: int
    v: int
    up: bool


class Network:
    """Link state and per-RPC delay/loss for ``topology.n`` nodes."""

    def __init__(self, scenario: Scenario, topology: Topology, seed: int) -> None:
        self.topology = topology
        self.n = topology.n
        self.rng = random.Random(f"{seed}/network")
        self.classes = [LinkModel.from_spec(lc) for lc in scenario.link_classes]
        index = {m.name: i for i, m in enumerate(self.classes)}
        default = index[scenario.network.link_class]
        self.node_class = array("b", [default]) * self.n
        sizes = scenario.group_sizes()
        self.group_of = array("i", [0]) * self.n
        self._assign_groups(scenario, seed, sizes, index)
        icl = scenario.network.inter_cluster_link_class
        self.inter_cluster = index[icl] if icl else -1
        self.side = array("i", [0]) * self.n
        self.up = bytearray([1]) * self.n
        self.incarnation = array("i", [0]) * self.n
        self.tx_free_us = array("q", [0]) * self.n
        self.adj: list[set[int]] | None = None
        """Desired links when they differ from the topology (mobility); None = topology."""
        self.extra: dict[int, set[int]] = {}
        """Links added at run time (carriers), both directions."""
        self.conn: list[set[int]] = [set() for _ in range(self.n)]
        """Connections the routers currently know about."""
        self.epoch = 0
        self._path_cache: dict[int, dict[int, int]] = {}
        self._path_epoch = -1
        self.retransmissions = 0
        self._fifo: dict[int, int] = {}
        self._fifo_csr = array("q", [0]) * len(topology.neigh)
        self._single: LinkModel | None = None
        self._samplers: dict[str, tuple[Callable[[], int], bool]] = {}
        """class name -> (latency sampler, whether arrivals need the FIFO clamp)."""
        self._offsets = topology.offsets
        self._neigh = topology.neigh
        self._compile()
        """Last arrival time per directed jittered link (u * n + v), for FIFO order."""

    def _assign_groups(
        self, scenario: Scenario, seed: int, sizes: Sequence[int], index: dict[str, int]
    ) -> None:
        """Groups take nodes in a seeded random order (hubs of a BA graph are not all group 0)."""
        order = list(range(self.n))
        random.Random(f"{seed}/groups").shuffle(order)
        pos = 0
        self.members: list[list[int]] = []
        for gi, (group, size) in enumerate(zip(scenario.groups, sizes, strict=True)):
            members = sorted(order[pos : pos + size])
            pos += size
            self.members.append(members)
            for i in members:
                self.group_of[i] = gi
                if group.link_class:
                    self.node_class[i] = index[group.link_class]

    # ------------------------------------------------------------------ links

    def link_model(self, u: int, v: int) -> LinkModel:
        if self._single is not None:
            return self._single
        cl = self.topology.cluster
        if self.inter_cluster >= 0 and cl is not None and cl[u] != cl[v]:
            return self.classes[self.inter_cluster]
        a, b = self.classes[self.node_class[u]], self.classes[self.node_class[v]]
        return a if (a.latency_us, a.loss) >= (b.latency_us, b.loss) else b

    def desired(self, u: int) -> Iterable[int]:
        base: Iterable[int] = self.topology.neighbours(u) if self.adj is None else self.adj[u]
        extra = self.extra.get(u)
        if extra:
            return sorted(set(base) | extra)
        return base

    def can_talk(self, u: int, v: int) -> bool:
        return bool(self.up[u] and self.up[v] and self.side[u] == self.side[v])

    def reconcile(self, nodes: Iterable[int]) -> list[LinkChange]:
        """Bring ``conn`` in line with desired links and state for ``nodes``; sorted changes."""
        changes: dict[tuple[int, int], bool] = {}
        for u in sorted(set(nodes)):
            want = {v for v in self.desired(u) if self.can_talk(u, v)}
            have = self.conn[u]
            for v in have - want:
                changes[(min(u, v), max(u, v))] = False
            for v in want - have:
                changes[(min(u, v), max(u, v))] = True
        out = [LinkChange(u, v, up) for (u, v), up in sorted(changes.items())]
        for ch in out:
            if ch.up:
                self.conn[ch.u].add(ch.v)
                self.conn[ch.v].add(ch.u)
            else:
                self.conn[ch.u].discard(ch.v)
                self.conn[ch.v].discard(ch.u)
        if out:
            self.epoch += 1
        return out

    def connected(self, u: int, v: int) -> bool:
        return v in self.conn[u]

    # ------------------------------------------------------------------ delivery

    def transit_us(self, u: int, v: int, size: int, now_us: int) -> int:
        """Microseconds until an RPC of ``size`` bytes sent now from u reaches v.

        The sender's uplink serialises its RPCs one after another (bandwidth); then the link's
        latency applies. libp2p streams are reliable and ordered: a lost transmission is
        retransmitted after the RTO, and no RPC overtakes an earlier one on the same link.
        Whether it arrives at all is decided at arrival (the link may have been cut).
        """
        m = self._single
        if m is None:
            m = self.link_model(u, v)
        depart = now_us
        if m.us_per_byte:
            start = max(now_us, self.tx_free_us[u])
            depart = start + round(size * m.us_per_byte)
            self.tx_free_us[u] = depart
        sample, fifo = self._samplers[m.name]
        arrive = depart + sample()
        if m.loss:
            rng = self.rng
            while rng.random() < m.loss:
                self.retransmissions += 1
                arrive += m.rto_us + sample()
        if fifo:
            # last arrival per directed link: a slot per CSR entry, a dict for extra links
            off = self._offsets
            lo, hi = off[u], off[u + 1]
            neigh = self._neigh
            k = bisect_left(neigh, v, lo, hi)
            if k < hi and neigh[k] == v:
                last_csr = self._fifo_csr
                if arrive < last_csr[k]:
                    arrive = last_csr[k]
                last_csr[k] = arrive
            else:
                key = u * self.n + v
                last = self._fifo.get(key, 0)
                if arrive < last:
                    arrive = last
                self._fifo[key] = arrive
        return arrive - now_us

    def set_class(self, name: str, model: LinkModel) -> None:
        """An ``override`` event: the class's parameters change from now on."""
        for i, m in enumerate(self.classes):
            if m.name == name:
                self.classes[i] = model
        self._compile()

    def _compile(self) -> None:
        """Precompute samplers, and the one class every link has when there is only one."""
        self._samplers = {
            m.name: (m.sampler(self.rng), bool(m.loss or (m.jitter_us and m.dist != "constant")))
            for m in self.classes
        }
        used = {self.node_class[i] for i in range(self.n)}
        self._single = (
            self.classes[used.pop()] if len(used) == 1 and self.inter_cluster < 0 else None
        )

    # ------------------------------------------------------------------ state changes

    def partition(self, labels: Sequence[int]) -> list[LinkChange]:
        for i, label in enumerate(labels):
            self.side[i] = label
        return self.reconcile(range(self.n))

    def heal(self) -> list[LinkChange]:
        for i in range(self.n):
            self.side[i] = 0
        return self.reconcile(range(self.n))

    def crash(self, u: int) -> list[LinkChange]:
        self.up[u] = 0
        return self.reconcile([u])

    def restart(self, u: int) -> list[LinkChange]:
        self.up[u] = 1
        self.incarnation[u] += 1
        self.tx_free_us[u] = 0
        return self.reconcile([u, *self.desired(u)])

    def add_links(self, u: int, peers: Iterable[int]) -> list[LinkChange]:
        peers = list(peers)
        for v in peers:
            self.extra.setdefault(u, set()).add(v)
            self.extra.setdefault(v, set()).add(u)
        return self.reconcile([u, *peers])

    def drop_extra_links(self, u: int) -> list[LinkChange]:
        peers = sorted(self.extra.pop(u, set()))
        for v in peers:
            others = self.extra.get(v)
            if others is not None:
                others.discard(u)
                if not others:
                    del self.extra[v]
        return self.reconcile([u, *peers])

    def set_links(self, edges: Iterable[tuple[int, int]]) -> list[LinkChange]:
        """Replace the desired link set (mobility recomputation)."""
        adj: list[set[int]] = [set() for _ in range(self.n)]
        for u, v in edges:
            adj[u].add(v)
            adj[v].add(u)
        self.adj = adj
        return self.reconcile(range(self.n))

    # ------------------------------------------------------------------ direct streams

    def path_latency_us(self, u: int, v: int) -> int | None:
        """Latency of the fastest path u -> v over current connections (DESIGN §8: direct
        streams between nodes of one partition), mean latencies, cached per link epoch."""
        if self._path_epoch != self.epoch:
            self._path_cache.clear()
            self._path_epoch = self.epoch
        dist = self._path_cache.get(u)
        if dist is None:
            dist = {u: 0}
            heap = [(0, u)]
            while heap:
                d, x = heapq.heappop(heap)
                if d > dist.get(x, d):
                    continue
                for y in sorted(self.conn[x]):
                    nd = d + self.link_model(x, y).latency_us
                    if nd < dist.get(y, nd + 1):
                        dist[y] = nd
                        heapq.heappush(heap, (nd, y))
            self._path_cache[u] = dist
        return dist.get(v)


class Mobility:
    """Random waypoint on a square: each node walks to a random point at a random speed,
    pauses, repeats. Positions advance lazily to the recompute time."""

    def __init__(self, spec: MobilitySpec, xy: array[float], seed: int) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}/mobility")
        n = len(xy) // 2
        self.xy = array("d", (c * spec.area_m for c in xy))
        self.target = array("d", [0.0]) * (2 * n)
        self.speed = array("d", [0.0]) * n
        self.pause_until = array("d", [0.0]) * n
        for i in range(n):
            self._new_leg(i)

    def _new_leg(self, i: int) -> None:
        s = self.spec
        self.target[2 * i] = self.rng.random() * s.area_m
        self.target[2 * i + 1] = self.rng.random() * s.area_m
        self.speed[i] = self.rng.uniform(s.speed_min_mps, s.speed_max_mps)

    def advance(self, dt_s: float, now_s: float) -> None:
        for i in range(len(self.speed)):
            if self.pause_until[i] > now_s:
                continue
            x, y = self.xy[2 * i], self.xy[2 * i + 1]
            tx, ty = self.target[2 * i], self.target[2 * i + 1]
            dist = math.hypot(tx - x, ty - y)
            step = self.speed[i] * dt_s
            if step >= dist:
                self.xy[2 * i], self.xy[2 * i + 1] = tx, ty
                self.pause_until[i] = now_s + self.spec.pause_s
                self._new_leg(i)
            elif dist > 0:
                self.xy[2 * i] = x + (tx - x) * step / dist
                self.xy[2 * i + 1] = y + (ty - y) * step / dist

    def edges(self) -> list[tuple[int, int]]:
        return geometric_edges(self.xy, self.spec.radius_m)
