"""Heartbeat mesh maintenance: [D_lo, D_hi], D_score, D_out, GRAFT handling."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.config import GossipParams
from protocols.gossip.events import SetAppScore
from protocols.gossip.rpc import Graft


def test_mesh_is_filled_to_d_when_below_d_lo(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    h.connect([gs.pid(i) for i in range(20)])
    assert h.mesh() == set()
    outs = h.beat()
    assert len(h.mesh()) == 6
    assert gs.grafts_to(outs) == h.mesh()


def test_oversized_mesh_is_pruned_to_d_keeping_best_scores(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(16)]
    h.connect(peers, outbound=True)  # outbound grafts are accepted even past D_hi
    for p in peers:
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert len(h.mesh()) == 16
    best = peers[10:14]
    for p in best:
        h.do(SetAppScore(p, 3.0))
    outs = h.beat()
    assert len(h.mesh()) == 6
    assert set(best) <= h.mesh()  # the D_score best survive
    assert set(gs.prunes_to(outs)) == set(peers) - h.mesh()


def test_full_mesh_refuses_inbound_graft_but_takes_outbound(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    inbound = [gs.pid(i) for i in range(13)]
    h.connect(inbound)
    for p in inbound[:12]:
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert len(h.mesh()) == 12
    outs = h.recv(inbound[12], gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert inbound[12] not in h.mesh()
    assert gs.prunes_to(outs).keys() == {inbound[12]}
    out_peer = gs.pid(100)
    h.connect([out_peer], outbound=True)
    h.recv(out_peer, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert out_peer in h.mesh()


def test_pruning_keeps_d_out_outbound_peers(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    inbound = [gs.pid(i) for i in range(12)]
    outbound = [gs.pid(100 + i) for i in range(3)]
    h.connect(inbound)
    h.connect(outbound, outbound=True)
    for p in inbound + outbound:
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert len(h.mesh()) == 15
    h.beat()
    assert len(h.mesh()) == 6
    assert len(h.mesh() & set(outbound)) >= 2


def test_mesh_grafts_outbound_peers_when_short_of_d_out(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    inbound = [gs.pid(i) for i in range(6)]
    outbound = [gs.pid(100 + i) for i in range(4)]
    h.connect(inbound)
    for p in inbound:
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    h.connect(outbound, outbound=True)
    assert h.mesh() == set(inbound)
    outs = h.beat()
    added = gs.grafts_to(outs)
    assert len(added) == 2
    assert added <= set(outbound)


def test_mesh_bounds_hold_over_many_heartbeats_with_churny_grafts(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams())
    h.join()
    peers = [gs.pid(i) for i in range(40)]
    h.connect(peers[:20])
    h.connect(peers[20:], outbound=True)
    for rnd in range(30):
        for p in peers[rnd % 7 :: 7]:
            h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
        h.beat()
        assert 5 <= len(h.mesh()) <= 12


def test_graft_for_unknown_topic_is_ignored_without_prune_or_px(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p], topics=(gs.TOPIC, "nope"))
    h.connect([gs.pid(i) for i in range(2, 8)])
    outs = h.recv(p, gs.ctl_rpc(graft=[Graft("nope")]))
    assert gs.prunes_to(outs, "nope") == {}
    assert "nope" not in h.router.overlay.mesh
    # a refused GRAFT in the same RPC as an unknown-topic GRAFT gets a PRUNE without PX
    h.router.overlay.add_backoff(gs.TOPIC, p, h.now + 30)
    outs = h.recv(p, gs.ctl_rpc(graft=[Graft("nope"), Graft(gs.TOPIC)]))
    assert gs.prunes_to(outs)[p].peers == ()


def test_graft_from_negative_score_peer_is_pruned(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.do(SetAppScore(p, -1.0))
    outs = h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert p not in h.mesh()
    assert gs.prunes_to(outs)[p].peers == ()


def test_negative_score_mesh_peers_are_pruned_without_px(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(8)]
    h.connect(peers)
    h.beat()
    victim = sorted(h.mesh())[0]
    h.do(SetAppScore(victim, -5.0))
    outs = h.beat()
    assert victim not in h.mesh()
    assert gs.prunes_to(outs)[victim].peers == ()
