"""Random event sequences against one router: it never raises and its invariants hold."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from protocols.gossip.config import GossipParams
from protocols.gossip.events import (
    Dial,
    Join,
    Leave,
    MalformedRpc,
    PeerConnected,
    PeerDisconnected,
    Publish,
    SendRpc,
    SetAppScore,
    ValidationCompleted,
)
from protocols.gossip.rpc import Graft, IHave, IWant, PeerInfo, Prune
from protocols.gossip.validate import PENDING
from protocols.types import TopicId, WireVerdict

PEERS = 3
TOPICS = ("t",)
DATA = [b"m%d" % i for i in range(6)]

peer_i = st.integers(0, PEERS - 1)
topic = st.sampled_from(TOPICS)
data = st.sampled_from(DATA)
events = st.one_of(
    st.tuples(st.just("connect"), peer_i, st.booleans()),
    st.tuples(st.just("disconnect"), peer_i),
    st.tuples(st.just("sub"), peer_i, topic, st.booleans()),
    st.tuples(st.just("graft"), peer_i, topic),
    st.tuples(st.just("prune"), peer_i, topic, st.integers(0, 100), st.booleans()),
    st.tuples(st.just("ihave"), peer_i, topic, st.lists(data, max_size=3)),
    st.tuples(st.just("iwant"), peer_i, st.lists(data, max_size=3)),
    st.tuples(st.just("msg"), peer_i, topic, data),
    st.tuples(st.just("join"), topic),
    st.tuples(st.just("leave"), topic),
    st.tuples(st.just("publish"), topic, data),
    st.tuples(st.just("beat"), st.floats(0.1, 30)),
    st.tuples(st.just("verdict"), data, st.sampled_from(list(WireVerdict))),
    st.tuples(st.just("score"), peer_i, st.floats(-200, 200)),
    st.tuples(st.just("malformed"), peer_i),
)


def _validator(peer: Any, mid: Any, msg: Any) -> Any:
    return {b"m0": WireVerdict.REJECT, b"m1": WireVerdict.IGNORE, b"m2": PENDING}.get(
        msg.data, WireVerdict.ACCEPT
    )


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(events, min_size=5, max_size=80))
@example([("connect", 0, True), ("join", "t"), ("graft", 0, "t"), ("disconnect", 0)])
@example([("connect", PEERS - 1, True), ("join", "t"), ("graft", PEERS - 1, "t")])
def test_random_sequences_keep_invariants(gs: ModuleType, seq: list[tuple[Any, ...]]) -> None:
    direct = gs.pid(PEERS - 1)
    h = gs.make_harness(
        GossipParams(d=3, d_lo=2, d_hi=4, d_score=1, d_out=1, d_lazy=2),
        validator=_validator,
        direct=[direct],
    )
    r = h.router
    for ev in seq:
        kind, args = ev[0], ev[1:]
        if kind == "connect":
            outs = h.do(PeerConnected(gs.pid(args[0]), outbound=args[1]))
        elif kind == "disconnect":
            outs = h.do(PeerDisconnected(gs.pid(args[0])))
        elif kind == "sub":
            outs = h.recv(gs.pid(args[0]), gs.sub_rpc(args[1], subscribe=args[2]))
        elif kind == "graft":
            outs = h.recv(gs.pid(args[0]), gs.ctl_rpc(graft=[Graft(args[1])]))
        elif kind == "prune":
            px = (PeerInfo(gs.pid(3)), PeerInfo(gs.pid(50))) if args[3] else ()
            outs = h.recv(gs.pid(args[0]), gs.ctl_rpc(prune=[Prune(args[1], px, args[2])]))
        elif kind == "ihave":
            ids = tuple(gs.zone_id(d) for d in args[2])
            outs = h.recv(gs.pid(args[0]), gs.ctl_rpc(ihave=[IHave(args[1], ids)]))
        elif kind == "iwant":
            ids = tuple(gs.zone_id(d) for d in args[1])
            outs = h.recv(gs.pid(args[0]), gs.ctl_rpc(iwant=[IWant(ids)]))
        elif kind == "msg":
            outs = h.recv(gs.pid(args[0]), gs.Rpc(publish=(gs.zone_message(args[2], args[1]),)))
        elif kind == "join":
            outs = h.do(Join(TopicId(args[0])))
        elif kind == "leave":
            outs = h.do(Leave(TopicId(args[0])))
        elif kind == "publish":
            outs = h.do(Publish(TopicId(args[0]), args[1]))
        elif kind == "beat":
            outs = h.beat(dt=args[0])
            for t, mesh in r.overlay.mesh.items():
                assert len(mesh) <= r.params.d_hi, t
        elif kind == "verdict":
            outs = h.do(ValidationCompleted(gs.zone_id(args[0]), args[1]))
        elif kind == "score":
            outs = h.do(SetAppScore(gs.pid(args[0]), args[1]))
        else:
            outs = h.do(MalformedRpc(gs.pid(args[0])))
        connected = set(r.overlay.peers)
        for o in outs:
            if isinstance(o, SendRpc):
                assert o.peer in connected
                assert not o.rpc.is_empty()
            if isinstance(o, Dial):
                assert o.peer not in connected
        for mesh in r.overlay.mesh.values():
            assert mesh <= connected
            assert direct not in mesh
        for fan in r.overlay.fanout.values():
            assert fan <= connected
        assert set(r.overlay.fanout).isdisjoint(r.overlay.mesh)
