"""Slope-health monitor and anchor rotation (SPEC 2.18 "Anchor rotation").

A slope should not live forever: the longer it runs, the more its entropy and its hosts are
exposed. The monitor follows one tracked slope step by step and says *rotate*, with every
reason, when a threshold is crossed:

- ``ELAPSED``: more than ``max_epochs`` since the slope's anchor (its genesis epoch);
- ``DRIFT``: a step's cadence residual fell in the BREAK band (:mod:`.drift`);
- ``CADENCE``: more than ``max_revalidations`` steps needed re-validation (middle band);
- ``ENTROPY_REUSE``: a salt or reveal seen earlier on this slope came back;
- ``TRUST_DEGRADED``: the caller's trust score for the slope fell below ``min_trust``;
- ``COMPROMISE``: a compromise signal (an equivocation, fork or forged signature on this
  slope, or one the operator reports).

Rotation itself is :mod:`.recovery` and :mod:`.dah`: :func:`rotate` makes a fresh genesis
for the same agent (new anchor, new initial identity) and the :class:`ForwardLink` from the
old head, and retires the old head's secret so the old slope cannot be extended.
Verifiers follow it with :func:`follow_rotation` (``SlopeTracker.rotate``).

Rotation is rate-limited by one rule both sides can compute: a slope may be rotated only
``rotation_gap`` epochs after its own genesis (which, for a rotated slope, is the previous
rotation). Inside the limit :class:`RotationRefused` says RATE_LIMITED; a slope that must
change sooner (e.g. compromised at birth) goes through quorum recovery instead.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field, replace
from typing import Final

from protocols.agent.schema import Agent, Lineage, LineageEntry
from protocols.errors import SchemaError, SlopeError
from protocols.identity import drift as drift_mod
from protocols.identity.dah import Origin, Step, genesis
from protocols.identity.drift import DriftBand, DriftParams, DriftState
from protocols.identity.host import HostDirectory, LocalHost
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.reasons import SlopeReason
from protocols.identity.recovery import ForwardLink, forward_link
from protocols.identity.slope import DEFAULT_PARAMS, SlopeCheck, SlopeParams, SlopeTracker

TRUST_MAX: Final = 100


class RotateReason(enum.Enum):
    """Why the monitor says rotate (in this order in reports)."""

    ELAPSED = "elapsed"
    DRIFT = "drift"
    CADENCE = "cadence"
    ENTROPY_REUSE = "entropy-reuse"
    TRUST_DEGRADED = "trust-degraded"
    COMPROMISE = "compromise"


_ORDER: Final = tuple(RotateReason)

COMPROMISE_REASONS: Final = frozenset(
    {SlopeReason.EQUIVOCATION, SlopeReason.FORK, SlopeReason.BAD_SIGNATURE}
)
"""Slope refusals that signal compromise of the slope (someone else can sign or branch it)."""


class RefusalReason(enum.Enum):
    RATE_LIMITED = "rate-limited"
    """Inside ``rotation_gap`` epochs of the slope's genesis (the previous rotation)."""
    NOT_NEEDED = "not-needed"
    """No threshold is crossed and the rotation was not forced."""


class RotationRefused(SlopeError):
    """A rotation refused with a typed reason."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {message}", path="rotation")


@dataclass(frozen=True, slots=True)
class HealthParams:
    """Thresholds of the monitor and the rotation rate limit (epochs; trust 0..100)."""

    max_epochs: int = 4096
    max_revalidations: int = 8
    salt_memory: int = 256
    min_trust: int = 50
    rotation_gap: int = 64
    drift: DriftParams = field(default_factory=DriftParams)

    def __post_init__(self) -> None:
        if self.max_epochs < 1 or self.rotation_gap < 0:
            raise SchemaError("max_epochs >= 1 and rotation_gap >= 0", path="health")
        if self.max_revalidations < 0 or self.salt_memory < 1:
            raise SchemaError("max_revalidations >= 0 and salt_memory >= 1", path="health")
        if not 0 <= self.min_trust <= TRUST_MAX:
            raise SchemaError(f"min_trust must be in 0..{TRUST_MAX}", path="health.min_trust")


DEFAULT_HEALTH: Final = HealthParams()


@dataclass(frozen=True, slots=True)
class SlopeHealth:
    """What the monitor knows about one slope (immutable; every update returns a new one).

    ``entropy`` keeps the last ``salt_memory`` salts and reveals, oldest first.
    """

    anchor: bytes
    anchor_epoch: int
    drift: DriftState
    entropy: tuple[bytes, ...] = ()
    revalidations: int = 0
    trust: int = TRUST_MAX
    flags: frozenset[RotateReason] = frozenset()
    notes: tuple[str, ...] = ()
    depth: int = -1
    """Lineage depth of the last step observed (-1: none beyond the anchor's head)."""


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The monitor's answer at an epoch: every crossed threshold, with details."""

    epoch: int
    reasons: tuple[RotateReason, ...]
    details: tuple[str, ...]
    band: DriftBand | None = None

    @property
    def rotate(self) -> bool:
        return bool(self.reasons)


def track(
    anchor: bytes, anchor_epoch: int, head_epoch: int | None = None, head_depth: int = 0
) -> SlopeHealth:
    """Start monitoring the slope with genesis DAH ``anchor`` (made at ``anchor_epoch``),
    whose last trusted step is at ``head_epoch`` and ``head_depth`` (default: the genesis)."""
    if anchor_epoch < 0:
        raise SchemaError("anchor epoch must be >= 0", path="health.anchor_epoch")
    last = anchor_epoch if head_epoch is None else head_epoch
    if last < anchor_epoch:
        raise SchemaError("head epoch before the anchor epoch", path="health.head_epoch")
    return SlopeHealth(
        anchor=anchor, anchor_epoch=anchor_epoch, drift=drift_mod.start(last), depth=head_depth
    )


def track_lineage(line: Lineage) -> SlopeHealth:
    """Monitor a slope from a lineage the caller trusts (anchor = its genesis)."""
    head = line.entries[-1]
    return track(line.genesis_dah, line.genesis_epoch, head.epoch, head.totals.depth)


def _flag(health: SlopeHealth, reason: RotateReason, note: str) -> SlopeHealth:
    return replace(health, flags=health.flags | {reason}, notes=(*health.notes, note))


def observe(
    health: SlopeHealth, entry: LineageEntry, params: HealthParams = DEFAULT_HEALTH
) -> tuple[SlopeHealth, HealthReport]:
    """Take one new (verified) step of the slope into account and report at its epoch."""
    result = drift_mod.observe(health.drift, entry.epoch, params.drift)
    health = replace(health, drift=result.state, depth=entry.totals.depth)
    if result.band is DriftBand.BREAK:
        health = _flag(
            health,
            RotateReason.DRIFT,
            f"drift break at epoch {entry.epoch}: gap {result.gap}, residual "
            f"{result.residual / drift_mod.SCALE:g} epochs",
        )
    elif result.band is DriftBand.REVALIDATE:
        health = replace(health, revalidations=health.revalidations + 1)
    seen = set(health.entropy)
    fresh: list[bytes] = []
    for token, name in ((entry.salt, "salt"), (entry.reveal, "reveal")):
        if token in seen or token in fresh:
            health = _flag(
                health, RotateReason.ENTROPY_REUSE, f"{name} reused at epoch {entry.epoch}"
            )
        else:
            fresh.append(token)
    health = replace(health, entropy=(*health.entropy, *fresh)[-params.salt_memory :])
    report = assess(health, entry.epoch, params)
    return health, replace(report, band=result.band)


_SEVERITY: Final = (DriftBand.NORMAL, DriftBand.REVALIDATE, DriftBand.BREAK)


def observe_lineage(
    health: SlopeHealth, line: Lineage, params: HealthParams = DEFAULT_HEALTH
) -> tuple[SlopeHealth, HealthReport]:
    """Observe every entry of ``line`` deeper than the last one observed (e.g. after a
    ``SlopeTracker.accept``); the report carries the worst drift band among them."""
    if line.genesis_dah != health.anchor:
        raise SchemaError("health tracks another slope", path="health.anchor")
    worst: DriftBand | None = None
    for entry in line.entries:
        if entry.totals.depth <= health.depth:
            continue
        health, report = observe(health, entry, params)
        if report.band is not None and (
            worst is None or _SEVERITY.index(report.band) > _SEVERITY.index(worst)
        ):
            worst = report.band
    return health, replace(assess(health, health.drift.last_epoch, params), band=worst)


def degrade_trust(health: SlopeHealth, score: int) -> SlopeHealth:
    """Set the caller's trust score for the slope (0..100; e.g. share of vouching peers)."""
    if not 0 <= score <= TRUST_MAX:
        raise SchemaError(f"trust must be in 0..{TRUST_MAX}", path="health.trust")
    return replace(health, trust=score)


def compromised(health: SlopeHealth, detail: str) -> SlopeHealth:
    """Record a compromise signal (operator report, leaked host key, ...)."""
    return _flag(health, RotateReason.COMPROMISE, detail)


def from_check(health: SlopeHealth, check: SlopeCheck) -> SlopeHealth:
    """Turn a slope refusal that means compromise (equivocation, fork, forged signature on
    this slope) into a compromise signal; other results leave the health unchanged."""
    if check.reason in COMPROMISE_REASONS:
        return compromised(health, f"{check.reason.value} at step {check.step}: {check.message}")
    return health


def assess(health: SlopeHealth, epoch: int, params: HealthParams = DEFAULT_HEALTH) -> HealthReport:
    """Every crossed threshold at ``epoch`` (pure; the same state and epoch, the same report)."""
    reasons = set(health.flags)
    details = list(health.notes)
    elapsed = epoch - health.anchor_epoch
    if elapsed > params.max_epochs:
        reasons.add(RotateReason.ELAPSED)
        details.append(f"{elapsed} epochs since the anchor, limit {params.max_epochs}")
    if health.revalidations > params.max_revalidations:
        reasons.add(RotateReason.CADENCE)
        details.append(
            f"{health.revalidations} re-validated steps, limit {params.max_revalidations}"
        )
    if health.trust < params.min_trust:
        reasons.add(RotateReason.TRUST_DEGRADED)
        details.append(f"trust {health.trust} below {params.min_trust}")
    return HealthReport(epoch, tuple(r for r in _ORDER if r in reasons), tuple(details))


def rate_limit(anchor_epoch: int, epoch: int, params: HealthParams) -> RotationRefused | None:
    """The refusal when a slope anchored at ``anchor_epoch`` may not rotate at ``epoch``."""
    if epoch - anchor_epoch < params.rotation_gap:
        return RotationRefused(
            RefusalReason.RATE_LIMITED,
            f"slope anchored at epoch {anchor_epoch}; no rotation before epoch "
            f"{anchor_epoch + params.rotation_gap}",
        )
    return None


@dataclass(frozen=True, slots=True)
class Rotation:
    """A rotation: the agent on its fresh slope, the link from the old head, and the new
    health (monitoring the new anchor)."""

    step: Step
    link: ForwardLink
    health: SlopeHealth
    reasons: tuple[RotateReason, ...]


def rotate(
    agent: Agent,
    health: SlopeHealth,
    host: LocalHost,
    secrets: HostSecrets,
    epoch: int,
    rng: random.Random,
    params: HealthParams = DEFAULT_HEALTH,
    *,
    force: bool = False,
) -> Rotation:
    """Rotate ``agent`` to a fresh slope as ``host`` (the head's next signer).

    Refuses (RotationRefused) inside the rate limit, or when no threshold is crossed and
    ``force`` is not set; SlopeRefusal WRONG_SIGNER when ``host`` may not link the old head.
    """
    line = agent.lineage
    if line is None or not line.entries:
        raise SchemaError("agent has no lineage to rotate", path="lineage")
    if line.genesis_dah != health.anchor:
        raise SchemaError("health tracks another slope", path="health.anchor")
    refused = rate_limit(line.genesis_epoch, epoch, params)
    if refused is not None:
        raise refused
    report = assess(health, epoch, params)
    if not report.rotate and not force:
        raise RotationRefused(RefusalReason.NOT_NEEDED, "no health threshold is crossed")
    head = line.entries[-1]
    delegation = head.totals.delegation
    first = line.entries[0] if line.pruned is None else None
    if delegation and first is None:
        raise SchemaError(
            "a delegated agent whose genesis was pruned cannot rotate here", path="lineage"
        )
    origin = Origin(
        link=first.link if delegation and first is not None else b"",
        delegation=delegation,
        descriptor=head.descriptor,
    )
    made = genesis(
        replace(agent, lineage=None), host, secrets.take(head.commit), epoch, rng, origin
    )
    link = forward_link(head, made.entry, host, epoch)
    return Rotation(made, link, track(made.entry.dah, epoch), report.reasons)


def follow_rotation(
    tracker: SlopeTracker,
    old: Lineage,
    link: ForwardLink,
    agent: Agent,
    hosts: HostDirectory,
    *,
    epoch: int,
    params: SlopeParams = DEFAULT_PARAMS,
    health: HealthParams = DEFAULT_HEALTH,
) -> SlopeCheck:
    """Verifier side: follow a rotation from the trusted ``old`` lineage to ``agent``'s new
    slope (``SlopeTracker.rotate``), refusing (RotationRefused) a link inside the limit."""
    refused = rate_limit(old.genesis_epoch, link.epoch, health)
    if refused is not None:
        raise refused
    return tracker.rotate(
        old.genesis_dah, old.entries[-1], link, agent, hosts, epoch=epoch, params=params
    )


__all__ = [
    "COMPROMISE_REASONS",
    "DEFAULT_HEALTH",
    "HealthParams",
    "HealthReport",
    "RefusalReason",
    "RotateReason",
    "Rotation",
    "RotationRefused",
    "SlopeHealth",
    "assess",
    "compromised",
    "degrade_trust",
    "follow_rotation",
    "from_check",
    "observe",
    "observe_lineage",
    "rate_limit",
    "rotate",
    "track",
    "track_lineage",
]
