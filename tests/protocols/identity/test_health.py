"""Slope-health monitor and rate-limited anchor rotation (SPEC 2.18 "Anchor rotation")."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.agent.schema import Agent, LineageEntry
from protocols.errors import SchemaError
from protocols.identity.drift import DriftBand, DriftParams
from protocols.identity.health import (
    HealthParams,
    RefusalReason,
    RotateReason,
    RotationRefused,
    SlopeHealth,
    assess,
    compromised,
    degrade_trust,
    follow_rotation,
    from_check,
    observe,
    observe_lineage,
    rotate,
    track,
    track_lineage,
)
from protocols.identity.reasons import SlopeReason, SlopeRefusal
from protocols.identity.slope import SlopeCheck, SlopeTracker

from .conftest import SYNC, World, make_world

PARAMS = HealthParams(
    max_epochs=100, max_revalidations=2, min_trust=50, rotation_gap=10, drift=DriftParams()
)


def _steady(world: World, steps: int, gap: int = 1) -> tuple[Agent, SlopeHealth, list[bool]]:
    """An agent with ``steps`` steps ``gap`` epochs apart, monitored from genesis."""
    agent = world.new(world.h1, epoch=1)
    assert agent.lineage is not None
    health = track_lineage(agent.lineage)
    rotates = []
    for k in range(steps):
        agent, entry = world.step(agent, world.h1, 1 + gap * (k + 1))
        health, report = observe(health, entry, PARAMS)
        rotates.append(report.rotate)
    return agent, health, rotates


def _entry(world: World) -> LineageEntry:
    agent = world.new(world.h1, epoch=0)
    assert agent.lineage is not None
    return agent.lineage.entries[0]


def test_a_healthy_slope_never_says_rotate(world: World) -> None:
    _, health, rotates = _steady(world, 12, gap=2)
    assert not any(rotates)
    assert assess(health, 25, PARAMS).reasons == ()


def test_elapsed_epoch_limit(world: World) -> None:
    _, health, _ = _steady(world, 3)
    assert not assess(health, 101, PARAMS).rotate
    report = assess(health, 102, PARAMS)
    assert report.reasons == (RotateReason.ELAPSED,)
    assert "limit 100" in report.details[0]


def test_a_reused_salt_or_reveal_is_entropy_reuse(world: World) -> None:
    base = _entry(world)
    health = track(base.dah, 0)
    one = replace(base, epoch=1, salt=b"s" * 16, reveal=b"r" * 32)
    health, report = observe(health, one, PARAMS)
    assert not report.rotate
    two = replace(base, epoch=2, salt=b"t" * 16, reveal=b"q" * 32)
    health, report = observe(health, two, PARAMS)
    assert not report.rotate
    again = replace(base, epoch=3, salt=b"s" * 16, reveal=b"p" * 32)
    _, report = observe(health, again, PARAMS)
    assert report.reasons == (RotateReason.ENTROPY_REUSE,)
    reveal_again = replace(base, epoch=3, salt=b"u" * 16, reveal=b"q" * 32)
    _, report = observe(health, reveal_again, PARAMS)
    assert report.reasons == (RotateReason.ENTROPY_REUSE,)


def test_salt_memory_is_bounded(world: World) -> None:
    base = _entry(world)
    small = replace(PARAMS, salt_memory=4)
    health = track(base.dah, 0)
    for k in range(10):
        e = replace(base, epoch=k + 1, salt=bytes([k]) * 16, reveal=bytes([100 + k]) * 32)
        health, _ = observe(health, e, small)
    assert len(health.entropy) == 4


def test_a_drift_break_and_repeated_revalidations_say_rotate(world: World) -> None:
    base = _entry(world)
    health = track(base.dah, 0)
    epoch = 0
    for k in range(6):  # steady cadence of 2 epochs
        epoch += 2
        e = replace(base, epoch=epoch, salt=bytes([k]) * 16, reveal=bytes([50 + k]) * 32)
        health, report = observe(health, e, PARAMS)
        assert not report.rotate
    jump = replace(base, epoch=epoch + 40, salt=b"j" * 16, reveal=b"J" * 32)
    _, report = observe(health, jump, PARAMS)
    assert report.reasons == (RotateReason.DRIFT,)
    # gaps of 7 against a forecast of 2 stay in the middle band while the forecast learns
    h = health
    for k in range(4):
        epoch += 7
        e = replace(base, epoch=epoch, salt=bytes([200 + k]) * 16, reveal=bytes([220 + k]) * 32)
        h, report = observe(h, e, PARAMS)
        assert report.band is DriftBand.REVALIDATE
        assert (RotateReason.CADENCE in report.reasons) == (k >= 2)
    assert h.revalidations == 4
    assert RotateReason.CADENCE in assess(h, epoch, PARAMS).reasons


def test_trust_degradation_and_compromise_signals(world: World) -> None:
    _, health, _ = _steady(world, 2)
    low = degrade_trust(health, 49)
    assert assess(low, 5, PARAMS).reasons == (RotateReason.TRUST_DEGRADED,)
    assert not assess(degrade_trust(health, 50), 5, PARAMS).rotate
    with pytest.raises(SchemaError):
        degrade_trust(health, 101)
    fork = SlopeCheck(SlopeReason.FORK, 3, "forked")
    assert assess(from_check(health, fork), 5, PARAMS).reasons == (RotateReason.COMPROMISE,)
    stale = SlopeCheck(SlopeReason.EPOCH_WINDOW, 3, "late")
    assert from_check(health, stale) == health
    both = compromised(low, "host key leaked")
    report = assess(both, 5, PARAMS)
    assert report.reasons == (RotateReason.TRUST_DEGRADED, RotateReason.COMPROMISE)
    assert "host key leaked" in report.details


def test_rotation_links_the_fresh_slope_and_verifiers_follow_it(world: World) -> None:
    agent, health, _ = _steady(world, 3)
    assert agent.lineage is not None
    old = agent.lineage
    tracker = SlopeTracker(10)
    assert tracker.accept(agent, world.hosts, epoch=4, params=SYNC).ok
    health = compromised(health, "operator report")
    rotation = rotate(agent, health, world.h1.host, world.h1.secrets, 12, world.rng, PARAMS)
    world.h1.secrets = rotation.step.secrets
    fresh = rotation.step.agent
    assert fresh.lineage is not None
    assert rotation.reasons == (RotateReason.COMPROMISE,)
    assert fresh.lineage.genesis_dah != old.genesis_dah
    assert fresh.lineage.genesis_epoch == 12
    assert fresh.memory == agent.memory
    assert fresh.intent == agent.intent
    assert rotation.health.anchor == fresh.lineage.genesis_dah
    assert not assess(rotation.health, 12, PARAMS).rotate
    # the old slope is retired: its head's secret is gone
    assert world.h1.secrets.get(old.entries[-1].commit) is None
    # an unlinked fresh slope is refused, the linked one followed
    unlinked = world.new(world.h1, epoch=12)
    refused = follow_rotation(
        tracker, old, rotation.link, unlinked, world.hosts, epoch=12, params=SYNC, health=PARAMS
    )
    assert refused.reason is SlopeReason.NON_DESCENDANT
    moved = follow_rotation(
        tracker, old, rotation.link, fresh, world.hosts, epoch=12, params=SYNC, health=PARAMS
    )
    assert moved.ok
    assert tracker.trusted(old.genesis_dah) is None
    assert tracker.trusted(fresh.lineage.genesis_dah) is not None


def test_a_second_rotation_inside_the_limit_is_refused(world: World) -> None:
    agent, health, _ = _steady(world, 2)
    first = rotate(
        agent, compromised(health, "x"), world.h1.host, world.h1.secrets, 11, world.rng, PARAMS
    )
    world.h1.secrets = first.step.secrets
    again = compromised(first.health, "again")
    with pytest.raises(RotationRefused) as exc:
        rotate(first.step.agent, again, world.h1.host, world.h1.secrets, 20, world.rng, PARAMS)
    assert exc.value.reason is RefusalReason.RATE_LIMITED
    later = rotate(first.step.agent, again, world.h1.host, world.h1.secrets, 21, world.rng, PARAMS)
    assert later.link.epoch == 21
    # the verifier applies the same limit to a link it is shown
    assert first.step.agent.lineage is not None
    early = replace(later.link, epoch=20)
    with pytest.raises(RotationRefused) as vexc:
        follow_rotation(
            SlopeTracker(4),
            first.step.agent.lineage,
            early,
            later.step.agent,
            world.hosts,
            epoch=21,
            params=SYNC,
            health=PARAMS,
        )
    assert vexc.value.reason is RefusalReason.RATE_LIMITED


def test_rotation_without_cause_needs_force_and_only_the_next_signer_links(world: World) -> None:
    agent, health, _ = _steady(world, 2)
    with pytest.raises(RotationRefused) as exc:
        rotate(agent, health, world.h1.host, world.h1.secrets, 30, world.rng, PARAMS)
    assert exc.value.reason is RefusalReason.NOT_NEEDED
    forced = rotate(
        agent, health, world.h1.host, world.h1.secrets, 30, world.rng, PARAMS, force=True
    )
    assert forced.reasons == ()
    with pytest.raises(SlopeRefusal):
        rotate(agent, health, world.h2.host, world.h2.secrets, 30, world.rng, PARAMS, force=True)
    other = track(b"\x00" * 32, 0)
    with pytest.raises(SchemaError):
        rotate(agent, other, world.h1.host, world.h1.secrets, 30, world.rng, PARAMS, force=True)


_BASE = _entry(make_world(5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=40), st.integers(0, 200))
def test_reports_are_pure_and_elapsed_is_exact(gaps: list[int], later: int) -> None:
    health = track(_BASE.dah, 0)
    epoch = 0
    for k, g in enumerate(gaps):
        epoch += g
        e = replace(_BASE, epoch=epoch, salt=k.to_bytes(16, "big"), reveal=k.to_bytes(32, "big"))
        health, report = observe(health, e, PARAMS)
        assert report.reasons == tuple(r for r in RotateReason if r in report.reasons)
    at = epoch + later
    report = assess(health, at, PARAMS)
    assert report == assess(health, at, PARAMS)
    assert (RotateReason.ELAPSED in report.reasons) == (at > PARAMS.max_epochs)
    assert RotateReason.ENTROPY_REUSE not in report.reasons
    assert RotateReason.COMPROMISE in assess(compromised(health, "c"), at, PARAMS).reasons


def test_observe_lineage_takes_only_the_new_steps(world: World) -> None:
    agent = world.new(world.h1, epoch=1)
    assert agent.lineage is not None
    health = track_lineage(agent.lineage)
    for e in (3, 5, 7):
        agent, _ = world.step(agent, world.h1, e)
    assert agent.lineage is not None
    health, report = observe_lineage(health, agent.lineage, PARAMS)
    assert (health.depth, health.drift.learnt, report.rotate) == (3, 3, False)
    assert report.band is DriftBand.NORMAL
    assert observe_lineage(health, agent.lineage, PARAMS)[0] == health  # nothing new
    agent, _ = world.step(agent, world.h1, 9)
    agent, _ = world.step(agent, world.h1, 60)
    assert agent.lineage is not None
    health, report = observe_lineage(health, agent.lineage, PARAMS)
    assert health.depth == 5
    assert report.band is DriftBand.BREAK
    assert report.reasons == (RotateReason.DRIFT,)
    with pytest.raises(SchemaError):
        observe_lineage(track(b"\x01" * 32, 0), agent.lineage, PARAMS)
