"""Execution graph: DAG of lineage plus delegation edges; cycles and dangling parents named."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.agent import lineage
from protocols.agent.build import AgentSpec
from protocols.agent.graph import ExecutionGraph
from protocols.agent.schema import LINEAGE_WINDOW, Agent, Lineage, MutationClass
from protocols.errors import LineageError
from protocols.identity.dah import Change, Origin

from .conftest import grown_agent, maker


def _moved(agent: Agent, zone: str) -> Change:
    assert agent.context is not None
    return Change(MutationClass.MIGRATION, context=replace(agent.context, zone=zone))


def _parent_and_child() -> tuple[Lineage, Lineage]:
    m = maker()
    parent = m.new(AgentSpec(verb="note", zone="alpha", epoch=1))
    parent = m.step(parent, _moved(parent, "beta"), 2)
    parent = m.step(parent, Change(MutationClass.DELEGATION), 3)
    assert parent.lineage is not None
    link = lineage.head(parent.lineage)
    child = m.new(AgentSpec(verb="fetch", zone="beta", epoch=3, origin=Origin(link, 1)))
    assert child.context is not None
    child = m.step(
        child, Change(MutationClass.EXECUTION, context=replace(child.context, zone="gamma")), 4
    )
    assert child.lineage is not None
    return parent.lineage, child.lineage


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


def test_a_pruned_lineage_is_rooted_at_its_checkpoint() -> None:
    line = grown_agent(LINEAGE_WINDOW + 2).lineage
    assert line is not None
    graph = ExecutionGraph()
    head = graph.add_lineage(line)
    graph.check()
    assert len(graph) == LINEAGE_WINDOW + 1
    assert graph.zone_path(head) == ("alpha",)
