"""Memory-derived eligibility (SPEC 2.18 "cryptographic governance").

What a subject (an agent, by its quorum scope or genesis DAH) may do next follows from what
the node *remembers* about it, not only from the policy in force:

- :class:`EligibilityMemory` is an append-only, hash-chained log of permits, denials,
  freshness failures, revocations, overrides, quarantine and remediation. The chain gives
  anti-rollback: a restored log must extend the head the node last trusted.
- After a denial that required remediation, every *related* action (same family: the part
  of ``family:verb`` before the colon) stays disallowed until a remediation record names
  that denial.
- :class:`Grant` is positive authority signed by the zone authority, valid from
  ``not_before`` to ``not_after`` (both inclusive); :class:`GrantRevocation` is negative
  authority and always wins. Grants are versioned per name and a lower version than one
  already seen is refused (anti-rollback); only the latest version of a name counts.

This complements, and does not repeat, the admission pipeline (policy verdicts per agent),
:mod:`.quarantine` (the store) and :mod:`.meta` (overrides): :func:`record_audit` and
:func:`record_quarantine` turn their records into memory records. Pure and deterministic:
epochs are passed in; nothing is read from a clock.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import nacl.signing

from protocols import codec
from protocols.errors import PolicyError, SchemaError
from protocols.governance.quarantine import Event, QuarantineRecord
from protocols.governance.signing import (
    Authority,
    Signed,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    make_signed,
)

TAG_GRANT: Final = "meshnode/eligibility-grant/1"
TAG_GRANT_REVOCATION: Final = "meshnode/grant-revocation/1"
RECORD_TAG: Final = b"meshnode/eligibility-record/1\x00"
GENESIS: Final = bytes(32)
ANY: Final = "*"


class Kind(enum.Enum):
    """What a memory record remembers."""

    PERMIT = "permit"
    DENIAL = "denial"
    FRESHNESS_FAILURE = "freshness-failure"
    REVOCATION = "revocation"
    OVERRIDE = "override"
    QUARANTINE = "quarantine"
    REMEDIATION = "remediation"


class Problem(enum.Enum):
    """Why memory or a grant was refused."""

    ROLLBACK = "rollback"
    CONFLICT = "conflict"
    BAD_CHAIN = "bad-chain"
    TIME_BACKWARDS = "time-backwards"
    UNSIGNED = "unsigned"
    FOREIGN = "foreign"
    UNKNOWN_DENIAL = "unknown-denial"


class EligibilityError(PolicyError):
    """A refused memory update or grant, naming the problem."""

    def __init__(self, problem: Problem, message: str, *, path: str = "") -> None:
        self.problem = problem
        super().__init__(f"{problem.value}: {message}", path=path or "eligibility")


class Verdict(enum.Enum):
    """The answer for one (subject, action, epoch), in the order the checks run."""

    ELIGIBLE = "eligible"
    QUARANTINED = "quarantined"
    REMEDIATION_PENDING = "remediation-pending"
    STALE = "stale"
    REVOKED = "revoked"
    NO_GRANT = "no-grant"
    NOT_YET_VALID = "not-yet-valid"
    EXPIRED = "expired"


def family(action: str) -> str:
    """The family of ``family:verb`` (an action without a colon is its own family)."""
    return action.split(":", 1)[0]


def related(a: str, b: str) -> bool:
    """Actions are related when they share a family; ``*`` is related to everything."""
    return ANY in (a, b) or family(a) == family(b)


# -- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One remembered event, chained to the one before it by ``prev``."""

    seq: int
    kind: Kind
    subject: bytes
    action: str
    epoch: int
    ref: bytes = b""
    """What it concerns: a grant, override, audit content id, or (remediation) the denial."""
    remediation: bool = False
    """On a DENIAL: related actions stay disallowed until a REMEDIATION names this record."""
    reason: str = ""
    prev: bytes = GENESIS

    def to_cbor(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "seq": self.seq,
            "kind": self.kind.value,
            "prev": self.prev,
            "epoch": self.epoch,
            "action": self.action,
            "reason": self.reason,
            "subject": self.subject,
            "remediation": self.remediation,
        }

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(RECORD_TAG + codec.encode_ordered(self.to_cbor())).digest()


@dataclass(frozen=True, slots=True)
class EligibilityParams:
    """``max_freshness_failures``: failures since the last permit that make a subject STALE
    for related actions; ``remediation_codes``: audit codes whose denial needs remediation."""

    max_freshness_failures: int = 3
    remediation_codes: frozenset[str] = frozenset(
        {"policy-deny", "limits-exceeded", "cross-zone-unauthorised", "delegation-wider"}
    )

    def __post_init__(self) -> None:
        if self.max_freshness_failures < 1:
            raise SchemaError("max_freshness_failures must be >= 1", path="eligibility")


DEFAULT_PARAMS: Final = EligibilityParams()


@dataclass
class EligibilityMemory:
    """The node's append-only, hash-chained memory of what happened to each subject."""

    records: list[MemoryRecord] = field(default_factory=list)

    @property
    def head(self) -> tuple[int, bytes]:
        """(number of records, digest of the last): what a node persists to detect rollback."""
        return len(self.records), self.records[-1].digest if self.records else GENESIS

    def append(
        self,
        kind: Kind,
        subject: bytes,
        action: str,
        epoch: int,
        *,
        ref: bytes = b"",
        remediation: bool = False,
        reason: str = "",
    ) -> MemoryRecord:
        """Remember one event; epochs never go back (TIME_BACKWARDS otherwise)."""
        if self.records and epoch < self.records[-1].epoch:
            raise EligibilityError(
                Problem.TIME_BACKWARDS, f"epoch {epoch} is before {self.records[-1].epoch}"
            )
        if remediation and kind is not Kind.DENIAL:
            raise SchemaError("only a denial can require remediation", path="remediation")
        if kind is Kind.REMEDIATION and self.find(ref) is None:
            raise EligibilityError(Problem.UNKNOWN_DENIAL, "remediation names no known record")
        record = MemoryRecord(
            seq=len(self.records),
            kind=kind,
            subject=subject,
            action=action,
            epoch=epoch,
            ref=ref,
            remediation=remediation,
            reason=reason,
            prev=self.head[1],
        )
        self.records.append(record)
        return record

    def remediate(self, denial: MemoryRecord, epoch: int, reason: str) -> MemoryRecord:
        """The remediation record that lifts ``denial`` (or a subject's own revocation)."""
        return self.append(
            Kind.REMEDIATION, denial.subject, denial.action, epoch, ref=denial.digest, reason=reason
        )

    def find(self, digest: bytes) -> MemoryRecord | None:
        return next((r for r in self.records if r.digest == digest), None)

    def about(self, subject: bytes) -> list[MemoryRecord]:
        return [r for r in self.records if r.subject == subject]

    @classmethod
    def restore(
        cls, records: Sequence[MemoryRecord], trusted: tuple[int, bytes] | None = None
    ) -> EligibilityMemory:
        """Rebuild memory from stored records: the chain must verify and, when the node
        knows a ``trusted`` head, extend it (ROLLBACK for a shorter or different history)."""
        prev, last_epoch = GENESIS, 0
        for i, r in enumerate(records):
            if r.seq != i or r.prev != prev or r.epoch < last_epoch:
                raise EligibilityError(
                    Problem.BAD_CHAIN, f"record {i} does not chain", path=f"records[{i}]"
                )
            prev, last_epoch = r.digest, r.epoch
        if trusted is not None:
            count, digest = trusted
            if len(records) < count:
                raise EligibilityError(
                    Problem.ROLLBACK, f"{len(records)} records, {count} were trusted"
                )
            if count and records[count - 1].digest != digest:
                raise EligibilityError(Problem.ROLLBACK, "history differs from the trusted head")
        return cls(list(records))


# -- grants and revocations (positive and negative authority) -------------------------------


@dataclass(frozen=True, slots=True)
class Grant:
    """Positive authority: ``subject`` (empty: any) may do ``actions`` (exact, ``family:*``
    or ``*``) in epochs ``not_before..not_after`` (inclusive). Versioned per ``name``."""

    zone: str
    name: str
    version: int
    subject: bytes
    actions: tuple[str, ...]
    not_before: int
    not_after: int

    def __post_init__(self) -> None:
        if self.version < 1:
            raise SchemaError("version starts at 1", path="grant.version")
        if not 0 <= self.not_before <= self.not_after:
            raise SchemaError("need 0 <= not_before <= not_after", path="grant.not_after")
        if not self.actions:
            raise SchemaError("a grant names at least one action", path="grant.actions")

    def covers(self, subject: bytes, action: str) -> bool:
        if self.subject not in (b"", subject):
            return False
        return any(a in (action, ANY, f"{family(action)}:*") for a in self.actions)

    def to_cbor(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "zone": self.zone,
            "actions": list(self.actions),
            "subject": self.subject,
            "version": self.version,
            "not_after": self.not_after,
            "not_before": self.not_before,
        }

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_GRANT, self.to_cbor(), *keys)

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "body") -> Grant:
        keys = ("name", "zone", "actions", "subject", "version", "not_after", "not_before")
        m = expect_map(tree, path, keys)
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            name=expect_text(m["name"], f"{path}.name"),
            version=expect_int(m["version"], f"{path}.version"),
            subject=expect_bytes(m["subject"], f"{path}.subject"),
            actions=tuple(
                expect_text(a, f"{path}.actions[{i}]")
                for i, a in enumerate(expect_list(m["actions"], f"{path}.actions"))
            ),
            not_before=expect_int(m["not_before"], f"{path}.not_before"),
            not_after=expect_int(m["not_after"], f"{path}.not_after"),
        )


@dataclass(frozen=True, slots=True)
class GrantRevocation:
    """Negative authority: from ``from_epoch`` on, grants named ``name`` up to ``version``
    grant nothing to ``subject`` (empty: to anyone)."""

    zone: str
    name: str
    version: int
    subject: bytes
    from_epoch: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "zone": self.zone,
            "subject": self.subject,
            "version": self.version,
            "from_epoch": self.from_epoch,
        }

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_GRANT_REVOCATION, self.to_cbor(), *keys)

    def hits(self, grant: Grant, subject: bytes, epoch: int) -> bool:
        return (
            self.name == grant.name
            and grant.version <= self.version
            and self.subject in (b"", subject)
            and epoch >= self.from_epoch
        )

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "body") -> GrantRevocation:
        m = expect_map(tree, path, ("name", "zone", "subject", "version", "from_epoch"))
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            name=expect_text(m["name"], f"{path}.name"),
            version=expect_int(m["version"], f"{path}.version"),
            subject=expect_bytes(m["subject"], f"{path}.subject"),
            from_epoch=expect_int(m["from_epoch"], f"{path}.from_epoch"),
        )


class GrantSet:
    """The grants and revocations a node holds for one zone, checked against its authority.

    A grant whose version is below the highest seen for its name is a ROLLBACK; the same
    version with other content a CONFLICT. Revocations are also remembered in ``memory``
    (grants are policy, not events about a subject, so they are not).
    """

    def __init__(self, zone: str, authority: Authority, memory: EligibilityMemory) -> None:
        self.zone = zone
        self.authority = authority
        self.memory = memory
        self._latest: dict[str, tuple[bytes, Grant]] = {}
        self._revocations: list[GrantRevocation] = []

    def _check(self, signed: Signed, tag: str) -> None:
        if signed.tag != tag:
            raise EligibilityError(Problem.FOREIGN, f"not a {tag}: {signed.tag!r}", path="tag")
        if not signed.authorised_by(self.authority):
            raise EligibilityError(
                Problem.UNSIGNED, "not signed by the zone authority", path="sigs"
            )

    def add_grant(self, signed: Signed, epoch: int) -> Grant:
        self._check(signed, TAG_GRANT)
        grant = Grant.from_cbor(signed.body)
        if grant.zone != self.zone:
            raise EligibilityError(Problem.FOREIGN, f"grant for zone {grant.zone!r}", path="zone")
        known = self._latest.get(grant.name)
        if known is not None:
            old_id, old = known
            if grant.version < old.version:
                raise EligibilityError(
                    Problem.ROLLBACK,
                    f"grant {grant.name!r} v{grant.version} after v{old.version}",
                    path="version",
                )
            if grant.version == old.version:
                if old_id != signed.id:
                    raise EligibilityError(
                        Problem.CONFLICT, f"two grants {grant.name!r} v{grant.version}"
                    )
                return old
        self._latest[grant.name] = (signed.id, grant)
        return grant

    def add_revocation(self, signed: Signed, epoch: int) -> GrantRevocation:
        self._check(signed, TAG_GRANT_REVOCATION)
        rev = GrantRevocation.from_cbor(signed.body)
        if rev.zone != self.zone:
            raise EligibilityError(Problem.FOREIGN, f"revocation for zone {rev.zone!r}")
        if rev not in self._revocations:
            self._revocations.append(rev)
            self.memory.append(
                Kind.REVOCATION,
                rev.subject,
                ANY,
                epoch,
                ref=signed.id,
                reason=f"grant {rev.name} up to v{rev.version} revoked from {rev.from_epoch}",
            )
        return rev

    def grants(self) -> list[tuple[bytes, Grant]]:
        """The latest version of every grant name (sorted by name)."""
        return [self._latest[n] for n in sorted(self._latest)]

    def revoked(self, grant: Grant, subject: bytes, epoch: int) -> GrantRevocation | None:
        return next((r for r in self._revocations if r.hits(grant, subject, epoch)), None)


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Eligibility:
    verdict: Verdict
    reason: str
    ref: bytes = b""
    """The deciding record digest or grant id."""

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ELIGIBLE


def _quarantined(records: Sequence[MemoryRecord]) -> MemoryRecord | None:
    """The QUARANTINE record still in force: not followed by a permit or override."""
    for r in reversed(records):
        if r.kind in (Kind.PERMIT, Kind.OVERRIDE):
            return None
        if r.kind is Kind.QUARANTINE:
            return r
    return None


def _pending_denial(records: Sequence[MemoryRecord], action: str) -> MemoryRecord | None:
    lifted = {r.ref for r in records if r.kind is Kind.REMEDIATION}
    for r in records:
        pending = r.kind is Kind.DENIAL and r.remediation and r.digest not in lifted
        if pending and related(r.action, action):
            return r
    return None


def _stale(
    records: Sequence[MemoryRecord], action: str, params: EligibilityParams
) -> MemoryRecord | None:
    failures: list[MemoryRecord] = []
    for r in reversed(records):
        if not related(r.action, action):
            continue
        if r.kind is Kind.PERMIT:
            break
        if r.kind is Kind.FRESHNESS_FAILURE:
            failures.append(r)
    return failures[0] if len(failures) >= params.max_freshness_failures else None


def _revoked_record(
    records: Sequence[MemoryRecord], action: str, epoch: int
) -> MemoryRecord | None:
    """A REVOCATION remembered about the subject itself (e.g. the host it ran on was
    revoked), not lifted by a later remediation."""
    lifted = {r.ref for r in records if r.kind is Kind.REMEDIATION}
    return next(
        (
            r
            for r in records
            if r.kind is Kind.REVOCATION
            and r.ref == b""
            and r.epoch <= epoch
            and related(r.action, action)
            and r.digest not in lifted
        ),
        None,
    )


def eligible(
    memory: EligibilityMemory,
    grants: GrantSet,
    subject: bytes,
    action: str,
    epoch: int,
    params: EligibilityParams = DEFAULT_PARAMS,
) -> Eligibility:
    """May ``subject`` do ``action`` at ``epoch``? Negative answers first: quarantine, an
    unremediated related denial, staleness, revocation; then a grant valid at ``epoch``."""
    mine = memory.about(subject)
    held = _quarantined(mine)
    if held is not None:
        return Eligibility(Verdict.QUARANTINED, f"quarantined at epoch {held.epoch}", held.digest)
    denial = _pending_denial(mine, action)
    if denial is not None:
        return Eligibility(
            Verdict.REMEDIATION_PENDING,
            f"denied {denial.action!r} at epoch {denial.epoch} ({denial.reason}); "
            "no remediation recorded",
            denial.digest,
        )
    stale = _stale(mine, action, params)
    if stale is not None:
        return Eligibility(
            Verdict.STALE,
            f"{params.max_freshness_failures} freshness failures since the last permit",
            stale.digest,
        )
    rec = _revoked_record(mine, action, epoch)
    if rec is not None:
        return Eligibility(Verdict.REVOKED, rec.reason or "revoked", rec.digest)
    covering = [(gid, g) for gid, g in grants.grants() if g.covers(subject, action)]
    if not covering:
        return Eligibility(Verdict.NO_GRANT, f"no grant covers {action!r}")
    live = [(gid, g) for gid, g in covering if grants.revoked(g, subject, epoch) is None]
    if not live:
        gid, g = covering[0]
        return Eligibility(Verdict.REVOKED, f"grant {g.name} v{g.version} revoked", gid)
    for gid, g in live:
        if g.not_before <= epoch <= g.not_after:
            return Eligibility(Verdict.ELIGIBLE, f"grant {g.name} v{g.version}", gid)
    gid, g = live[0]
    if all(epoch < x.not_before for _, x in live):
        return Eligibility(
            Verdict.NOT_YET_VALID, f"grant {g.name} valid from epoch {g.not_before}", gid
        )
    return Eligibility(Verdict.EXPIRED, f"grant {g.name} expired after epoch {g.not_after}", gid)


# -- adapters from the pipeline's audit and the quarantine store ----------------------------


class AuditLike(Protocol):
    """The fields of :class:`~protocols.governance.pipeline.AuditRecord` read here."""

    @property
    def epoch(self) -> int: ...
    @property
    def content_id(self) -> bytes: ...
    @property
    def code(self) -> str: ...
    @property
    def wire(self) -> str: ...
    @property
    def disposition(self) -> str: ...
    @property
    def reason(self) -> str: ...


_FRESHNESS_CODES: Final = frozenset({"stale-head", "future-head", "epoch-window"})
_PERMIT_CODES: Final = frozenset({"permit", "permit-host", "already-executed", "rehydrated"})


def record_audit(
    memory: EligibilityMemory,
    audit: AuditLike,
    subject: bytes,
    action: str,
    params: EligibilityParams = DEFAULT_PARAMS,
) -> MemoryRecord | None:
    """Remember an admission decision (None for outcomes that say nothing about the subject,
    e.g. a missing named object or a replay)."""
    kind: Kind | None
    if audit.disposition == "QUARANTINE":
        kind = Kind.QUARANTINE
    elif audit.code in _PERMIT_CODES:
        kind = Kind.PERMIT
    elif audit.code in _FRESHNESS_CODES:
        kind = Kind.FRESHNESS_FAILURE
    elif audit.code == "revoked-host":
        kind = Kind.REVOCATION
    elif audit.wire == "REJECT":
        kind = Kind.DENIAL
    else:
        kind = None
    if kind is None:
        return None
    return memory.append(
        kind,
        subject,
        action,
        audit.epoch,
        remediation=kind is Kind.DENIAL and audit.code in params.remediation_codes,
        reason=f"{audit.code}: {audit.reason}",
    )


def record_quarantine(
    memory: EligibilityMemory, record: QuarantineRecord, subject: bytes, action: str = ANY
) -> MemoryRecord | None:
    """Remember a quarantine store event: held, released (re-validated: a permit; by
    override: an override), expired (a denial)."""
    kinds = {
        Event.HELD: Kind.QUARANTINE,
        Event.RELEASED_REVALIDATED: Kind.PERMIT,
        Event.RELEASED_OVERRIDE: Kind.OVERRIDE,
        Event.EXPIRED: Kind.DENIAL,
    }
    kind = kinds.get(record.event)
    if kind is None:
        return None
    return memory.append(kind, subject, action, record.epoch, ref=record.key, reason=record.reason)


def replay_memory(records: Iterable[MemoryRecord]) -> EligibilityMemory:
    """Memory from records with no trusted head (the chain is still verified)."""
    return EligibilityMemory.restore(list(records))


__all__ = [
    "ANY",
    "TAG_GRANT",
    "TAG_GRANT_REVOCATION",
    "Eligibility",
    "EligibilityError",
    "EligibilityMemory",
    "EligibilityParams",
    "Grant",
    "GrantRevocation",
    "GrantSet",
    "Kind",
    "MemoryRecord",
    "Problem",
    "Verdict",
    "eligible",
    "family",
    "record_audit",
    "record_quarantine",
    "related",
    "replay_memory",
]
