"""Wire check of the bridge: py-libp2p's stock GossipSub peer and our node exchange a plain-
topic message in both directions (own handlers, no py-libp2p Pubsub on our side), with either
side dialling (meshnode dials through its bootstrap list)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from meshnode.config import ApiSection, NodeConfig, PubsubSection
from meshnode.node import MeshNode
from protocols.types import PeerId


@pytest.mark.trio
@pytest.mark.parametrize("dialer", ["py-libp2p", "meshnode"])
async def test_plain_topic_both_directions_with_stock_gossipsub(
    tmp_path: Path, dialer: str
) -> None:
    py = new_host(key_pair=create_new_key_pair())
    gossipsub = GossipSub(
        protocols=[TProtocol("/meshsub/1.1.0")],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=1,
    )
    pubsub = Pubsub(py, gossipsub)
    async with (
        py.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        background_trio_service(pubsub),
        background_trio_service(gossipsub),
        trio.open_nursery() as nursery,
    ):
        await pubsub.wait_until_ready()
        subscription = await pubsub.subscribe("chat")
        py_addr = f"{py.get_addrs()[0]}"
        if "/p2p/" not in py_addr:
            py_addr += f"/p2p/{py.get_id().to_base58()}"
        base = NodeConfig.for_data_dir(tmp_path)
        config = dataclasses.replace(
            base,
            pubsub=PubsubSection(topics=("chat",)),
            api=ApiSection(port=0),
            network=dataclasses.replace(
                base.network,
                bootstrap=(py_addr,) if dialer == "meshnode" else (),
                reconnect_initial_s=0.1,
                reconnect_max_s=0.5,
            ),
        )
        node: MeshNode = await nursery.start(MeshNode(config).run)
        if dialer == "py-libp2p":
            await py.connect(info_from_p2p_addr(multiaddr.Multiaddr(node.mesh.listen_addrs()[0])))
        py_peer = PeerId(py.get_id().to_bytes())
        with trio.fail_after(10):  # its SUBSCRIBE reached us
            while "chat" not in node.router.topics_of(py_peer):
                await trio.sleep(0.02)
        # and ours reached it (py-libp2p publishes to peers it knows are subscribed)
        with trio.fail_after(10):
            while node.mesh.peer_id not in pubsub.peer_topics.get("chat", set()):
                await trio.sleep(0.02)

        _, sent_to = node.router.publish("chat", b"from meshnode")
        assert sent_to == 1
        with trio.fail_after(5):
            got = await subscription.get()
        assert got.data == b"from meshnode"
        assert got.from_id == node.mesh.peer_id.to_bytes()

        await pubsub.publish("chat", b"from py-libp2p")
        with trio.fail_after(5):
            while True:
                rows = await node.db(node.store.messages, "chat")
                if any(r.data == b"from py-libp2p" for r in rows):
                    break
                await trio.sleep(0.02)
        nursery.cancel_scope.cancel()
