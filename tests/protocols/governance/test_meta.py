"""Meta-policy (SPEC 2.8): widening detection, scoped/expiring/revocable overrides."""

from __future__ import annotations

import random
from dataclasses import replace

from protocols.agent.schema import DelegationPathway, PropagationLimits
from protocols.governance.meta import (
    Action,
    Override,
    OverrideTable,
    revocation,
    widening,
    widening_between,
)
from protocols.governance.world import build_world
from protocols.governance.zone import Bounds

W = build_world()


def test_widening_against_zone_bounds_names_each_field() -> None:
    ok = W.spawn(W.body(), 0, 1, random.Random(1))
    assert widening(ok, Bounds()) == ()
    wide = W.spawn(
        W.body(
            mutable=("memory", "policy_ref"),
            limits=PropagationLimits(max_migrations=99, max_zones=4, max_delegation_depth=9),
            delegation=(DelegationPathway("x", ("note",), 9),),
        ),
        0,
        1,
        random.Random(2),
    )
    assert widening(wide, Bounds()) == (
        "delegation.max_depth",
        "limits.max_delegation_depth",
        "limits.max_migrations",
        "mutable",
    )


def test_self_widening_between_states_is_detected() -> None:
    before = W.body()
    assert before.mutation_descriptor is not None
    after = replace(
        before,
        mutation_descriptor=replace(before.mutation_descriptor, mutable=("intent", "memory")),
        policy_ref=(),
    )
    assert widening_between(before, after) == ("mutable", "policy_ref")
    assert widening_between(before, before) == ()


def test_overrides_are_scoped_expire_and_can_be_revoked() -> None:
    table = OverrideTable(W.zone)
    target = b"\x01" * 32
    signed = Override(W.zone, target, Action.RELEASE, 5, 10, "drill").sign(*W.meta)
    assert table.add(signed, W.descriptor) is not None
    assert table.find(target, 4, Action.RELEASE) is None
    assert table.find(target, 5, Action.RELEASE) is not None
    assert table.find(target, 10, Action.RELEASE) is None
    assert table.find(b"\x02" * 32, 6, Action.RELEASE) is None
    assert table.find(target, 6, Action.SUSPEND) is None
    assert table.revoke(revocation(W.zone, signed.id, *W.meta), W.descriptor)
    assert table.find(target, 6, Action.RELEASE) is None
    assert table.add(signed, W.descriptor) is None
    assert [r.event for r in table.records] == ["added", "revoked", "ignored"]


def test_foreign_or_unsigned_overrides_are_ignored_and_recorded() -> None:
    table = OverrideTable(W.zone)
    o = Override(W.zone, b"", Action.SUSPEND, 0, 10, "x")
    assert table.add(o.sign(*W.authority), W.descriptor) is None
    assert table.add(replace(o, zone="other").sign(*W.meta), W.descriptor) is None
    assert table.add(o.sign(), W.descriptor) is None
    assert [r.event for r in table.records] == ["ignored"] * 3
    assert table.all() == ()


def test_a_successor_widening_its_own_fields_against_the_trusted_state() -> None:
    """Widening the descriptor is refused by the mutation rule (REJECT); a role change the
    descriptor allows still escalates as self-widening."""
    from protocols.agent.schema import MutationClass
    from protocols.governance.pipeline import AdmitInput, Disposition, admit
    from protocols.identity import dah
    from protocols.types import WireVerdict

    rng = random.Random(5)
    before = W.spawn(W.body(mutable=("memory",)), 0, 9, rng)
    assert before.mutation_descriptor is not None
    wider_md = replace(before.mutation_descriptor, mutable=("intent", "memory"))
    after = W.step(
        before,
        dah.Change(cls=MutationClass.STATE_TRANSITION, mutation_descriptor=wider_md),
        10,
        rng,
    )
    view = W.view()
    unknown = admit(AdmitInput(W.envelope(after), view, 10, bytes(32)))
    assert unknown.code == "permit"
    known = admit(AdmitInput(W.envelope(after), view, 10, bytes(32), previous=before))
    assert (known.wire, known.code) == (WireVerdict.IGNORE, "mutation-not-permitted")
    assert "mutable" in known.reason
    same = W.step(before, dah.Change(cls=MutationClass.STATE_TRANSITION), 10, rng)
    assert (
        admit(AdmitInput(W.envelope(same), view, 10, bytes(32), previous=before)).code == "permit"
    )
    roles = W.spawn(W.body(mutable=("context.role", "memory")), 0, 9, rng)
    assert roles.context is not None
    promoted = W.step(
        roles,
        dah.Change(cls=MutationClass.STATE_TRANSITION, context=replace(roles.context, role="lead")),
        10,
        rng,
    )
    escalated = admit(AdmitInput(W.envelope(promoted), view, 10, bytes(32), previous=roles))
    assert (escalated.disposition, escalated.code) == (Disposition.ESCALATE, "self-widening")
    assert "context.role" in escalated.reason
