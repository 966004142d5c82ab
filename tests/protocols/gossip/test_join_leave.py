"""Subscriptions: announcing, joining (GRAFT up to D) and leaving (PRUNE, unsubscribe backoff)."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.config import GossipParams
from protocols.gossip.events import Leave, PeerConnected, PeerDisconnected


def test_join_announces_to_every_peer_and_grafts_d(gs: ModuleType) -> None:
    h = gs.make_harness()
    peers = [gs.pid(i) for i in range(10)]
    h.connect(peers)
    outs = h.join()
    subs = {s.peer for s in gs.sends(outs) for so in s.rpc.subscriptions if so.subscribe}
    assert subs == set(peers)
    grafted = gs.grafts_to(outs)
    assert len(grafted) == 6
    assert grafted == h.mesh()


def test_new_peer_receives_our_subscriptions(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join("a")
    h.join("b")
    outs = h.do(PeerConnected(gs.pid(1), outbound=True))
    [rpc] = [s.rpc for s in gs.sends(outs, gs.pid(1))]
    assert [(s.subscribe, s.topic) for s in rpc.subscriptions] == [(True, "a"), (True, "b")]


def test_join_with_fewer_peers_than_d_takes_all(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.connect([gs.pid(1), gs.pid(2)])
    h.connect([gs.pid(3)], topics=("other",))
    h.join()
    assert h.mesh() == {gs.pid(1), gs.pid(2)}


def test_leave_prunes_mesh_with_unsubscribe_backoff_and_announces(gs: ModuleType) -> None:
    h = gs.make_harness()
    peers = [gs.pid(i) for i in range(8)]
    h.connect(peers)
    h.join()
    mesh = h.mesh()
    outs = h.do(Leave(gs.TOPIC))
    prunes = gs.prunes_to(outs)
    assert set(prunes) == mesh
    assert all(p.backoff == 10 for p in prunes.values())
    unsubs = {s.peer for s in gs.sends(outs) for so in s.rpc.subscriptions if not so.subscribe}
    assert unsubs == set(peers)
    assert h.router.joined() == []


def test_peer_subscription_tracking(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.beat()
    assert p in h.mesh()
    h.recv(p, gs.sub_rpc(gs.TOPIC, subscribe=False))
    assert p not in h.mesh()
    assert p not in h.router.overlay.topics.get(gs.TOPIC, set())


def test_disconnect_removes_peer_everywhere(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.beat()
    assert p in h.mesh()
    h.do(PeerDisconnected(p))
    assert p not in h.mesh()
    assert p not in h.router.overlay.peers


def test_messages_on_topics_we_did_not_join_are_not_relayed(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams())
    peers = [gs.pid(i) for i in range(3)]
    h.connect(peers)
    outs = h.recv(peers[0], gs.Rpc(publish=(gs.zone_message(b"x"),)))
    assert outs == []
