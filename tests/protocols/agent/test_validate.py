"""Structural validator: FULL / PARTIAL / INVALID rules of SPEC 2.1-2.2 and DESIGN 5."""

from __future__ import annotations

import copy
from typing import Any

import cbor2
import pytest

from protocols.agent import validate, validate_bytes
from protocols.agent.schema import Agent
from protocols.types import ValidationStatus


def _tree(agent: Agent) -> dict[str, Any]:
    return copy.deepcopy(agent.to_cbor())


def test_full_agent(agent: Agent, agent_bytes: bytes) -> None:
    result = validate_bytes(agent_bytes)
    assert result.status is ValidationStatus.FULL
    assert result.problems == ()
    assert result.agent == agent
    assert result.executable


def test_unknown_top_level_key_is_refused(agent: Agent) -> None:
    tree = _tree(agent)
    tree["x-extra"] = 1
    result = validate(tree)
    assert result.status is ValidationStatus.INVALID
    assert [p.path for p in result.problems] == ["x-extra"]
    assert result.agent is None


def test_mistyped_policy_ref_is_refused(agent: Agent) -> None:
    tree = _tree(agent)
    tree["policy_ref"] = {"contract": b"\x00" * 32}
    result = validate(tree)
    assert result.status is ValidationStatus.INVALID
    assert result.problems[0].path == "policy_ref"


def test_missing_intent_with_lineage_and_policy_is_partial_and_not_executable(
    agent: Agent,
) -> None:
    tree = _tree(agent)
    del tree["intent"]
    result = validate(tree)
    assert result.status is ValidationStatus.PARTIAL
    assert result.agent is not None
    assert result.agent.intent is None
    assert result.agent.missing == ("intent",)
    assert not result.executable


@pytest.mark.parametrize("field", ["lineage", "policy_ref"])
def test_missing_lineage_or_policy_ref_is_invalid(agent: Agent, field: str) -> None:
    tree = _tree(agent)
    tree[field] = None
    result = validate(tree)
    assert result.status is ValidationStatus.INVALID
    assert [p.path for p in result.problems] == [field]


def test_every_problem_is_reported_not_just_the_first(agent: Agent) -> None:
    tree = _tree(agent)
    tree["intent"]["verb"] = 3
    tree["context"]["zone"] = ""
    tree["mutation_descriptor"]["limits"]["max_zones"] = -1
    paths = {p.path for p in validate(tree).problems}
    assert paths == {"intent.verb", "context.zone", "mutation_descriptor.limits.max_zones"}


def test_verdict_is_independent_of_dict_order(agent: Agent) -> None:
    tree = _tree(agent)
    reordered = dict(reversed(list(tree.items())))
    reordered["context"] = dict(reversed(list(tree["context"].items())))
    assert validate(reordered) == validate(tree)


def test_unsorted_keys_in_bytes_are_not_canonical(agent: Agent) -> None:
    tree = _tree(agent)
    raw = cbor2.dumps(dict(reversed(list(tree.items()))))
    result = validate_bytes(raw)
    assert result.status is ValidationStatus.INVALID
    assert result.problems[0].code == "decode"
    assert "canonical order" in result.problems[0].message


def test_unsorted_keys_inside_free_form_data_are_not_canonical(agent: Agent) -> None:
    tree = _tree(agent)
    tree["intent"]["args"] = {"b": 1, "a": 2}
    result = validate_bytes(cbor2.dumps(tree))
    assert result.status is ValidationStatus.INVALID
    assert result.problems[0].path == "intent.args"
    assert "map key 'a' not in canonical order" in result.problems[0].message


def test_non_text_key_in_data_is_invalid(agent: Agent) -> None:
    tree = _tree(agent)
    tree["intent"]["args"] = {1: "x"}
    result = validate_bytes(cbor2.dumps(tree, canonical=True))
    assert result.status is ValidationStatus.INVALID
    assert result.problems[0].path == "intent.args"


def test_same_result_on_every_call(agent_bytes: bytes) -> None:
    damaged = agent_bytes[:50] + b"\x00" + agent_bytes[51:]
    assert validate_bytes(damaged) == validate_bytes(bytes(damaged))
