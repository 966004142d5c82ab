"""Seeded graph builders -> a compact, immutable adjacency (CSR) over integer node ids.

networkx builds the graph (its generators are the reference implementations researchers know);
the result is copied into two ``array('i')`` buffers (offsets, sorted neighbours), about 8
bytes per edge end, so a 100,000-node graph costs megabytes rather than the networkx dicts'
hundreds. Random geometric graphs are built on a grid of cells instead (networkx is O(n^2)
without scipy), and the same code recomputes links when nodes move.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import networkx as nx

from protocols.errors import ConfigError
from sim.scenario import TopologySpec


@dataclass(frozen=True, slots=True)
class Topology:
    """Undirected graph over ``0..n-1``; ``cluster`` and ``xy`` only where the builder has them.

    ``xy`` holds x0, y0, x1, y1, ... on the unit square (random geometric graphs).
    """

    n: int
    offsets: array[int]
    neigh: array[int]
    cluster: array[int] | None = None
    xy: array[float] | None = None

    def neighbours(self, i: int) -> Sequence[int]:
        return self.neigh[self.offsets[i] : self.offsets[i + 1]]

    def degree(self, i: int) -> int:
        return self.offsets[i + 1] - self.offsets[i]

    @property
    def edge_count(self) -> int:
        return len(self.neigh) // 2

    def edges(self) -> Iterator[tuple[int, int]]:
        """Each edge once, as ``(u, v)`` with ``u < v``, in ascending order."""
        neigh, off = self.neigh, self.offsets
        for u in range(self.n):
            for k in range(off[u], off[u + 1]):
                v = neigh[k]
                if v > u:
                    yield u, v

    def to_networkx(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(self.n))
        g.add_edges_from(self.edges())
        return g

    def nbytes(self) -> int:
        extra = 0
        for buf in (self.cluster, self.xy):
            if buf is not None:
                extra += len(buf) * buf.itemsize
        return (len(self.offsets) + len(self.neigh)) * 4 + extra


def from_edges(
    n: int,
    edges: Iterable[tuple[int, int]],
    cluster: array[int] | None = None,
    xy: array[float] | None = None,
) -> Topology:
    """CSR from an edge iterable; self-loops and duplicates are dropped, neighbours sorted."""
    adj: list[set[int]] = [set() for _ in range(n)]
    for u, v in edges:
        if u != v:
            adj[u].add(v)
            adj[v].add(u)
    offsets = array("i", [0])
    neigh = array("i")
    for s in adj:
        neigh.extend(sorted(s))
        offsets.append(len(neigh))
    return Topology(n, offsets, neigh, cluster, xy)


def _from_nx(g: nx.Graph, n: int) -> Topology:
    return from_edges(n, ((int(u), int(v)) for u, v in g.edges()))


def _clustered(spec: TopologySpec, seed: int) -> Topology:
    """Zones as clusters: G(n_c, p) inside each cluster plus ``inter_links`` between each pair."""
    rng = random.Random(f"{seed}/topology/clustered")
    c = min(spec.clusters, spec.nodes)
    bounds = [spec.nodes * i // c for i in range(c + 1)]
    cluster = array("i", [0] * spec.nodes)
    edges: list[tuple[int, int]] = []
    for ci in range(c):
        lo, hi = bounds[ci], bounds[ci + 1]
        for i in range(lo, hi):
            cluster[i] = ci
        sub = nx.fast_gnp_random_graph(hi - lo, spec.p, seed=rng.randrange(2**32))
        edges.extend((lo + int(u), lo + int(v)) for u, v in sub.edges())
        # a ring keeps every cluster connected whatever p is
        edges.extend((i, i + 1) for i in range(lo, hi - 1))
    for a in range(c):
        for b in range(a + 1, c):
            for _ in range(spec.inter_links):
                u = rng.randrange(bounds[a], bounds[a + 1])
                v = rng.randrange(bounds[b], bounds[b + 1])
                edges.append((u, v))
    return from_edges(spec.nodes, edges, cluster=cluster)


def geometric_edges(xy: Sequence[float], radius: float) -> list[tuple[int, int]]:
    """Pairs closer than ``radius`` (same unit as ``xy``), via a grid of radius-sized cells."""
    n = len(xy) // 2
    if radius <= 0 or n == 0:
        return []
    cells: dict[tuple[int, int], list[int]] = {}
    for i in range(n):
        key = (int(xy[2 * i] // radius), int(xy[2 * i + 1] // radius))
        cells.setdefault(key, []).append(i)
    r2 = radius * radius
    out: list[tuple[int, int]] = []
    for (cx, cy), members in sorted(cells.items()):
        for dx, dy in ((0, 0), (1, -1), (1, 0), (1, 1), (0, 1)):
            other = cells.get((cx + dx, cy + dy))
            if other is None:
                continue
            same = dx == 0 and dy == 0
            for a_pos, a in enumerate(members):
                ax, ay = xy[2 * a], xy[2 * a + 1]
                start = a_pos + 1 if same else 0
                for b in other[start:]:
                    ddx = xy[2 * b] - ax
                    ddy = xy[2 * b + 1] - ay
                    if ddx * ddx + ddy * ddy <= r2:
                        out.append((a, b) if a < b else (b, a))
    out.sort()
    return out


def _geometric(spec: TopologySpec, seed: int) -> Topology:
    rng = random.Random(f"{seed}/topology/geometric")
    xy = array("d", (rng.random() for _ in range(2 * spec.nodes)))
    return from_edges(spec.nodes, geometric_edges(xy, spec.radius), xy=xy)


def read_edge_list(path: str, n: int) -> list[tuple[int, int]]:
    """``u v`` per line (``#`` comments); ids must be in ``0..n-1``. Errors name file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read edge list {path}: {exc}", path="topology.path") from exc
    edges: list[tuple[int, int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        body = line.split("#", 1)[0].split()
        if not body:
            continue
        if len(body) < 2 or not all(tok.lstrip("-").isdigit() for tok in body[:2]):
            raise ConfigError(
                f"{path}:{lineno}: expected two integer node ids", path="topology.path"
            )
        u, v = int(body[0]), int(body[1])
        if not (0 <= u < n and 0 <= v < n):
            raise ConfigError(f"{path}:{lineno}: node id outside 0..{n - 1}", path="topology.path")
        edges.append((u, v))
    return edges


def build(spec: TopologySpec, seed: int) -> Topology:
    """The scenario's graph; the same spec and seed give the same graph in every process."""
    n = spec.nodes
    gseed = random.Random(f"{seed}/topology").randrange(2**32)
    if spec.kind == "random_regular":
        return _from_nx(nx.random_regular_graph(spec.degree, n, seed=gseed), n)
    if spec.kind == "erdos_renyi":
        return _from_nx(nx.fast_gnp_random_graph(n, spec.p, seed=gseed), n)
    if spec.kind == "watts_strogatz":
        return _from_nx(nx.connected_watts_strogatz_graph(n, spec.k, spec.rewire_p, seed=gseed), n)
    if spec.kind == "barabasi_albert":
        return _from_nx(nx.barabasi_albert_graph(n, min(spec.m, n - 1), seed=gseed), n)
    if spec.kind == "random_geometric":
        return _geometric(spec, seed)
    if spec.kind == "clustered":
        return _clustered(spec, seed)
    if spec.kind == "edge_list":
        return from_edges(n, read_edge_list(spec.path, n))
    if spec.kind == "line":
        return from_edges(n, ((i, i + 1) for i in range(n - 1)))
    raise ConfigError(f"unknown topology kind {spec.kind!r}", path="topology.kind")


def describe(topo: Topology) -> dict[str, float | int]:
    """Figures for the report: sizes, degree spread, connectivity (BFS, no networkx copy)."""
    degrees = [topo.degree(i) for i in range(topo.n)]
    seen = bytearray(topo.n)
    components = 0
    largest = 0
    for start in range(topo.n):
        if seen[start]:
            continue
        components += 1
        seen[start] = 1
        stack = [start]
        size = 0
        while stack:
            u = stack.pop()
            size += 1
            for v in topo.neighbours(u):
                if not seen[v]:
                    seen[v] = 1
                    stack.append(v)
        largest = max(largest, size)
    return {
        "nodes": topo.n,
        "edges": topo.edge_count,
        "degree_min": min(degrees, default=0),
        "degree_max": max(degrees, default=0),
        "degree_mean": round(sum(degrees) / max(topo.n, 1), 3),
        "components": components,
        "largest_component": largest,
    }


def hop_distance(topo: Topology, src: int) -> array[int]:
    """BFS hop counts from ``src`` (-1 where unreachable): the floor for gossip hop counts."""
    dist = array("i", [-1]) * topo.n
    dist[src] = 0
    frontier = [src]
    d = 0
    while frontier:
        d += 1
        nxt = []
        for u in frontier:
            for v in topo.neighbours(u):
                if dist[v] < 0:
                    dist[v] = d
                    nxt.append(v)
        frontier = nxt
    return dist
