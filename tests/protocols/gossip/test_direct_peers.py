"""Direct peers: always forwarded to, never meshed, reconnected periodically."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.config import GossipParams
from protocols.gossip.events import PeerDisconnected, SetAppScore
from protocols.gossip.rpc import Graft


def test_direct_peers_get_every_message_and_are_never_meshed(gs: ModuleType) -> None:
    d = gs.pid(500)
    h = gs.make_harness(direct=[d])
    h.join()
    others = [gs.pid(i) for i in range(10)]
    h.connect([*others, d])
    h.beat(3)
    assert d not in h.mesh()
    src = sorted(h.mesh())[0]
    outs = h.recv(src, gs.Rpc(publish=(gs.zone_message(b"m"),)))
    assert gs.msgs_to(outs, d)
    assert d not in gs.ihaves_to(h.beat())


def test_graft_from_direct_peer_is_answered_with_prune_without_px(gs: ModuleType) -> None:
    d = gs.pid(500)
    h = gs.make_harness(direct=[d])
    h.join()
    h.connect([gs.pid(i) for i in range(5)] + [d])
    outs = h.recv(d, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert gs.prunes_to(outs)[d].peers == ()
    assert d not in h.mesh()
    assert h.recorder.named("penalty") == []


def test_disconnected_direct_peer_is_redialled(gs: ModuleType) -> None:
    d = gs.pid(500)
    h = gs.make_harness(GossipParams(direct_connect_ticks=5), direct=[d])
    h.connect([d])
    h.do(PeerDisconnected(d))
    dialled = [gs.dials(h.beat()) for _ in range(5)]
    assert dialled == [[], [], [], [], [d]]


def test_direct_peers_are_heard_even_below_graylist(gs: ModuleType) -> None:
    d = gs.pid(500)
    h = gs.make_harness(direct=[d])
    h.join()
    h.connect([d])
    h.do(SetAppScore(d, -1000.0))
    assert gs.delivered(h.recv(d, gs.Rpc(publish=(gs.zone_message(b"m"),))))
