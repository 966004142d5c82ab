"""Dynamic Agent Hash slope (SPEC 2.11, 2.13; DESIGN 6): making entangled, signed steps.

The step::

    mu    = H(DDH_host || mutation_class || epoch)
    DAH_t = H(tag || DAH_{t-1} || mu || state_digest || ext_t || salt_t || c_{t+1})

``ext_t`` is the entry's body digest: sha256 of every entry field except ``dah`` and ``sig``
(so it holds the reveal ``s_t``, and binds next signer, zone, totals and names too: a change
to any of them changes the DAH). ``salt_t`` is 16 fresh bytes from the caller's rng,
``c_{t+1} = H(s_{t+1})`` commits to the next step's secret, which the host keeps in
:class:`~protocols.identity.host_secrets.HostSecrets`. The host signs ``body || DAH``.

Signer rule: entry t+1 is signed by the ``next_signer`` entry t names and reveals the secret
entry t committed to. A migration *seal* names the new host and carries the commitment the
new host sent; after it the old host cannot extend the slope.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Final

from protocols.agent import lineage as lineage_mod
from protocols.agent.schema import (
    GENESIS_PREV,
    Agent,
    Context,
    Intent,
    Lineage,
    LineageEntry,
    Memory,
    MutationClass,
    MutationDescriptor,
    PolicyRef,
    Totals,
)
from protocols.errors import SchemaError
from protocols.identity.hashing import DAH_TAG, MU_TAG, ZONE_PATH_TAG, h, text, u64
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import SECRET_LEN, HostSecrets
from protocols.identity.reasons import SlopeReason, SlopeRefusal

SALT_LEN: Final = 16
GENESIS_DAH_PREV: Final = bytes(32)
"""DAH_{-1}: the predecessor value genesis steps from."""
_ZERO_SIG: Final = bytes(64)


def mu(ddh: bytes, cls: MutationClass, epoch: int) -> bytes:
    """Host mutation token: entangles the step with the host's DDH, the class and the epoch."""
    return h(MU_TAG, ddh, text(cls.value), u64(epoch))


def dah_step(
    prev: bytes,
    mu_token: bytes,
    state: bytes,
    ext: bytes,
    salt: bytes,
    commit: bytes,
    tag: bytes = DAH_TAG,
) -> bytes:
    """One DAH step (all inputs fixed length, so the concatenation is unambiguous)."""
    return h(tag, prev, mu_token, state, ext, salt, commit)


def entry_dah(prev_dah: bytes, entry: LineageEntry, body: bytes) -> bytes:
    """Recompute an entry's DAH from its predecessor's DAH and its own body digest."""
    return dah_step(
        prev_dah,
        mu(entry.ddh, entry.type, entry.epoch),
        entry.state_digest,
        body,
        entry.salt,
        entry.commit,
    )


def zone_path(prev: bytes, zone: str) -> bytes:
    """Fold a newly entered zone into the running zone-path hash."""
    return h(ZONE_PATH_TAG, prev, text(zone))


def genesis_totals(zone: str, delegation: int) -> Totals:
    return Totals(
        depth=0,
        zones=1,
        zone_path=zone_path(bytes(32), zone),
        delegation=delegation,
        migrations=0,
        last_recovery=0,
    )


def next_totals(prev: LineageEntry, cls: MutationClass, zone: str, epoch: int) -> Totals:
    """Running totals of the entry after ``prev`` (DESIGN 6 checkpoints)."""
    t = prev.totals
    moved = zone != prev.zone
    return Totals(
        depth=t.depth + 1,
        zones=t.zones + (1 if moved else 0),
        zone_path=zone_path(t.zone_path, zone) if moved else t.zone_path,
        delegation=t.delegation,
        migrations=t.migrations + (1 if cls is MutationClass.MIGRATION else 0),
        last_recovery=epoch + 1 if cls is MutationClass.RECOVERY else t.last_recovery,
    )


@dataclass(frozen=True, slots=True)
class StepMaterial:
    """Everything an entry holds except its DAH and signature (validated by ``make_entry``)."""

    prev: bytes
    prev_dah: bytes
    cls: MutationClass
    epoch: int
    zone: str
    link: bytes
    state: bytes
    reveal: bytes
    salt: bytes
    commit: bytes
    next_signer: bytes
    totals: Totals
    descriptor: bytes
    proof: bytes = b""


def make_entry(material: StepMaterial, host: LocalHost) -> LineageEntry:
    """Build, step and sign one entry as ``host``."""
    m = material
    if len(m.salt) != SALT_LEN or len(m.reveal) != SECRET_LEN or len(m.commit) != 32:
        raise SchemaError("salt, reveal or commit of the wrong length", path="entry")
    unsigned = LineageEntry(
        prev=m.prev,
        type=m.cls,
        epoch=m.epoch,
        zone=m.zone,
        link=m.link,
        state_digest=m.state,
        dah=GENESIS_DAH_PREV,
        host=host.key,
        ddh=host.ddh.value,
        next_signer=m.next_signer,
        reveal=m.reveal,
        salt=m.salt,
        commit=m.commit,
        totals=m.totals,
        descriptor=m.descriptor,
        host_record=host.record,
        proof=m.proof,
        sig=_ZERO_SIG,
    )
    body = lineage_mod.body_digest(unsigned)
    dah = entry_dah(m.prev_dah, unsigned, body)
    sig = host.sign(lineage_mod.signing_message(body, dah))
    return replace(unsigned, dah=dah, sig=sig)


@dataclass(frozen=True, slots=True)
class Origin:
    """How a new slope starts: delegation edge and depth, and the descriptor it is made under."""

    link: bytes = b""
    delegation: int = 0
    descriptor: bytes = b""

    def __post_init__(self) -> None:
        if len(self.link) not in (0, 32) or len(self.descriptor) not in (0, 32):
            raise SchemaError("link and descriptor are empty or 32 bytes", path="origin")
        if (self.delegation > 0) != bool(self.link):
            raise SchemaError("a delegation depth needs a link to the parent", path="origin")


@dataclass(frozen=True, slots=True)
class Step:
    """Result of making a step: the new agent, the host's new secrets and the new entry."""

    agent: Agent
    secrets: HostSecrets
    entry: LineageEntry


def _with_lineage(agent: Agent, line: Lineage) -> Agent:
    return replace(agent, lineage=line)


def genesis(
    body: Agent,
    host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
    origin: Origin = Origin(),
) -> Step:
    """Give ``body`` (an agent without lineage) its genesis entry, signed by ``host``.

    The genesis reveal is a fresh extractor token from ``rng``: it opens no commitment.
    """
    if body.context is None:
        raise SchemaError("a new agent needs a context (its zone)", path="context")
    commit, secrets = secrets.fresh(rng)
    zone = body.context.zone
    entry = make_entry(
        StepMaterial(
            prev=GENESIS_PREV,
            prev_dah=GENESIS_DAH_PREV,
            cls=MutationClass.INITIALIZATION,
            epoch=epoch,
            zone=zone,
            link=origin.link,
            state=lineage_mod.state_digest(replace(body, lineage=None)),
            reveal=rng.randbytes(SECRET_LEN),
            salt=rng.randbytes(SALT_LEN),
            commit=commit,
            next_signer=host.key,
            totals=genesis_totals(zone, origin.delegation),
            descriptor=origin.descriptor,
        ),
        host,
    )
    return Step(_with_lineage(body, lineage_mod.start(entry)), secrets, entry)


@dataclass(frozen=True, slots=True)
class Handoff:
    """A migration seal's target: the new host's key and the commitment it sent."""

    next_signer: bytes
    commit: bytes


@dataclass(frozen=True, slots=True)
class Change:
    """One mutation: its class, the fields it replaces (None: unchanged), and for a
    migration seal the handoff. ``descriptor`` None keeps the head's descriptor name."""

    cls: MutationClass
    intent: Intent | None = None
    context: Context | None = None
    memory: Memory | None = None
    policy_ref: tuple[PolicyRef, ...] | None = None
    mutation_descriptor: MutationDescriptor | None = None
    handoff: Handoff | None = None
    descriptor: bytes | None = None
    link: bytes = b""

    def __post_init__(self) -> None:
        if self.cls in (MutationClass.INITIALIZATION, MutationClass.RECOVERY):
            raise SchemaError(
                f"{self.cls.value} entries are made by genesis/recovery, not mutate",
                path="change.cls",
            )
        if self.handoff is not None and self.cls is not MutationClass.MIGRATION:
            raise SchemaError("only a migration entry may hand off", path="change.handoff")

    def apply(self, agent: Agent) -> Agent:
        return replace(
            agent,
            intent=self.intent if self.intent is not None else agent.intent,
            context=self.context if self.context is not None else agent.context,
            memory=self.memory if self.memory is not None else agent.memory,
            policy_ref=self.policy_ref if self.policy_ref is not None else agent.policy_ref,
            mutation_descriptor=(
                self.mutation_descriptor
                if self.mutation_descriptor is not None
                else agent.mutation_descriptor
            ),
        )


def _head(agent: Agent) -> LineageEntry:
    if agent.lineage is None or not agent.lineage.entries:
        raise SchemaError("agent has no lineage to extend", path="lineage")
    return agent.lineage.entries[-1]


def mutate(
    agent: Agent,
    change: Change,
    host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
) -> Step:
    """Apply ``change`` as ``host`` at ``epoch``: append an entangled, signed entry.

    Refuses (SlopeRefusal) when ``host`` is not the head's next signer, holds no secret for
    the head's commitment, or the epoch goes back. With a handoff (seal) the entry names the
    new host and its commitment and this host keeps no new secret.
    """
    head = _head(agent)
    assert agent.lineage is not None
    step_no = len(agent.lineage.entries)
    if head.next_signer != host.key:
        raise SlopeRefusal(
            SlopeReason.WRONG_SIGNER, step_no, "this host is not the head's next signer"
        )
    if epoch < head.epoch:
        raise SlopeRefusal(
            SlopeReason.EPOCH_WINDOW, step_no, f"epoch {epoch} is before {head.epoch}"
        )
    reveal = secrets.get(head.commit)
    if reveal is None:
        raise SlopeRefusal(
            SlopeReason.BAD_REVEAL, step_no, "this host holds no secret for the head's commit"
        )
    secrets = secrets.take(head.commit)
    changed = change.apply(agent)
    if changed.context is None:
        raise SchemaError("agent has no context", path="context")
    if change.handoff is not None:
        commit, next_signer = change.handoff.commit, change.handoff.next_signer
    else:
        commit, secrets = secrets.fresh(rng)
        next_signer = host.key
    zone = changed.context.zone
    entry = make_entry(
        StepMaterial(
            prev=lineage_mod.entry_hash(head),
            prev_dah=head.dah,
            cls=change.cls,
            epoch=epoch,
            zone=zone,
            link=change.link,
            state=lineage_mod.state_digest(changed),
            reveal=reveal,
            salt=rng.randbytes(SALT_LEN),
            commit=commit,
            next_signer=next_signer,
            totals=next_totals(head, change.cls, zone, epoch),
            descriptor=head.descriptor if change.descriptor is None else change.descriptor,
        ),
        host,
    )
    line = lineage_mod.extend(agent.lineage, entry)
    return Step(_with_lineage(changed, line), secrets, entry)


def arrival(
    host: LocalHost, secrets: HostSecrets, rng: random.Random
) -> tuple[Handoff, HostSecrets]:
    """The handoff a new host sends the old one: its key and a fresh commitment."""
    commit, secrets = secrets.fresh(rng)
    return Handoff(next_signer=host.key, commit=commit), secrets
