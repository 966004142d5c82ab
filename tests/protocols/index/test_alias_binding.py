"""Alias registrations are bound to the slope they name (protocols.index.binding).

An admitted host that is not the slope's current host cannot take an alias over with a
deeper head, cannot forge the registration signature, and cannot move an alias to another
UID; the slope's new host after an honest migration re-registers and wins.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.agent.lineage import body_digest, signing_message
from protocols.agent.schema import Agent
from protocols.identity.host import new_host
from protocols.identity.host_secrets import HostSecrets
from protocols.index.band import IndexParams, alias_name, band_of
from protocols.index.binding import BindingReason, RegistrationRefused, proof_of, signed
from protocols.index.resolve import AnchorStore, Outcome, Registration, registration_phases
from sim.indexnet import IndexNet

PARAMS = IndexParams(band_bits=4, replication=3, adjacent_bound=1)


def _net() -> IndexNet:
    return IndexNet(PARAMS, anchor_count=12, seed=5)


def _refusal(net: IndexNet, reg: Registration) -> BindingReason:
    """Deliver ``reg`` to every anchor of its alias band; all must refuse for one reason."""
    group = net.table.group(band_of(alias_name(reg.alias), PARAMS))
    reasons = set()
    for anchor in group:
        before = dict(net.stores[anchor].by_alias)
        with pytest.raises(RegistrationRefused) as info:
            net.stores[anchor].register(reg, net.hosts, net.epoch)
        assert net.stores[anchor].by_alias == before  # the offender is not stored
        reasons.add(info.value.reason)
    assert len(reasons) == 1
    return reasons.pop()


def _registered(net: IndexNet, host: int = 0, alias: str = "truck-17") -> Agent:
    agent = net.new_agent(host)
    net.register(net.registration(agent, alias))
    assert not net.stats.refused
    return agent


def _deeper(net: IndexNet, agent: Agent, steps: int) -> Agent:
    for _ in range(steps):
        agent = net.step(agent)
    return agent


def test_takeover_by_another_admitted_host_with_a_deeper_head_is_refused() -> None:
    net = _net()
    victim = _registered(net, host=0)
    assert victim.lineage is not None
    # Host 1 is admitted and runs its own, much deeper slope; it claims the victim's UID.
    own = _deeper(net, net.new_agent(1), 6)
    assert own.lineage is not None
    head = own.lineage.entries[-1]
    claim = Registration(victim.lineage.genesis_dah, "truck-17", head.dah, head.totals.depth)
    forged = signed(claim, proof_of(own.lineage.entries, None), net.local_hosts[1].sign)
    assert forged.depth > victim.lineage.entries[-1].totals.depth
    assert _refusal(net, forged) is BindingReason.NOT_DESCENDANT
    # An anchor that never heard of the UID refuses it too: the proof does not reach its genesis.
    with pytest.raises(RegistrationRefused) as info:
        AnchorStore(b"fresh").register(forged, net.hosts, net.epoch)
    assert info.value.reason is BindingReason.UNPROVEN_SLOPE
    # Extending the victim's slope with an entry host 1 signs breaks the signer rule.
    honest = net.step(victim)
    assert honest.lineage is not None
    step = honest.lineage.entries[-1]
    intruder = net.local_hosts[1]
    fake = replace(step, host=intruder.key, host_record=intruder.record)
    fake = replace(fake, sig=intruder.sign(signing_message(body_digest(fake), fake.dah)))
    claim = Registration(victim.lineage.genesis_dah, "truck-17", fake.dah, fake.totals.depth)
    forked = signed(claim, (*victim.lineage.entries, fake), intruder.sign)
    assert _refusal(net, forked) is BindingReason.BROKEN_SLOPE
    # The node keeps serving the honest binding.
    found = net.lookup(alias="truck-17")
    assert found.outcome is Outcome.FOUND
    assert found.registration is not None
    assert found.registration.head == victim.lineage.entries[-1].dah


def test_forged_signature_is_refused() -> None:
    net = _net()
    agent = _registered(net, host=0)
    deeper = net.step(agent)
    honest = net.registration(deeper, "truck-17")
    # Signed by another admitted host rather than the head's signer.
    by_other = net.registration(deeper, "truck-17", by=net.local_hosts[1])
    assert _refusal(net, by_other) is BindingReason.BAD_SIGNATURE
    # A tampered field under the honest signature.
    assert _refusal(net, replace(honest, scope=("ops",))) is BindingReason.BAD_SIGNATURE
    # A corrupted signature.
    flipped = replace(honest, sig=bytes([honest.sig[0] ^ 1]) + honest.sig[1:])
    assert _refusal(net, flipped) is BindingReason.BAD_SIGNATURE
    net.register(honest)
    assert net.lookup(alias="truck-17").registration == honest


def test_unadmitted_head_signer_is_refused() -> None:
    net = _net()
    stranger = new_host(net.rng, 0)
    net.local_hosts.append(stranger)  # makes agents, but no authority admitted it
    net.secrets[stranger.key] = HostSecrets()
    agent = net.new_agent(len(net.local_hosts) - 1)
    assert _refusal(net, net.registration(agent, "rogue")) is BindingReason.UNKNOWN_HOST


def test_honest_reregistration_by_the_new_host_after_migration_is_accepted() -> None:
    net = _net()
    agent = _registered(net, host=0)
    moved = net.migrate(agent, to=2)  # host 0 seals naming host 2; host 2 signs the next step
    moved = net.step(moved)
    assert moved.lineage is not None
    assert moved.lineage.entries[-1].host == net.local_hosts[2].key
    again = net.registration(moved, "truck-17")
    net.register(again)
    assert not net.stats.refused
    found = net.lookup(alias="truck-17")
    assert found.registration == again
    assert net.lookup(uid=again.uid).registration == again
    # The old host can no longer speak for the slope: it did not sign the new head.
    newer = net.step(moved)
    old = net.registration(newer, "truck-17", by=net.local_hosts[0])
    assert _refusal(net, old) is BindingReason.BAD_SIGNATURE
    # Only the new head's entry is needed once the anchors hold its predecessor.
    assert newer.lineage is not None
    short = replace(net.registration(newer, "truck-17"), proof=(newer.lineage.entries[-1],))
    net.register(short)
    assert not net.stats.refused
    assert net.lookup(alias="truck-17").registration == short


def test_alias_bound_to_one_uid_cannot_be_rebound_to_another() -> None:
    net = _net()
    _registered(net, host=0, alias="truck-17")
    other = _deeper(net, net.new_agent(0), 4)  # same honest host, another UID, deeper head
    rebind = net.registration(other, "truck-17")
    assert _refusal(net, rebind) is BindingReason.ALIAS_BOUND
    net.register(net.registration(other, "truck-18"))  # another alias is fine
    assert net.lookup(alias="truck-18").outcome is Outcome.FOUND


def test_proof_must_end_at_the_registered_head() -> None:
    net = _net()
    agent = _registered(net, host=0)
    reg = net.registration(net.step(agent), "truck-17")
    lying = signed(replace(reg, depth=reg.depth + 10), reg.proof, net.local_hosts[0].sign)
    assert _refusal(net, lying) is BindingReason.HEAD_MISMATCH
    empty = signed(replace(reg, proof=()), (), net.local_hosts[0].sign)
    assert _refusal(net, empty) is BindingReason.MALFORMED_PROOF


def test_a_rebinding_reaches_no_uid_band_anchor_once_the_alias_band_refuses() -> None:
    """Only the alias band knows the binding: a UID-band anchor outside it must not store an
    alias re-bound to another UID (registration_phases sends there only after the alias band
    stored it)."""
    for seed in range(40):  # find a UID whose band group is not the alias band's group
        net = IndexNet(PARAMS, anchor_count=12, seed=seed)
        _registered(net, host=0, alias="truck-17")
        other = net.new_agent(1)
        assert other.lineage is not None
        rebind = net.registration(other, "truck-17")
        first, then = registration_phases(rebind, net.table)
        if then:
            break
    assert then, "no seed gave a UID band outside the alias band"
    net.register(rebind)
    holders = [a for a, st in net.stores.items() if other.lineage.genesis_dah in st.by_uid]
    assert holders == []
    assert net.stats.refused == {BindingReason.ALIAS_BOUND.value: len(first)}
