"""Scoped quorum (SPEC 2.7, DESIGN 5): sets, votes, k-1, outsiders, TIMEOUT, health, modes."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from protocols.governance.quorum import (
    HealthMonitor,
    MetaDecision,
    Outcome,
    VoteLedger,
    VoteRefused,
    find_conflicts,
    min_k,
    new_proposal,
    settle,
    tally,
    validator_set,
    verify_certificate,
)
from protocols.governance.signing import Authority, public_key, signing_key
from protocols.governance.zone import LOCAL, QuorumParams, ZoneDescriptor


def _key(name: str):  # type: ignore[no-untyped-def]
    return signing_key(hashlib.sha256(name.encode()).digest())


VALIDATORS = {public_key(k): k for k in (_key(f"val{i}") for i in range(8))}
META = [_key("meta0"), _key("meta1")]
DESC = ZoneDescriptor(
    zone="fleet",
    version=1,
    activation_epoch=0,
    contracts=(),
    validators=tuple(sorted(VALIDATORS)),
    meta_authority=Authority.of([public_key(k) for k in META], threshold=2),
    quorum=QuorumParams(n=5, k_min=4, health_ceiling=5),
)
GENESIS = hashlib.sha256(b"genesis-dah").digest()
SUBJECT_A = hashlib.sha256(b"A").digest()
SUBJECT_B = hashlib.sha256(b"B").digest()


def _votes(proposal, voters, approve=True, epoch=10):  # type: ignore[no-untyped-def]
    out = []
    for pub in voters:
        v = VoteLedger().cast(VALIDATORS[pub], proposal, epoch, approve)
        assert not isinstance(v, VoteRefused)
        out.append(v)
    return out


def test_validator_set_is_reproducible_and_sized_n() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    first = validator_set(DESC, p.scope, p.g0)
    rebuilt = ZoneDescriptor.from_cbor(DESC.to_cbor())
    assert len(first) == 5
    assert validator_set(rebuilt, p.scope, p.g0) == first
    other = new_proposal(DESC, hashlib.sha256(b"other").digest(), 3, SUBJECT_A, 10)
    assert validator_set(DESC, other.scope, other.g0) != first


def test_k_minus_one_approvals_refuse_and_k_certify_with_exactly_the_approvers() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    vset = validator_set(DESC, p.scope, p.g0)
    k = min_k(5, DESC.quorum)
    assert k == 4
    short = tally(DESC, p, _votes(p, vset[: k - 1]) + _votes(p, vset[k - 1 :], False), 10)
    assert short.outcome is Outcome.REFUSED
    assert short.certificate is None
    assert short.record["outcome"] == "REFUSED"
    done = tally(DESC, p, _votes(p, vset[:k]), 10)
    assert done.outcome is Outcome.CERTIFIED
    assert done.certificate is not None
    assert [key for key, _ in done.certificate.approvals] == sorted(vset[:k])
    assert done.certificate.generation == p.g0
    assert verify_certificate(done.certificate, DESC, p.scope, SUBJECT_A).ok


def test_votes_from_outside_the_set_are_ignored() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    vset = validator_set(DESC, p.scope, p.g0)
    outsiders = [k for k in sorted(VALIDATORS) if k not in vset]
    result = tally(DESC, p, _votes(p, vset[:3]) + _votes(p, outsiders), 10)
    assert result.outcome is Outcome.PENDING
    assert {why for _, why in result.excluded} == {"not-in-validator-set"}
    assert len(result.excluded) == len(outsiders)


def test_timeout_is_its_own_outcome_and_late_votes_are_void() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    vset = validator_set(DESC, p.scope, p.g0)
    result = tally(DESC, p, _votes(p, vset[:2]), p.deadline + 1)
    assert result.outcome is Outcome.TIMEOUT
    assert result.escalates
    assert result.record["outcome"] == "TIMEOUT"
    late = VoteLedger().cast(VALIDATORS[vset[0]], p, p.deadline + 1)
    assert late is VoteRefused.AFTER_DEADLINE


def test_two_conflicting_proposals_for_one_scope_never_both_certify() -> None:
    a = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    b = new_proposal(DESC, GENESIS, 3, SUBJECT_B, 10)
    vset = validator_set(DESC, a.scope, a.g0)
    ledgers = {pub: VoteLedger() for pub in vset}
    votes_a, votes_b = [], []
    for i, pub in enumerate(vset):
        first, second = (a, b) if i % 2 == 0 else (b, a)
        v1 = ledgers[pub].cast(VALIDATORS[pub], first, 10)
        restored = VoteLedger.from_cbor(ledgers[pub].to_cbor())
        v2 = restored.cast(VALIDATORS[pub], second, 10)
        assert v2 is VoteRefused.ALREADY_VOTED
        (votes_a if first is a else votes_b).append(v1)
    ta, tb = tally(DESC, a, votes_a, 10), tally(DESC, b, votes_b, 10)
    assert not (ta.outcome is Outcome.CERTIFIED and tb.outcome is Outcome.CERTIFIED)


def test_degraded_health_raises_k_up_to_the_ceiling_with_a_transition_record() -> None:
    params = QuorumParams(n=7, k_min=5, health_ceiling=6)
    monitor = HealthMonitor(7, params)
    assert monitor.k == 5
    t1 = monitor.observe(1, epoch=4)
    assert t1 is not None
    assert (t1.from_k, t1.to_k) == (5, 6)
    assert monitor.observe(3, epoch=5) is None
    assert monitor.k == 6
    t2 = monitor.observe(0, epoch=6)
    assert t2 is not None
    assert t2.to_k == 5
    assert len(monitor.transitions) == 2


def test_certificate_checks_recompute_numbers_and_signatures() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    vset = validator_set(DESC, p.scope, p.g0)
    cert = tally(DESC, p, _votes(p, vset), 10).certificate
    assert cert is not None
    assert not verify_certificate(replace(cert, n=3), DESC, p.scope, SUBJECT_A).ok
    assert not verify_certificate(cert, DESC, p.scope, SUBJECT_B).ok
    fewer = replace(cert, approvals=cert.approvals[:3], k=3)
    assert not verify_certificate(fewer, DESC, p.scope, SUBJECT_A).ok
    forged = replace(cert, approvals=((cert.approvals[0][0], bytes(64)), *cert.approvals[1:]))
    assert not verify_certificate(forged, DESC, p.scope, SUBJECT_A).ok


def test_local_mode_certificates_and_conflicts_at_heal() -> None:
    local = replace(
        DESC, quorum=QuorumParams(mode=LOCAL, n=5, k_min=3, local_min=3, health_ceiling=5)
    )
    keys = sorted(VALIDATORS)
    side1, side2 = keys[:4], keys[4:]
    a = new_proposal(local, GENESIS, 3, SUBJECT_A, 10)
    b = new_proposal(local, GENESIS, 3, SUBJECT_B, 10)
    ta = tally(local, a, _votes(a, side1), 10, reached=side1)
    tb = tally(local, b, _votes(b, side2), 10, reached=side2)
    assert ta.outcome is Outcome.CERTIFIED
    assert tb.outcome is Outcome.CERTIFIED
    assert ta.certificate is not None
    assert tb.certificate is not None
    assert ta.certificate.mode == LOCAL
    assert verify_certificate(ta.certificate, local, a.scope, SUBJECT_A).ok
    assert not verify_certificate(ta.certificate, DESC, a.scope, SUBJECT_A).ok
    conflicts = find_conflicts([ta.certificate, tb.certificate])
    assert len(conflicts) == 1
    assert conflicts[0].subjects == tuple(sorted((SUBJECT_A, SUBJECT_B)))
    tiny = tally(local, a, _votes(a, keys[:2]), 10, reached=keys[:2])
    assert tiny.outcome is Outcome.REFUSED


def test_escalation_is_settled_only_by_a_signed_meta_decision() -> None:
    p = new_proposal(DESC, GENESIS, 3, SUBJECT_A, 10)
    decision = MetaDecision("fleet", p.scope, SUBJECT_A, 20)
    assert settle(decision.sign(*META), DESC, p.scope) == decision
    assert settle(decision.sign(META[0]), DESC, p.scope) is None
    assert settle(decision.sign(_key("x"), _key("y")), DESC, p.scope) is None
