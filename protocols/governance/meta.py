"""Meta-policy overrides (SPEC 2.8): scoped, expiring, revocable, signed by the meta-authority.

An override is signed by the governing descriptor's meta-authority set (m-of-k). It names a
target (an agent's quorum scope, or empty for the whole zone), an action, the epochs it holds
(``from_epoch`` inclusive, ``expires_epoch`` exclusive) and a reason. Foreign or unsigned
overrides are ignored (and the refusal recorded). A signed revocation withdraws one; the
original verdict then stands again.

Self-widening (SPEC 5 item 15): an agent whose own mutation descriptor or policy binding is
wider than the zone's bounds, or wider than the state it came from, escalates; without an
``authorise-widening`` override it is never executed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import nacl.signing

from protocols.agent.schema import Agent, MutationDescriptor
from protocols.errors import MeshError
from protocols.governance.signing import (
    TAG_OVERRIDE,
    TAG_OVERRIDE_REVOCATION,
    Signed,
    expect_bytes,
    expect_int,
    expect_map,
    expect_text,
    make_signed,
)
from protocols.governance.zone import Bounds, ZoneDescriptor


class Action(enum.Enum):
    """What an override does while it holds."""

    RELEASE = "release"
    """Release quarantined agents of the target (verdict PERMIT instead of QUARANTINE)."""
    SUSPEND = "suspend"
    """Safety suspension: the target is quarantined instead of executed."""
    AUTHORISE_WIDENING = "authorise-widening"
    """The target may hold a descriptor wider than the zone bounds."""


@dataclass(frozen=True, slots=True)
class Override:
    zone: str
    target: bytes
    """Quorum scope of the agent it concerns; empty bytes: every agent of the zone."""
    action: Action
    from_epoch: int
    expires_epoch: int
    reason: str

    def to_cbor(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "action": self.action.value,
            "reason": self.reason,
            "target": self.target,
            "from_epoch": self.from_epoch,
            "expires_epoch": self.expires_epoch,
        }

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_OVERRIDE, self.to_cbor(), *keys)

    def holds(self, target: bytes, epoch: int) -> bool:
        return (self.target in (b"", target)) and self.from_epoch <= epoch < self.expires_epoch

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "body") -> Override:
        keys = ("zone", "action", "reason", "target", "from_epoch", "expires_epoch")
        m = expect_map(tree, path, keys)
        action = expect_text(m["action"], f"{path}.action")
        try:
            act = Action(action)
        except ValueError:
            raise MeshError(f"unknown override action {action!r}", path=f"{path}.action") from None
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            target=expect_bytes(m["target"], f"{path}.target"),
            action=act,
            from_epoch=expect_int(m["from_epoch"], f"{path}.from_epoch"),
            expires_epoch=expect_int(m["expires_epoch"], f"{path}.expires_epoch"),
            reason=expect_text(m["reason"], f"{path}.reason", 1024),
        )


def revocation(zone: str, override_id: bytes, *keys: nacl.signing.SigningKey) -> Signed:
    return make_signed(TAG_OVERRIDE_REVOCATION, {"zone": zone, "override": override_id}, *keys)


@dataclass(frozen=True, slots=True)
class TableRecord:
    """Audit record of every change to (or refusal by) the override table."""

    event: str
    override_id: bytes
    reason: str


@dataclass
class OverrideTable:
    """The overrides a node holds for one zone, with the audit of every change."""

    zone: str
    _active: dict[bytes, Override] = field(default_factory=dict)
    _revoked: set[bytes] = field(default_factory=set)
    records: list[TableRecord] = field(default_factory=list)

    def add(self, signed: Signed, desc: ZoneDescriptor) -> Override | None:
        """Keep a signed override; foreign, malformed or unsigned ones are ignored (recorded)."""
        try:
            if signed.tag != TAG_OVERRIDE:
                raise MeshError(f"not an override: {signed.tag!r}")
            override = Override.from_cbor(signed.body)
        except MeshError as exc:
            self.records.append(TableRecord("ignored", signed.id, exc.describe()))
            return None
        if override.zone != self.zone or override.zone != desc.zone:
            self.records.append(TableRecord("ignored", signed.id, "override for another zone"))
            return None
        if not signed.authorised_by(desc.meta_authority):
            self.records.append(TableRecord("ignored", signed.id, "not signed by meta-authority"))
            return None
        if signed.id in self._revoked:
            self.records.append(TableRecord("ignored", signed.id, "override was revoked"))
            return None
        self._active[signed.id] = override
        self.records.append(TableRecord("added", signed.id, override.reason))
        return override

    def revoke(self, signed: Signed, desc: ZoneDescriptor) -> bool:
        if signed.tag != TAG_OVERRIDE_REVOCATION or not signed.authorised_by(desc.meta_authority):
            self.records.append(TableRecord("ignored", signed.id, "revocation not authorised"))
            return False
        m = signed.body
        oid = m.get("override")
        if m.get("zone") != self.zone or not isinstance(oid, bytes):
            self.records.append(TableRecord("ignored", signed.id, "revocation for another zone"))
            return False
        self._revoked.add(oid)
        self._active.pop(oid, None)
        self.records.append(TableRecord("revoked", oid, "revoked by meta-authority"))
        return True

    def find(self, target: bytes, epoch: int, action: Action) -> tuple[bytes, Override] | None:
        """The holding override of ``action`` for ``target`` with the smallest id, if any."""
        for oid in sorted(self._active):
            o = self._active[oid]
            if o.action is action and o.holds(target, epoch):
                return oid, o
        return None

    def all(self) -> tuple[tuple[bytes, Override], ...]:
        return tuple((oid, self._active[oid]) for oid in sorted(self._active))


def widening(agent: Agent, bounds: Bounds) -> tuple[str, ...]:
    """Names of the ways the agent's own descriptor exceeds the zone's bounds (sorted)."""
    md = agent.mutation_descriptor
    if md is None:
        return ()
    out: list[str] = []
    if md.limits.max_migrations > bounds.max_migrations:
        out.append("limits.max_migrations")
    if md.limits.max_zones > bounds.max_zones:
        out.append("limits.max_zones")
    if md.limits.max_delegation_depth > bounds.max_delegation_depth:
        out.append("limits.max_delegation_depth")
    if any(p.max_depth > bounds.max_delegation_depth for p in md.delegation):
        out.append("delegation.max_depth")
    if any(m not in bounds.mutable for m in md.mutable):
        out.append("mutable")
    return tuple(sorted(out))


def widening_between(before: Agent, after: Agent) -> tuple[str, ...]:
    """Names of the governance fields ``after`` widened relative to ``before``."""
    out: list[str] = []
    if before.policy_ref != after.policy_ref:
        out.append("policy_ref")
    a, b = before.mutation_descriptor, after.mutation_descriptor
    if a is not None and b is not None:
        out.extend(_descriptor_widening(a, b))
    if before.context and after.context and before.context.role != after.context.role:
        out.append("context.role")
    return tuple(sorted(out))


def _descriptor_widening(a: MutationDescriptor, b: MutationDescriptor) -> Iterable[str]:
    if b.limits.max_migrations > a.limits.max_migrations:
        yield "limits.max_migrations"
    if b.limits.max_zones > a.limits.max_zones:
        yield "limits.max_zones"
    if b.limits.max_delegation_depth > a.limits.max_delegation_depth:
        yield "limits.max_delegation_depth"
    if not set(b.mutable) <= set(a.mutable):
        yield "mutable"
    old = {(p.role, v): p.max_depth for p in a.delegation for v in p.verbs}
    for p in b.delegation:
        for v in p.verbs:
            if (p.role, v) not in old or p.max_depth > old[(p.role, v)]:
                yield "delegation"
                return
