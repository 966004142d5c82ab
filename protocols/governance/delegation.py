"""Delegation (SPEC 2.19): a child's authority is a subset of its parent's, checked from the
child alone.

The parent's host signs a :class:`Grant` naming the parent's head entry, the role and verbs
handed over, the remaining delegation depth, the limits and the mutable fields; the grant may
not be wider than the parent's own descriptor (``make_grant`` refuses otherwise, and refuses
outright when the parent's descriptor allows no delegation). The child carries the grant in
its memory (a ``delegation`` ledger event) and its genesis entry links to the parent's head,
so any node checks the child's descriptor against the grant without asking the parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, LedgerEvent, LedgerKind, PropagationLimits
from protocols.errors import MeshError
from protocols.governance.signing import (
    Signed,
    decode_signed,
    expect_bytes,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    message,
    verify,
)
from protocols.identity.host import LocalHost

TAG_GRANT: Final = "meshnode/delegation-grant/1"
GRANT_KEY: Final = "grant"


@dataclass(frozen=True, slots=True)
class Grant:
    parent_head: bytes
    role: str
    verbs: tuple[str, ...]
    max_depth: int
    """Delegation depth the child may still hand on (0: the child may not delegate)."""
    limits: PropagationLimits
    mutable: tuple[str, ...]
    issuer: bytes

    def to_cbor(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "verbs": list(self.verbs),
            "issuer": self.issuer,
            "limits": self.limits.to_cbor(),
            "mutable": list(self.mutable),
            "max_depth": self.max_depth,
            "parent_head": self.parent_head,
        }

    @classmethod
    def from_cbor(cls, tree: Any) -> Grant:
        keys = ("role", "verbs", "issuer", "limits", "mutable", "max_depth", "parent_head")
        m = expect_map(tree, "grant", keys)
        lim = expect_map(
            m["limits"], "grant.limits", ("max_zones", "max_migrations", "max_delegation_depth")
        )
        return cls(
            parent_head=expect_bytes(m["parent_head"], "grant.parent_head", 32),
            role=expect_text(m["role"], "grant.role"),
            verbs=tuple(
                expect_text(v, "grant.verbs") for v in expect_list(m["verbs"], "grant.verbs")
            ),
            max_depth=expect_int(m["max_depth"], "grant.max_depth"),
            limits=PropagationLimits(
                max_migrations=expect_int(lim["max_migrations"], "grant.limits"),
                max_zones=expect_int(lim["max_zones"], "grant.limits"),
                max_delegation_depth=expect_int(lim["max_delegation_depth"], "grant.limits"),
            ),
            mutable=tuple(
                expect_text(v, "grant.mutable") for v in expect_list(m["mutable"], "grant.mutable")
            ),
            issuer=expect_bytes(m["issuer"], "grant.issuer", 32),
        )


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


def make_grant(
    parent: Agent, role: str, verbs: tuple[str, ...], mutable: tuple[str, ...], host: LocalHost
) -> Signed | Refused:
    """The parent's host grants ``role``/``verbs`` to a child, never wider than the parent."""
    md = parent.mutation_descriptor
    if md is None or parent.lineage is None:
        return Refused("a partial parent cannot delegate")
    if not md.delegation:
        return Refused("the parent's descriptor forbids delegation")
    pathway = next((p for p in md.delegation if p.role == role), None)
    if pathway is None or not set(verbs) <= set(pathway.verbs):
        return Refused(f"the parent may not delegate {sorted(verbs)} to role {role!r}")
    if pathway.max_depth < 1:
        return Refused("the parent's delegation depth is exhausted")
    if not set(mutable) <= set(md.mutable):
        return Refused("the child may not mutate fields the parent may not")
    head = parent.lineage.entries[-1]
    if head.next_signer != host.key:
        return Refused("only the parent's host may grant")
    grant = Grant(
        parent_head=entry_hash(head),
        role=role,
        verbs=tuple(sorted(verbs)),
        max_depth=pathway.max_depth - 1,
        limits=md.limits,
        mutable=tuple(sorted(mutable)),
        issuer=host.key,
    )
    body = grant.to_cbor()
    sig = host.sign(message(TAG_GRANT, body))
    return Signed(TAG_GRANT, body, ((host.key, sig),))


def grant_event(signed: Signed, epoch: int) -> LedgerEvent:
    return LedgerEvent(epoch=epoch, kind=LedgerKind.DELEGATION, data={GRANT_KEY: signed.encode()})


def carried_grant(agent: Agent) -> Grant | None:
    """The first validly signed grant in the agent's ledger, if any."""
    for event in agent.memory.ledger if agent.memory else ():
        raw = event.data.get(GRANT_KEY) if event.kind is LedgerKind.DELEGATION else None
        if not isinstance(raw, bytes):
            continue
        try:
            signed = decode_signed(raw, TAG_GRANT)
            grant = Grant.from_cbor(signed.body)
        except MeshError:
            continue
        key, sig = signed.sigs[0] if len(signed.sigs) == 1 else (b"", b"")
        if key == grant.issuer and verify(grant.issuer, TAG_GRANT, signed.body, sig):
            return grant
    return None


def check_child(child: Agent) -> tuple[str, ...]:
    """Why the child is wider than its grant (empty: within it); from the child alone."""
    if child.lineage is None or child.lineage.pruned is not None:
        return ()
    genesis = child.lineage.entries[0]
    if not genesis.link:
        return ()
    grant = carried_grant(child)
    if grant is None:
        return ("a delegated child carries no valid grant",)
    out: list[str] = []
    if genesis.link != grant.parent_head:
        out.append("genesis does not link to the granting parent's head")
    if child.intent is not None and child.intent.verb not in grant.verbs:
        out.append(f"verb {child.intent.verb!r} was not delegated")
    if child.context is not None and child.context.role != grant.role:
        out.append(f"role {child.context.role!r} is not the delegated role")
    md = child.mutation_descriptor
    if md is not None:
        lim, cap = md.limits, grant.limits
        if (
            lim.max_migrations > cap.max_migrations
            or lim.max_zones > cap.max_zones
            or lim.max_delegation_depth > cap.max_delegation_depth
        ):
            out.append("limits wider than the parent's")
        if not set(md.mutable) <= set(grant.mutable):
            out.append("mutable fields wider than the grant")
        for p in md.delegation:
            if p.max_depth > grant.max_depth or not set(p.verbs) <= set(grant.verbs):
                out.append("delegation pathway wider than the grant")
                break
    return tuple(out)


def mutation_refusal(agent: Agent, fields: tuple[str, ...]) -> str | None:
    """Why a mutation of ``fields`` is refused (None: the descriptor allows it)."""
    md = agent.mutation_descriptor
    if md is None:
        return "no mutation descriptor: mutation requests are refused (SPEC 2.19)"
    wider = sorted(set(fields) - set(md.mutable))
    if wider:
        return f"fields {wider} are not mutable"
    return None
