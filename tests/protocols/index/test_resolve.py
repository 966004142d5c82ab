"""Alias resolution on an in-memory network: every alias from any node, anchor loss, churn,
policy refusals and read repair of stale heads."""

from __future__ import annotations

import random

from protocols.index.band import IndexParams, alias_name, band_of
from protocols.index.resolve import AliasPolicy, Outcome, Registration
from sim.indexnet import IndexNet

PARAMS = IndexParams(band_bits=6, replication=3, adjacent_bound=1)


def _reg(net: IndexNet, i: int, scope: tuple[str, ...] = ()) -> Registration:
    """A registration of a fresh agent, signed by its host (see protocols.index.binding)."""
    return net.registration(net.new_agent(i % net.host_count), f"unit-{i}", scope)


def _net(anchors: int = 30, registrations: int = 300) -> tuple[IndexNet, list[Registration]]:
    net = IndexNet(PARAMS, anchor_count=anchors, seed=7)
    regs = [_reg(net, i) for i in range(registrations)]
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
    regs = [_reg(net, i) for i in range(3000)]
    for reg in regs:
        net.register(reg)
    net.churn(0.10, random.Random(5))
    found = sum(net.lookup(alias=r.alias).outcome is Outcome.FOUND for r in regs)
    assert found / len(regs) >= 0.999


def test_forbidden_action_alias_is_refused_before_any_message() -> None:
    net, _regs = _net()
    net.register(net.registration(net.new_agent(), "fetch:image"))
    policy = AliasPolicy(allowed={"fetch": frozenset({"media"})})
    sent_before = net.stats.messages
    refused = net.lookup(alias="fetch:image", zone="fleet", policy=policy)
    assert refused.outcome is Outcome.REFUSED
    assert net.stats.messages == sent_before
    allowed = net.lookup(alias="fetch:image", zone="media", policy=policy)
    assert allowed.outcome is Outcome.FOUND


def test_scope_is_enforced_by_the_anchor() -> None:
    net, _regs = _net()
    net.register(net.registration(net.new_agent(), "scoped-1", ("ops",)))
    assert net.lookup(alias="scoped-1", zone="ops").outcome is Outcome.FOUND
    refused = net.lookup(alias="scoped-1", zone="guest")
    assert refused.outcome is Outcome.REFUSED
    assert "scope" in refused.reason


def test_stale_heads_are_repaired_on_read() -> None:
    net, _regs = _net()
    agent = net.new_agent()
    reg = net.registration(agent, "moving")
    net.register(reg)
    newer = net.registration(net.step(net.step(agent)), "moving")
    group = net.table.group(band_of(alias_name(reg.alias), PARAMS))
    net.stores[group[0]].register(newer, net.hosts, net.epoch)  # only one anchor heard of it
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
