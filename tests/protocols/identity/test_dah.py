"""DAH slope (SPEC 2.11) and DAH-DDH entanglement (SPEC 2.13): making and recomputing steps."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocols.agent.lineage import body_digest, entry_hash, signing_message, state_digest
from protocols.agent.schema import Handle, MutationClass
from protocols.errors import SchemaError
from protocols.identity import dah
from protocols.identity.hashing import DAH_TAG
from protocols.identity.host import verify_signature
from protocols.identity.reasons import SlopeReason, SlopeRefusal
from protocols.identity.slope import verify_agent, verify_slope

from .conftest import SYNC, World, resign


def test_a_1000_step_honest_chain_verifies(world: World) -> None:
    agent, entries = world.chain(999)
    result = verify_slope(entries, None, world.hosts, epoch=100, params=SYNC)
    assert result.ok, result
    assert result.depth == 999
    assert result.head_dah == entries[-1].dah
    assert verify_agent(agent, world.hosts, None, 100, params=SYNC).ok


def test_every_step_recomputes_from_its_material(world: World) -> None:
    _agent, entries = world.chain(5)
    prev_dah = dah.GENESIS_DAH_PREV
    for entry in entries:
        assert dah.entry_dah(prev_dah, entry, body_digest(entry)) == entry.dah
        prev_dah = entry.dah


def test_a_successor_built_on_a_different_predecessor_fails(world: World) -> None:
    _a, entries = world.chain(3)
    _b, other = world.chain(3)
    result = verify_slope([*entries[:2], other[2]], None, world.hosts, epoch=5, params=SYNC)
    assert (result.reason, result.step) == (SlopeReason.NON_DESCENDANT, 2)


def test_a_different_tag_gives_a_different_hash() -> None:
    parts = (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, b"\x05" * 16, b"\x06" * 32)
    assert dah.dah_step(*parts) == dah.dah_step(*parts, tag=DAH_TAG)
    assert dah.dah_step(*parts, tag=b"other/tag") != dah.dah_step(*parts)


@pytest.mark.parametrize("field", ["intent", "context", "memory", "policy_ref", "descriptor"])
def test_any_change_to_an_agent_field_changes_the_next_dah(world: World, field: str) -> None:
    agent = world.new(world.h1)
    assert agent.intent
    assert agent.context
    assert agent.memory
    assert agent.policy_ref
    assert agent.mutation_descriptor
    changes = {
        "intent": replace(agent.intent, verb="echo"),
        "context": replace(agent.context, role="lead"),
        "memory": replace(agent.memory, handles=(Handle("image", b"\x01" * 32, 5),)),
        "policy_ref": (replace(agent.policy_ref[0], contract=b"\x09" * 32),),
        "descriptor": replace(agent.mutation_descriptor, mutable=("intent",)),
    }
    same_rng_state = world.rng.getstate()
    secrets = world.h1.secrets
    plain = dah.mutate(
        agent, dah.Change(MutationClass.POLICY), world.h1.host, secrets, 2, world.rng
    )
    world.rng.setstate(same_rng_state)
    key = "mutation_descriptor" if field == "descriptor" else field
    changed = dah.mutate(
        agent,
        dah.Change(MutationClass.POLICY, **{key: changes[field]}),  # type: ignore[arg-type]
        world.h1.host,
        secrets,
        2,
        world.rng,
    )
    assert plain.entry.salt == changed.entry.salt
    assert plain.entry.state_digest != changed.entry.state_digest
    assert plain.entry.dah != changed.entry.dah
    assert changed.entry.state_digest == state_digest(changed.agent)


def test_moving_h1_to_h2_entangles_both_hosts(world: World) -> None:
    agent = world.new(world.h1)
    agent, _ = world.step(agent, world.h1, 2)
    agent = world.migrate(agent, world.h1, world.h2, 3)
    agent, _ = world.step(agent, world.h2, 4)
    assert agent.lineage is not None
    entries = agent.lineage.entries
    assert [e.ddh for e in entries] == [world.h1.host.ddh.value] * 3 + [world.h2.host.ddh.value]
    assert [e.host for e in entries] == [world.h1.host.key] * 3 + [world.h2.host.key]
    assert entries[2].type is MutationClass.MIGRATION
    assert entries[2].next_signer == world.h2.host.key
    assert entries[-1].totals.migrations == 1
    assert verify_slope(entries, None, world.hosts, epoch=4).ok


def test_altering_one_mu_breaks_every_later_entry(world: World) -> None:
    _agent, entries = world.chain(6)
    k = 2
    forged = list(entries)
    prev_dah = forged[k - 1].dah
    for i in range(k, len(forged)):
        e = forged[i]
        if i == k:
            e = replace(e, ddh=b"\x00" * 32)
        if i > k:
            e = replace(e, prev=entry_hash(forged[i - 1]))
        e = replace(e, dah=dah.entry_dah(prev_dah, e, body_digest(e)))
        forged[i] = e
        prev_dah = e.dah
    for i in range(k, len(forged)):
        e = forged[i]
        assert not verify_signature(e.host, signing_message(body_digest(e), e.dah), e.sig), i
    result = verify_slope(forged, None, world.hosts, epoch=9, params=SYNC)
    assert (result.reason, result.step) == (SlopeReason.BAD_SIGNATURE, k)


def test_an_entry_signed_by_a_host_other_than_it_names_is_rejected(world: World) -> None:
    _agent, entries = world.chain(3)
    forged = resign(entries[2], world.h2.host)  # still names h1 as its host
    result = verify_slope([*entries[:2], forged], None, world.hosts, epoch=5, params=SYNC)
    assert (result.reason, result.step) == (SlopeReason.BAD_SIGNATURE, 2)


def test_mutate_refuses_a_host_that_is_not_the_next_signer(world: World) -> None:
    agent = world.new(world.h1)
    with pytest.raises(SlopeRefusal) as info:
        world.step(agent, world.h2, 2)
    assert info.value.reason is SlopeReason.WRONG_SIGNER
    assert info.value.path == "lineage.entries[1]"


def test_mutate_refuses_an_epoch_that_goes_back(world: World) -> None:
    agent = world.new(world.h1, epoch=5)
    with pytest.raises(SlopeRefusal) as info:
        world.step(agent, world.h1, 4)
    assert info.value.reason is SlopeReason.EPOCH_WINDOW


def test_the_next_secret_stays_with_the_host(world: World) -> None:
    agent = world.new(world.h1)
    assert agent.lineage is not None
    head = agent.lineage.head
    secret = world.h1.secrets.get(head.commit)
    assert secret is not None
    assert secret not in agent.to_cbor().__repr__().encode()
    agent, entry = world.step(agent, world.h1, 2)
    assert entry.reveal == secret
    assert world.h1.secrets.get(head.commit) is None
    assert len(world.h1.secrets) == 1


def test_after_a_seal_the_old_host_cannot_extend(world: World) -> None:
    agent = world.new(world.h1)
    sealed = world.migrate(agent, world.h1, world.h2, 2)
    with pytest.raises(SlopeRefusal) as info:
        world.step(sealed, world.h1, 3)
    assert info.value.reason is SlopeReason.WRONG_SIGNER
    # Even forging past mutate's check: the old host signs an extension of the sealed head.
    assert sealed.lineage is not None
    forged = dah.make_entry(
        dah.StepMaterial(
            prev=entry_hash(sealed.lineage.head),
            prev_dah=sealed.lineage.head.dah,
            cls=MutationClass.EXECUTION,
            epoch=3,
            zone="alpha",
            link=b"",
            state=sealed.lineage.head.state_digest,
            reveal=b"\x00" * 32,
            salt=b"\x00" * 16,
            commit=b"\x00" * 32,
            next_signer=world.h1.host.key,
            totals=dah.next_totals(sealed.lineage.head, MutationClass.EXECUTION, "alpha", 3),
            descriptor=b"",
        ),
        world.h1.host,
    )
    result = verify_slope(
        [*sealed.lineage.entries, forged], None, world.hosts, epoch=3, params=SYNC
    )
    assert (result.reason, result.step) == (SlopeReason.WRONG_SIGNER, 2)
    arrived, _ = world.step(sealed, world.h2, 3)
    assert verify_agent(arrived, world.hosts, None, 3).ok


def test_a_relay_that_saw_a_reveal_cannot_fork(world: World) -> None:
    _agent, entries = world.chain(2)
    # The relay knows every revealed secret, but signing as h1 needs h1's key: it signs itself.
    relay = world.h3.host
    fork = resign(entries[2], relay, host=relay.key, host_record=relay.record)
    result = verify_slope([*entries[:2], fork], None, world.hosts, epoch=5, params=SYNC)
    assert (result.reason, result.step) == (SlopeReason.WRONG_SIGNER, 2)


def test_change_rejects_classes_mutate_does_not_make() -> None:
    with pytest.raises(SchemaError):
        dah.Change(MutationClass.INITIALIZATION)
    with pytest.raises(SchemaError):
        dah.Change(MutationClass.EXECUTION, handoff=dah.Handoff(b"\x01" * 32, b"\x02" * 32))


def test_running_totals_count_zones_and_migrations(world: World) -> None:
    agent = world.new(world.h1)
    assert agent.context is not None
    agent, _ = world.step(
        agent, world.h1, 2, MutationClass.MIGRATION, context=replace(agent.context, zone="beta")
    )
    agent, last = world.step(agent, world.h1, 3)
    assert (last.totals.depth, last.totals.zones, last.totals.migrations) == (2, 2, 1)
    assert last.totals.zone_path == dah.zone_path(dah.zone_path(bytes(32), "alpha"), "beta")
    assert agent.lineage is not None
    forged = resign(agent.lineage.head, world.h1.host, totals=replace(last.totals, migrations=0))
    forged = replace(
        forged, dah=dah.entry_dah(agent.lineage.entries[1].dah, forged, body_digest(forged))
    )
    forged = resign(forged, world.h1.host)
    result = verify_slope([*agent.lineage.entries[:2], forged], None, world.hosts, epoch=3)
    assert (result.reason, result.step) == (SlopeReason.BAD_TOTALS, 2)
