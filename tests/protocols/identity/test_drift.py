"""Predictive drift (SPEC 2.18): low residual normal, middle re-validate, high break."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import SchemaError, SlopeError
from protocols.identity.drift import (
    SCALE,
    DriftBand,
    DriftParams,
    band_of,
    observe,
    replay,
    start,
)

PARAMS = DriftParams(low=2 * SCALE, high=8 * SCALE, warmup=2)


def _after(epochs: list[int], nxt: int) -> DriftBand:
    return replay([*epochs, nxt], PARAMS)[-1].band


def test_steady_cadence_stays_normal() -> None:
    results = replay(range(0, 100, 3), PARAMS)
    assert {r.band for r in results} == {DriftBand.NORMAL}
    assert results[-1].forecast == 3 * SCALE
    assert results[-1].residual == 0


def test_the_three_bands_after_a_steady_cadence() -> None:
    steady = list(range(0, 30, 3))  # forecast 3 epochs
    assert _after(steady, 27 + 4) is DriftBand.NORMAL  # residual 1
    assert _after(steady, 27 + 3 + 4) is DriftBand.REVALIDATE  # residual 4: re-validate
    assert _after(steady, 27 + 3 + 8) is DriftBand.REVALIDATE  # residual 8: still middle
    assert _after(steady, 27 + 3 + 9) is DriftBand.BREAK  # residual 9: break


def test_a_burst_of_same_epoch_steps_is_revalidated_not_rejected() -> None:
    steady = list(range(0, 50, 5))
    assert _after(steady, 45) is DriftBand.REVALIDATE  # gap 0 against forecast 5


def test_a_break_does_not_teach_the_forecast_but_revalidate_does() -> None:
    state = replay(range(0, 30, 3), PARAMS)[-1].state
    broken = observe(state, state.last_epoch + 50, PARAMS)
    assert broken.band is DriftBand.BREAK
    assert broken.state.forecast == state.forecast
    assert broken.state.learnt == state.learnt
    middle = observe(state, state.last_epoch + 7, PARAMS)
    assert middle.band is DriftBand.REVALIDATE
    assert middle.state.forecast > state.forecast


def test_warmup_suppresses_revalidate_but_not_break() -> None:
    assert replay([0, 1, 6], PARAMS)[-1].band is DriftBand.NORMAL  # learnt 1 < warmup 2
    assert replay([0, 1, 20], PARAMS)[-1].band is DriftBand.BREAK


def test_time_running_backwards_and_bad_params_are_refused() -> None:
    with pytest.raises(SlopeError):
        observe(start(10), 9, PARAMS)
    with pytest.raises(SchemaError):
        DriftParams(low=5, high=5)
    with pytest.raises(SchemaError):
        DriftParams(alpha_num=0)
    with pytest.raises(SchemaError):
        DriftParams(alpha_num=5, alpha_den=4)
    with pytest.raises(SchemaError):
        start(-1)
    assert replay([]) == ()


gaps = st.lists(st.integers(0, 40), min_size=1, max_size=60)


@given(gaps)
def test_replay_is_deterministic(steps: list[int]) -> None:
    epochs = [0]
    for g in steps:
        epochs.append(epochs[-1] + g)
    assert replay(epochs, PARAMS) == replay(list(epochs), PARAMS)


@given(st.integers(0, 20 * SCALE), st.integers(0, 20 * SCALE))
def test_bands_are_monotone_in_the_residual(a: int, b: int) -> None:
    order = [DriftBand.NORMAL, DriftBand.REVALIDATE, DriftBand.BREAK]
    lo, hi = sorted((a, b))
    assert order.index(band_of(lo, PARAMS)) <= order.index(band_of(hi, PARAMS))


@given(gaps, st.integers(0, 40))
def test_residual_is_the_distance_from_the_forecast(steps: list[int], last: int) -> None:
    epochs = [0]
    for g in steps:
        epochs.append(epochs[-1] + g)
    state = replay(epochs, PARAMS)[-1].state if len(epochs) > 1 else start(0)
    result = observe(state, state.last_epoch + last, PARAMS)
    if state.learnt:
        assert result.residual == abs(last * SCALE - state.forecast)
        assert result.forecast == state.forecast
    assert result.state.last_epoch == state.last_epoch + last
