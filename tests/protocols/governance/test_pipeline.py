"""Admission pipeline (DESIGN 5): the order of stages and the wire/disposition mapping."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols import codec
from protocols.agent.build import encode_agent
from protocols.agent.schema import Agent, Lineage, PropagationLimits
from protocols.governance import pipeline as pipeline_mod
from protocols.governance.meta import Action, Override, revocation
from protocols.governance.pipeline import (
    OUTCOMES,
    AdmitInput,
    Decision,
    Disposition,
    admit,
    encode_envelope,
)
from protocols.governance.policy import Contract
from protocols.governance.quarantine import Event, MemoryQuarantine
from protocols.governance.quorum import scope_of
from protocols.governance.view import ZoneView
from protocols.governance.world import World, WorldParams, build_world
from protocols.governance.zone import ZoneDescriptor
from protocols.identity.host import sign_revocation
from protocols.types import WireVerdict

EPOCH = 20
A, R, IG = WireVerdict.ACCEPT, WireVerdict.REJECT, WireVerdict.IGNORE
OUTSIDER = bytes(32)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(hosts=3))


def honest(world: World, seed: int = 1, **body: object) -> Agent:
    rng = random.Random(seed)
    agent = world.spawn(world.body(**body), 0, EPOCH - 1, rng)  # type: ignore[arg-type]
    return world.grow(agent, 2, EPOCH, rng)


def judge(world: World, data: bytes, **kw: object) -> Decision:
    inp = AdmitInput(data, kw.pop("view", None) or world.view(), EPOCH, OUTSIDER)  # type: ignore[arg-type]
    return admit(replace(inp, **kw))  # type: ignore[arg-type]


def with_head(agent: Agent, **changes: object) -> Agent:
    assert agent.lineage is not None
    head = replace(agent.lineage.entries[-1], **changes)  # type: ignore[arg-type]
    return replace(
        agent, lineage=replace(agent.lineage, entries=(*agent.lineage.entries[:-1], head))
    )


def test_honest_agent_is_accepted_and_executed_only_on_its_host(world: World) -> None:
    agent = honest(world)
    elsewhere = judge(world, world.envelope(agent))
    assert (elsewhere.wire, elsewhere.disposition) == (A, Disposition.STORE)
    on_host = judge(world, world.envelope(agent), local_host=world.hosts[0].key)
    assert (on_host.wire, on_host.disposition) == (A, Disposition.EXECUTE)
    assert on_host.evaluation is not None
    assert on_host.evaluation.rule_name == "permit-work"


@pytest.mark.parametrize(
    ("damage", "code"),
    [
        (lambda a: with_head(a, sig=bytes(64)), "bad-signature"),
        (lambda a: with_head(a, dah=bytes(32)), "bad-step"),
        (lambda a: replace(a, intent=replace(a.intent, verb="echo")), "bad-state"),
        (lambda a: with_head(a, reveal=bytes(32)), "bad-reveal"),
    ],
    ids=["bad-signature", "forged-dah", "edited-state", "bad-reveal"],
)
def test_forgeries_within_the_agents_own_lineage_are_rejected(world, damage, code) -> None:  # type: ignore[no-untyped-def]
    d = judge(world, world.envelope(damage(honest(world))))
    assert d.code == code
    assert (d.wire, d.disposition) == (R, Disposition.DROP)
    assert d.stage == "identity"


def test_dropping_a_signed_field_gains_a_forger_nothing(world: World) -> None:
    agent = replace(honest(world), intent=None)
    d = judge(world, world.envelope(agent))
    assert d.wire is R
    assert d.code == "bad-state"


def test_structural_failures_are_rejected_before_identity(world: World) -> None:
    data = encode_agent(honest(world))
    tree = codec.decode(data, max_bytes=1 << 20)
    tree["extra"] = 1
    d = judge(world, encode_envelope(world.zone, codec.encode(tree)))
    assert (d.wire, d.code, d.stage) == (R, "invalid", "structure")
    assert judge(world, b"\xff\x00").code == "undecodable"
    assert judge(world, codec.encode({"v": 1, "zone": world.zone})).code == "bad-envelope"
    assert judge(world, encode_envelope("other", data)).code == "wrong-topic"


def test_partial_agent_goes_to_fallback_and_policy_is_never_evaluated(world, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []
    real = Contract.evaluate
    monkeypatch.setattr(Contract, "evaluate", lambda self, f: calls.append(f) or real(self, f))
    body = replace(world.body(), intent=None)
    agent = world.spawn(body, 0, EPOCH, random.Random(3))
    d = judge(world, world.envelope(agent))
    assert (d.wire, d.disposition, d.code) == (A, Disposition.FALLBACK, "partial")
    assert calls == []
    judge(world, world.envelope(honest(world)))
    assert len(calls) == 1


def test_partial_agent_without_descriptor_is_forwarded(world: World) -> None:
    body = replace(world.body(), mutation_descriptor=None)
    agent = world.spawn(body, 0, EPOCH, random.Random(4))
    d = judge(world, world.envelope(agent))
    assert (d.wire, d.disposition) == (A, Disposition.FALLBACK)


def test_policy_verdicts_map_to_wire_and_disposition(world: World) -> None:
    deny = judge(world, world.envelope(honest(world, verb="wipe")))
    assert (deny.wire, deny.disposition, deny.code) == (R, Disposition.DROP, "policy-deny")
    held = judge(world, world.envelope(honest(world, role="suspect")))
    assert (held.wire, held.disposition) == (A, Disposition.QUARANTINE)
    esc = judge(world, world.envelope(honest(world, verb="audit")))
    assert (esc.wire, esc.disposition) == (A, Disposition.ESCALATE)
    default = judge(world, world.envelope(honest(world, verb="dance")))
    assert default.code == "policy-deny"
    assert default.evaluation is not None
    assert default.evaluation.rule_index == -1


def test_missing_named_objects_and_local_state_give_ignore(world: World) -> None:
    agent = honest(world)
    bare = world.view()
    bare.contracts.clear()
    assert judge(world, world.envelope(agent), view=bare).code == "contract-unknown"
    stale = judge(world, world.envelope(agent), epoch=EPOCH + 5)
    assert (stale.wire, stale.code) == (IG, "stale-head")
    synced = judge(world, world.envelope(agent), epoch=EPOCH + 5, via_sync=True)
    assert synced.wire is A
    assert judge(world, world.envelope(agent), epoch=EPOCH - 3).code == "future-head"
    hostless = ZoneView(world.zone, world.authority_set)
    hostless.add_descriptor(world.signed["descriptor"])
    hostless.add_contract(world.signed["contract"])
    unknown = judge(world, world.envelope(agent), view=hostless)
    assert (unknown.wire, unknown.code) == (IG, "unknown-host")


def test_a_head_naming_a_superseded_descriptor_is_ignored(world: World) -> None:
    agent = honest(world)
    view = world.view()
    v2 = replace(world.descriptor, version=2, activation_epoch=EPOCH - 1)
    view.add_descriptor(v2.sign(*world.authority))
    d = judge(world, world.envelope(agent), view=view)
    assert (d.wire, d.code) == (IG, "descriptor-not-active")


def test_revoked_host_is_ignored_not_rejected(world: World) -> None:
    view = world.view()
    view.revoke_host(sign_revocation(world.hosts[0].key, EPOCH, world.authority[0]))
    d = judge(world, world.envelope(honest(world)), view=view)
    assert (d.wire, d.code) == (IG, "revoked-host")


def test_policy_ref_not_signed_by_the_authority_is_rejected(world: World) -> None:
    agent = honest(world)
    assert agent.policy_ref is not None
    bad = replace(agent.policy_ref[0], signature=bytes(64))
    body = replace(world.body(), policy_ref=(bad,))
    forged = world.grow(world.spawn(body, 0, EPOCH, random.Random(5)), 1, EPOCH, random.Random(6))
    d = judge(world, world.envelope(forged))
    assert (d.wire, d.code) == (R, "policy-ref-unaligned")


def test_self_widening_escalates_unless_an_override_authorises_it(world: World) -> None:
    wide = honest(
        world, limits=PropagationLimits(max_migrations=99, max_zones=4, max_delegation_depth=2)
    )
    d = judge(world, world.envelope(wide))
    assert (d.wire, d.disposition, d.code) == (A, Disposition.ESCALATE, "self-widening")
    assert wide.lineage is not None
    target = scope_of(world.zone, wide.lineage.genesis_dah)
    view = world.view()
    signed = Override(world.zone, target, Action.AUTHORISE_WIDENING, 0, EPOCH + 10, "ok").sign(
        *world.meta
    )
    assert view.add_override(signed, EPOCH)
    assert judge(world, world.envelope(wide), view=view).code == "permit"


def test_override_releases_quarantine_lapses_at_expiry_and_revocation_restores(
    world: World,
) -> None:
    agent = honest(world, role="suspect")
    assert agent.lineage is not None
    target = scope_of(world.zone, agent.lineage.genesis_dah)
    view = world.view()
    signed = Override(world.zone, target, Action.RELEASE, 0, EPOCH + 1, "cleared").sign(*world.meta)
    assert view.add_override(signed, EPOCH)
    assert judge(world, world.envelope(agent), view=view).disposition is Disposition.STORE
    assert (
        judge(world, world.envelope(agent), view=view, epoch=EPOCH + 1, via_sync=True).disposition
        is Disposition.QUARANTINE
    )
    view.overrides.revoke(revocation(world.zone, signed.id, *world.meta), world.descriptor)
    assert judge(world, world.envelope(agent), view=view).disposition is Disposition.QUARANTINE
    foreign = Override(world.zone, target, Action.RELEASE, 0, 99, "x").sign(*world.authority)
    assert not view.add_override(foreign, EPOCH)
    assert view.overrides.records[-1].event == "ignored"


def test_quarantine_quota_full_gives_ignore(world: World) -> None:
    agent = honest(world, role="suspect")
    store = MemoryQuarantine()
    held = judge(world, world.envelope(agent), quarantine=store)
    assert held.disposition is Disposition.QUARANTINE
    record = store.hold(held.held(b"bytes"), world.descriptor.quarantine_quota, EPOCH)
    assert record.event is Event.HELD
    assert store.count(held.host) == 1
    assert store.get(held.content_id) is not None
    full = replace(world.descriptor, quarantine_quota=1)
    view = ZoneView(world.zone, world.authority_set)
    view.add_descriptor(full.sign(*world.authority))
    view.add_contract(world.signed["contract"])
    for h in world.hosts:
        view.admit_host(world.record_of(h))
    other = world.spawn(world.body(role="suspect"), 0, EPOCH, random.Random(77), descriptor=full.id)
    d = judge(world, world.envelope(other), view=view, quarantine=store)
    assert (d.wire, d.code) == (IG, "quota-exceeded")


def test_every_decision_writes_one_audit_record(world: World) -> None:
    inputs = [
        world.envelope(honest(world, seed=s, verb=v))
        for s, v in enumerate(["note", "wipe", "audit"])
    ]
    inputs += [b"junk", encode_envelope("other", b"")]
    log = [judge(world, data).audit for data in inputs]
    assert len(log) == len(inputs)
    assert [r.wire for r in log] == ["ACCEPT", "REJECT", "ACCEPT", "REJECT", "REJECT"]
    assert all(r.code in OUTCOMES for r in log)


def test_reject_only_for_reasons_that_follow_from_the_bytes() -> None:
    local = {
        "unknown-host",
        "revoked-host",
        "replay",
        "fork",
        "gap-too-large",
        "stale-head",
        "future-head",
        "descriptor-unknown",
        "descriptor-not-active",
        "contract-unknown",
        "quota-exceeded",
        "entry-discontinuity",
        "equivocation",
    }
    for code in local:
        assert OUTCOMES[code][0] is IG, code
    executes = [c for c, (_, d) in OUTCOMES.items() if d is Disposition.EXECUTE]
    assert executes == ["permit-host"]


def test_stage_order_is_fixed() -> None:
    assert [name for name, _ in pipeline_mod._STAGES] == [
        "decode",
        "identity",
        "fallback",
        "policy",
        "quorum",
    ]


def test_decisions_are_not_cached(world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    calls = []
    real = pipeline_mod.verify_agent
    monkeypatch.setattr(
        pipeline_mod, "verify_agent", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    data = world.envelope(honest(world))
    view = world.view()
    judge(world, data, view=view)
    judge(world, data, view=view)
    assert len(calls) == 2


def test_descriptor_unknown_is_ignored(world: World) -> None:
    agent = honest(world)
    other = replace(world.descriptor, migration_depth_cap=1)
    forged = with_head(agent, descriptor=other.id)
    d = judge(world, world.envelope(forged))
    assert (d.wire, d.code) == (IG, "descriptor-unknown")
    _ = ZoneDescriptor, Lineage


def test_a_known_equivocation_escalates_both_branches(world: World) -> None:
    from protocols.agent.schema import MutationClass
    from protocols.identity import dah
    from protocols.identity.slope import find_equivocation

    rng = random.Random(31)
    base = world.spawn(world.body(), 0, EPOCH, rng)
    one = world.step(base, dah.Change(cls=MutationClass.STATE_TRANSITION), EPOCH, rng)
    two = world.step(base, dah.Change(cls=MutationClass.POLICY), EPOCH, rng)
    assert one.lineage is not None
    assert two.lineage is not None
    proof = find_equivocation(one.lineage.entries[-1], two.lineage.entries[-1])
    assert proof is not None
    view = world.view()
    assert judge(world, world.envelope(one), view=view).code == "permit"
    assert view.add_equivocation(proof)
    for branch in (one, two):
        d = judge(world, world.envelope(branch), view=view, local_host=world.hosts[0].key)
        assert (d.wire, d.disposition, d.code) == (IG, Disposition.ESCALATE, "equivocation")
    assert not view.add_equivocation(replace(proof, second=proof.first))
