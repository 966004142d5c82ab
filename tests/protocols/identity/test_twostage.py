"""Two-stage check on direct streams (SPEC 2.15): header first, body only if it passes."""

from __future__ import annotations

from dataclasses import replace

from protocols.agent import Validation, validate_bytes
from protocols.agent.build import encode_agent
from protocols.agent.lineage import head
from protocols.agent.schema import Agent
from protocols.identity.reasons import SlopeReason
from protocols.identity.slope import SlopeTracker
from protocols.identity.twostage import StreamHeader, header_for, receive

from .conftest import World


class Spy:
    """Counts body decodes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes) -> Validation:
        self.calls += 1
        return validate_bytes(data)


def _setup(world: World) -> tuple[SlopeTracker, Agent, Agent, bytes]:
    tracker = SlopeTracker(10)
    agent = world.new(world.h1)
    assert tracker.accept(agent, world.hosts, epoch=1).ok
    assert agent.lineage is not None
    base = head(agent.lineage)
    successor, _ = world.step(agent, world.h1, 1)
    return tracker, agent, successor, base


def test_both_stages_pass_for_the_successor(world: World) -> None:
    tracker, _agent, successor, base = _setup(world)
    spy = Spy()
    header = header_for(successor, base).encode()
    result = receive(
        header, encode_agent(successor), tracker, world.hosts, epoch=1, decode_body=spy
    )
    assert result.ok
    assert spy.calls == 1
    assert successor.lineage is not None
    assert tracker.trusted(successor.lineage.genesis_dah) == (result.check.head, 1)


def test_a_bad_header_means_zero_body_decodes(world: World) -> None:
    tracker, _agent, successor, base = _setup(world)
    good = header_for(successor, base)
    spy = Spy()
    for header in (
        b"\xff",
        replace(good, base=b"\x00" * 32).encode(),
        replace(good, genesis=b"\x01" * 32).encode(),
        good.encode()[:-1],
    ):
        result = receive(
            header, encode_agent(successor), tracker, world.hosts, epoch=1, decode_body=spy
        )
        assert result.stage == 1
        assert not result.check.ok
    assert spy.calls == 0


def test_a_tampered_inner_dah_is_rejected_after_decoding(world: World) -> None:
    tracker, _agent, successor, base = _setup(world)
    assert successor.lineage is not None
    header = header_for(successor, base).encode()
    entries = successor.lineage.entries
    tampered_head = replace(entries[-1], dah=b"\x07" * 32)
    tampered = replace(
        successor, lineage=replace(successor.lineage, entries=(*entries[:-1], tampered_head))
    )
    spy = Spy()
    result = receive(header, encode_agent(tampered), tracker, world.hosts, epoch=1, decode_body=spy)
    assert (result.stage, result.check.reason) == (2, SlopeReason.NON_DESCENDANT)
    assert spy.calls == 1
    forged_header = StreamHeader(successor.lineage.genesis_dah, base, b"\x07" * 32).encode()
    result = receive(forged_header, encode_agent(tampered), tracker, world.hosts, epoch=1)
    assert (result.stage, result.check.reason) == (2, SlopeReason.BAD_STEP)


def test_a_header_dah_from_another_senders_slope_is_rejected(world: World) -> None:
    tracker, _agent, successor, base = _setup(world)
    other, _ = world.step(world.new(world.h2), world.h2, 1)
    assert other.lineage is not None
    stolen = StreamHeader(other.lineage.genesis_dah, base, other.lineage.head.dah).encode()
    spy = Spy()
    result = receive(
        stolen, encode_agent(successor), tracker, world.hosts, epoch=1, decode_body=spy
    )
    assert result.stage == 1
    assert spy.calls == 0
    assert successor.lineage is not None
    mixed = StreamHeader(successor.lineage.genesis_dah, base, other.lineage.head.dah).encode()
    result = receive(mixed, encode_agent(successor), tracker, world.hosts, epoch=1)
    assert result.stage == 2
