"""Zone migration (SPEC 2.10, DESIGN 6): a seal on the source, an admission on the destination.

The old host appends a MIGRATION *seal* entry (still in the source zone) naming the new host
as next signer with the commitment it sent; the new host appends the *admission* entry, the
first entry in the destination zone, signed as the seal's next signer. Checked from the
agent's bytes and the named descriptor:

- every zone change is an admission directly after a seal (else refused: unsealed);
- the number of migrations is at most the descriptor's depth cap (else refused);
- the admission comes within the zone's tolerance of epochs after the seal (else the slope is
  discontinuous: quarantine, resolved within the quarantine TTL budget).

The zone path is reconstructible from lineage alone (:func:`zone_path`).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace

from protocols.agent.schema import Agent, MutationClass, PolicyRef
from protocols.governance.zone import ZoneDescriptor
from protocols.identity.dah import Change, Step, arrival, mutate
from protocols.identity.host import LocalHost
from protocols.identity.host_secrets import HostSecrets


@dataclass(frozen=True, slots=True)
class MigrationProblem:
    code: str
    reason: str


def check(agent: Agent, desc: ZoneDescriptor) -> MigrationProblem | None:
    assert agent.lineage is not None
    entries = agent.lineage.entries
    head = entries[-1]
    if head.totals.migrations > desc.migration_depth_cap:
        return MigrationProblem(
            "migration-depth",
            f"{head.totals.migrations} migrations, cap {desc.migration_depth_cap}",
        )
    for seal, entry in itertools.pairwise(entries):
        if entry.zone == seal.zone:
            continue
        if seal.type is not MutationClass.MIGRATION:
            return MigrationProblem("migration-unsealed", "zone change without a seal entry")
        if entry.epoch - seal.epoch > desc.migration_tolerance_epochs:
            return MigrationProblem(
                "migration-gap",
                f"admission {entry.epoch - seal.epoch} epochs after its seal, tolerance "
                f"{desc.migration_tolerance_epochs}",
            )
    return None


def zone_path(agent: Agent) -> tuple[tuple[str, int], ...]:
    """(zone, epoch entered) for each zone on the carried lineage, from seal/admission pairs."""
    assert agent.lineage is not None
    entries = agent.lineage.entries
    path = [(entries[0].zone, entries[0].epoch)]
    for prev, entry in itertools.pairwise(entries):
        if entry.zone != prev.zone:
            path.append((entry.zone, entry.epoch))
    return tuple(path)


@dataclass(frozen=True, slots=True)
class Hosted:
    """A host as a migration party: its identity and the secrets it holds."""

    host: LocalHost
    secrets: HostSecrets


def migrate(
    agent: Agent,
    source: Hosted,
    dest: Hosted,
    to_zone: str,
    epochs: tuple[int, int],
    rng: random.Random,
    descriptor: bytes | None = None,
    policy_ref: tuple[PolicyRef, ...] | None = None,
) -> tuple[Step, Step]:
    """Seal on ``source`` at epochs[0], admission on ``dest`` at epochs[1] (both steps).

    The admission names the destination's ``descriptor`` and rebinds ``policy_ref`` to the
    destination's contract: the agent is judged by the governance of the zone it enters.
    """
    handoff, dest_secrets = arrival(dest.host, dest.secrets, rng)
    seal = mutate(
        agent,
        Change(cls=MutationClass.MIGRATION, handoff=handoff),
        source.host,
        source.secrets,
        epochs[0],
        rng,
    )
    assert seal.agent.context is not None
    moved = replace(seal.agent.context, zone=to_zone)
    admitted = mutate(
        seal.agent,
        Change(
            cls=MutationClass.STATE_TRANSITION,
            context=moved,
            descriptor=descriptor,
            policy_ref=policy_ref,
        ),
        dest.host,
        dest_secrets,
        epochs[1],
        rng,
    )
    return seal, admitted
