"""Lineage: append, replay from genesis, and naming of every kind of damage (SPEC 2.9)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.agent import lineage
from protocols.agent.schema import GENESIS_PREV, Agent, Lineage, MutationClass
from protocols.errors import LineageError


def _line(agent: Agent) -> Lineage:
    assert agent.lineage is not None
    return agent.lineage


def test_each_append_adds_one_entry_whose_prev_is_the_old_head(agent: Agent) -> None:
    line = _line(agent)
    old_head = lineage.head(line)
    grown = lineage.append(
        line, type=MutationClass.EXECUTION, payload_digest=b"\x09" * 32, epoch=20, zone="alpha"
    )
    assert len(grown.entries) == len(line.entries) + 1
    assert grown.entries[-1].prev == old_head
    assert grown.entries[:-1] == line.entries


def test_replay_recomputes_the_head(agent: Agent) -> None:
    line = _line(agent)
    assert lineage.replay(line.entries) == lineage.head(line)
    assert lineage.replay(line.entries, expected_head=lineage.head(line)) == lineage.head(line)


def test_genesis_prev_is_zero(agent: Agent) -> None:
    assert _line(agent).entries[0].prev == GENESIS_PREV


def test_edited_entry_is_detected(agent: Agent) -> None:
    entries = list(_line(agent).entries)
    entries[1] = replace(entries[1], payload_digest=b"\xee" * 32)
    with pytest.raises(LineageError) as info:
        lineage.replay(entries)
    assert info.value.path == "lineage.entries[2].prev"
    assert "edited" in info.value.message


def test_edited_head_is_detected_against_expected_head(agent: Agent) -> None:
    line = _line(agent)
    entries = [*line.entries[:-1], replace(line.entries[-1], payload_digest=b"\xee" * 32)]
    with pytest.raises(LineageError) as info:
        lineage.replay(entries, expected_head=lineage.head(line))
    assert info.value.path == "lineage.entries[2]"


def test_reordering_is_detected(agent: Agent) -> None:
    e = list(_line(agent).entries)
    with pytest.raises(LineageError) as info:
        lineage.replay([e[0], e[2], e[1]])
    assert info.value.path == "lineage.entries[1].prev"
    assert "reordering" in info.value.message


def test_cycle_is_detected(agent: Agent) -> None:
    e = list(_line(agent).entries)
    with pytest.raises(LineageError) as info:
        lineage.replay([*e, e[1]])
    assert info.value.path == "lineage.entries[3].prev"


def test_dangling_prev_is_detected(agent: Agent) -> None:
    e = list(_line(agent).entries)
    e[2] = replace(e[2], prev=b"\x42" * 32)
    with pytest.raises(LineageError) as info:
        lineage.replay(e)
    assert info.value.path == "lineage.entries[2].prev"
    assert "dangling" in info.value.message


def test_epoch_may_not_go_back(agent: Agent) -> None:
    line = _line(agent)
    with pytest.raises(LineageError) as info:
        lineage.append(
            line, type=MutationClass.EXECUTION, payload_digest=bytes(32), epoch=0, zone="alpha"
        )
    assert "before the head epoch" in info.value.message


def test_genesis_must_be_initialization() -> None:
    line = lineage.genesis(payload_digest=bytes(32), epoch=1, zone="z")
    bad = [replace(line.entries[0], type=MutationClass.EXECUTION)]
    with pytest.raises(LineageError) as info:
        lineage.replay(bad)
    assert info.value.path == "lineage.entries[0].type"


def test_empty_lineage_does_not_replay() -> None:
    with pytest.raises(LineageError):
        lineage.replay([])
