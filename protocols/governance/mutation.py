"""The mutation rule of admission (SPEC 2.1 ``mutation_descriptor``, 2.7, 2.8).

A successor state may change only the fields its **predecessor's** ``mutation_descriptor``
lists as ``mutable`` (names from :data:`~protocols.agent.schema.MUTABLE_FIELDS`: ``intent``,
``context.<sub>``, ``memory``), and its own descriptor may not be wider than the
predecessor's. ``policy_ref`` and ``mutation_descriptor`` are never listed as mutable: a host
may narrow its descriptor on its own word, never widen it, and never rebind its policy.

The host checks this before signing (``POST /mutate``); admission checks it again so that a
host that signs a forbidden successor is refused by every node that holds the predecessor.
The wire verdict is IGNORE, not REJECT: a node that lacks the predecessor (a late joiner)
cannot judge and forwards the state, and that honest relay must not be penalised for it.
The pipeline applies the rule only when the node holds the **direct** predecessor: the state
whose head entry is the one the new head follows (``head.prev``) and whose fields hash to the
state digest that entry commits to. That state is then named by hash from the successor's
own bytes (the signed chain ``head.prev`` -> entry -> ``state_digest``), so the verdict
follows from the bytes plus an object they name by hash, like the policy verdicts (DESIGN 5).
A node without it cannot judge the change and the rule is silent there.

Legitimate transitions that change a field the descriptor may not list, each allowed by
construction (every other field they change still needs the descriptor):

- **Execution record.** An EXECUTION entry (``execute.execute_as_host``) appends the
  handler's ``execution`` ledger events to ``memory``: the agent's host records in the agent's
  own memory what it ran (SPEC 2.9), whether or not the descriptor lets the agent's memory be
  mutated otherwise. Only an append of ``execution`` events is allowed: the earlier ledger,
  the access log and the handles stay as they were.
- **Quorum-certified mutation.** A POLICY or ROLE_CHANGE entry carries a certificate whose
  votes sign the whole successor state (``pipeline.proposal_subject`` = hash of the entry
  followed and the new state's digest), and the quorum stage REJECTs the entry when the
  certificate is missing or invalid. The zone's validators, not the host alone, authorised
  every field of that state (SPEC 2.7), so its field changes and the certificate's ledger
  event are allowed. Widening the descriptor is not: only the meta-authority may allow that
  (SPEC 2.8), with an ``authorise-widening`` override.
- **Zone entry of a migration.** The admission entry (``migration.migrate``, the handoff
  service) sets ``context.zone`` to the zone it enters and rebinds ``policy_ref`` to that
  zone's contract; the migration, cross-zone and alignment checks judge both.

A migration seal and a recovery entry change no field. A delegated child starts its own slope
at a genesis linked to its parent, so it never has a predecessor here; its grant is checked by
:func:`protocols.governance.delegation.check_child`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from protocols.agent.lineage import entry_hash, state_digest
from protocols.agent.schema import Agent, LedgerKind, Memory, MutationClass, MutationDescriptor

CONTEXT_FIELDS: Final = ("zone", "nest", "role", "principal", "constraints")
"""The subfields of ``context``, each named ``context.<sub>`` in a descriptor."""


@dataclass(frozen=True, slots=True)
class Authorised:
    """Which by-construction allowances apply to the successor (decided by the pipeline)."""

    certified: bool = False
    """The head is of a class that needs a quorum certificate (checked by the quorum stage)."""
    zone_entry: bool = False
    """The head is the admission entry of a migration into its zone."""
    widening: bool = False
    """The meta-authority authorises widening the descriptor (an override holds)."""


def direct_predecessor(previous: Agent | None, agent: Agent) -> bool:
    """``previous`` is the state the new head follows, with the fields its head commits to."""
    if previous is None or previous.lineage is None or agent.lineage is None:
        return False
    before = previous.lineage.entries[-1]
    if agent.lineage.entries[-1].prev != entry_hash(before):
        return False
    return state_digest(previous) == before.state_digest


def changed_fields(before: Agent, after: Agent) -> tuple[str, ...]:
    """Descriptor names of the fields that differ between two states (sorted).

    ``intent``, ``context.<sub>``, ``memory`` are the names a descriptor may list;
    ``policy_ref`` and ``mutation_descriptor`` are named too (they are never mutable).
    """
    out: list[str] = []
    if before.intent != after.intent:
        out.append("intent")
    b, a = before.context, after.context
    for sub in CONTEXT_FIELDS:
        if b is None or a is None:
            if b is not a:
                out.append(f"context.{sub}")
        elif getattr(b, sub) != getattr(a, sub):
            out.append(f"context.{sub}")
    if before.memory != after.memory:
        out.append("memory")
    if before.policy_ref != after.policy_ref:
        out.append("policy_ref")
    if before.mutation_descriptor != after.mutation_descriptor:
        out.append("mutation_descriptor")
    return tuple(sorted(out))


def descriptor_widening(
    before: MutationDescriptor | None, after: MutationDescriptor
) -> Iterator[str]:
    """How ``after`` is wider than ``before``, as ``mutation_descriptor.<part>`` names.

    A predecessor without a descriptor allows nothing (SPEC 2.19), so any descriptor is wider.
    """
    if before is None:
        yield "mutation_descriptor"
        return
    lim, old = after.limits, before.limits
    for name in ("max_migrations", "max_zones", "max_delegation_depth"):
        if getattr(lim, name) > getattr(old, name):
            yield f"mutation_descriptor.limits.{name}"
    extra = sorted(set(after.mutable) - set(before.mutable))
    if extra:
        yield f"mutation_descriptor.mutable (adds {', '.join(extra)})"
    granted = {(p.role, v): p.max_depth for p in before.delegation for v in p.verbs}
    for p in after.delegation:
        if any((p.role, v) not in granted or p.max_depth > granted[(p.role, v)] for v in p.verbs):
            yield f"mutation_descriptor.delegation (role {p.role!r})"


def _execution_record(before: Memory | None, after: Memory | None) -> bool:
    """``after`` is ``before`` with only ``execution`` ledger events appended."""
    if before is None or after is None:
        return False
    n = len(before.ledger)
    return (
        after.access_log == before.access_log
        and after.handles == before.handles
        and after.ledger[:n] == before.ledger
        and all(e.kind is LedgerKind.EXECUTION for e in after.ledger[n:])
    )


def violations(previous: Agent, agent: Agent, allowed: Authorised) -> tuple[str, ...]:
    """What the successor ``agent`` changed or widened that ``previous`` does not permit.

    ``previous`` must be the direct predecessor (:func:`direct_predecessor`). Each item names
    the field; empty when the transition is permitted.
    """
    assert agent.lineage is not None
    md = previous.mutation_descriptor
    mutable = frozenset(md.mutable) if md is not None else frozenset()
    head = agent.lineage.entries[-1]
    out: list[str] = []
    for name in changed_fields(previous, agent):
        if name == "mutation_descriptor":
            continue  # judged below: narrowing is allowed, widening is not
        if name in mutable or allowed.certified:
            continue
        if name == "memory" and head.type is MutationClass.EXECUTION:
            if _execution_record(previous.memory, agent.memory):
                continue
            out.append("memory (an execution entry may only append execution events)")
            continue
        if allowed.zone_entry and name == "policy_ref":
            continue
        if (
            allowed.zone_entry
            and name == "context.zone"
            and agent.context is not None
            and agent.context.zone == head.zone
        ):
            continue
        out.append(name)
    after_md = agent.mutation_descriptor
    if after_md is not None and not allowed.widening and after_md != md:
        out.extend(descriptor_widening(md, after_md))
    return tuple(out)
