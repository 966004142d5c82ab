"""Lineage: extend, prune, replay from genesis or checkpoint, and naming of every kind of damage."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.agent import lineage
from protocols.agent.schema import GENESIS_PREV, LINEAGE_WINDOW, Agent, Lineage, MutationClass
from protocols.errors import LineageError

from .conftest import grown_agent


def _line(agent: Agent) -> Lineage:
    assert agent.lineage is not None
    return agent.lineage


def test_each_step_adds_one_entry_whose_prev_is_the_old_head(agent: Agent) -> None:
    line = _line(agent)
    assert [e.prev for e in line.entries[1:]] == [lineage.entry_hash(e) for e in line.entries[:-1]]
    assert line.entries[-1].totals.depth == len(line.entries) - 1


def test_extend_appends_and_checks_links(agent: Agent) -> None:
    line = _line(agent)
    shorter = replace(line, entries=line.entries[:-1])
    assert lineage.extend(shorter, line.entries[-1]) == line
    with pytest.raises(LineageError) as info:
        lineage.extend(line, line.entries[1])
    assert info.value.path == "lineage.entries[3].prev"


def test_extend_prunes_past_the_window(agent: Agent) -> None:
    line = _line(agent)
    small = lineage.extend(replace(line, entries=line.entries[:-1]), line.entries[-1], window=2)
    assert small.entries == line.entries[1:]
    assert small.pruned == line.entries[0]
    assert small.genesis_dah == line.entries[0].dah


def test_replay_recomputes_the_head(agent: Agent) -> None:
    line = _line(agent)
    assert lineage.replay(line.entries) == lineage.head(line)
    assert lineage.replay(line.entries, expected_head=lineage.head(line)) == lineage.head(line)


def test_replay_from_a_pruned_checkpoint(agent: Agent) -> None:
    line = _line(agent)
    base = lineage.entry_hash(line.entries[0])
    assert lineage.replay(line.entries[1:], base=base) == lineage.head(line)
    with pytest.raises(LineageError):
        lineage.replay(line.entries[2:], base=base)


def test_genesis_prev_is_zero(agent: Agent) -> None:
    assert _line(agent).entries[0].prev == GENESIS_PREV


def test_edited_entry_is_detected(agent: Agent) -> None:
    entries = list(_line(agent).entries)
    entries[1] = replace(entries[1], state_digest=b"\xee" * 32)
    with pytest.raises(LineageError) as info:
        lineage.replay(entries)
    assert info.value.path == "lineage.entries[2].prev"
    assert "edited" in info.value.message


@pytest.mark.parametrize("field", ["dah", "sig", "next_signer", "zone"])
def test_every_field_is_in_the_entry_name(agent: Agent, field: str) -> None:
    entry = _line(agent).entries[1]
    value = getattr(entry, field)
    other = "beta" if isinstance(value, str) else bytes([value[0] ^ 1]) + value[1:]
    assert lineage.entry_hash(replace(entry, **{field: other})) != lineage.entry_hash(entry)


def test_edited_head_is_detected_against_expected_head(agent: Agent) -> None:
    line = _line(agent)
    entries = [*line.entries[:-1], replace(line.entries[-1], state_digest=b"\xee" * 32)]
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
    early = replace(line, entries=line.entries[:-1])
    with pytest.raises(LineageError) as info:
        lineage.extend(early, replace(line.entries[-1], epoch=0))
    assert "before the head epoch" in info.value.message
    with pytest.raises(LineageError) as info:
        lineage.replay([*line.entries[:-1], replace(line.entries[-1], epoch=0)])
    assert info.value.path == "lineage.entries[2].epoch"


def test_genesis_must_be_initialization(agent: Agent) -> None:
    bad = [replace(_line(agent).entries[0], type=MutationClass.EXECUTION)]
    with pytest.raises(LineageError) as info:
        lineage.replay(bad)
    assert info.value.path == "lineage.entries[0].type"


def test_empty_lineage_does_not_replay() -> None:
    with pytest.raises(LineageError):
        lineage.replay([])


def test_a_long_agent_carries_the_window_plus_the_pruned_entry() -> None:
    made = grown_agent(LINEAGE_WINDOW + 3)
    line = _line(made)
    assert len(line.entries) == LINEAGE_WINDOW
    assert line.pruned is not None
    assert line.entries[0].prev == lineage.entry_hash(line.pruned)
    assert line.entries[-1].totals.depth == LINEAGE_WINDOW + 2
    assert line.genesis_epoch == 5
