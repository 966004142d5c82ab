"""Admission pipeline (DESIGN 5, issue 5 item 3): one pure function from bytes to a Decision.

``admit(AdmitInput) -> Decision``. Stages, in this fixed order (as go-libp2p-pubsub validates:
signature, then dedup, then policy):

1. decode the envelope ``{v: 1, zone, agent}`` and check it is for this zone's topic;
2. structural validation (FULL / PARTIAL / INVALID);
3. identity: host signatures, slope, freshness and the objects the head names by hash
   (descriptor version, host record), for FULL and PARTIAL alike, so dropping a field
   gains a forger nothing;
4. PARTIAL agents with a verified lineage and aligned policy_ref go to FALLBACK;
5. policy: alignment of ``policy_ref`` with the named descriptor, limits, cross-zone
   authorisation, migration rules, the mutation rule against the direct predecessor this
   node holds (:mod:`protocols.governance.mutation`), self-widening, then the contract's
   rules and overrides;
6. quorum certificate for mutation classes that need one;
7. the decision: wire verdict and local disposition from :data:`OUTCOMES`.

Every outcome has a code, and :data:`OUTCOMES` maps each code to (wire verdict, disposition):
REJECT only where the bytes plus the objects the head names by hash decide; IGNORE where local
state decides or a named object is missing. Decisions are never cached; each carries its
audit record, so a caller counts decisions in and records out.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final, Protocol

from protocols import codec
from protocols.agent.lineage import entry_hash, state_digest
from protocols.agent.schema import MAX_AGENT_BYTES, Agent, LedgerEvent, LedgerKind, MutationClass
from protocols.agent.validate import validate_bytes
from protocols.errors import MeshError
from protocols.governance import migration, mutation, xzone
from protocols.governance.delegation import check_child
from protocols.governance.execute import already_executed
from protocols.governance.meta import Action, widening, widening_between
from protocols.governance.policy import Evaluation, facts_of
from protocols.governance.quarantine import Held
from protocols.governance.quorum import (
    QuorumCertificate,
    generation,
    scope_of,
    verify_certificate,
)
from protocols.governance.view import ZoneView
from protocols.governance.zone import ZoneDescriptor
from protocols.identity.reasons import SlopeReason
from protocols.identity.slope import SlopeTracker, verify_agent
from protocols.types import PolicyVerdict, ValidationStatus, WireVerdict

ENVELOPE_VERSION: Final = 1
MAX_ENVELOPE_BYTES: Final = MAX_AGENT_BYTES + 1024


class Disposition(enum.Enum):
    """What this node does with an agent (the local half of a decision)."""

    EXECUTE = "EXECUTE"
    STORE = "STORE"
    FALLBACK = "FALLBACK"
    QUARANTINE = "QUARANTINE"
    ESCALATE = "ESCALATE"
    DROP = "DROP"


A, R, IG = WireVerdict.ACCEPT, WireVerdict.REJECT, WireVerdict.IGNORE
D = Disposition

OUTCOMES: Final[Mapping[str, tuple[WireVerdict, Disposition]]] = MappingProxyType(
    {
        # -- follows from the bytes alone: REJECT ------------------------------------------
        "undecodable": (R, D.DROP),
        "bad-envelope": (R, D.DROP),
        "wrong-topic": (R, D.DROP),
        "invalid": (R, D.DROP),
        # -- identity, within the agent's own lineage: REJECT -------------------------------
        "non-descendant": (R, D.DROP),
        "bad-reveal": (R, D.DROP),
        "bad-signature": (R, D.DROP),
        "wrong-signer": (R, D.DROP),
        "bad-step": (R, D.DROP),
        "bad-state": (R, D.DROP),
        "bad-totals": (R, D.DROP),
        "bad-genesis": (R, D.DROP),
        "bad-recovery": (R, D.DROP),
        "malformed": (R, D.DROP),
        "epoch-window": (R, D.DROP),
        # -- local state or a missing named object: IGNORE ----------------------------------
        "unknown-host": (IG, D.DROP),
        "revoked-host": (IG, D.DROP),
        "replay": (IG, D.DROP),
        "fork": (IG, D.DROP),
        "gap-too-large": (IG, D.DROP),
        "entry-discontinuity": (IG, D.QUARANTINE),
        "stale-head": (IG, D.DROP),
        "future-head": (IG, D.DROP),
        "descriptor-unknown": (IG, D.DROP),
        "descriptor-not-active": (IG, D.DROP),
        "contract-unknown": (IG, D.DROP),
        "quota-exceeded": (IG, D.DROP),
        "equivocation": (IG, D.ESCALATE),
        # the successor changed a field its direct predecessor's descriptor does not list, or
        # widened that descriptor. IGNORE, not REJECT: only a node holding the predecessor can
        # judge, so an honest relay that lacks it (a late joiner) forwards it and must not be
        # penalised for that (as with revoked-host); every holder drops it
        "mutation-not-permitted": (IG, D.DROP),
        # -- the bytes plus the objects the head names by hash: REJECT ----------------------
        "policy-ref-unaligned": (R, D.DROP),
        "limits-exceeded": (R, D.DROP),
        "cross-zone-unauthorised": (R, D.DROP),
        "migration-depth": (R, D.DROP),
        "delegation-wider": (R, D.DROP),
        "migration-unsealed": (R, D.DROP),
        "quorum-missing": (R, D.DROP),
        "quorum-invalid": (R, D.DROP),
        "policy-deny": (R, D.DROP),
        # -- accepted: travels through the zone, handled locally ----------------------------
        "partial": (A, D.FALLBACK),
        "migration-gap": (A, D.QUARANTINE),
        "self-widening": (A, D.ESCALATE),
        "policy-quarantine": (A, D.QUARANTINE),
        "policy-escalate": (A, D.ESCALATE),
        "suspended": (A, D.QUARANTINE),
        "already-executed": (A, D.STORE),
        "in-transit": (A, D.STORE),
        "permit": (A, D.STORE),
        "permit-host": (A, D.EXECUTE),
        "rehydrated": (A, D.STORE),
    }
)
"""The DESIGN 5 mapping, one row per outcome code: (wire verdict, local disposition)."""

_LOCAL_SLOPE: Final = frozenset({"needs-steps", "overflow", "timeout"})
_SLOPE_CODES: Final[Mapping[SlopeReason, str]] = {
    r: ("gap-too-large" if r.value in _LOCAL_SLOPE else r.value)
    for r in SlopeReason
    if r is not SlopeReason.OK
}
"""Identity refusal -> outcome code; waits for missing steps count as a local gap."""

QUORUM_CLASSES: Final = frozenset({MutationClass.POLICY, MutationClass.ROLE_CHANGE})
"""Mutation classes whose head entry needs a quorum certificate in the agent's scope."""

QC_KEY: Final = "qc"
"""Ledger data key of the certificate event (kind mutation-result, last ledger event)."""


def encode_envelope(zone: str, agent_bytes: bytes) -> bytes:
    """Zone-topic message data: canonical ``{v: 1, zone, agent}`` (DESIGN 4)."""
    return codec.encode({"v": ENVELOPE_VERSION, "zone": zone, "agent": agent_bytes})


class QuarantineCounter(Protocol):
    """The part of a quarantine store admission reads (MemoryQuarantine, the node's store)."""

    def count(self, host: bytes) -> int: ...


def _host_of(agent: Agent) -> bytes:
    """The agent's host: the signer its head names next (DESIGN 5 "one host acts")."""
    assert agent.lineage is not None
    return agent.lineage.entries[-1].next_signer


@dataclass(frozen=True, slots=True)
class AdmitInput:
    """Everything ``admit`` reads; nothing else (no clock, no store, no cache)."""

    data: bytes
    """Envelope bytes as received on the zone topic."""
    view: ZoneView
    epoch: int
    """This node's current epoch."""
    local_host: bytes
    """This node's host key: EXECUTE only when it is the agent's host."""
    tracker: SlopeTracker | None = None
    """Read-only: the node's last trusted heads (successor and replay checks)."""
    via_sync: bool = False
    """Arrived by anti-entropy sync: slope continuity, not freshness, decides."""
    quarantine: QuarantineCounter | None = None
    """Read-only: how many agents of a host this node holds in quarantine (quota check)."""
    previous: Agent | None = None
    """The state of this agent the node last trusted (from its store), if it has one: a
    direct successor must keep to its descriptor (IGNORE ``mutation-not-permitted``), and
    one that widens its role or policy binding against it escalates."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """The node-local audit entry every decision writes (never in the agent's lineage)."""

    epoch: int
    zone: str
    content_id: bytes
    head: bytes
    stage: str
    code: str
    wire: str
    disposition: str
    reason: str
    rule: str

    def to_cbor(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "head": self.head,
            "rule": self.rule,
            "wire": self.wire,
            "zone": self.zone,
            "epoch": self.epoch,
            "stage": self.stage,
            "reason": self.reason,
            "content_id": self.content_id,
            "disposition": self.disposition,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """Wire verdict, local disposition, why, and the audit record of one admission."""

    wire: WireVerdict
    disposition: Disposition
    code: str
    reason: str
    stage: str
    agent: Agent | None
    evaluation: Evaluation | None
    audit: AuditRecord
    descriptor: ZoneDescriptor | None = None
    """The descriptor version the head names (when the node knows it)."""

    @property
    def executes(self) -> bool:
        return self.disposition is Disposition.EXECUTE

    @property
    def content_id(self) -> bytes:
        return self.audit.content_id

    @property
    def host(self) -> bytes:
        """The agent's host (empty when the bytes never decoded to an agent)."""
        return _host_of(self.agent) if self.agent is not None else b""

    def held(self, agent_bytes: bytes) -> Held:
        """The quarantine item for a QUARANTINE decision (TTL from the named descriptor)."""
        assert self.agent is not None
        assert self.agent.lineage is not None
        assert self.descriptor is not None
        since = self.audit.epoch
        return Held(
            key=self.content_id,
            data=agent_bytes,
            host=self.host,
            zone=self.audit.zone,
            target=scope_of(self.audit.zone, self.agent.lineage.genesis_dah),
            since_epoch=since,
            expires_epoch=since + self.descriptor.quarantine_ttl_epochs,
            reason=self.reason,
        )


class _Stop(Exception):
    """Internal: a stage decided; carries the outcome code and reason."""

    def __init__(self, stage: str, code: str, reason: str) -> None:
        super().__init__(code)
        self.stage, self.code, self.reason = stage, code, reason


@dataclass
class _Run:
    """Mutable scratch of one admission (never shared, never cached)."""

    inp: AdmitInput
    content_id: bytes = b""
    head: bytes = b""
    agent: Agent | None = None
    desc: ZoneDescriptor | None = None
    evaluation: Evaluation | None = None
    rule: str = ""
    partial: bool = False
    scope: bytes = b""
    """The agent's quorum scope, once the policy stage computed it."""


def admit(inp: AdmitInput) -> Decision:
    """Judge one envelope. Pure: the same input gives the same Decision on every node."""
    run = _Run(inp)
    try:
        for stage, check in _STAGES:
            check(run, stage)
        raise _Stop("decision", "permit", "FULL agent permitted by policy")
    except _Stop as stop:
        return _decide(run, stop)


def _decide(run: _Run, stop: _Stop) -> Decision:
    code = stop.code
    if code == "permit":
        head = run.agent.lineage.entries[-1] if run.agent and run.agent.lineage else None
        if run.agent is not None and already_executed(run.agent):
            code = "already-executed"
        elif head is not None and head.type is MutationClass.MIGRATION:
            code = "in-transit"
        elif head is not None and head.next_signer == run.inp.local_host:
            code = "permit-host"
    if (
        OUTCOMES[code][1] is Disposition.QUARANTINE
        and run.desc is not None
        and run.agent is not None
        and run.inp.quarantine is not None
        and run.inp.quarantine.count(_host_of(run.agent)) >= run.desc.quarantine_quota
    ):
        code = "quota-exceeded"
    wire, disposition = OUTCOMES[code]
    audit = AuditRecord(
        epoch=run.inp.epoch,
        zone=run.inp.view.zone,
        content_id=run.content_id,
        head=run.head,
        stage=stop.stage,
        code=code,
        wire=wire.value,
        disposition=disposition.value,
        reason=stop.reason,
        rule=run.rule,
    )
    return Decision(
        wire, disposition, code, stop.reason, stop.stage, run.agent, run.evaluation, audit, run.desc
    )


# -- stages --------------------------------------------------------------------------------


def _decode(run: _Run, stage: str) -> None:
    data = run.inp.data
    try:
        # key order is checked below, so the decoder need not re-sort to compare
        tree = codec.decode(data, max_bytes=MAX_ENVELOPE_BYTES, max_depth=2, key_order_checked=True)
    except MeshError as exc:
        raise _Stop(stage, "undecodable", exc.describe()) from None
    if not isinstance(tree, dict) or list(tree) != ["v", "zone", "agent"]:
        raise _Stop(stage, "bad-envelope", "envelope must be exactly {v, zone, agent} in order")
    if type(tree["v"]) is not int or tree["v"] != ENVELOPE_VERSION:
        raise _Stop(stage, "bad-envelope", "unknown envelope version")
    if type(tree["zone"]) is not str or type(tree["agent"]) is not bytes:
        raise _Stop(stage, "bad-envelope", "zone must be text and agent bytes")
    if tree["zone"] != run.inp.view.zone:
        raise _Stop(stage, "wrong-topic", f"envelope zone {tree['zone']!r} is not this topic's")
    run.content_id = hashlib.sha256(tree["agent"]).digest()
    validation = validate_bytes(tree["agent"])
    if validation.status is ValidationStatus.INVALID or validation.agent is None:
        first = validation.problems[0].describe() if validation.problems else "invalid"
        raise _Stop("structure", "invalid", first)
    agent = validation.agent
    run.agent = agent
    assert agent.lineage is not None
    run.head = agent.lineage.entries[-1].dah
    if agent.lineage.entries[-1].zone != run.inp.view.zone:
        raise _Stop("structure", "invalid", "the head entry's zone is not this topic's zone")
    run.partial = validation.status is ValidationStatus.PARTIAL


def _identity(run: _Run, stage: str) -> None:
    agent, inp = run.agent, run.inp
    assert agent is not None
    assert agent.lineage is not None
    head = agent.lineage.entries[-1]
    if not inp.via_sync:
        window = 1
        desc_now = inp.view.descriptors.governing(inp.epoch)
        if desc_now is not None:
            window = desc_now.freshness_epochs
        if head.epoch > inp.epoch + 1:
            raise _Stop(stage, "future-head", f"head epoch {head.epoch} > local {inp.epoch} + 1")
        if head.epoch < inp.epoch - window:
            raise _Stop(stage, "stale-head", f"head epoch {head.epoch} outside the window")
    desc = inp.view.descriptors.get(head.descriptor)
    if desc is None:
        raise _Stop(stage, "descriptor-unknown", "head names a descriptor this node lacks")
    active = inp.view.descriptors.governing(head.epoch)
    if active is None or active.id != desc.id:
        raise _Stop(stage, "descriptor-not-active", "head names a version not active at its epoch")
    run.desc = desc
    params = inp.view.slope_params(desc)
    result = verify_agent(
        agent, inp.view.hosts, inp.tracker, inp.epoch, params=params, verified=inp.view.verified
    )
    if not result.ok:
        code = _SLOPE_CODES[result.reason]
        if code == "fork" and _is_zone_entry(agent):
            code = "entry-discontinuity"
        raise _Stop(stage, code, result.message)
    if inp.view.equivocations:
        for e in agent.lineage.entries:
            if (e.host, e.prev) in inp.view.equivocations:
                raise _Stop(stage, "equivocation", "a host equivocated on this slope: escalate")


def _is_zone_entry(agent: Agent) -> bool:
    """The head is the admission entry of a migration into this zone."""
    assert agent.lineage is not None
    entries = agent.lineage.entries
    return len(entries) >= 2 and entries[-1].zone != entries[-2].zone


def _partial(run: _Run, stage: str) -> None:
    _aligned(run, stage)
    if run.partial:
        raise _Stop(stage, "partial", "PARTIAL agent with verified lineage: fallback only")


def _aligned(run: _Run, stage: str) -> None:
    agent, desc = run.agent, run.desc
    assert agent is not None
    assert desc is not None
    assert agent.policy_ref is not None
    for ref in agent.policy_ref:
        if ref.contract not in desc.contracts:
            raise _Stop(stage, "policy-ref-unaligned", "policy_ref names a contract not admissible")
        if not run.inp.view.policy_ref_ok(ref):
            raise _Stop(stage, "policy-ref-unaligned", "policy_ref signature does not verify")
        if ref.contract not in run.inp.view.contracts:
            raise _Stop(stage, "contract-unknown", "node lacks the named contract")


def _policy(run: _Run, stage: str) -> None:
    agent, desc, inp = run.agent, run.desc, run.inp
    assert agent is not None
    assert desc is not None
    assert agent.lineage is not None
    assert agent.mutation_descriptor is not None
    assert agent.policy_ref is not None
    head = agent.lineage.entries[-1]
    limits = agent.mutation_descriptor.limits
    totals = head.totals
    if (
        totals.migrations > limits.max_migrations
        or totals.zones > limits.max_zones
        or totals.delegation > limits.max_delegation_depth
    ):
        raise _Stop(stage, "limits-exceeded", "running totals exceed the agent's own limits")
    wider = check_child(agent)
    if wider:
        raise _Stop(stage, "delegation-wider", "; ".join(wider))
    problem = xzone.check(agent, desc, inp.view.authority)
    if problem is not None:
        raise _Stop(stage, "cross-zone-unauthorised", problem)
    mig = migration.check(agent, desc)
    if mig is not None:
        raise _Stop(stage, mig.code, mig.reason)
    target = run.scope = scope_of(desc.zone, agent.lineage.genesis_dah)
    authorised = inp.view.overrides.find(target, head.epoch, Action.AUTHORISE_WIDENING)
    if inp.previous is not None and mutation.direct_predecessor(inp.previous, agent):
        allowed = mutation.Authorised(
            certified=head.type in QUORUM_CLASSES,
            zone_entry=_is_zone_entry(agent),
            widening=authorised is not None,
        )
        bad = mutation.violations(inp.previous, agent, allowed)
        if bad:
            raise _Stop(
                stage,
                "mutation-not-permitted",
                "the predecessor's mutation descriptor does not permit: " + "; ".join(bad),
            )
    wide = (*widening(agent, desc.bounds), *_widened_since(inp.previous, agent))
    if wide and authorised is None:
        raise _Stop(stage, "self-widening", "descriptor wider than zone bounds: " + ", ".join(wide))
    facts = facts_of(agent)
    verdict = PolicyVerdict.PERMIT
    for ref in agent.policy_ref:
        evaluation = inp.view.contracts[ref.contract].evaluate(facts)
        run.evaluation, run.rule = evaluation, evaluation.rule_name
        verdict = evaluation.verdict
        if verdict is not PolicyVerdict.PERMIT:
            break
    reason = run.evaluation.explain() if run.evaluation else "no contract"
    if verdict is PolicyVerdict.DENY:
        raise _Stop(stage, "policy-deny", reason)
    if verdict is PolicyVerdict.ESCALATE:
        raise _Stop(stage, "policy-escalate", reason)
    if verdict is PolicyVerdict.QUARANTINE:
        if inp.view.overrides.find(target, inp.epoch, Action.RELEASE) is None:
            raise _Stop(stage, "policy-quarantine", reason)
        run.rule = f"{run.rule}+override-release"
    if inp.view.overrides.find(target, inp.epoch, Action.SUSPEND) is not None:
        raise _Stop(stage, "suspended", "a meta-authority suspension holds for this agent")


def admit_rehydrated(agent: Agent, inp: AdmitInput) -> Decision:
    """Re-enter a rehydrated agent at the policy stage (SPEC 2.2); it is stored, never run.

    ``agent`` is the output of :func:`protocols.governance.fallback.rehydrate` for a PARTIAL
    agent this node admitted; its slope was verified then and its rebuilt fields were never
    signed, so the best outcome is ``rehydrated`` (STORE).
    """
    assert agent.lineage is not None
    run = _Run(inp, agent=agent, head=agent.lineage.entries[-1].dah)
    run.desc = inp.view.descriptors.get(agent.lineage.entries[-1].descriptor)
    try:
        if run.desc is None:
            raise _Stop("fallback", "descriptor-unknown", "head names a descriptor this node lacks")
        _aligned(run, "fallback")
        _policy(run, "policy")
        raise _Stop("policy", "rehydrated", "rehydrated agent permitted; stored, never executed")
    except _Stop as stop:
        return _decide(run, stop)


def proposal_subject(prev: bytes, proposed: Agent) -> bytes:
    """What validators approve: ``sha256(prev entry name || state digest of the new state)``."""
    return hashlib.sha256(prev + state_digest(proposed)).digest()


def certificate_event(cert: QuorumCertificate, epoch: int) -> LedgerEvent:
    """The ledger event that binds a certificate into the state the new entry commits to."""
    raw = codec.encode(cert.to_cbor())
    return LedgerEvent(epoch=epoch, kind=LedgerKind.MUTATION_RESULT, data={QC_KEY: raw})


def _widened_since(previous: Agent | None, agent: Agent) -> tuple[str, ...]:
    """Governance fields a direct successor widened; quorum-certified role changes and the
    policy rebinding of a zone entry are authorised changes, not self-widening."""
    if previous is None or previous.lineage is None or agent.lineage is None:
        return ()
    head = agent.lineage.entries[-1]
    if head.prev != entry_hash(previous.lineage.entries[-1]):
        return ()
    out = widening_between(previous, agent)
    if head.type in QUORUM_CLASSES:
        out = tuple(w for w in out if w != "context.role")
    if _is_zone_entry(agent):
        out = tuple(w for w in out if w != "policy_ref")
    return out


def certificate_of(agent: Agent) -> tuple[QuorumCertificate | None, bytes]:
    """The certificate the last ledger event carries, and the subject it must name.

    The subject is computed from the agent without that event (the state validators
    approved), bound to the entry the head follows.
    """
    assert agent.lineage is not None
    assert agent.memory is not None
    head = agent.lineage.entries[-1]
    ledger = agent.memory.ledger
    cert = None
    proposed = agent
    if ledger and ledger[-1].kind is LedgerKind.MUTATION_RESULT and QC_KEY in ledger[-1].data:
        raw = ledger[-1].data[QC_KEY]
        if isinstance(raw, bytes):
            try:
                cert = QuorumCertificate.from_cbor(codec.decode(raw, max_bytes=64 * 1024))
            except MeshError:
                cert = None
        proposed = replace(agent, memory=replace(agent.memory, ledger=ledger[:-1]))
    return cert, proposal_subject(head.prev, proposed)


def _quorum(run: _Run, stage: str) -> None:
    agent, desc = run.agent, run.desc
    assert agent is not None
    assert desc is not None
    assert agent.lineage is not None
    if agent.lineage.entries[-1].type not in QUORUM_CLASSES:
        return
    cert, subject = certificate_of(agent)
    if cert is None:
        raise _Stop(stage, "quorum-missing", "mutation class needs a quorum certificate")
    scope = run.scope or scope_of(desc.zone, agent.lineage.genesis_dah)
    if cert.proposal.g0 != generation(agent.lineage.genesis_epoch, desc.quorum):
        raise _Stop(stage, "quorum-invalid", "certificate generation is not the scope's g0")
    check = verify_certificate(cert, desc, scope, subject)
    if not check.ok:
        raise _Stop(stage, "quorum-invalid", check.reason)


_STAGES: Final = (
    ("decode", _decode),
    ("identity", _identity),
    ("fallback", _partial),
    ("policy", _policy),
    ("quorum", _quorum),
)
"""The fixed order of the pipeline (issue 5 item 3)."""
