"""Scoped quorum validation (DESIGN 5 "Quorum", SPEC 2.7): votes, tallies, certificates.

Global mode (consistency first): the scope of a proposal is ``H(zone || genesis DAH)``; the
validator set is the first n eligible keys sorted by ``H(zone || g0 || scope || key)``; each
validator signs at most one proposal per scope (its :class:`VoteLedger` is durable) before a
deadline epoch; k >= max(ceil(2n/3), k_min) > n/2, so two proposals never both certify. A
scope without a certificate by its deadline is TIMEOUT and escalates to a signed
:class:`MetaDecision`.

Local mode (availability first): validators are the eligible hosts the proposer reached (at
least ``local_min``); certificates are marked local; :func:`find_conflicts` detects two local
certificates for one scope when partitions heal, and those escalate.

Verifiers recompute the set, n and the minimum k from the descriptor; a k raised for degraded
health is stated in the certificate and is only ever added to, never trusted to lower.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import nacl.signing

from protocols import codec
from protocols.errors import SchemaError
from protocols.governance.signing import (
    KEY_LEN,
    SIG_LEN,
    TAG_META_DECISION,
    TAG_VOTE,
    Signed,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    make_signed,
    message,
    public_key,
    sign,
    verify_raw,
)
from protocols.governance.zone import GLOBAL, LOCAL, QuorumParams, ZoneDescriptor

_SCOPE_TAG: Final = b"meshnode/quorum-scope/1\x00"
_RANK_TAG: Final = b"meshnode/validator-rank/1\x00"


def scope_of(zone: str, genesis_dah: bytes) -> bytes:
    """``H(zone || genesis DAH)``: the scope every proposal about that agent shares."""
    return hashlib.sha256(_SCOPE_TAG + codec.encode([zone, genesis_dah])).digest()


def generation(epoch: int, params: QuorumParams) -> int:
    """Rotation generation of an epoch; g0 of a scope is that of its genesis epoch."""
    return epoch // params.rotation_epochs


def _rank(zone: str, g0: int, scope: bytes, key: bytes) -> bytes:
    return hashlib.sha256(_RANK_TAG + codec.encode([zone, g0, scope, key])).digest()


def validator_set(desc: ZoneDescriptor, scope: bytes, g0: int) -> tuple[bytes, ...]:
    """The first n eligible keys by ``H(zone || g0 || scope || key)``: anyone recomputes it."""
    ranked = sorted(desc.validators, key=lambda k: (_rank(desc.zone, g0, scope, k), k))
    return tuple(ranked[: min(desc.quorum.n, len(ranked))])


def min_k(n: int, params: QuorumParams) -> int:
    """max(ceil(2n/3), k_min) capped at n: always more than n/2."""
    return min(n, max(-(-2 * n // 3), params.k_min))


def raised_k(n: int, params: QuorumParams, degraded: int) -> int:
    """k raised by ``degraded`` health steps, never above the ceiling (nor below min_k)."""
    base = min_k(n, params)
    ceiling = max(base, min(n, params.health_ceiling))
    return min(ceiling, base + max(0, degraded))


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """A recorded change of the required k (SPEC 2.7 health-triggered adjustment)."""

    epoch: int
    degraded: int
    from_k: int
    to_k: int


class HealthMonitor:
    """Tracks the health level; every change of k yields one :class:`HealthTransition`."""

    def __init__(self, n: int, params: QuorumParams) -> None:
        self.n = n
        self.params = params
        self.degraded = 0
        self.k = min_k(n, params)
        self.transitions: list[HealthTransition] = []

    def observe(self, degraded: int, epoch: int) -> HealthTransition | None:
        new_k = raised_k(self.n, self.params, degraded)
        self.degraded = degraded
        if new_k == self.k:
            return None
        record = HealthTransition(epoch, degraded, self.k, new_k)
        self.k = new_k
        self.transitions.append(record)
        return record


@dataclass(frozen=True, slots=True)
class Proposal:
    """What validators sign: zone, scope, g0, the proposal hash, mode, deadline epoch."""

    zone: str
    scope: bytes
    g0: int
    subject: bytes
    """sha256 of the proposed change (e.g. the new state digest and its prev entry)."""
    mode: str
    deadline: int

    def vote_body(self, voter: bytes, approve: bool) -> dict[str, Any]:
        return {
            "g0": self.g0,
            "mode": self.mode,
            "zone": self.zone,
            "scope": self.scope,
            "voter": voter,
            "approve": approve,
            "subject": self.subject,
            "deadline": self.deadline,
        }

    def to_cbor(self) -> dict[str, Any]:
        return {
            "g0": self.g0,
            "mode": self.mode,
            "zone": self.zone,
            "scope": self.scope,
            "subject": self.subject,
            "deadline": self.deadline,
        }

    @classmethod
    def from_cbor(cls, tree: Any, path: str) -> Proposal:
        m = expect_map(tree, path, ("g0", "mode", "zone", "scope", "subject", "deadline"))
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            scope=expect_bytes(m["scope"], f"{path}.scope", 32),
            g0=expect_int(m["g0"], f"{path}.g0"),
            subject=expect_bytes(m["subject"], f"{path}.subject", 32),
            mode=expect_text(m["mode"], f"{path}.mode"),
            deadline=expect_int(m["deadline"], f"{path}.deadline"),
        )


def new_proposal(
    desc: ZoneDescriptor, genesis_dah: bytes, genesis_epoch: int, subject: bytes, epoch: int
) -> Proposal:
    """A proposal made at ``epoch`` under ``desc``; its deadline is epoch + vote timeout."""
    return Proposal(
        zone=desc.zone,
        scope=scope_of(desc.zone, genesis_dah),
        g0=generation(genesis_epoch, desc.quorum),
        subject=subject,
        mode=desc.quorum.mode,
        deadline=epoch + desc.quorum.vote_timeout_epochs,
    )


@dataclass(frozen=True, slots=True)
class Vote:
    """One validator's signed approval or refusal of a proposal."""

    voter: bytes
    approve: bool
    signature: bytes

    def valid_for(self, proposal: Proposal) -> bool:
        body = proposal.vote_body(self.voter, self.approve)
        return verify_raw(self.voter, message(TAG_VOTE, body), self.signature)


class VoteRefused(enum.Enum):
    AFTER_DEADLINE = "after-deadline"
    ALREADY_VOTED = "already-voted-other-proposal"
    NOT_IN_SET = "not-in-validator-set"


@dataclass
class VoteLedger:
    """A validator's durable record: the one proposal it signed per scope (global mode)."""

    voted: dict[bytes, bytes] = field(default_factory=dict)

    def cast(
        self,
        key: nacl.signing.SigningKey,
        proposal: Proposal,
        epoch: int,
        approve: bool = True,
        eligible: Sequence[bytes] | None = None,
    ) -> Vote | VoteRefused:
        """Sign once per scope, before the deadline, only when in the set (if given)."""
        voter = public_key(key)
        if eligible is not None and voter not in eligible:
            return VoteRefused.NOT_IN_SET
        if epoch > proposal.deadline:
            return VoteRefused.AFTER_DEADLINE
        earlier = self.voted.get(proposal.scope)
        if earlier is not None and earlier != proposal.subject:
            return VoteRefused.ALREADY_VOTED
        self.voted[proposal.scope] = proposal.subject
        body = proposal.vote_body(voter, approve)
        return Vote(voter, approve, sign(key, TAG_VOTE, body))

    def to_cbor(self) -> dict[str, Any]:
        """Durable form (the node writes it before sending a vote)."""
        return {"voted": [[scope, self.voted[scope]] for scope in sorted(self.voted)]}

    @classmethod
    def from_cbor(cls, tree: Any) -> VoteLedger:
        m = expect_map(tree, "ledger", ("voted",))
        voted: dict[bytes, bytes] = {}
        for i, pair in enumerate(expect_list(m["voted"], "ledger.voted", 1 << 20)):
            items = expect_list(pair, f"ledger.voted[{i}]", 2)
            if len(items) != 2:
                raise SchemaError("expected [scope, subject]", path=f"ledger.voted[{i}]")
            voted[expect_bytes(items[0], f"ledger.voted[{i}][0]", 32)] = expect_bytes(
                items[1], f"ledger.voted[{i}][1]", 32
            )
        return cls(voted)


class Outcome(enum.Enum):
    CERTIFIED = "CERTIFIED"
    PENDING = "PENDING"
    REFUSED = "REFUSED"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True, slots=True)
class QuorumCertificate:
    """Mode, n, k, generation, the proposal and exactly the approvers' signatures."""

    proposal: Proposal
    n: int
    k: int
    approvals: tuple[tuple[bytes, bytes], ...]
    reached: tuple[bytes, ...] = ()
    """Local mode only: the eligible validators the proposer reached (sorted)."""

    @property
    def mode(self) -> str:
        return self.proposal.mode

    @property
    def generation(self) -> int:
        return self.proposal.g0

    def to_cbor(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "reached": list(self.reached),
            "proposal": self.proposal.to_cbor(),
            "approvals": [{"key": k, "sig": s} for k, s in self.approvals],
        }

    @property
    def digest(self) -> bytes:
        return codec.content_id(codec.encode(self.to_cbor()))

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "qc") -> QuorumCertificate:
        m = expect_map(tree, path, ("k", "n", "reached", "proposal", "approvals"))
        approvals = []
        for i, a in enumerate(expect_list(m["approvals"], f"{path}.approvals", 64)):
            item = expect_map(a, f"{path}.approvals[{i}]", ("key", "sig"))
            approvals.append(
                (
                    expect_bytes(item["key"], f"{path}.approvals[{i}].key", KEY_LEN),
                    expect_bytes(item["sig"], f"{path}.approvals[{i}].sig", SIG_LEN),
                )
            )
        return cls(
            proposal=Proposal.from_cbor(m["proposal"], f"{path}.proposal"),
            n=expect_int(m["n"], f"{path}.n"),
            k=expect_int(m["k"], f"{path}.k"),
            approvals=tuple(approvals),
            reached=tuple(
                expect_bytes(r, f"{path}.reached[{i}]", KEY_LEN)
                for i, r in enumerate(expect_list(m["reached"], f"{path}.reached", 64))
            ),
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """Result of counting votes: outcome, certificate if any, and what was left out and why."""

    outcome: Outcome
    certificate: QuorumCertificate | None
    approvals: int
    refusals: int
    excluded: tuple[tuple[bytes, str], ...]
    record: dict[str, Any]
    """The lineage/audit record of this outcome (accepted, refused or timed out)."""

    @property
    def escalates(self) -> bool:
        """No certificate by the deadline: only a signed meta-authority decision settles it."""
        return self.outcome is Outcome.TIMEOUT


def _voters(
    desc: ZoneDescriptor, proposal: Proposal, reached: Sequence[bytes]
) -> tuple[bytes, ...]:
    if proposal.mode == LOCAL:
        return tuple(sorted(k for k in set(reached) if k in desc.validators))
    return validator_set(desc, proposal.scope, proposal.g0)


def tally(
    desc: ZoneDescriptor,
    proposal: Proposal,
    votes: Iterable[Vote],
    epoch: int,
    degraded: int = 0,
    reached: Sequence[bytes] = (),
) -> Tally:
    """Count valid votes from the set; k-1 approvals never certify; after the deadline, TIMEOUT.

    Votes from outside the set, with bad signatures, or duplicated are excluded and named.
    """
    voters = _voters(desc, proposal, reached)
    n = len(voters)
    k = raised_k(n, desc.quorum, degraded)
    if proposal.mode == LOCAL:
        k = max(k, min(n, desc.quorum.local_min))
    members = set(voters)
    seen: dict[bytes, Vote] = {}
    excluded: list[tuple[bytes, str]] = []
    for vote in sorted(votes, key=lambda v: (v.voter, v.approve, v.signature)):
        if vote.voter not in members:
            excluded.append((vote.voter, "not-in-validator-set"))
        elif vote.voter in seen:
            excluded.append((vote.voter, "duplicate"))
        elif not vote.valid_for(proposal):
            excluded.append((vote.voter, "bad-signature"))
        else:
            seen[vote.voter] = vote
    yes = sorted((v.voter, v.signature) for v in seen.values() if v.approve)
    no = sum(1 for v in seen.values() if not v.approve)
    too_few = proposal.mode == LOCAL and n < desc.quorum.local_min
    cert = None
    if too_few:
        outcome = Outcome.REFUSED
    elif len(yes) >= k and epoch <= proposal.deadline:
        outcome = Outcome.CERTIFIED
        cert = QuorumCertificate(
            proposal, n, k, tuple(yes), tuple(voters) if proposal.mode == LOCAL else ()
        )
    elif no > n - k:
        outcome = Outcome.REFUSED
    elif epoch > proposal.deadline:
        outcome = Outcome.TIMEOUT
    else:
        outcome = Outcome.PENDING
    record = {
        "type": "quorum",
        "outcome": outcome.value,
        "scope": proposal.scope.hex(),
        "subject": proposal.subject.hex(),
        "mode": proposal.mode,
        "generation": proposal.g0,
        "n": n,
        "k": k,
        "approvals": len(yes),
        "refusals": no,
        "excluded": len(excluded),
        "epoch": epoch,
    }
    return Tally(outcome, cert, len(yes), no, tuple(excluded), record)


@dataclass(frozen=True, slots=True)
class CertCheck:
    ok: bool
    reason: str


def verify_certificate(
    cert: QuorumCertificate, desc: ZoneDescriptor, scope: bytes, subject: bytes
) -> CertCheck:
    """Recompute the set, n and minimum k from ``desc``; check every approval signature."""
    p = cert.proposal
    if p.zone != desc.zone or p.scope != scope or p.subject != subject:
        return CertCheck(False, "certificate is for another zone, scope or proposal")
    if p.mode not in (GLOBAL, LOCAL):
        return CertCheck(False, f"unknown quorum mode {p.mode!r}")
    if p.mode == LOCAL:
        if desc.quorum.mode != LOCAL:
            return CertCheck(False, "local certificate in a zone that requires global quorum")
        voters = tuple(sorted(k for k in set(cert.reached) if k in desc.validators))
        if len(voters) < desc.quorum.local_min:
            return CertCheck(False, f"local certificate reached fewer than {desc.quorum.local_min}")
        need = max(min_k(len(voters), desc.quorum), desc.quorum.local_min)
    else:
        voters = validator_set(desc, p.scope, p.g0)
        need = min_k(len(voters), desc.quorum)
    n = len(voters)
    if cert.n != n:
        return CertCheck(False, f"certificate states n={cert.n}, the descriptor gives {n}")
    need = max(need, min(cert.k, raised_k(n, desc.quorum, n)))
    members = set(voters)
    keys = [k for k, _ in cert.approvals]
    if keys != sorted(set(keys)):
        return CertCheck(False, "approvals must be sorted and distinct")
    for key, sig in cert.approvals:
        if key not in members:
            return CertCheck(False, f"approval from {key.hex()[:12]} outside the validator set")
        if not verify_raw(key, message(TAG_VOTE, p.vote_body(key, True)), sig):
            return CertCheck(False, f"approval from {key.hex()[:12]} does not verify")
    if len(keys) < need:
        return CertCheck(False, f"{len(keys)} approvals, {need} required")
    return CertCheck(True, f"{len(keys)} of {n} approvals, k={need}")


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two certificates for one scope with different subjects: escalate (local mode heal)."""

    scope: bytes
    subjects: tuple[bytes, ...]


def find_conflicts(certs: Iterable[QuorumCertificate]) -> tuple[Conflict, ...]:
    by_scope: dict[bytes, set[bytes]] = {}
    for cert in certs:
        by_scope.setdefault(cert.proposal.scope, set()).add(cert.proposal.subject)
    return tuple(
        Conflict(scope, tuple(sorted(subjects)))
        for scope, subjects in sorted(by_scope.items())
        if len(subjects) > 1
    )


@dataclass(frozen=True, slots=True)
class MetaDecision:
    """The meta-authority's settlement of an escalated scope: one subject wins, or none."""

    zone: str
    scope: bytes
    subject: bytes
    """Winning proposal hash; empty bytes means every proposal for the scope is refused."""
    epoch: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "epoch": self.epoch,
            "scope": self.scope,
            "subject": self.subject,
        }

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_META_DECISION, self.to_cbor(), *keys)


def settle(signed: Signed, desc: ZoneDescriptor, scope: bytes) -> MetaDecision | None:
    """The decision if it is for this zone and scope and signed by the meta-authority."""
    if signed.tag != TAG_META_DECISION or not signed.authorised_by(desc.meta_authority):
        return None
    m = expect_map(signed.body, "body", ("zone", "epoch", "scope", "subject"))
    decision = MetaDecision(
        zone=expect_text(m["zone"], "body.zone"),
        scope=expect_bytes(m["scope"], "body.scope", 32),
        subject=expect_bytes(m["subject"], "body.subject"),
        epoch=expect_int(m["epoch"], "body.epoch"),
    )
    if decision.zone != desc.zone or decision.scope != scope:
        return None
    return decision


__all__ = [
    "CertCheck",
    "Conflict",
    "HealthMonitor",
    "HealthTransition",
    "MetaDecision",
    "Outcome",
    "Proposal",
    "QuorumCertificate",
    "Tally",
    "Vote",
    "VoteLedger",
    "VoteRefused",
    "find_conflicts",
    "generation",
    "min_k",
    "new_proposal",
    "raised_k",
    "scope_of",
    "settle",
    "tally",
    "validator_set",
    "verify_certificate",
]
