"""Memory-derived eligibility (SPEC 2.18): remediation, windows, negative authority, rollback."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from protocols.governance.eligibility import (
    ANY,
    EligibilityError,
    EligibilityMemory,
    EligibilityParams,
    Grant,
    GrantRevocation,
    GrantSet,
    Kind,
    Problem,
    Verdict,
    eligible,
    record_audit,
    record_quarantine,
    related,
)
from protocols.governance.pipeline import AuditRecord
from protocols.governance.quarantine import Event, QuarantineRecord
from protocols.governance.signing import Authority, public_key

AUTH = SigningKey(b"\x01" * 32)
OTHER = SigningKey(b"\x02" * 32)
AUTHORITY = Authority.of([public_key(AUTH)])
ZONE = "fleet"
A = b"\xaa" * 32
B = b"\xbb" * 32


def _grant(version: int = 1, nb: int = 10, na: int = 20, **kw: object) -> Grant:
    fields: dict[str, object] = dict(
        zone=ZONE,
        name="claims",
        version=version,
        subject=b"",
        actions=("claim:*",),
        not_before=nb,
        not_after=na,
    )
    fields.update(kw)
    return Grant(**fields)  # type: ignore[arg-type]


def _world(*grants: Grant) -> tuple[EligibilityMemory, GrantSet]:
    memory = EligibilityMemory()
    gs = GrantSet(ZONE, AUTHORITY, memory)
    for g in grants:
        gs.add_grant(g.sign(AUTH), 0)
    return memory, gs


def _verdict(memory: EligibilityMemory, gs: GrantSet, action: str, epoch: int) -> Verdict:
    return eligible(memory, gs, A, action, epoch).verdict


def test_not_before_and_not_after_bound_a_grant_inclusively() -> None:
    memory, gs = _world(_grant())
    assert _verdict(memory, gs, "claim:create", 9) is Verdict.NOT_YET_VALID
    assert _verdict(memory, gs, "claim:create", 10) is Verdict.ELIGIBLE
    assert _verdict(memory, gs, "claim:close", 20) is Verdict.ELIGIBLE
    assert _verdict(memory, gs, "claim:create", 21) is Verdict.EXPIRED
    assert _verdict(memory, gs, "note:write", 15) is Verdict.NO_GRANT
    mine = _grant(name="mine", subject=B, actions=("note:write",))
    gs.add_grant(mine.sign(AUTH), 0)
    assert _verdict(memory, gs, "note:write", 15) is Verdict.NO_GRANT  # granted to B only
    assert eligible(memory, gs, B, "note:write", 15).allowed


def test_unsigned_and_foreign_grants_are_refused() -> None:
    _, gs = _world()
    with pytest.raises(EligibilityError) as exc:
        gs.add_grant(_grant().sign(OTHER), 0)
    assert exc.value.problem is Problem.UNSIGNED
    with pytest.raises(EligibilityError) as exc:
        gs.add_grant(_grant(zone="elsewhere").sign(AUTH), 0)
    assert exc.value.problem is Problem.FOREIGN
    with pytest.raises(EligibilityError) as exc:
        gs.add_revocation(_grant().sign(AUTH), 0)
    assert exc.value.problem is Problem.FOREIGN


def test_grants_cannot_be_rolled_back() -> None:
    memory, gs = _world(_grant(version=1, nb=0, na=100))
    gs.add_grant(_grant(version=2, nb=0, na=5).sign(AUTH), 1)
    assert _verdict(memory, gs, "claim:create", 6) is Verdict.EXPIRED  # only v2 counts
    with pytest.raises(EligibilityError) as exc:
        gs.add_grant(_grant(version=1, nb=0, na=100).sign(AUTH), 2)
    assert exc.value.problem is Problem.ROLLBACK
    with pytest.raises(EligibilityError) as exc:
        gs.add_grant(_grant(version=2, nb=0, na=99).sign(AUTH), 2)
    assert exc.value.problem is Problem.CONFLICT
    assert gs.add_grant(_grant(version=2, nb=0, na=5).sign(AUTH), 2).version == 2  # idempotent


def test_revocation_is_negative_authority_and_wins() -> None:
    memory, gs = _world(_grant(nb=0, na=100))
    rev = GrantRevocation(zone=ZONE, name="claims", version=1, subject=b"", from_epoch=30)
    gs.add_revocation(rev.sign(AUTH), 25)
    assert _verdict(memory, gs, "claim:create", 29) is Verdict.ELIGIBLE
    assert _verdict(memory, gs, "claim:create", 30) is Verdict.REVOKED
    assert memory.records[-1].kind is Kind.REVOCATION
    gs.add_grant(_grant(version=2, nb=0, na=100).sign(AUTH), 31)
    assert _verdict(memory, gs, "claim:create", 31) is Verdict.ELIGIBLE  # v2 is not revoked
    only_b = GrantRevocation(zone=ZONE, name="claims", version=2, subject=B, from_epoch=0)
    gs.add_revocation(only_b.sign(AUTH), 32)
    assert _verdict(memory, gs, "claim:create", 32) is Verdict.ELIGIBLE
    assert eligible(memory, gs, B, "claim:create", 32).verdict is Verdict.REVOKED


def test_a_denial_needing_remediation_blocks_related_actions_until_remediated() -> None:
    memory, gs = _world(_grant(nb=0, na=100, actions=("claim:*", "note:*")))
    denial = memory.append(Kind.DENIAL, A, "claim:create", 5, remediation=True, reason="over quota")
    assert _verdict(memory, gs, "claim:create", 6) is Verdict.REMEDIATION_PENDING
    assert _verdict(memory, gs, "claim:close", 6) is Verdict.REMEDIATION_PENDING
    assert _verdict(memory, gs, "note:write", 6) is Verdict.ELIGIBLE  # unrelated family
    assert eligible(memory, gs, B, "claim:close", 6).allowed  # another subject
    memory.append(Kind.PERMIT, A, "claim:create", 7)  # a permit is not a remediation
    assert _verdict(memory, gs, "claim:close", 7) is Verdict.REMEDIATION_PENDING
    memory.remediate(denial, 8, "quota raised")
    assert _verdict(memory, gs, "claim:close", 8) is Verdict.ELIGIBLE
    memory.append(Kind.DENIAL, A, "claim:create", 9, reason="plain denial")
    assert _verdict(memory, gs, "claim:close", 9) is Verdict.ELIGIBLE  # no remediation needed
    with pytest.raises(EligibilityError) as exc:
        memory.append(Kind.REMEDIATION, A, "claim:create", 9, ref=b"\x00" * 32)
    assert exc.value.problem is Problem.UNKNOWN_DENIAL


def test_quarantine_blocks_until_released() -> None:
    memory, gs = _world(_grant(nb=0, na=100))
    held = QuarantineRecord(Event.HELD, b"k" * 32, 3, "policy-quarantine")
    record_quarantine(memory, held, A)
    assert _verdict(memory, gs, "claim:create", 4) is Verdict.QUARANTINED
    refused = QuarantineRecord(Event.REFUSED_QUOTA, b"k" * 32, 4, "quota")
    assert record_quarantine(memory, refused, A) is None
    released = QuarantineRecord(Event.RELEASED_OVERRIDE, b"k" * 32, 5, "override 00")
    assert record_quarantine(memory, released, A) is not None
    assert memory.records[-1].kind is Kind.OVERRIDE
    assert _verdict(memory, gs, "claim:create", 5) is Verdict.ELIGIBLE


def test_repeated_freshness_failures_make_a_subject_stale_until_a_permit() -> None:
    memory, gs = _world(_grant(nb=0, na=100))
    for e in (1, 2):
        memory.append(Kind.FRESHNESS_FAILURE, A, "claim:create", e)
    assert _verdict(memory, gs, "claim:create", 3) is Verdict.ELIGIBLE
    memory.append(Kind.FRESHNESS_FAILURE, A, "claim:create", 3)
    assert _verdict(memory, gs, "claim:close", 3) is Verdict.STALE
    assert eligible(
        memory, gs, A, "claim:x", 3, EligibilityParams(max_freshness_failures=4)
    ).allowed
    memory.append(Kind.PERMIT, A, "claim:create", 4)
    assert _verdict(memory, gs, "claim:close", 4) is Verdict.ELIGIBLE


def _audit(code: str, wire: str, disposition: str, epoch: int = 5) -> AuditRecord:
    return AuditRecord(
        epoch=epoch,
        zone=ZONE,
        content_id=b"c" * 32,
        head=b"h" * 32,
        stage="policy",
        code=code,
        wire=wire,
        disposition=disposition,
        reason="why",
        rule="r",
    )


def test_admission_audit_records_become_memory() -> None:
    memory, _gs = _world(_grant(nb=0, na=100))
    cases = [
        (_audit("permit", "ACCEPT", "STORE"), Kind.PERMIT, False),
        (_audit("policy-quarantine", "ACCEPT", "QUARANTINE"), Kind.QUARANTINE, False),
        (_audit("stale-head", "IGNORE", "DROP"), Kind.FRESHNESS_FAILURE, False),
        (_audit("revoked-host", "IGNORE", "DROP"), Kind.REVOCATION, False),
        (_audit("bad-signature", "REJECT", "DROP"), Kind.DENIAL, False),
        (_audit("policy-deny", "REJECT", "DROP"), Kind.DENIAL, True),
    ]
    for audit, kind, remediation in cases:
        rec = record_audit(memory, audit, B, "claim:create")
        assert rec is not None
        assert (rec.kind, rec.remediation) == (kind, remediation)
    assert record_audit(memory, _audit("descriptor-unknown", "IGNORE", "DROP"), B, "x") is None
    # a host revocation remembered about the subject is negative authority until remediated
    memory2, gs2 = _world(_grant(nb=0, na=100))
    rev = record_audit(memory2, _audit("revoked-host", "IGNORE", "DROP"), A, ANY)
    assert rev is not None
    assert _verdict(memory2, gs2, "claim:create", 6) is Verdict.REVOKED
    memory2.remediate(rev, 7, "recovered onto an admitted host")
    assert _verdict(memory2, gs2, "claim:create", 7) is Verdict.ELIGIBLE


def test_memory_cannot_be_rolled_back_or_rewritten() -> None:
    memory = EligibilityMemory()
    for e in range(5):
        memory.append(Kind.PERMIT, A, "claim:create", e)
    head = memory.head
    assert EligibilityMemory.restore(memory.records, head).head == head
    with pytest.raises(EligibilityError) as exc:
        EligibilityMemory.restore(memory.records[:3], head)
    assert exc.value.problem is Problem.ROLLBACK
    forged = [
        *memory.records[:2],
        replace(memory.records[2], kind=Kind.DENIAL),
        *memory.records[3:],
    ]
    with pytest.raises(EligibilityError) as exc:
        EligibilityMemory.restore(forged, None)
    assert exc.value.problem is Problem.BAD_CHAIN
    other = EligibilityMemory()
    for e in range(5):
        other.append(Kind.DENIAL, A, "claim:create", e)
    with pytest.raises(EligibilityError) as exc:
        EligibilityMemory.restore(other.records, head)
    assert exc.value.problem is Problem.ROLLBACK
    with pytest.raises(EligibilityError) as exc:
        memory.append(Kind.PERMIT, A, "claim:create", 3)
    assert exc.value.problem is Problem.TIME_BACKWARDS


def test_relatedness_is_by_family() -> None:
    assert related("claim:create", "claim:close")
    assert not related("claim:create", "note:write")
    assert related(ANY, "note:write")
    assert related("claim", "claim:close")


ACTIONS = ["claim:create", "claim:close", "note:write", "echo:say"]
ops = st.lists(
    st.tuples(
        st.sampled_from([Kind.PERMIT, Kind.DENIAL, Kind.FRESHNESS_FAILURE, "remediate-last"]),
        st.sampled_from(ACTIONS),
        st.booleans(),
    ),
    max_size=25,
)


@settings(max_examples=80, deadline=None)
@given(ops, st.sampled_from(ACTIONS))
def test_an_unremediated_related_denial_is_never_eligible(
    history: list[tuple[object, str, bool]], action: str
) -> None:
    memory, gs = _world(_grant(nb=0, na=1000, actions=(ANY,)))
    pending: list[tuple[bytes, str]] = []
    for epoch, (op, act, needs) in enumerate(history):
        if op == "remediate-last":
            if pending:
                digest, _ = pending.pop()
                denial = memory.find(digest)
                assert denial is not None
                memory.remediate(denial, epoch, "fixed")
            continue
        assert isinstance(op, Kind)
        rec = memory.append(op, A, act, epoch, remediation=needs and op is Kind.DENIAL)
        if rec.remediation:
            pending.append((rec.digest, act))
    result = eligible(memory, gs, A, action, len(history))
    blocked = any(related(act, action) for _, act in pending)
    if blocked:
        assert result.verdict is Verdict.REMEDIATION_PENDING
    else:
        assert result.verdict in (Verdict.ELIGIBLE, Verdict.STALE)
    restored = EligibilityMemory.restore(memory.records, memory.head)
    assert eligible(restored, gs, A, action, len(history)) == result
