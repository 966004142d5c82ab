"""Predictive drift (SPEC 2.18; SPEC 5 ambiguity 19): residual of each step against a forecast.

A slope's cadence is the sequence of epoch gaps between consecutive entries. The forecast is
an exponentially weighted moving average (EWMA) of those gaps; each new step's residual is
``|gap - forecast|``. Three bands follow from two thresholds:

- residual <= ``low``: NORMAL (accept as usual);
- ``low`` < residual <= ``high``: REVALIDATE: check the step again (full slope check, fresh
  host lookup), **never reject for drift alone**;
- residual > ``high``: BREAK: the slope's cadence is broken; the caller recovers or rotates
  (:mod:`protocols.identity.health` counts these).

Arithmetic is integer fixed point (``SCALE`` units per epoch), so every node and the
simulator compute bit-identical forecasts and bands from the same epochs. A BREAK does not
move the forecast (an outlier must not teach the model); NORMAL and REVALIDATE do.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from protocols.agent.schema import LineageEntry
from protocols.errors import SchemaError, SlopeError

SCALE: Final = 1000
"""Fixed-point units per epoch: forecasts and residuals are in milli-epochs."""


class DriftBand(enum.Enum):
    """Which band a step's residual falls in."""

    NORMAL = "normal"
    REVALIDATE = "revalidate"
    BREAK = "break"


@dataclass(frozen=True, slots=True)
class DriftParams:
    """EWMA weight ``alpha_num/alpha_den`` and band thresholds in milli-epochs.

    ``warmup``: the first ``warmup`` gaps only train the forecast and never REVALIDATE
    (a new slope has no cadence yet); a residual above ``high`` is a BREAK even then.
    """

    alpha_num: int = 1
    alpha_den: int = 4
    low: int = 2 * SCALE
    high: int = 8 * SCALE
    warmup: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.alpha_num <= self.alpha_den:
            raise SchemaError("alpha must be in (0, 1]: 0 < alpha_num <= alpha_den", path="drift")
        if not 0 <= self.low < self.high:
            raise SchemaError("thresholds need 0 <= low < high", path="drift.low")
        if self.warmup < 0:
            raise SchemaError("warmup must be >= 0", path="drift.warmup")


DEFAULT_DRIFT: Final = DriftParams()


@dataclass(frozen=True, slots=True)
class DriftState:
    """The forecast of one slope: last epoch seen, EWMA gap (milli-epochs), gaps learnt."""

    last_epoch: int
    forecast: int = 0
    learnt: int = 0


@dataclass(frozen=True, slots=True)
class DriftResult:
    """One step's verdict: band, gap, forecast it was compared with, residual, next state."""

    band: DriftBand
    gap: int
    forecast: int
    residual: int
    state: DriftState


def start(epoch: int) -> DriftState:
    """A forecast for a slope whose (genesis or trusted) head is at ``epoch``."""
    if epoch < 0:
        raise SchemaError("epoch must be >= 0", path="drift.epoch")
    return DriftState(last_epoch=epoch)


def band_of(residual: int, params: DriftParams) -> DriftBand:
    """The band of a residual (milli-epochs): monotone in the residual."""
    if residual > params.high:
        return DriftBand.BREAK
    if residual > params.low:
        return DriftBand.REVALIDATE
    return DriftBand.NORMAL


def observe(state: DriftState, epoch: int, params: DriftParams = DEFAULT_DRIFT) -> DriftResult:
    """Judge a step at ``epoch`` against the forecast and return the updated state.

    Raises SlopeError for an epoch before the last one (slope verification refuses those
    first; drift never sees time run backwards).
    """
    gap = epoch - state.last_epoch
    if gap < 0:
        raise SlopeError(f"epoch {epoch} is before {state.last_epoch}", path="drift.epoch")
    sample = gap * SCALE
    if state.learnt == 0:
        # No cadence yet: the first gap becomes the forecast.
        return DriftResult(DriftBand.NORMAL, gap, sample, 0, DriftState(epoch, sample, 1))
    residual = abs(sample - state.forecast)
    band = band_of(residual, params)
    if band is DriftBand.REVALIDATE and state.learnt < params.warmup:
        band = DriftBand.NORMAL
    if band is DriftBand.BREAK:
        return DriftResult(
            band, gap, state.forecast, residual, DriftState(epoch, state.forecast, state.learnt)
        )
    moved = state.forecast + (sample - state.forecast) * params.alpha_num // params.alpha_den
    return DriftResult(
        band, gap, state.forecast, residual, DriftState(epoch, moved, state.learnt + 1)
    )


def observe_entry(
    state: DriftState, entry: LineageEntry, params: DriftParams = DEFAULT_DRIFT
) -> DriftResult:
    """:func:`observe` at a lineage entry's (signed) epoch."""
    return observe(state, entry.epoch, params)


def replay(epochs: Iterable[int], params: DriftParams = DEFAULT_DRIFT) -> tuple[DriftResult, ...]:
    """Bands of a whole run of epochs (the first starts the forecast): for tests and tools."""
    it = iter(epochs)
    first = next(it, None)
    if first is None:
        return ()
    state = start(first)
    out = []
    for epoch in it:
        result = observe(state, epoch, params)
        out.append(result)
        state = result.state
    return tuple(out)


__all__ = [
    "DEFAULT_DRIFT",
    "SCALE",
    "DriftBand",
    "DriftParams",
    "DriftResult",
    "DriftState",
    "band_of",
    "observe",
    "observe_entry",
    "replay",
    "start",
]
