"""Alias resolution on an in-memory network: every alias from any node, anchor loss, churn,
policy refusals and read repair of stale heads."""

from __future__ import annotations

import hashlib
import random

from protocols.index.band import IndexParams, alias_name, band_of
from protocols.index.resolve import AliasPolicy, Outcome, Registration
from sim.indexnet import IndexNet

PARAMS = IndexParams(band_bits=6, replication=3, adjacent_bound=1)


def _reg(i: int, depth: int = 1, scope: tuple[str, ...] = ()) -> Registration:
    uid = hashlib.sha256(f"uid{i}".encode()).digest()
    return Registration(
        uid=uid,
        alias=f"unit-{i}",
        head=hashlib.sha256(f"{i}/{depth}".encode()).digest(),
        depth=depth,
        scope=scope,
    )


def _net(anchors: int = 30, registrations: int = 300) -> tuple[IndexNet, list[Registration]]:
    net = IndexNet(PARAMS, anchor_count=anchors, seed=7)
    regs = [_reg(i) for i in range(registrations)]
    for reg in regs:
        net.register(reg)
    return net, regs


def test_every_alias_and_uid_resolves_in_one_hop() -> None:
    net, regs = _net()
    for reg in regs:
        by_alias = net.lookup(alias=reg.alias)
        assert by_alias.outcome is Outcome.FOUND
        assert by_alias.registration == reg
        assert by_alias.hops == 1
        by_uid = net.lookup(uid=reg.uid)
        assert by_uid.registration == reg


def test_unknown_alias_is_not_found_after_adjacent_bands() -> None:
    net, _regs = _net()
    result = net.lookup(alias="nobody")
    assert result.outcome is Outcome.NOT_FOUND
    assert result.hops == 2 + 2 * PARAMS.adjacent_bound


def test_loss_of_one_anchor_per_group_still_resolves_everything() -> None:
    net, regs = _net()
    for lost in range(3):  # lose the first, then the second, then the third member
        for band in range(PARAMS.band_count):
            in_band = [r for r in regs if band_of(alias_name(r.alias), PARAMS) == band]
            net.dead = {net.table.group(band)[lost]}
            found = [net.lookup(alias=r.alias).outcome for r in in_band]
            assert found == [Outcome.FOUND] * len(in_band)


def test_churn_of_ten_percent_of_anchors_keeps_resolution() -> None:
    net = IndexNet(IndexParams(band_bits=8, replication=3), anchor_count=200, seed=3)
    regs = [_reg(i) for i in range(3000)]
    for reg in regs:
        net.register(reg)
    net.churn(0.10, random.Random(5))
    found = sum(net.lookup(alias=r.alias).outcome is Outcome.FOUND for r in regs)
    assert found / len(regs) >= 0.999


def test_forbidden_action_alias_is_refused_before_any_message() -> None:
    net, _regs = _net()
    net.register(Registration(uid=b"\x05" * 32, alias="fetch:image", head=b"\x06" * 32, depth=1))
    policy = AliasPolicy(allowed={"fetch": frozenset({"media"})})
    sent_before = net.stats.messages
    refused = net.lookup(alias="fetch:image", zone="fleet", policy=policy)
    assert refused.outcome is Outcome.REFUSED
    assert net.stats.messages == sent_before
    allowed = net.lookup(alias="fetch:image", zone="media", policy=policy)
    assert allowed.outcome is Outcome.FOUND


def test_scope_is_enforced_by_the_anchor() -> None:
    net, _regs = _net()
    net.register(_reg(1, depth=2, scope=("ops",)))
    assert net.lookup(alias="unit-1", zone="ops").outcome is Outcome.FOUND
    refused = net.lookup(alias="unit-1", zone="guest")
    assert refused.outcome is Outcome.REFUSED
    assert "scope" in refused.reason


def test_stale_heads_are_repaired_on_read() -> None:
    net, regs = _net()
    reg = regs[0]
    newer = Registration(reg.uid, reg.alias, b"\x09" * 32, depth=5)
    group = net.table.group(band_of(alias_name(reg.alias), PARAMS))
    net.stores[group[0]].register(newer)  # only one anchor heard of the new head
    result = net.lookup(alias=reg.alias)
    assert result.registration == newer
    for anchor in group[:2]:  # the first round asked two anchors: both now hold the new head
        assert net.stores[anchor].by_alias[reg.alias] == newer


def test_views_that_differ_still_resolve_through_adjacent_bands() -> None:
    net, regs = _net()
    old_table = net.table
    net.churn(0.2, random.Random(1))
    net.dead.clear()  # the anchors left the view but still serve what they hold
    found = sum(net.lookup(alias=r.alias, table=old_table).outcome is Outcome.FOUND for r in regs)
    assert found == len(regs)
