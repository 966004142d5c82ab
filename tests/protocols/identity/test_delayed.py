"""Delayed validation (SPEC 2.18): bounded gaps replayed from supplied steps, bounded queue."""

from __future__ import annotations

from dataclasses import replace

from protocols.agent import lineage
from protocols.agent.schema import Agent, LineageEntry
from protocols.identity.reasons import SlopeReason
from protocols.identity.slope import DelayedValidation, DelayParams, SlopeParams, SlopeTracker

from .conftest import World

WIDE = SlopeParams(window=None, max_gap=80)


def _gap(world: World, tracker: SlopeTracker, steps: int) -> tuple[Agent, list[LineageEntry]]:
    """An agent the tracker trusted at genesis, then ``steps`` steps taken out of its sight;
    the agent's lineage window (here 8 entries, as if pruned) no longer holds the trusted head."""
    agent, entries = world.chain(steps)
    genesis_only = at_genesis(agent, entries)
    assert tracker.accept(genesis_only, world.hosts, epoch=1, params=WIDE).ok
    return agent, entries


def at_genesis(agent: Agent, entries: list[LineageEntry]) -> Agent:
    assert agent.lineage is not None
    line = lineage.start(entries[0])
    # The tracker only looks at the head; state digest of genesis is checked, so rebuild it
    # from the agent's fields as they were at genesis: the chain changes memory only.
    assert agent.memory is not None
    return replace(agent, memory=replace(agent.memory, ledger=()), lineage=line)


def _windowed(agent: Agent, keep: int) -> Agent:
    """The agent as if its lineage window were ``keep`` entries (pruned before them)."""
    assert agent.lineage is not None
    entries = agent.lineage.entries
    line = replace(agent.lineage, entries=entries[-keep:], pruned=entries[-keep - 1])
    return replace(agent, lineage=line)


def test_a_20_step_gap_is_accepted_by_replaying_the_supplied_steps(world: World) -> None:
    tracker = SlopeTracker(100)
    queue = DelayedValidation(DelayParams(capacity=4, ttl_epochs=3))
    agent, entries = _gap(world, tracker, 20)
    late = _windowed(agent, 8)
    first = tracker.check(late, world.hosts, epoch=2, params=WIDE)
    assert first.reason is SlopeReason.NEEDS_STEPS
    assert queue.defer(late, epoch=2) == []
    assert late.lineage is not None
    settled = queue.supply(
        late.lineage.genesis_dah, entries[0:13], tracker, world.hosts, epoch=3, params=WIDE
    )
    assert settled is not None
    assert settled.ok, settled
    assert settled.depth == 20
    assert len(queue) == 0


def test_bad_supplied_steps_are_refused_with_their_reason(world: World) -> None:
    tracker = SlopeTracker(100)
    agent, entries = _gap(world, tracker, 20)
    late = _windowed(agent, 8)
    _other, foreign = world.chain(20)
    result = tracker.check(late, world.hosts, epoch=3, params=WIDE, bridge=foreign[0:13])
    assert result.reason in {SlopeReason.NON_DESCENDANT, SlopeReason.FORK}
    result = tracker.check(late, world.hosts, epoch=3, params=WIDE, bridge=entries[5:13])
    assert result.reason is SlopeReason.NON_DESCENDANT


def test_a_gap_beyond_the_bound_is_refused(world: World) -> None:
    tracker = SlopeTracker(100)
    agent, entries = _gap(world, tracker, 30)
    late = _windowed(agent, 8)
    tight = SlopeParams(window=None, max_gap=20)
    result = tracker.check(late, world.hosts, epoch=4, params=tight, bridge=entries[0:23])
    assert result.reason is SlopeReason.GAP_TOO_LARGE


def test_queue_overflow_refuses_the_oldest(world: World) -> None:
    queue = DelayedValidation(DelayParams(capacity=2, ttl_epochs=5))
    agents = [world.chain(1)[0] for _ in range(3)]
    assert queue.defer(agents[0], epoch=1) == []
    assert queue.defer(agents[1], epoch=1) == []
    dropped = queue.defer(agents[2], epoch=2)
    assert [(d.agent, c.reason) for d, c in dropped] == [(agents[0], SlopeReason.OVERFLOW)]
    assert len(queue) == 2


def test_deferred_checks_expire_at_their_deadline(world: World) -> None:
    tracker = SlopeTracker(10)
    queue = DelayedValidation(DelayParams(capacity=4, ttl_epochs=2))
    agent = world.chain(1)[0]
    queue.defer(agent, epoch=1)
    assert queue.expire(3) == []
    expired = queue.expire(4)
    assert [(d.agent, c.reason) for d, c in expired] == [(agent, SlopeReason.TIMEOUT)]
    assert agent.lineage is not None
    assert queue.supply(agent.lineage.genesis_dah, [], tracker, world.hosts, epoch=4) is None
    queue.defer(agent, epoch=5)
    late = queue.supply(agent.lineage.genesis_dah, [], tracker, world.hosts, epoch=9)
    assert late is not None
    assert late.reason is SlopeReason.TIMEOUT
