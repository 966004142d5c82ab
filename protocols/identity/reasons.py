"""Why a slope step is refused: the vocabulary shared by making and checking steps."""

from __future__ import annotations

import enum

from protocols.errors import SlopeError


class SlopeReason(enum.Enum):
    """Outcome of a slope check; every refusal has its own name (issue 4, SPEC 2.11-2.18)."""

    OK = "ok"
    NON_DESCENDANT = "non-descendant"
    """The step does not continue the entry it must follow (prev or DAH chain broken)."""
    REPLAY = "replay"
    """The step is the trusted head itself or an older step of the same slope."""
    FORK = "fork"
    """A different step at or below the trusted depth: a branch off the trusted slope."""
    BAD_REVEAL = "bad-reveal"
    """The revealed secret does not open the previous entry's commitment."""
    BAD_SIGNATURE = "bad-signature"
    """The host signature does not verify."""
    WRONG_SIGNER = "wrong-signer"
    """Signed by a host other than the previous entry's next signer (e.g. after a seal)."""
    UNKNOWN_HOST = "unknown-host"
    """The signing host (or the host record the entry names) is not admitted."""
    REVOKED_HOST = "revoked-host"
    """A revoked host signs the head or is named its next signer."""
    EPOCH_WINDOW = "epoch-window"
    """An epoch goes back, runs ahead of the local epoch, or the head is not fresh."""
    GAP_TOO_LARGE = "gap-too-large"
    """More steps between the trusted head and the new head than the bound allows."""
    BAD_STEP = "bad-step"
    """The DAH does not recompute from the step material."""
    BAD_STATE = "bad-state"
    """The head's state digest is not the digest of the agent's fields."""
    BAD_TOTALS = "bad-totals"
    """Running totals do not follow from the previous entry's."""
    BAD_GENESIS = "bad-genesis"
    """The first step is not a well-formed genesis, or an initialization entry mid-slope."""
    BAD_RECOVERY = "bad-recovery"
    """A recovery entry without a valid quorum token, or within the rate limit."""
    EQUIVOCATION = "equivocation"
    """One signer made two different entries on the same previous entry."""
    NEEDS_STEPS = "needs-steps"
    """The agent no longer carries the trusted head: defer until the missing steps arrive."""
    OVERFLOW = "overflow"
    """Refused unchecked: the delayed-validation queue overflowed and this was the oldest."""
    TIMEOUT = "timeout"
    """Refused unchecked: the missing steps did not arrive before the deadline."""
    MALFORMED = "malformed"
    """The entries are not a structurally valid lineage."""


class SlopeRefusal(SlopeError):
    """A SlopeError that names the refusal reason and the step (index) it happened at."""

    def __init__(self, reason: SlopeReason, step: int, message: str, *, path: str = "") -> None:
        self.reason = reason
        self.step = step
        super().__init__(f"{reason.value}: {message}", path=path or f"lineage.entries[{step}]")
