"""The mutation rule of admission (SPEC 2.1, 2.7, 2.8): a successor may change only what its
predecessor's ``mutation_descriptor`` lists as mutable, and may not widen that descriptor.

The rule applies when the judging node holds the direct predecessor (``AdmitInput.previous``
whose head is the entry the new head follows). Legitimate transitions that change fields the
descriptor does not list (execution records, quorum-certified mutations, the admission entry
of a migration) are allowed by construction and are checked here too.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from protocols.agent.schema import (
    Agent,
    LedgerEvent,
    LedgerKind,
    MutationClass,
    PropagationLimits,
)
from protocols.governance.meta import Action, Override
from protocols.governance.migration import Hosted, migrate
from protocols.governance.pipeline import OUTCOMES, AdmitInput, Decision, admit
from protocols.governance.quorum import scope_of
from protocols.governance.signing import public_key
from protocols.governance.view import ZoneView
from protocols.governance.world import World, WorldParams, build_world
from protocols.identity import dah
from protocols.identity.host_secrets import HostSecrets
from protocols.types import WireVerdict

E = 40
CODE = "mutation-not-permitted"
OUTSIDER = bytes(32)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldParams(zone="fleet", hosts=3, validators=5))


def spawn(world: World, seed: int, **body: object) -> Agent:
    return world.spawn(world.body(**body), 0, E - 1, random.Random(seed))  # type: ignore[arg-type]


def step(world: World, agent: Agent, seed: int, **change: object) -> Agent:
    cls = change.pop("cls", MutationClass.STATE_TRANSITION)
    return world.step(agent, dah.Change(cls=cls, **change), E, random.Random(seed))  # type: ignore[arg-type]


def judge(
    world: World, after: Agent, previous: Agent | None, view: ZoneView | None = None
) -> Decision:
    data = world.envelope(after)
    return admit(AdmitInput(data, view or world.view(), E, OUTSIDER, previous=previous))


def noted(agent: Agent, text: str, kind: LedgerKind = LedgerKind.EXECUTION) -> Agent:
    assert agent.memory is not None
    event = LedgerEvent(epoch=E, kind=kind, data={"text": text})
    return replace(agent, memory=replace(agent.memory, ledger=(*agent.memory.ledger, event)))


def test_the_outcome_is_an_ignore_that_drops() -> None:
    """IGNORE: a relay without the predecessor cannot judge, so it is never penalised."""
    assert OUTCOMES[CODE] == (WireVerdict.IGNORE, OUTCOMES["policy-deny"][1])


def test_a_memory_change_the_descriptor_allows_is_accepted(world: World) -> None:
    before = spawn(world, 1, mutable=("memory",))
    after = step(world, before, 2, memory=noted(before, "x").memory)
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "permit"), d.reason


def test_an_intent_change_with_only_memory_mutable_is_refused(world: World) -> None:
    before = spawn(world, 3, mutable=("memory",))
    assert before.intent is not None
    after = step(world, before, 4, intent=replace(before.intent, args={"text": "other"}))
    d = judge(world, after, before)
    assert (d.wire, d.code, d.stage) == (WireVerdict.IGNORE, CODE, "policy")
    assert "intent" in d.reason
    assert d.audit.code == CODE
    # a node that never held the predecessor cannot judge the change (the rule is silent)
    assert judge(world, after, None).code == "permit"


def test_an_intent_change_the_descriptor_allows_is_accepted(world: World) -> None:
    before = spawn(world, 5, mutable=("intent", "memory"))
    assert before.intent is not None
    after = step(world, before, 6, intent=replace(before.intent, args={"text": "other"}))
    assert judge(world, after, before).code == "permit"


def test_a_context_change_outside_the_descriptor_names_the_subfield(world: World) -> None:
    before = spawn(world, 7, mutable=("memory",))
    assert before.context is not None
    after = step(world, before, 8, context=replace(before.context, nest="elsewhere"))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "context.nest" in d.reason


def test_a_memory_change_with_nothing_mutable_is_refused(world: World) -> None:
    before = spawn(world, 9, mutable=())
    after = step(world, before, 10, memory=noted(before, "x", LedgerKind.MUTATION_RESULT).memory)
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "memory" in d.reason


def test_widening_the_descriptor_is_refused(world: World) -> None:
    before = spawn(world, 11, mutable=("memory",))
    md = before.mutation_descriptor
    assert md is not None
    after = step(world, before, 12, mutation_descriptor=replace(md, mutable=("intent", "memory")))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "mutation_descriptor.mutable" in d.reason
    raised = replace(md.limits, max_migrations=md.limits.max_migrations + 1)
    after = step(world, before, 13, mutation_descriptor=replace(md, limits=raised))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "mutation_descriptor.limits.max_migrations" in d.reason


def test_narrowing_the_descriptor_is_accepted(world: World) -> None:
    before = spawn(world, 14, mutable=("intent", "memory"))
    md = before.mutation_descriptor
    assert md is not None
    narrow = replace(md, mutable=("memory",), limits=PropagationLimits(1, 1, 0))
    after = step(world, before, 15, mutation_descriptor=narrow)
    assert judge(world, after, before).code == "permit"


def test_widening_authorised_by_the_meta_authority_is_accepted(world: World) -> None:
    before = spawn(world, 16, mutable=("memory",))
    md = before.mutation_descriptor
    assert md is not None
    assert before.lineage is not None
    after = step(world, before, 17, mutation_descriptor=replace(md, mutable=("intent", "memory")))
    view = world.view()
    target = scope_of(world.zone, before.lineage.genesis_dah)
    signed = Override(world.zone, target, Action.AUTHORISE_WIDENING, 0, E + 10, "ok").sign(
        *world.meta
    )
    assert view.add_override(signed, E)
    assert judge(world, after, before, view).code == "permit"


def test_a_stale_predecessor_is_not_compared(world: World) -> None:
    """Only the state the new head directly follows is compared (others prove nothing)."""
    older = spawn(world, 18, mutable=("memory",))
    assert older.intent is not None
    middle = step(world, older, 19)
    after = step(world, middle, 20, memory=noted(middle, "x").memory)
    changed_intent = replace(older, intent=replace(older.intent, verb="echo"))
    assert judge(world, after, changed_intent).code == "permit"
    assert judge(world, after, older).code == "permit"


def test_a_predecessor_that_is_not_the_committed_state_is_not_compared(world: World) -> None:
    """A held state whose fields do not hash to its head's state digest is not the
    predecessor the lineage names, so it cannot refuse the successor."""
    before = spawn(world, 21, mutable=("memory",))
    assert before.intent is not None
    after = step(world, before, 22)
    edited = replace(before, intent=replace(before.intent, verb="echo"))
    assert judge(world, after, edited).code == "permit"


# -- legitimate paths that change fields the descriptor does not list ------------------------


def test_an_execution_record_is_allowed_with_memory_not_mutable(world: World) -> None:
    before = spawn(world, 23, mutable=())
    after = step(world, before, 24, cls=MutationClass.EXECUTION, memory=noted(before, "r").memory)
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "already-executed"), d.reason


def test_an_execution_entry_may_only_append_execution_events(world: World) -> None:
    before = noted(spawn(world, 25, mutable=()), "kept")
    before = step(world, before, 26, memory=before.memory)  # the genesis body had no ledger
    assert before.memory is not None
    rewritten = replace(before.memory, ledger=())
    after = step(world, before, 27, cls=MutationClass.EXECUTION, memory=rewritten)
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    other = noted(before, "grant", LedgerKind.DELEGATION).memory
    after = step(world, before, 28, cls=MutationClass.EXECUTION, memory=other)
    assert judge(world, after, before).code == CODE


def test_a_quorum_certified_role_change_is_accepted(world: World) -> None:
    before = spawn(world, 29, mutable=("memory",))
    assert before.context is not None
    change = dah.Change(
        cls=MutationClass.ROLE_CHANGE,
        context=replace(before.context, role="claimed", principal="someone"),
    )
    after = world.certified(before, change, E, random.Random(30))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "permit"), d.reason


def test_a_quorum_certified_change_may_not_widen_the_descriptor(world: World) -> None:
    before = spawn(world, 31, mutable=("memory",))
    md = before.mutation_descriptor
    assert md is not None
    assert before.context is not None
    change = dah.Change(
        cls=MutationClass.ROLE_CHANGE,
        context=replace(before.context, role="claimed"),
        mutation_descriptor=replace(md, mutable=("intent", "memory")),
    )
    after = world.certified(before, change, E, random.Random(32))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "mutation_descriptor.mutable" in d.reason


def test_an_uncertified_role_change_is_refused(world: World) -> None:
    before = spawn(world, 33, mutable=("memory",))
    assert before.context is not None
    after = step(world, before, 34, context=replace(before.context, role="claimed"))
    d = judge(world, after, before)
    assert (d.wire, d.code) == (WireVerdict.IGNORE, CODE)
    assert "context.role" in d.reason


def test_a_migration_into_the_zone_is_accepted_against_its_seal(world: World) -> None:
    """The admission entry rebinds context.zone and policy_ref (migration.migrate) although
    the descriptor lists only memory."""
    from protocols.governance.xzone import CrossZoneAuthorisation, ledger_event

    depot = build_world(WorldParams(zone="depot", hosts=1))
    rng = random.Random(35)
    a = depot.spawn(depot.body(mutable=("memory",)), 0, E - 2, rng)
    assert a.lineage is not None
    assert a.memory is not None
    auth = CrossZoneAuthorisation(world.zone, depot.zone, a.lineage.genesis_dah, E + 100)
    memory = replace(a.memory, ledger=(ledger_event(auth.sign(*world.authority), E - 2),))
    a = depot.step(a, dah.Change(cls=MutationClass.STATE_TRANSITION, memory=memory), E - 2, rng)
    src, dst = depot.hosts[0], world.hosts[0]
    seal, admitted = migrate(
        a,
        Hosted(src.with_record(depot.record_of(src).name), depot.secrets[src.key]),
        Hosted(
            dst.with_record(world.record_of(dst).name), world.secrets.get(dst.key, HostSecrets())
        ),
        world.zone,
        (E - 1, E),
        rng,
        descriptor=world.descriptor.id,
        policy_ref=world.body().policy_ref,
    )
    view = ZoneView(
        world.zone, world.authority_set, peer_authorities=(public_key(depot.authority[0]),)
    )
    view.add_descriptor(world.signed["descriptor"])
    view.add_contract(world.signed["contract"])
    for h in [*world.hosts, *world.validators]:
        view.admit_host(world.record_of(h))
    for h in depot.hosts:
        view.admit_peer_host(depot.record_of(h))
    alone = judge(world, admitted.agent, None, view)
    assert alone.code == "permit", alone.reason
    d = judge(world, admitted.agent, seal.agent, view)
    assert (d.wire, d.code) == (WireVerdict.ACCEPT, "permit"), d.reason


def test_a_handoff_within_the_zone_is_accepted(world: World) -> None:
    rng = random.Random(36)
    a = spawn(world, 37, mutable=("memory",))
    src, dst = world.hosts[0], world.hosts[1]
    seal, moved = migrate(
        a,
        Hosted(src.with_record(world.record_of(src).name), world.secrets[src.key]),
        Hosted(
            dst.with_record(world.record_of(dst).name), world.secrets.get(dst.key, HostSecrets())
        ),
        world.zone,
        (E, E),
        rng,
    )
    assert judge(world, seal.agent, a).code == "in-transit"
    assert judge(world, moved.agent, seal.agent).code == "permit"


def test_a_delegated_child_is_judged_by_its_grant_not_its_parent(world: World) -> None:
    from protocols.agent.lineage import entry_hash
    from protocols.agent.schema import DelegationPathway
    from protocols.governance.delegation import grant_event, make_grant
    from protocols.governance.signing import Signed

    rng = random.Random(38)
    limits = PropagationLimits(max_migrations=3, max_zones=3, max_delegation_depth=2)
    pathway = DelegationPathway(role="scout", verbs=("note",), max_depth=1)
    parent = world.spawn(world.body(limits=limits, delegation=(pathway,)), 0, E, rng)
    h = world.hosts[0]
    grant = make_grant(
        parent, "scout", ("note",), ("memory",), h.with_record(world.record_of(h).name)
    )
    assert isinstance(grant, Signed)
    body = world.body(role="scout", limits=limits)
    assert body.memory is not None
    body = replace(body, memory=replace(body.memory, ledger=(grant_event(grant, E),)))
    assert parent.lineage is not None
    child = world.spawn(body, 1, E, rng, link=entry_hash(parent.lineage.entries[-1]), delegation=1)
    # the child's own slope starts at its genesis: the parent is never its predecessor
    assert judge(world, child, parent).code == "permit"
    grown = step(world, child, 39, memory=noted(child, "x").memory)
    assert judge(world, grown, child).code == "permit"
