"""The placeholder flood relay: SUB on connect, StrictSign checks, dedup, floodsub forwarding."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from meshnode.bridge import LinkInfo
from meshnode.node import Delivery, FloodRelay
from protocols.errors import DecodeError
from protocols.types import PeerId

LINK = LinkInfo(outbound=True, protocol="/meshsub/1.1.0", ip="127.0.0.1")


@dataclass
class FakeBridge:
    sent: list[tuple[PeerId, bytes]] = field(default_factory=list)

    def send(self, peer: PeerId, frame: bytes) -> bool:
        self.sent.append((peer, frame))
        return True


def relay(
    topics: tuple[str, ...] = ("chat",),
) -> tuple[FloodRelay, FakeBridge, trio.MemoryReceiveChannel[Delivery]]:
    send, recv = trio.open_memory_channel[Delivery](16)
    r = FloodRelay(create_new_key_pair(), topics, send)
    bridge = FakeBridge()
    r.bridge = bridge  # type: ignore[assignment]
    return r, bridge, recv


def peer(n: int) -> PeerId:
    return PeerId(ID.from_pubkey(create_new_key_pair().public_key).to_bytes())


def sub(topic: str) -> bytes:
    return rpc_pb2.RPC(
        subscriptions=[rpc_pb2.RPC.SubOpts(subscribe=True, topicid=topic)]
    ).SerializeToString()


def test_subscribes_on_connect() -> None:
    r, bridge, _ = relay(("chat", "news"))
    p = peer(1)
    r.on_peer_connected(p, LINK)
    rpc = rpc_pb2.RPC.FromString(bridge.sent[0][1])
    assert [(s.subscribe, s.topicid) for s in rpc.subscriptions] == [(True, "chat"), (True, "news")]


def test_message_from_one_peer_is_delivered_once_and_flooded_to_subscribers() -> None:
    origin, _, _ = relay()
    r, bridge, deliveries = relay()
    a, b, c = peer(1), peer(2), peer(3)
    for p in (a, b, c):
        r.on_peer_connected(p, LINK)
    r.on_frame(b, sub("chat"))
    bridge.sent.clear()
    origin_bridge = FakeBridge()
    origin.bridge = origin_bridge  # type: ignore[assignment]
    me = PeerId(origin.me)
    origin.on_peer_connected(me, LINK)
    origin.on_frame(me, sub("chat"))
    origin.publish("chat", b"hello")
    frame = origin_bridge.sent[-1][1]
    r.on_frame(a, frame)
    r.on_frame(c, frame)  # the same message again from another peer
    assert deliveries.receive_nowait().data == b"hello"
    with pytest.raises(trio.WouldBlock):
        deliveries.receive_nowait()
    assert [p for p, _ in bridge.sent] == [b]  # only b subscribed; never back to a
    assert r.counters.duplicates == 1


def test_tampered_or_unsigned_messages_are_dropped() -> None:
    origin, ob, _ = relay()
    origin.on_peer_connected(peer(9), LINK)
    origin.on_frame(peer(9), sub("chat"))
    origin.publish("chat", b"real")
    rpc = rpc_pb2.RPC.FromString(ob.sent[-1][1])
    r, _, deliveries = relay()
    p = peer(1)
    r.on_peer_connected(p, LINK)
    tampered = rpc_pb2.Message()
    tampered.CopyFrom(rpc.publish[0])
    tampered.data = b"fake"
    unsigned = rpc_pb2.Message()
    unsigned.CopyFrom(rpc.publish[0])
    unsigned.signature = b""
    unsigned.seqno = b"\x00" * 8
    short_seqno = rpc_pb2.Message()
    short_seqno.CopyFrom(rpc.publish[0])
    short_seqno.seqno = b"\x01"
    for m in (tampered, unsigned, short_seqno):
        r.on_frame(p, rpc_pb2.RPC(publish=[m]).SerializeToString())
    assert r.counters.invalid_messages == 3
    with pytest.raises(trio.WouldBlock):
        deliveries.receive_nowait()


def test_garbage_rpc_is_a_decode_error() -> None:
    r, _, _ = relay()
    p = peer(1)
    r.on_peer_connected(p, LINK)
    with pytest.raises(DecodeError):
        r.on_frame(p, b"\xff\xff\xff\xff")
    assert r.counters.malformed_rpcs == 1
