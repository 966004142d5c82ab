"""A misbehaving peer against a real node process: oversized frames, malformed RPC bytes,
garbage on a stream and a flood of forged zone messages.

The attacker is a real py-libp2p host in the test process writing raw bytes on meshsub
streams. The node resets each bad stream, logs a typed error naming what was wrong, scores
the attacker down (to below the graylist), and keeps serving its honest peer: agents still
travel both ways between the two node processes during and after the attack.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from protocols.gossip.rpc import Message, Rpc, SubOpts, encode_rpc, frame
from protocols.governance.pipeline import encode_envelope
from tests.meshnode.conftest import PeerFactory
from tests.meshnode.zone_harness import ZONE, ZoneNode, admit_all, forge, free_port, start_line

MESHSUB = TProtocol("/meshsub/1.1.0")
FLOOD = 300
TOPIC = f"/meshnode/zone/{ZONE}/agents/1"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[ZoneNode]]:
    nodes = [ZoneNode(f"n{i}", tmp_path / f"n{i}", free_port()) for i in range(2)]
    yield nodes
    for n in nodes:  # kill only what this test started, by pid
        n.kill()


async def api(fn: Any, *args: Any) -> Any:
    """A blocking HTTP call to a node, off the event loop (the attacker's host keeps running)."""
    return await trio.to_thread.run_sync(fn, *args)


async def eventually(cond: Any, timeout: float, what: str) -> None:
    with trio.fail_after(timeout):
        while not await trio.to_thread.run_sync(cond):
            await trio.sleep(0.05)
    assert await trio.to_thread.run_sync(cond), what


@pytest.mark.trio
async def test_bad_peer_is_scored_down_and_node_keeps_serving(
    pair: list[ZoneNode], make_peer: PeerFactory
) -> None:
    target, honest = pair
    await api(start_line, pair)
    await api(admit_all, pair, target)
    forged = forge(await api(honest.make_agent, {"verb": "note", "args": {"text": "f"}}))
    envelope = encode_envelope(ZONE, forged)

    async with make_peer(bootstrap=(target.addr(),)) as attacker:
        node_id = ID.from_base58(target.peer_id)
        # wait until the node announced us (its SUBSCRIBE reached our stream handler)
        await attacker.sink.wait_for(lambda: bool(attacker.sink.frames), 10)
        me = attacker.mesh.peer_id.to_base58()

        async def raw(data: bytes) -> None:
            stream = await attacker.mesh.host.new_stream(node_id, [MESHSUB])
            try:
                await stream.write(data)
                with trio.move_on_after(2):  # the node resets the stream: read sees the end
                    while await stream.read(1024):
                        pass
            except Exception:  # noqa: BLE001 - a reset surfaces as assorted libp2p errors
                pass

        await raw(b"\x80\x80\x80\x01")  # oversized: a 2 MiB length prefix
        await raw(frame(b"\xff\xff\xff\xff\x0f"))  # a frame that is no protobuf RPC
        await raw(b"\xff" * 12)  # garbage: not even a length prefix

        # a flood of forged zone messages on one stream (each one REJECTed)
        stream = await attacker.mesh.host.new_stream(node_id, [MESHSUB])
        await stream.write(frame(encode_rpc(Rpc(subscriptions=(SubOpts(True, TOPIC),)))))
        for i in range(FLOOD):
            bogus = encode_envelope(ZONE, forged[:-8] + i.to_bytes(8, "big")) if i else envelope
            await stream.write(frame(encode_rpc(Rpc(publish=(Message(TOPIC, bogus),)))))

        # meanwhile the node serves its honest peer, both ways
        for src, dst in ((honest, target), (target, honest)):
            spec = {"verb": "note", "args": {"text": src.name}}
            status, answer = await api(lambda s=src, p=spec: s.new_agent(p, publish=True))
            assert status == 200, answer
            cid = answer["content_id"]
            await eventually(lambda d=dst, c=cid: c in d.agent_ids(), 10, f"agent at {dst.name}")

        def attacker_score() -> float:
            peers = target.get("/peers")["peers"]
            return float(next(p["score"] for p in peers if p["peer_id"] == me))

        await eventually(lambda: attacker_score() < -80, 10, "attacker graylisted")
        honest_score = float(
            next(
                p["score"]
                for p in (await api(target.get, "/peers"))["peers"]
                if p["peer_id"] == honest.peer_id
            )
        )
        assert honest_score >= 0
        with trio.CancelScope(shield=True):
            await stream.close()

    log = await api(target.log_text)
    for error_type in ("FrameTooLarge", "DecodeError", "MalformedLength"):
        assert f'"error_type": "{error_type}"' in log, error_type
    assert "undecodable pubsub RPC" in log
    assert "Traceback" not in log
    decisions = await api(target.decisions)
    rejected = [d for d in decisions if d["verdict"] == "REJECT"]
    assert len(rejected) >= 1
    assert all(d["subject"] for d in rejected)
