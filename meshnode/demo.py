"""Cases for ``meshnode agent demo``: well-formed agents and typical damage to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cbor2

from protocols.agent import AgentSpec, encode_agent, new_agent
from protocols.agent.lineage import append
from protocols.agent.schema import Agent, MutationClass


@dataclass(frozen=True, slots=True)
class DemoCase:
    """One named input for the demo table."""

    name: str
    data: bytes


def _tree(agent: Agent) -> dict[str, Any]:
    return agent.to_cbor()


def _enc(tree: Any) -> bytes:
    return cbor2.dumps(tree, canonical=True)


def demo_cases() -> Iterator[DemoCase]:
    """Good agents first, then one case per kind of damage."""
    note = new_agent(AgentSpec(verb="note", zone="alpha", args={"text": "hello mesh"}, epoch=7))
    assert note.lineage is not None
    grown = Agent(
        intent=note.intent,
        context=note.context,
        memory=note.memory,
        policy_ref=note.policy_ref,
        mutation_descriptor=note.mutation_descriptor,
        lineage=append(
            append(
                note.lineage,
                type=MutationClass.STATE_TRANSITION,
                payload_digest=b"\x01" * 32,
                epoch=8,
                zone="alpha",
            ),
            type=MutationClass.EXECUTION,
            payload_digest=b"\x02" * 32,
            epoch=9,
            zone="alpha",
        ),
    )
    report = new_agent(
        AgentSpec(
            verb="report",
            zone="fleet.north",
            role="scout",
            args={"unit": "u-17", "fuel": 63},
            epoch=3,
        )
    )
    yield DemoCase("note agent", encode_agent(note))
    yield DemoCase("note agent, 3-entry lineage", encode_agent(grown))
    yield DemoCase("report agent", encode_agent(report))

    def damaged(name: str, edit: Callable[[dict[str, Any]], object]) -> DemoCase:
        tree = _tree(grown)
        edit(tree)
        return DemoCase(name, _enc(tree))

    yield damaged("intent removed", lambda t: t.pop("intent"))
    yield damaged("memory null", lambda t: t.__setitem__("memory", None))
    yield damaged("extra top-level key", lambda t: t.__setitem__("owner", "mallory"))
    yield damaged("policy_ref is text", lambda t: t.__setitem__("policy_ref", "trust me"))
    yield damaged(
        "lineage entry edited", lambda t: t["lineage"]["entries"][1].__setitem__("epoch", 99)
    )
    yield damaged("float in intent args", lambda t: t["intent"]["args"].__setitem__("ratio", 0.5))
    good = encode_agent(grown)
    yield DemoCase("truncated", good[:-7])
    yield DemoCase("trailing garbage", good + b"\x00\xff")
    yield DemoCase("bit flip", good[:40] + bytes([good[40] ^ 0x20]) + good[41:])
    yield DemoCase("deep nesting", bytes([0x81] * 64) + b"\x00")
    yield DemoCase("huge length prefix", b"\xa1\x66intent\x5b" + b"\xff" * 8)
