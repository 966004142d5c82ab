"""Execution graph (SPEC 2.9): lineage entries plus delegation edges, as a DAG.

A recorder, not a scheduler (SPEC 5.18): nodes are lineage entries named by hash; edges are
``prev -> entry`` within one agent and ``link -> entry`` where a child agent's entry names the
parent's delegation entry. networkx holds the graph (DESIGN 2 allows it here); we add the
checks and the two path queries users need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx

from protocols.agent.lineage import entry_hash
from protocols.agent.schema import GENESIS_PREV, Lineage, MutationClass
from protocols.errors import LineageError


@dataclass(frozen=True, slots=True)
class GraphNode:
    """Attributes kept for each entry in the graph."""

    type: MutationClass
    zone: str
    epoch: int


class ExecutionGraph:
    """DAG over the lineages of a set of agents."""

    def __init__(self) -> None:
        self._g: nx.DiGraph = nx.DiGraph()

    def add_lineage(self, line: Lineage) -> bytes:
        """Add every entry and its edges; return the head hash.

        A pruned checkpoint entry is added as a root: its own predecessor lives only in the
        host's full-history store.
        """
        head = GENESIS_PREV
        if line.pruned is not None:
            p = line.pruned
            self._g.add_node(entry_hash(p), info=GraphNode(p.type, p.zone, p.epoch))
        for entry in line.entries:
            h = entry_hash(entry)
            self._g.add_node(h, info=GraphNode(entry.type, entry.zone, entry.epoch))
            if entry.prev != GENESIS_PREV:
                self._g.add_edge(entry.prev, h, kind="prev")
            if entry.link:
                self._g.add_edge(entry.link, h, kind="delegation")
            head = h
        return head

    def add_edge(self, parent: bytes, child: bytes, kind: str = "prev") -> None:
        """Add a raw edge (tests use it to inject damage such as a cycle)."""
        self._g.add_edge(parent, child, kind=kind)

    def check(self) -> None:
        """Raise LineageError naming a cycle or a dangling parent hash."""
        try:
            cycle = nx.find_cycle(self._g)
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            names = " -> ".join(bytes(u).hex()[:12] for u, _v in cycle)
            raise LineageError(f"execution graph has a cycle: {names}", path="lineage")
        for node in sorted(self._g.nodes):
            if "info" not in self._g.nodes[node]:
                raise LineageError(
                    f"dangling parent hash {bytes(node).hex()[:16]}: no such entry",
                    path="lineage",
                )

    def zone_path(self, head: bytes) -> tuple[str, ...]:
        """Zones the agent passed through, genesis first, following ``prev`` edges only."""
        zones: list[str] = []
        node: bytes | None = head
        seen: set[bytes] = set()
        while node is not None and node not in seen:
            seen.add(node)
            info = self._g.nodes[node].get("info") if node in self._g else None
            if info is None:
                break
            if not zones or zones[-1] != info.zone:
                zones.append(info.zone)
            parents = [u for u, _v, k in self._g.in_edges(node, data="kind") if k == "prev"]
            node = parents[0] if parents else None
        return tuple(reversed(zones))

    def delegation_ancestry(self, head: bytes) -> tuple[bytes, ...]:
        """Delegation entries of ancestor agents this head descends from, nearest first."""
        found: list[bytes] = []
        for node in nx.ancestors(self._g, head) | {head}:
            for u, _v, kind in self._g.in_edges(node, data="kind"):
                if kind == "delegation":
                    found.append(u)
        order = {n: i for i, n in enumerate(nx.topological_sort(self._g))}
        return tuple(sorted(set(found), key=lambda n: -order.get(n, 0)))

    def __len__(self) -> int:
        return int(self._g.number_of_nodes())

    def heads(self) -> Iterable[bytes]:
        """Entries no other entry builds on, sorted for determinism."""
        return sorted(n for n in self._g.nodes if self._g.out_degree(n) == 0)
