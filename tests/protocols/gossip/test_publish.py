"""Publishing: flood publish, mesh forwarding, fanout with TTL, max message size, signing."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.config import GossipParams
from protocols.gossip.events import Published, PublishFailed, SetAppScore
from protocols.gossip.sign import check_strict_sign
from protocols.gossip.validate import TopicConfig
from protocols.types import WireVerdict


def test_flood_publish_sends_own_message_to_every_subscriber_above_publish_threshold(
    gs: ModuleType,
) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(15)]
    h.connect(peers)
    h.connect([gs.pid(50)], topics=("other",))
    h.beat()
    h.do(SetAppScore(peers[0], -60.0))  # below publish threshold (-50)
    outs = h.publish(b"mine")
    got = {s.peer for s in gs.sends(outs) if s.rpc.publish}
    assert got == set(peers[1:])
    assert [o.peers for o in outs if isinstance(o, Published)] == [14]
    assert [d.received_from for d in gs.delivered(outs)] == [None]  # local subscriber


def test_relayed_messages_go_to_mesh_only(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(15)]
    h.connect(peers)
    h.beat()
    src = sorted(h.mesh())[0]
    outs = h.recv(src, gs.Rpc(publish=(gs.zone_message(b"relay"),)))
    got = {s.peer for s in gs.sends(outs) if s.rpc.publish}
    assert got == h.mesh() - {src}


def test_without_flood_publish_own_message_goes_to_mesh(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(flood_publish=False))
    h.join()
    h.connect([gs.pid(i) for i in range(15)])
    h.beat()
    got = {s.peer for s in gs.sends(h.publish(b"x")) if s.rpc.publish}
    assert got == h.mesh()


def test_fanout_for_unjoined_topic_then_expiry(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(flood_publish=False))
    peers = [gs.pid(i) for i in range(15)]
    h.connect(peers)
    outs = h.publish(b"1")
    fan = {s.peer for s in gs.sends(outs) if s.rpc.publish}
    assert len(fan) == 6
    assert h.router.overlay.fanout[gs.TOPIC] == fan
    h.beat(30)
    outs = h.publish(b"2")
    assert {s.peer for s in gs.sends(outs) if s.rpc.publish} == fan  # same fanout reused
    h.beat(59)
    assert gs.TOPIC in h.router.overlay.fanout
    h.beat(2)  # 61 s after the last publish: fanout_ttl (60 s) passed
    assert gs.TOPIC not in h.router.overlay.fanout


def test_fanout_peers_become_the_mesh_on_join(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(flood_publish=False))
    h.connect([gs.pid(i) for i in range(15)])
    h.publish(b"1")
    fan = set(h.router.overlay.fanout[gs.TOPIC])
    outs = h.join()
    assert h.mesh() == fan
    assert gs.grafts_to(outs) == fan
    assert gs.TOPIC not in h.router.overlay.fanout


def test_fanout_is_topped_up_when_a_peer_leaves_the_topic(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(flood_publish=False))
    h.connect([gs.pid(i) for i in range(15)])
    h.publish(b"1")
    gone = sorted(h.router.overlay.fanout[gs.TOPIC])[0]
    h.recv(gone, gs.sub_rpc(gs.TOPIC, subscribe=False))
    h.beat()
    fan = h.router.overlay.fanout[gs.TOPIC]
    assert gone not in fan
    assert len(fan) == 6


def test_oversized_messages_are_neither_published_nor_accepted(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(max_message_size=100))
    h.join()
    p = gs.pid(1)
    h.connect([p])
    outs = h.publish(b"x" * 101)
    assert [type(o) for o in outs] == [PublishFailed]
    assert h.recv(p, gs.Rpc(publish=(gs.zone_message(b"y" * 101),))) == []
    assert h.score(p) == 0.0  # dropped, not penalised
    assert gs.delivered(h.recv(p, gs.Rpc(publish=(gs.zone_message(b"y" * 100),))))


def test_strict_sign_publish_signs_with_increasing_seqnos(gs: ModuleType) -> None:
    h = gs.make_harness(zone=False)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    m1, m2 = (gs.msgs_to(h.publish(d), p)[0] for d in (b"a", b"b"))
    assert check_strict_sign(m1) is WireVerdict.ACCEPT
    assert m1.sender == h.router.local
    assert int.from_bytes(m2.seqno, "big") == int.from_bytes(m1.seqno, "big") + 1


def test_strict_sign_publish_without_signer_fails(gs: ModuleType) -> None:
    import random

    from protocols.gossip.router import GossipRouter

    r = GossipRouter(
        gs.pid(0), GossipParams(), random.Random(1), topic_config=lambda t: TopicConfig()
    )
    [out] = r.handle(gs.Publish(gs.TOPIC, b"x"), 0.0)
    assert isinstance(out, PublishFailed)
    assert "signer" in out.reason


def test_zone_publish_is_unsigned_with_content_id(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    outs = h.publish(b"agent-bytes")
    [m] = gs.msgs_to(outs, p)
    assert (m.sender, m.seqno, m.signature, m.key) == (b"", b"", b"", b"")
    assert [o.msg_id for o in outs if isinstance(o, Published)] == [gs.zone_id(b"agent-bytes")]
    assert [type(o) for o in h.publish(b"agent-bytes")] == [PublishFailed]  # same content id
