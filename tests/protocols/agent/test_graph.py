"""Execution graph: DAG of lineage plus delegation edges; cycles and dangling parents named."""

from __future__ import annotations

import pytest

from protocols.agent import lineage
from protocols.agent.graph import ExecutionGraph
from protocols.agent.schema import Lineage, MutationClass
from protocols.errors import LineageError


def _parent_and_child() -> tuple[Lineage, Lineage]:
    parent = lineage.genesis(payload_digest=b"\x01" * 32, epoch=1, zone="alpha")
    parent = lineage.append(
        parent, type=MutationClass.MIGRATION, payload_digest=b"\x02" * 32, epoch=2, zone="beta"
    )
    parent = lineage.append(
        parent, type=MutationClass.DELEGATION, payload_digest=b"\x03" * 32, epoch=3, zone="beta"
    )
    child = lineage.genesis(
        payload_digest=b"\x04" * 32, epoch=3, zone="beta", link=lineage.head(parent)
    )
    child = lineage.append(
        child, type=MutationClass.EXECUTION, payload_digest=b"\x05" * 32, epoch=4, zone="gamma"
    )
    return parent, child


def test_graph_is_acyclic_and_queries_paths() -> None:
    parent, child = _parent_and_child()
    graph = ExecutionGraph()
    graph.add_lineage(parent)
    child_head = graph.add_lineage(child)
    graph.check()
    assert len(graph) == 5
    assert graph.zone_path(lineage.head(parent)) == ("alpha", "beta")
    assert graph.zone_path(child_head) == ("beta", "gamma")
    assert graph.delegation_ancestry(child_head) == (lineage.head(parent),)
    assert list(graph.heads()) == [child_head]


def test_injected_cycle_is_detected() -> None:
    parent, _child = _parent_and_child()
    graph = ExecutionGraph()
    head = graph.add_lineage(parent)
    graph.add_edge(head, lineage.entry_hash(parent.entries[0]))
    with pytest.raises(LineageError) as info:
        graph.check()
    assert "cycle" in info.value.message


def test_dangling_parent_is_detected() -> None:
    _parent, child = _parent_and_child()
    graph = ExecutionGraph()
    graph.add_lineage(child)  # the parent's delegation entry is unknown here
    with pytest.raises(LineageError) as info:
        graph.check()
    assert "dangling parent" in info.value.message
