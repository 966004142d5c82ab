"""Lazy push: IHAVE emission to D_lazy / gossip-factor peers, IWANT answers, and the caps."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from protocols.gossip.config import GossipParams
from protocols.gossip.events import SetAppScore
from protocols.gossip.rpc import IHave, IWant


def _with_message(
    gs: ModuleType, n_peers: int = 30, **params: Any
) -> tuple[Any, list[bytes], bytes]:
    h = gs.make_harness(GossipParams(**params))
    h.join()
    peers = [gs.pid(i) for i in range(n_peers)]
    h.connect(peers)
    h.beat()
    data = b"hello"
    h.recv(sorted(h.mesh())[0], gs.Rpc(publish=(gs.zone_message(data),)))
    return h, peers, gs.zone_id(data)


def test_ihave_goes_to_max_of_d_lazy_and_gossip_factor_non_mesh_peers(gs: ModuleType) -> None:
    h, peers, mid = _with_message(gs, n_peers=30)
    outs = h.beat()
    got = gs.ihaves_to(outs)
    eligible = set(peers) - h.mesh()
    assert len(eligible) == 24
    assert set(got) <= eligible
    assert len(got) == 6  # max(6, 0.25 * 24)
    assert all(ids == [mid] for ids in got.values())
    h2, _peers2, _ = _with_message(gs, n_peers=66)
    assert len(gs.ihaves_to(h2.beat())) == 15  # max(6, int(0.25 * 60))


def test_ihave_advertised_for_history_gossip_heartbeats_only(gs: ModuleType) -> None:
    h, _, _mid = _with_message(gs)
    advertised = [bool(gs.ihaves_to(h.beat())) for _ in range(5)]
    assert advertised == [True, True, True, False, False]


def test_iwant_is_answered_from_the_cache_until_it_expires(gs: ModuleType) -> None:
    h, peers, mid = _with_message(gs)
    asker = sorted(set(peers) - h.mesh())[0]
    outs = h.recv(asker, gs.ctl_rpc(iwant=[IWant((mid, b"unknown"))]))
    assert [m.data for m in gs.msgs_to(outs, asker)] == [b"hello"]
    h.beat(5)  # history_length windows later it is gone
    asker2 = sorted(set(peers) - h.mesh())[1]
    assert gs.msgs_to(h.recv(asker2, gs.ctl_rpc(iwant=[IWant((mid,))]))) == []


def test_iwant_retransmission_cap(gs: ModuleType) -> None:
    h, peers, mid = _with_message(gs)
    asker = sorted(set(peers) - h.mesh())[0]
    answered = [
        bool(gs.msgs_to(h.recv(asker, gs.ctl_rpc(iwant=[IWant((mid,))])))) for _ in range(5)
    ]
    assert answered == [True, True, True, False, False]


def test_ihave_leads_to_iwant_for_unseen_ids_only(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    seen = gs.zone_message(b"seen")
    h.recv(p, gs.Rpc(publish=(seen,)))
    outs = h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (gs.zone_id(b"seen"), b"new-id"))]))
    assert gs.iwants_to(outs, p) == [b"new-id"]
    outs = h.recv(p, gs.ctl_rpc(ihave=[IHave("other-topic", (b"x",))]))
    assert gs.iwants_to(outs) == []


def test_ihave_messages_per_heartbeat_are_capped(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(max_ihave_messages=3))
    h.join()
    p = gs.pid(1)
    h.connect([p])
    answered = [
        bool(gs.iwants_to(h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"id%d" % i,))]))))
        for i in range(5)
    ]
    assert answered == [True, True, True, False, False]
    h.beat()
    assert gs.iwants_to(h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"again",))])))


def test_ids_asked_per_heartbeat_are_capped(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(max_ihave_length=10))
    h.join()
    p = gs.pid(1)
    h.connect([p])
    ids = tuple(b"id%03d" % i for i in range(25))
    first = gs.iwants_to(h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, ids)])))
    assert len(first) == 10
    assert gs.iwants_to(h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, ids)]))) == []


def test_no_gossip_to_or_from_peers_below_gossip_threshold(gs: ModuleType) -> None:
    h, peers, mid = _with_message(gs, n_peers=10)
    outsiders = sorted(set(peers) - h.mesh())
    for q in outsiders:
        h.do(SetAppScore(q, -20.0))  # below gossip threshold (-10), above graylist
    assert gs.ihaves_to(h.beat()) == {}
    q = outsiders[0]
    assert gs.iwants_to(h.recv(q, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"zz",))]))) == []
    assert gs.msgs_to(h.recv(q, gs.ctl_rpc(iwant=[IWant((mid,))]))) == []


def test_peer_grafted_after_a_message_gets_an_ihave_for_it(gs: ModuleType) -> None:
    """A message relayed while the mesh was empty reached nobody; the heartbeat that grafts
    the peers must offer it to them, though plain gossip skips mesh peers."""
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(3)]
    h.connect(peers)
    assert h.mesh() == set()
    data = b"early"
    outs = h.recv(peers[0], gs.Rpc(publish=(gs.zone_message(data),)))
    assert gs.msgs_to(outs) == []  # no mesh yet: relayed to nobody
    outs = h.beat()
    assert h.mesh() == set(peers)
    got = gs.ihaves_to(outs)
    assert set(got) == set(peers)
    assert all(ids == [gs.zone_id(data)] for ids in got.values())
    # only the heartbeat right after the graft: settled mesh peers get no IHAVE
    assert gs.ihaves_to(h.beat()) == {}


def test_inbound_graft_since_last_heartbeat_gets_an_ihave(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    first = [gs.pid(i) for i in range(6)]
    h.connect(first)
    h.beat()
    late = gs.pid(50)
    h.connect([late])
    data = b"before the graft"
    h.recv(first[0], gs.Rpc(publish=(gs.zone_message(data),)))
    h.recv(late, gs.ctl_rpc(graft=[gs.Graft(gs.TOPIC)]))
    assert late in h.mesh()
    got = gs.ihaves_to(h.beat())
    assert got.get(late) == [gs.zone_id(data)]
    assert not set(got) & (h.mesh() - {late})
