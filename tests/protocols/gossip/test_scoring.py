"""Peer score P1-P7 with decay and retention, the thresholds, opportunistic grafting."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from protocols.gossip.config import GossipParams, PeerScoreParams, TopicScoreParams
from protocols.gossip.events import PeerConnected, PeerDisconnected, SetAppScore
from protocols.gossip.rpc import Graft, IHave, Message
from protocols.gossip.score import PeerScore
from protocols.types import MsgId, PeerId, WireVerdict


def _params(**topic: float) -> GossipParams:
    return GossipParams(score=PeerScoreParams(default_topic=TopicScoreParams(**topic)))


def _mesh_one(gs: ModuleType, params: GossipParams | None = None, **kw: Any) -> tuple[Any, bytes]:
    h = gs.make_harness(params, **kw)
    h.join()
    p = gs.pid(1)
    h.connect([p], outbound=True)
    h.beat()
    assert p in h.mesh()
    return h, p


def test_p1_time_in_mesh_grows_then_caps(gs: ModuleType) -> None:
    h, p = _mesh_one(gs, _params(time_in_mesh_weight=0.1, time_in_mesh_cap=10))
    h.beat(5)
    assert h.score(p) == pytest.approx(0.5)
    h.beat(20)
    assert h.score(p) == pytest.approx(1.0)


def test_p2_first_deliveries_count_and_decay(gs: ModuleType) -> None:
    h, p = _mesh_one(
        gs,
        _params(
            time_in_mesh_weight=0.0001,
            first_message_deliveries_weight=1.0,
            first_message_deliveries_decay=0.5,
        ),
    )
    h.recv(p, gs.Rpc(publish=tuple(gs.zone_message(b"%d" % i) for i in range(4))))
    h.beat()  # refresh picks up the gains and decays once
    assert h.score(p) == pytest.approx(2.0, abs=0.01)
    h.recv(p, gs.Rpc(publish=(gs.zone_message(b"0"),)))  # duplicate: no P2
    h.beat()
    assert h.score(p) == pytest.approx(1.0, abs=0.01)


def _scorer(**topic: float) -> PeerScore:
    return PeerScore(PeerScoreParams(default_topic=TopicScoreParams(**topic)), delivery_ttl=120)


def test_p3_mesh_delivery_deficit_after_activation() -> None:
    sc = _scorer(
        time_in_mesh_weight=0.0001,
        mesh_message_deliveries_weight=-1.0,
        mesh_message_deliveries_threshold=4.0,
        mesh_message_deliveries_activation=5.0,
    )
    p = PeerId(b"p")
    sc.add_peer(p, "/meshsub/1.1.0", None, 0.0)
    sc.graft(p, "t", 0.0)
    assert sc.score(p, 4.0) >= 0  # not active yet
    sc.refresh(6.0)
    assert sc.score(p, 6.0) == pytest.approx(-16.0, abs=0.01)  # deficit 4, squared
    for i in range(4):
        mid = MsgId(b"%d" % i)
        m = Message("t", b"%d" % i)
        sc.validate_message(mid, m, p, 6.0)
        sc.deliver_message(mid, m, p, 6.0)
    sc.refresh(6.5)
    assert sc.score(p, 6.5) > 0


def test_mesh_peer_that_delivers_nothing_is_pruned_once_p3_activates(gs: ModuleType) -> None:
    params = _params(
        mesh_message_deliveries_weight=-1.0,
        mesh_message_deliveries_threshold=4.0,
        mesh_message_deliveries_activation=5.0,
    )
    h, p = _mesh_one(gs, params)
    h.beat(3)
    assert p in h.mesh()
    h.beat(3)
    assert p not in h.mesh()


def test_p3_counts_near_first_duplicates_within_window(gs: ModuleType) -> None:
    params = _params(
        time_in_mesh_weight=0.0001,
        mesh_message_deliveries_weight=-1.0,
        mesh_message_deliveries_threshold=1.5,
        mesh_message_deliveries_activation=1.0,
        mesh_message_deliveries_window=0.05,
        first_message_deliveries_weight=0.0,
    )
    h = gs.make_harness(params)
    h.join()
    a, b = gs.pid(1), gs.pid(2)
    h.connect([a, b], outbound=True)
    h.beat()
    for i in range(2):
        m = gs.zone_message(b"%d" % i)
        h.recv(a, gs.Rpc(publish=(m,)))
        h.now += 0.01
        h.recv(b, gs.Rpc(publish=(m,)))  # within the window: counts for b
    for i in range(2, 4):
        m = gs.zone_message(b"%d" % i)
        h.recv(a, gs.Rpc(publish=(m,)))
        h.now += 0.5
        h.recv(b, gs.Rpc(publish=(m,)))  # too late: does not count
    h.beat(2)
    assert {a, b} <= h.mesh()  # both met the threshold (2 decayed a little > 1.5)
    assert h.score(b) == pytest.approx(0, abs=0.01)
    h2 = gs.make_harness(params)
    h2.join()
    h2.connect([a, b], outbound=True)
    h2.beat()
    for i in range(2):
        m = gs.zone_message(b"%d" % i)
        h2.recv(a, gs.Rpc(publish=(m,)))
        h2.now += 0.5
        h2.recv(b, gs.Rpc(publish=(m,)))
    h2.beat(2)
    assert b not in h2.mesh()  # late copies only: deficit, negative, pruned
    assert a in h2.mesh()


def test_p3b_mesh_failure_penalty_sticks_after_prune(gs: ModuleType) -> None:
    params = _params(
        time_in_mesh_weight=0.0001,
        mesh_message_deliveries_weight=-1.0,
        mesh_message_deliveries_threshold=2.0,
        mesh_message_deliveries_activation=1.0,
        mesh_failure_penalty_weight=-3.0,
    )
    h, p = _mesh_one(gs, params)
    h.beat(3)
    h.recv(p, gs.ctl_rpc(prune=[gs.Prune(gs.TOPIC, (), 60)]))
    assert p not in h.mesh()
    assert h.score(p) == pytest.approx(-12.0, abs=0.5)  # deficit 2 squared, times 3


def test_p4_rejected_messages_penalise_and_ignored_do_not(gs: ModuleType) -> None:
    verdicts = {b"bad": WireVerdict.REJECT, b"meh": WireVerdict.IGNORE}
    h = gs.make_harness(validator=lambda peer, mid, m: verdicts.get(m.data, WireVerdict.ACCEPT))
    h.join()
    a, b = gs.pid(1), gs.pid(2)
    h.connect([a, b])
    for i in range(5):
        h.recv(b, gs.Rpc(publish=(gs.zone_message(b"meh" + bytes([i])),)))
    h.recv(a, gs.Rpc(publish=(gs.zone_message(b"bad"),)))
    h.recv(b, gs.Rpc(publish=(gs.zone_message(b"meh"),)))
    assert h.score(a) == pytest.approx(-20.0)  # one invalid: 1^2 * -20
    assert h.score(b) == 0.0


def test_p4_invalid_signature_on_strict_sign_topic(gs: ModuleType) -> None:
    h = gs.make_harness(zone=False)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    good = gs.plain_message(5, 1)
    forged = Message(good.topic, b"evil", good.sender, good.seqno, good.signature)
    assert h.recv(p, gs.Rpc(publish=(forged,))) == []
    assert h.score(p) < 0
    assert gs.delivered(h.recv(p, gs.Rpc(publish=(good,))))


def test_zone_topic_rejects_author_fields(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    assert h.recv(p, gs.Rpc(publish=(Message(gs.TOPIC, b"x", sender=b"me"),))) == []
    assert h.score(p) < 0


def test_p5_app_specific_score(gs: ModuleType) -> None:
    h = gs.make_harness()
    p = gs.pid(1)
    h.connect([p])
    h.do(SetAppScore(p, 42.0))
    assert h.score(p) == 42.0


def test_p6_ip_colocation(gs: ModuleType) -> None:
    h = gs.make_harness()
    peers = [gs.pid(i) for i in range(5)]
    for p in peers:
        h.do(PeerConnected(p, outbound=False, ip="10.0.0.1"))
    h.do(PeerConnected(gs.pid(9), outbound=False, ip="10.0.0.2"))
    assert h.score(peers[0]) == pytest.approx(4 * -5.0)  # (5 - 3)^2 * -5
    assert h.score(gs.pid(9)) == 0.0
    h.do(PeerDisconnected(peers[4]))
    assert h.score(peers[0]) == pytest.approx(-5.0)


def test_p7_behaviour_penalty_threshold_and_decay(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    for i in range(4):
        h.recv(p, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"ghost%d" % i,))]))
    h.beat(4)
    assert h.score(p) == pytest.approx(-5.0 * (4 - 2) ** 2, rel=0.05)
    h.beat(300)
    assert h.score(p) >= 0  # the penalty decayed under the threshold (P1 may add)


def test_negative_score_is_retained_across_reconnect(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.do(SetAppScore(p, -3.0))
    h.do(PeerDisconnected(p))
    h.beat(10)
    h.connect([p])
    assert h.score(p) == -3.0
    h.do(PeerDisconnected(p))
    h.beat(601)  # retain_score
    h.connect([p])
    assert h.score(p) == 0.0


def test_positive_score_is_not_retained(gs: ModuleType) -> None:
    h = gs.make_harness()
    p = gs.pid(1)
    h.connect([p])
    h.do(SetAppScore(p, 3.0))
    h.do(PeerDisconnected(p))
    h.connect([p])
    assert h.score(p) == 0.0


def test_graylisted_peer_rpcs_are_dropped_unread(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.do(SetAppScore(p, -81.0))
    assert h.recv(p, gs.Rpc(publish=(gs.zone_message(b"x"),))) == []
    assert h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)])) == []
    assert p not in h.mesh()
    h.do(SetAppScore(p, -79.0))
    assert gs.delivered(h.recv(p, gs.Rpc(publish=(gs.zone_message(b"x"),))))


def test_scoring_off_reads_zero_and_never_graylists(gs: ModuleType) -> None:
    h = gs.make_harness(GossipParams(score=None), validator=lambda *a: WireVerdict.REJECT)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    for i in range(10):
        h.recv(p, gs.Rpc(publish=(gs.zone_message(b"%d" % i),)))
    assert h.score(p) == 0.0
    assert h.router.score is None


def test_opportunistic_graft_adds_better_peers_to_a_poor_mesh(gs: ModuleType) -> None:
    params = GossipParams(opportunistic_graft_ticks=10)
    h = gs.make_harness(params)
    h.join()
    dull = [gs.pid(i) for i in range(6)]
    good = [gs.pid(100 + i) for i in range(4)]
    h.connect(dull, outbound=True)
    h.beat()
    assert h.mesh() == set(dull)
    h.connect(good)
    for q in good:
        h.do(SetAppScore(q, 10.0))
    grafted: set[bytes] = set()
    for _ in range(8):  # ticks 2..9
        grafted |= gs.grafts_to(h.beat())
    assert grafted == set()
    grafted = gs.grafts_to(h.beat())  # tick 10
    assert len(grafted) == 2
    assert grafted <= set(good)


def test_no_opportunistic_graft_when_the_mesh_median_is_good(gs: ModuleType) -> None:
    params = GossipParams(opportunistic_graft_ticks=2)
    h = gs.make_harness(params)
    h.join()
    mesh = [gs.pid(i) for i in range(6)]
    h.connect(mesh, outbound=True)
    for q in mesh:
        h.do(SetAppScore(q, 6.0))
    h.beat()
    good = [gs.pid(100 + i) for i in range(4)]
    h.connect(good)
    for q in good:
        h.do(SetAppScore(q, 50.0))
    assert not gs.grafts_to(h.beat(4))


def test_p4_is_quadratic_in_invalid_messages(gs: ModuleType) -> None:
    h = gs.make_harness(validator=lambda peer, mid, m: WireVerdict.REJECT)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    h.recv(p, gs.Rpc(publish=(gs.zone_message(b"a"), gs.zone_message(b"b"))))
    assert h.score(p) == pytest.approx(-80.0)  # 2^2 * -20
    h.recv(p, gs.Rpc(publish=(gs.zone_message(b"c"),)))
    assert h.score(p) == pytest.approx(-180.0)  # and now graylisted
    assert h.recv(p, gs.Rpc(publish=(gs.zone_message(b"d"),))) == []
    assert len(h.recorder.named("reject")) == 3


def test_malformed_rpcs_count_as_behaviour_penalties(gs: ModuleType) -> None:
    from protocols.gossip.events import MalformedRpc

    h = gs.make_harness()
    p = gs.pid(1)
    h.connect([p])
    for _ in range(4):
        h.do(MalformedRpc(p))
    assert h.score(p) == pytest.approx(-5.0 * (4 - 2) ** 2)
    h.do(MalformedRpc(gs.pid(2)))  # unknown peer: nothing to score
    assert h.score(gs.pid(2)) == 0.0
