"""Kademlia baseline: routing tables and iterative lookups behave like a real DHT."""

from __future__ import annotations

from sim.kademlia import KadNet


def test_every_stored_value_is_found_in_few_hops() -> None:
    kad = KadNet(2000, seed=4)
    names = [f"alias:v{i}".encode() for i in range(200)]
    for name in names:
        kad.store(name)
    results = [kad.lookup(kad.ids[i * 7 % len(kad.ids)], name) for i, name in enumerate(names)]
    assert all(r.found for r in results)
    assert max(r.hops for r in results) <= 4
    assert all(r.messages == 0 or r.messages >= 2 for r in results)


def test_missing_value_is_not_found() -> None:
    kad = KadNet(500, seed=4)
    result = kad.lookup(kad.ids[0], b"alias:none")
    assert not result.found
    assert result.hops >= 1


def test_table_buckets_hold_at_most_k_and_never_self() -> None:
    kad = KadNet(3000, seed=2)
    me = kad.ids[10]
    table = kad.table(me)
    assert me not in table
    assert 20 <= len(table) <= 20 * 256
