"""Bad requests on the service streams get typed error answers and never stop the node.

A real in-process MeshNode and a plain py-libp2p host on loopback: garbage bytes, a length
prefix over the cap, a well-formed map of the wrong shape, an unknown request type, and a
zone the node has not joined each get ``{"ok": false, "code": ...}`` (or a reset stream for
the oversized frame); the node then still answers good requests on every service.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.peerinfo import info_from_p2p_addr

from meshnode.bridge import encode_frame, encode_uvarint
from meshnode.config import ApiSection, NodeConfig
from meshnode.node import MeshNode
from meshnode.svc_wire import ServiceError, WireParams, call, read_message
from protocols import codec

ALIAS = "/meshnode/alias/1.1.0"
QUORUM = "/meshnode/quorum/1.0.0"
HANDOFF = "/meshnode/handoff/1.0.0"
SYNC = "/meshnode/sync/1.0.0"
WIRE = WireParams(max_bytes=1 << 20, timeout_s=5.0)


async def raw_exchange(host: Any, peer: Any, protocol: str, payload: bytes) -> dict[str, Any]:
    """Write raw bytes on a fresh stream and read the one answer."""
    stream = await host.new_stream(peer, [TProtocol(protocol)])
    try:
        await stream.write(payload)
        return await read_message(stream, 1 << 20)
    finally:
        await stream.close()


@pytest.mark.trio
async def test_bad_requests_get_typed_errors_and_the_node_keeps_serving(tmp_path: Path) -> None:
    config = dataclasses.replace(NodeConfig.for_data_dir(tmp_path), api=ApiSection(port=0))
    client = new_host(key_pair=create_new_key_pair())
    async with trio.open_nursery() as nursery:
        node: MeshNode = await nursery.start(MeshNode(config).run)
        async with client.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            info = info_from_p2p_addr(multiaddr.Multiaddr(node.mesh.listen_addrs()[0]))
            await client.connect(info)
            peer = info.peer_id
            with trio.fail_after(30):
                # Not CBOR at all.
                answer = await raw_exchange(client, peer, ALIAS, encode_frame(b"\xff\x00garbage"))
                assert answer["ok"] is False
                assert answer["code"] == "bad-request"
                # A CBOR array where a map is required.
                answer = await raw_exchange(client, peer, QUORUM, encode_frame(codec.encode([1])))
                assert (answer["ok"], answer["code"]) == (False, "bad-request")
                # A length prefix far over the cap: refused before the body is read.
                oversized = encode_uvarint(64 << 20) + b"x" * 16
                try:
                    answer = await raw_exchange(client, peer, ALIAS, oversized)
                    assert (answer["ok"], answer["code"]) == (False, "too-large")
                except BaseLibp2pError:
                    pass  # a reset stream is also a refusal
                # Well-formed maps of the wrong shape or type name the problem.
                for protocol, request, code in (
                    (ALIAS, {"t": "nope"}, "bad-request"),
                    (ALIAS, {"t": "query", "q": {"id": 1}}, "bad-request"),
                    (QUORUM, {"t": "vote", "proposal": {"zone": 1}}, "bad-request"),
                    (HANDOFF, {"t": "seal", "agent": b"\x00"}, "bad-request"),
                    (SYNC, {"t": "heads", "zones": ["elsewhere"], "heads": []}, "not-served"),
                    (SYNC, {"t": "digests", "zones": ["elsewhere"], "files": []}, "not-served"),
                ):
                    with pytest.raises(ServiceError) as info_exc:
                        await call(client, peer, (), protocol, request, WIRE)
                    assert info_exc.value.code == code, (protocol, request, info_exc.value)
                # The node still serves: a good announcement exchange answers ok.
                answer = await call(client, peer, (), ALIAS, {"t": "anchors", "have": []}, WIRE)
                assert answer == {"ok": True, "anchors": []}
                alias = next(s for s in node.services if s.name == "alias")
                assert alias.serve_counters.errors == 4  # type: ignore[attr-defined]
        nursery.cancel_scope.cancel()
