"""PX: peers offered in our PRUNEs, and followed from PRUNEs of well-scored peers only."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.events import Leave, SetAppScore
from protocols.gossip.rpc import PeerInfo, Prune


def test_prune_px_from_trusted_peer_dials_the_offered_peers(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p], outbound=True)
    h.beat()
    h.do(SetAppScore(p, 150.0))  # accept_px threshold is 100
    offered = (PeerInfo(gs.pid(50), b"rec50"), PeerInfo(gs.pid(51)), PeerInfo(p))
    outs = h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, offered, 60)]))
    assert sorted(gs.dials(outs)) == [gs.pid(50), gs.pid(51)]  # not the already-connected one
    recs = {o.peer: o.signed_peer_record for o in outs if isinstance(o, gs.Dial)}
    assert recs[gs.pid(50)] == b"rec50"


def test_prune_px_from_ordinary_peer_is_ignored(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p], outbound=True)
    h.beat()
    outs = h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, (PeerInfo(gs.pid(50)),), 60)]))
    assert gs.dials(outs) == []


def test_px_is_capped_at_prune_peers(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p], outbound=True)
    h.do(SetAppScore(p, 150.0))
    offered = tuple(PeerInfo(gs.pid(100 + i)) for i in range(40))
    outs = h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, offered, 60)]))
    assert len(gs.dials(outs)) == 16


def test_our_prunes_offer_non_negative_peers_except_the_pruned(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(20)]
    h.connect(peers, outbound=True)
    bad = gs.pid(19)
    h.do(SetAppScore(bad, -1.0))
    for p in peers[:14]:
        h.recv(p, gs.ctl_rpc(graft=[gs.Graft(gs.TOPIC)]))
    outs = h.beat()
    prunes = gs.prunes_to(outs)
    assert prunes
    for target, pr in prunes.items():
        offered = {i.peer_id for i in pr.peers}
        assert 0 < len(offered) <= 16
        assert target not in offered
        assert bad not in offered


def test_no_px_towards_a_negative_peer_even_on_leave(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(6)]
    h.connect(peers, outbound=True)
    h.beat()
    low = sorted(h.mesh())[0]
    h.do(SetAppScore(low, -1.0))
    prunes = gs.prunes_to(h.do(Leave(gs.TOPIC)))
    assert prunes[low].peers == ()
    assert any(pr.peers for q, pr in prunes.items() if q != low)
