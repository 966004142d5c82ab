"""The router slot: GossipSub driven by trio time, outputs carried out on a bridge.

Two slots wired back to back through an in-memory bridge: SUBSCRIBE on connect, mesh by the
heartbeat, delivery of plain-topic messages, malformed RPCs scored down as typed errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio
from libp2p.crypto.ed25519 import create_new_key_pair

from meshnode.bridge import FrameTooLarge, LinkInfo
from meshnode.config import NodeConfig, PubsubSection
from meshnode.gossip_slot import Delivery, GossipSlot, PublishError
from protocols.errors import DecodeError
from protocols.gossip.rpc import decode_rpc
from protocols.types import PeerId

LINK = LinkInfo(outbound=True, protocol="/meshsub/1.1.0", ip="127.0.0.1")


@dataclass
class Wire:
    """An in-memory bridge: frames sent by one slot are handed to the other."""

    me: PeerId
    other: GossipSlot | None = None
    sent: list[tuple[PeerId, bytes]] = field(default_factory=list)

    def send(self, peer: PeerId, frame: bytes) -> bool:
        self.sent.append((peer, frame))
        if self.other is not None:
            self.other.on_frame(self.me, frame)
        return True


def make(tmp_path: Path, name: str) -> tuple[GossipSlot, trio.MemoryReceiveChannel[Delivery]]:
    config = dataclasses.replace(
        NodeConfig.for_data_dir(tmp_path / name), pubsub=PubsubSection(topics=("chat",))
    )
    send, recv = trio.open_memory_channel[Delivery](16)
    return GossipSlot(create_new_key_pair(), config, send), recv


def connect(a: GossipSlot, b: GossipSlot) -> tuple[Wire, Wire]:
    wa, wb = Wire(a.local, b), Wire(b.local, a)
    a.bridge, b.bridge = wa, wb  # type: ignore[assignment]
    a.on_peer_connected(b.local, LINK)
    b.on_peer_connected(a.local, dataclasses.replace(LINK, outbound=False))
    return wa, wb


@pytest.mark.trio
async def test_two_slots_subscribe_mesh_and_deliver(tmp_path: Path) -> None:
    a, a_got = make(tmp_path, "a")
    b, b_got = make(tmp_path, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        await nursery.start(b.run)
        wa, _ = connect(a, b)
        first = decode_rpc(wa.sent[0][1])
        assert [(s.subscribe, s.topic) for s in first.subscriptions] == [(True, "chat")]
        assert a.topics_of(b.local) == {"chat"}
        # the subscription made an early heartbeat graft: the mesh exists before any timer
        assert a.mesh_size("chat") == 1
        assert b.mesh_size("chat") == 1
        msg_id, peers = a.publish("chat", b"hello")
        assert peers == 1
        with trio.fail_after(2):
            got = await b_got.receive()
        assert (got.topic, got.data, got.msg_id) == ("chat", b"hello", msg_id)
        assert got.source == bytes(a.local)
        assert (await a_got.receive()).data == b"hello"  # our own, to our own store
        assert b.counters_snapshot()["delivered"] == 1
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_malformed_rpc_is_typed_error_and_penalty(tmp_path: Path) -> None:
    a, _ = make(tmp_path, "a")
    b, _ = make(tmp_path, "b")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        connect(a, b)
        before = a.score_of(b.local)
        for _ in range(5):
            with pytest.raises(DecodeError, match="undecodable pubsub RPC"):
                a.on_frame(b.local, b"\xff\xff\xff\xff")
        a.on_bad_input(b.local, FrameTooLarge("frame of 9 MiB", offset=0))
        assert a.counters_snapshot()["malformed_rpcs"] == 5
        assert a.counters_snapshot()["bad_frames"] == 1
        assert a.score_of(b.local) < before
        assert a.score_of(b.local) < 0
        nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_publish_too_large_is_a_typed_error(tmp_path: Path) -> None:
    a, _ = make(tmp_path, "a")
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        with pytest.raises(PublishError, match="larger than max_message_size"):
            a.publish("chat", bytes(a.params.max_message_size + 1))
        nursery.cancel_scope.cancel()
