"""The validator's fast path agrees with its general path, and the digests it memoizes are
the digests computed from scratch."""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.agent import Validation, validate_bytes
from protocols.agent.build import AgentSpec, encode_agent
from protocols.agent.lineage import ENTRY_TAG, body_digest, entry_hash, state_digest
from protocols.agent.schema import Agent, LineageEntry, MutationClass
from protocols.errors import DecodeError
from protocols.identity import dah
from protocols.types import ValidationStatus

from .conftest import grown_agent, maker

# ``protocols.agent.validate`` the module (the package re-exports a function of that name)
V = importlib.import_module("protocols.agent.validate")

VECTORS = sorted((Path(__file__).resolve().parents[2] / "vectors" / "agent").glob("*.json"))


def general(data: bytes) -> Validation:
    """What ``validate_bytes`` answers without its fast path."""
    try:
        data = codec.capped(data, V.MAX_AGENT_BYTES)
        tree = codec.loads_strict(data, max_depth=V.MAX_DEPTH)
    except DecodeError as exc:
        return V._decode_failure(exc)
    return V._general(tree, data)


def fast(data: bytes) -> Validation | None:
    try:
        tree = codec.loads_strict(data, max_depth=V.MAX_DEPTH)
    except DecodeError:
        return None
    return V._fast_full(tree, data)


def same(data: bytes) -> Validation:
    """Both paths give the same verdict; the fast one answers exactly for FULL agents."""
    result = validate_bytes(data)
    slow = general(data)
    assert result == slow
    quick = fast(data)
    if slow.status is ValidationStatus.FULL:
        assert quick is not None  # every FULL agent takes the fast path
    if quick is not None:
        assert quick == slow
        assert quick.status is ValidationStatus.FULL
    return result


def fresh_digests(agent: Agent) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """State digest and (body digest, name) of each entry, computed without any memo."""
    state = hashlib.sha256(codec.encode_ordered(replace(agent, lineage=None).to_cbor())).digest()
    assert agent.lineage is not None
    names = []
    for e in (
        *agent.lineage.entries,
        *(() if agent.lineage.pruned is None else (agent.lineage.pruned,)),
    ):
        body = hashlib.sha256(codec.encode_ordered(e.body_cbor())).digest()
        names.append((body, hashlib.sha256(ENTRY_TAG + body + e.dah + e.sig).digest()))
    return state, names


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vectors_take_the_same_verdict_on_both_paths(path: Path) -> None:
    vector = json.loads(path.read_text())
    result = same(bytes.fromhex(vector["input_hex"]))
    assert result.status.value == vector["status"]
    if vector["status"] == "FULL":
        assert fast(bytes.fromhex(vector["input_hex"])) is not None


def test_fast_path_memoizes_the_digests_computed_from_scratch() -> None:
    agent = grown_agent(4)
    result = validate_bytes(encode_agent(agent))
    assert result.agent == agent
    got = result.agent
    assert got is not None
    assert got.lineage is not None
    state, names = fresh_digests(agent)
    assert got._state == state == state_digest(got)
    for e, (body, name) in zip(got.lineage.entries, names, strict=False):
        assert e._body == body == body_digest(e)
        assert e._name == name == entry_hash(e)
    # a replace() copy forgets the memo and recomputes the same values
    e0 = got.lineage.entries[0]
    copy = replace(e0)
    assert copy._body == b""
    assert copy._name == b""
    assert entry_hash(copy) == entry_hash(e0)
    assert replace(got)._state == b""


def test_pruned_lineage_takes_the_fast_path() -> None:
    m = maker(3)
    agent = m.new(AgentSpec(verb="note", zone="alpha", epoch=1))
    for k in range(V.LINEAGE_WINDOW + 2):
        agent = m.step(agent, dah.Change(MutationClass.STATE_TRANSITION), 2 + k)
    assert agent.lineage is not None
    assert agent.lineage.pruned is not None
    data = encode_agent(agent)
    result = same(data)
    assert fast(data) is not None
    assert result.agent == agent
    got = result.agent
    assert got is not None
    assert got.lineage is not None
    assert got.lineage.pruned is not None
    _, names = fresh_digests(agent)
    assert got.lineage.pruned._name == names[-1][1]


def test_builder_covers_every_field() -> None:
    entry = grown_agent(2).lineage.entries[-1]  # type: ignore[union-attr]
    tree = entry.to_cbor()
    named = V._fast_named_entry(tree)
    assert named is not None
    built, enc = named
    assert built == entry
    assert enc == codec.encode(tree)
    for name in LineageEntry.__dataclass_fields__:
        assert getattr(built, name) is not None
    with pytest.raises(TypeError, match="fields changed"):
        V._slot_setters(LineageEntry, ("prev",))


def _mutated_trees() -> list[tuple[str, Any]]:
    """Structural variants of a FULL agent: each must get the general path's verdict."""
    base = grown_agent(3).to_cbor()
    out: list[tuple[str, Any]] = []

    def variant(label: str, edit: Any) -> None:
        tree = cbor2.loads(cbor2.dumps(base))
        edit(tree)
        out.append((label, tree))

    entries = lambda t: t["lineage"]["entries"]  # noqa: E731
    variant("same", lambda t: None)
    variant("args-float", lambda t: t["intent"]["args"].update(f=1.5))
    variant("args-unsorted", lambda t: t["intent"].update(args={"zz": 1, "a": 2}))
    variant("args-bigint", lambda t: t["intent"]["args"].update(b=1 << 64))
    variant("args-int-key", lambda t: t["intent"]["args"].update({1: 2}))
    variant("verb", lambda t: t["intent"].update(verb="Bad Verb"))
    variant("principal-long", lambda t: t["context"].update(principal="p" * 300))
    variant("zone-incoherent", lambda t: t["context"].update(zone="beta"))
    variant(
        "constraints",
        lambda t: t["context"]["constraints"].update(not_after_epoch=1, not_before_epoch=5),
    )
    variant("no-intent", lambda t: t.pop("intent"))
    variant("null-memory", lambda t: t.update(memory=None))
    variant("extra-key", lambda t: t.update(x=1))
    variant(
        "ledger-event",
        lambda t: t["memory"]["ledger"].append({"data": {}, "kind": "execution", "epoch": 3}),
    )
    variant(
        "ledger-kind",
        lambda t: t["memory"]["ledger"].append({"data": {}, "kind": "nope", "epoch": 3}),
    )
    variant(
        "access",
        lambda t: t["memory"]["access_log"].append(
            {"actor": "a", "epoch": 1, "action": "access", "outcome": ""}
        ),
    )
    variant(
        "access-actor-empty",
        lambda t: t["memory"]["access_log"].append(
            {"actor": "", "epoch": 1, "action": "access", "outcome": ""}
        ),
    )
    variant(
        "handle",
        lambda t: t["memory"]["handles"].append({"kind": "blob", "size": 3, "digest": bytes(32)}),
    )
    variant(
        "handle-digest",
        lambda t: t["memory"]["handles"].append({"kind": "blob", "size": 3, "digest": bytes(31)}),
    )
    variant("policy-empty", lambda t: t.update(policy_ref=[]))
    variant("policy-sig", lambda t: t["policy_ref"][0].update(signature=bytes(63)))
    variant("mutable-dup", lambda t: t["mutation_descriptor"].update(mutable=["memory", "memory"]))
    variant("mutable-empty", lambda t: t["mutation_descriptor"].update(mutable=[""]))
    variant(
        "pathway",
        lambda t: t["mutation_descriptor"]["delegation"].append(
            {"role": "r", "verbs": ["go"], "max_depth": 1}
        ),
    )
    variant(
        "pathway-verb",
        lambda t: t["mutation_descriptor"]["delegation"].append(
            {"role": "r", "verbs": ["Go"], "max_depth": 1}
        ),
    )
    variant("limits-neg", lambda t: t["mutation_descriptor"]["limits"].update(max_zones=-1))
    variant("entry-dah-short", lambda t: entries(t)[1].update(dah=bytes(31)))
    variant("entry-proof", lambda t: entries(t)[1].update(proof=b"x"))
    variant("entry-type", lambda t: entries(t)[1].update(type="initialization"))
    variant("entry-epoch-back", lambda t: entries(t)[2].update(epoch=0))
    variant("entry-zone", lambda t: entries(t)[2].update(zone="a b"))
    variant("entry-totals-big", lambda t: entries(t)[2]["totals"].update(depth=1 << 63))
    variant("entry-totals-bool", lambda t: entries(t)[2]["totals"].update(zones=True))
    variant("entry-link", lambda t: entries(t)[2].update(link=bytes(5)))
    variant("entry-prev", lambda t: entries(t)[2].update(prev=bytes(32)))
    variant("entry-swap", lambda t: entries(t).reverse())
    variant("entry-drop", lambda t: entries(t).pop(1))
    variant("genesis-dah", lambda t: t["lineage"].update(genesis_dah=bytes(32)))
    variant("genesis-epoch", lambda t: t["lineage"].update(genesis_epoch=99))
    variant("pruned-bad", lambda t: t["lineage"].update(pruned={"x": 1}))
    variant("no-entries", lambda t: t["lineage"].update(entries=[]))
    return out


@pytest.mark.parametrize(
    ("label", "tree"), _mutated_trees(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_structural_variants_take_the_same_verdict(label: str, tree: Any) -> None:
    canonical = cbor2.dumps(tree, canonical=True)
    same(canonical)
    same(cbor2.dumps(tree))  # decoded order: may be non-canonical
    if label == "same":
        assert fast(canonical) is not None


GOOD = encode_agent(grown_agent(3))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_bytes_take_the_same_verdict(data: st.DataObject) -> None:
    raw = bytearray(GOOD)
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        at = data.draw(st.integers(0, len(raw) - 1))
        if kind == "flip":
            raw[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set":
            raw[at] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del raw[at:]
            if not raw:
                raw.append(0)
        else:
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=4))
    same(bytes(raw))


def test_a_changed_copy_of_a_validated_entry_gets_its_own_name() -> None:
    got = validate_bytes(GOOD).agent
    assert got is not None
    assert got.lineage is not None
    head = got.lineage.entries[-1]
    changed = replace(head, epoch=head.epoch + 1)
    assert body_digest(changed) != body_digest(head)
    assert entry_hash(changed) != entry_hash(head)
    assert (
        entry_hash(changed)
        == hashlib.sha256(
            ENTRY_TAG
            + hashlib.sha256(codec.encode_ordered(changed.body_cbor())).digest()
            + changed.dah
            + changed.sig
        ).digest()
    )
