"""Drive one GossipRouter against scripted peers, heartbeats as function calls (rust-libp2p's
BehaviourTestBuilder style). Time is explicit: ``h.now`` only moves when a test moves it."""

from __future__ import annotations

import hashlib
import random
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest

from protocols.gossip.config import GossipParams
from protocols.gossip.events import (
    Deliver,
    Dial,
    Input,
    Join,
    Output,
    PeerConnected,
    Publish,
    RpcReceived,
    SendRpc,
)
from protocols.gossip.router import GossipRouter
from protocols.gossip.rpc import (
    Control,
    Graft,
    IHave,
    IWant,
    Message,
    Prune,
    Rpc,
    SubOpts,
)
from protocols.gossip.sign import Signer, sign_message
from protocols.gossip.trace import Tracer
from protocols.gossip.validate import TopicConfig, Validator, zone_topic_config
from protocols.types import MsgId, PeerId, TopicId

TOPIC = TopicId("t")


def signer(i: int) -> Signer:
    return Signer.ed25519(hashlib.sha256(f"test-signer/{i}".encode()).digest())


def pid(i: int) -> PeerId:
    """Peer ids that sort in index order (tests read more easily that way)."""
    return PeerId(b"peer-%04d" % i)


def sub_rpc(*topics: str, subscribe: bool = True) -> Rpc:
    return Rpc(subscriptions=tuple(SubOpts(subscribe, t) for t in topics))


def ctl_rpc(
    *,
    ihave: Iterable[IHave] = (),
    iwant: Iterable[IWant] = (),
    graft: Iterable[Graft] = (),
    prune: Iterable[Prune] = (),
) -> Rpc:
    return Rpc(control=Control(tuple(ihave), tuple(iwant), tuple(graft), tuple(prune)))


def sends(outs: Iterable[Output], peer: PeerId | None = None) -> list[SendRpc]:
    return [o for o in outs if isinstance(o, SendRpc) and (peer is None or o.peer == peer)]


def grafts_to(outs: Iterable[Output], topic: str = TOPIC) -> set[PeerId]:
    return {s.peer for s in sends(outs) for g in s.rpc.control.graft if g.topic == topic}


def prunes_to(outs: Iterable[Output], topic: str = TOPIC) -> dict[PeerId, Prune]:
    return {s.peer: p for s in sends(outs) for p in s.rpc.control.prune if p.topic == topic}


def msgs_to(outs: Iterable[Output], peer: PeerId | None = None) -> list[Message]:
    return [m for s in sends(outs, peer) for m in s.rpc.publish]


def ihaves_to(outs: Iterable[Output]) -> dict[PeerId, list[bytes]]:
    got: dict[PeerId, list[bytes]] = {}
    for s in sends(outs):
        for ih in s.rpc.control.ihave:
            got.setdefault(s.peer, []).extend(ih.msg_ids)
    return got


def iwants_to(outs: Iterable[Output], peer: PeerId | None = None) -> list[bytes]:
    return [i for s in sends(outs, peer) for iw in s.rpc.control.iwant for i in iw.msg_ids]


def delivered(outs: Iterable[Output]) -> list[Deliver]:
    return [o for o in outs if isinstance(o, Deliver)]


def dials(outs: Iterable[Output]) -> list[PeerId]:
    return [o.peer for o in outs if isinstance(o, Dial)]


class Recorder(Tracer):
    """Records tracer calls by name (for asserting what the router reported)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def reject_message(self, *args: object) -> None:  # type: ignore[override]
        self.calls.append(("reject", args))

    def duplicate_message(self, *args: object) -> None:  # type: ignore[override]
        self.calls.append(("duplicate", args))

    def deliver_message(self, *args: object) -> None:  # type: ignore[override]
        self.calls.append(("deliver", args))

    def behaviour_penalty(self, *args: object) -> None:  # type: ignore[override]
        self.calls.append(("penalty", args))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [a for n, a in self.calls if n == name]


@dataclass
class Harness:
    router: GossipRouter
    recorder: Recorder
    now: float = 0.0
    validators: dict[str, Validator] = field(default_factory=dict)

    def do(self, event: Input) -> list[Output]:
        return self.router.handle(event, self.now)

    def recv(self, peer: PeerId, rpc: Rpc) -> list[Output]:
        return self.router.handle(RpcReceived(peer, rpc), self.now)

    def connect(
        self,
        peers: Iterable[PeerId],
        *,
        outbound: bool = False,
        topics: Iterable[str] = (TOPIC,),
        protocol: str = "/meshsub/1.1.0",
        ip: str | None = None,
    ) -> list[Output]:
        outs: list[Output] = []
        topics = tuple(topics)
        for p in peers:
            outs += self.do(PeerConnected(p, outbound=outbound, protocol=protocol, ip=ip))
            if topics:
                outs += self.recv(p, sub_rpc(*topics))
        return outs

    def beat(self, n: int = 1, dt: float | None = None) -> list[Output]:
        """Advance one heartbeat interval (or ``dt``) and beat, ``n`` times."""
        outs: list[Output] = []
        step = self.router.params.heartbeat_interval if dt is None else dt
        for _ in range(n):
            self.now += step
            outs += self.router.heartbeat(self.now)
        return outs

    def join(self, topic: str = TOPIC) -> list[Output]:
        return self.do(Join(TopicId(topic)))

    def publish(self, data: bytes, topic: str = TOPIC) -> list[Output]:
        return self.do(Publish(TopicId(topic), data))

    def mesh(self, topic: str = TOPIC) -> set[PeerId]:
        return self.router.mesh_peers(topic)

    def score(self, peer: PeerId) -> float:
        return self.router.peer_score(peer)


def plain_message(author: int, seqno: int, data: bytes = b"x", topic: str = TOPIC) -> Message:
    """A StrictSign message authored by ``signer(author)``."""
    return sign_message(signer(author), topic, data, seqno)


def zone_message(data: bytes, topic: str = TOPIC) -> Message:
    return Message(topic, data)


def zone_id(data: bytes) -> MsgId:
    return MsgId(hashlib.sha256(data).digest())


def make_harness(
    params: GossipParams | None = None,
    *,
    seed: int = 1,
    zone: bool = True,
    validator: Validator | None = None,
    direct: Iterable[PeerId] = (),
    local: int = 9999,
    topic_config: Callable[[str], TopicConfig] | None = None,
) -> Harness:
    """A router whose topics are zone-style (StrictNoSign, sha256 ids) unless ``zone=False``."""
    rec = Recorder()
    me = signer(local)
    if topic_config is None:
        cfg = zone_topic_config(validator) if zone else TopicConfig(validator=validator)

        def topic_config(_t: str) -> TopicConfig:
            return cfg

    router = GossipRouter(
        me.peer_id,
        params or GossipParams(),
        random.Random(seed),
        signer=me,
        topic_config=topic_config,
        direct_peers=direct,
        tracers=(rec,),
    )
    return Harness(router, rec)


@pytest.fixture
def h() -> Harness:
    return make_harness()


@pytest.fixture
def gs() -> types.ModuleType:
    """These helpers as a namespace (with --import-mode=importlib a conftest is not importable
    by name, so tests reach the helpers through this fixture)."""
    return sys.modules[__name__]
