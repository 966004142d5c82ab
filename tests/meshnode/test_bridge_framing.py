"""Varint-prefixed RPC frames: the pure decoder, and the bridge over real py-libp2p streams."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError

from meshnode.bridge import (
    BridgeParams,
    FrameDecoder,
    FrameTooLarge,
    LinkInfo,
    MalformedLength,
    encode_frame,
    encode_uvarint,
)
from meshnode.config import NetworkSection
from meshnode.host import MeshHost
from meshnode.keys import load_or_create_key
from protocols.types import PeerId

CAP = 1024 * 1024


def test_uvarint_vectors() -> None:
    # multiformats/unsigned-varint README examples
    assert encode_uvarint(1) == b"\x01"
    assert encode_uvarint(127) == b"\x7f"
    assert encode_uvarint(128) == b"\x80\x01"
    assert encode_uvarint(255) == b"\xff\x01"
    assert encode_uvarint(300) == b"\xac\x02"
    assert encode_uvarint(16384) == b"\x80\x80\x01"
    with pytest.raises(ValueError, match="out of range"):
        encode_uvarint(-1)


@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(1, 50))
def test_frames_survive_any_chunking(frames: list[bytes], chunk: int) -> None:
    wire = b"".join(encode_frame(f) for f in frames)
    dec = FrameDecoder(CAP)
    out: list[bytes] = []
    for i in range(0, len(wire), chunk):
        dec.feed(wire[i : i + chunk])
        while (f := dec.next_frame()) is not None:
            out.append(f)
    assert out == frames
    assert dec.buffered == 0


def test_oversized_length_refused_before_body() -> None:
    dec = FrameDecoder(CAP)
    dec.feed(encode_frame(b"ok") + encode_uvarint(CAP + 1))
    assert dec.next_frame() == b"ok"
    with pytest.raises(FrameTooLarge) as info:
        dec.next_frame()
    assert info.value.offset == 3


def test_partial_prefix_already_over_cap() -> None:
    dec = FrameDecoder(1024)
    dec.feed(b"\xff\xff")  # low 14 bits already exceed 1024, prefix unfinished
    with pytest.raises(FrameTooLarge):
        dec.next_frame()


@pytest.mark.parametrize(
    "wire", [b"\x80" * 9 + b"\x01", b"\x80\x00", b"\xff" * 10], ids=["long", "nonminimal", "ff"]
)
def test_malformed_length(wire: bytes) -> None:
    dec = FrameDecoder(2**62)
    dec.feed(wire)
    with pytest.raises(MalformedLength):
        dec.next_frame()


def test_params_validated() -> None:
    with pytest.raises(ValueError, match="max_frame_bytes"):
        BridgeParams(max_frame_bytes=10)
    with pytest.raises(ValueError, match="send_queue_frames"):
        BridgeParams(send_queue_frames=0)


# -- over real hosts ----------------------------------------------------------------------


@pytest.mark.trio
async def test_frames_both_ways_and_disconnect(make_peer, until) -> None:
    async with make_peer(echo=True) as a, make_peer(bootstrap=(a.addr(),)) as b:
        await b.sink.wait_for(lambda: a.pid in b.sink.connected)
        await a.sink.wait_for(lambda: b.pid in a.sink.connected)
        payloads = [b"x" * n for n in (0, 1, 1000, 200_000)]
        for p in payloads:
            assert b.bridge.send(a.pid, p)
        await b.sink.wait_for(lambda: len(b.sink.frames) == len(payloads))
        assert [f for _, f in b.sink.frames] == payloads  # echoed back in order
        assert a.bridge.protocol_of(b.pid) == "/meshsub/1.1.0"
        assert b.sink.links[a.pid] == LinkInfo(True, "/meshsub/1.1.0", "127.0.0.1")
        assert a.sink.links[b.pid] == LinkInfo(False, "/meshsub/1.1.0", "127.0.0.1")
        assert a.bridge.counters.frames_in == len(payloads)
        await b.mesh.host.disconnect(a.mesh.peer_id)
        await a.sink.wait_for(lambda: b.pid in a.sink.disconnected)
        assert not a.bridge.send(b.pid, b"late")
        assert a.bridge.counters.send_dropped_no_peer == 1


@pytest.mark.trio
async def test_meshsub_1_0_0_only_peer(make_peer, until) -> None:
    old = BridgeParams(protocols=("/meshsub/1.0.0",))
    async with make_peer(params=old) as a, make_peer(bootstrap=(a.addr(),)) as b:
        await b.sink.wait_for(lambda: a.pid in b.sink.connected)
        assert b.bridge.send(a.pid, b"hello")
        await a.sink.wait_for(lambda: len(a.sink.frames) == 1)
        assert b.bridge.protocol_of(a.pid) == "/meshsub/1.0.0"


async def drain(stream: INetStream) -> str:
    """Read until the far side closes or resets the stream; say how it ended."""
    try:
        while await stream.read(100):
            pass
    except BaseLibp2pError as exc:
        return type(exc).__name__
    return "eof"


@pytest.mark.trio
async def test_garbage_and_oversize_close_only_that_stream(make_peer, until) -> None:
    async with make_peer() as a, make_peer(bootstrap=(a.addr(),)) as b:
        await a.sink.wait_for(lambda: b.pid in a.sink.connected)
        proto = [TProtocol("/meshsub/1.1.0")]
        for bad in (encode_uvarint(CAP + 1) + b"zz", b"\xff" * 12):
            raw = await b.mesh.host.new_stream(a.mesh.peer_id, proto)
            await raw.write(bad)
            with trio.fail_after(5):
                ended = await drain(raw)
            assert ended in {"eof", "StreamReset", "StreamEOF", "StreamError"}
        assert a.bridge.counters.bad_frames == 2
        # a second inbound stream from one peer replaces (resets) the older one
        assert a.bridge.counters.duplicate_inbound_streams >= 1
        # the peer's regular stream, and the node, keep working
        assert b.bridge.send(a.pid, b"still here")
        await a.sink.wait_for(lambda: (b.pid, b"still here") in a.sink.frames)
        assert a.mesh.is_connected(b.mesh.peer_id)


@pytest.mark.trio
async def test_slow_peer_does_not_block_others(make_peer, until) -> None:
    small = BridgeParams(send_queue_frames=4)
    async with (
        make_peer(params=small) as a,
        make_peer(bootstrap=(a.addr(),)) as fast,
        make_peer(bootstrap=(a.addr(),)) as slow,
    ):

        async def never_read(stream: object) -> None:
            await trio.sleep_forever()

        # the slow peer accepts the stream but never reads it
        slow.mesh.host.set_stream_handler(TProtocol("/meshsub/1.1.0"), never_read)
        await until(lambda: len(a.bridge.peers()) == 2)
        # open both outbound streams first
        assert a.bridge.send(fast.pid, b"warm-up")
        assert a.bridge.send(slow.pid, b"warm-up")
        await fast.sink.wait_for(lambda: len(fast.sink.frames) == 1)
        await until(lambda: a.bridge.protocol_of(slow.pid) is not None)
        big = b"b" * 100_000
        # py-libp2p's yamux lets ~4 MiB reach a peer that never reads before a write
        # blocks; 12 MB is well beyond that plus our 4-frame queue
        for _ in range(120):
            a.bridge.send(slow.pid, big)
            assert a.bridge.send(fast.pid, b"tick")
            await trio.sleep(0.002)
        await fast.sink.wait_for(lambda: len(fast.sink.frames) == 121, timeout=5)
        assert a.bridge.counters.send_dropped_overflow > 0
        info = {p["peer_id"]: p for p in a.bridge.peer_info()}
        assert info[slow.mesh.peer_id.to_base58()]["dropped"] > 0
        assert info[fast.mesh.peer_id.to_base58()]["dropped"] == 0


@pytest.mark.trio
async def test_peer_without_meshsub_is_never_announced(make_peer, until, tmp_path) -> None:
    async with make_peer() as a:
        plain = MeshHost(
            load_or_create_key(tmp_path / "plain.key"),
            NetworkSection(bootstrap=(a.addr(),), reconnect_initial_s=0.1),
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(plain.run)
            await until(lambda: a.mesh.is_connected(plain.peer_id))
            pid = PeerId(plain.peer_id.to_bytes())
            await until(lambda: a.bridge.counters.stream_open_failures >= 1)
            assert pid not in a.sink.connected
            assert a.bridge.peers() == []
            nursery.cancel_scope.cancel()


@pytest.mark.trio
async def test_flooding_peer_does_not_starve_others(make_peer, until) -> None:
    async with (
        make_peer() as a,
        make_peer(bootstrap=(a.addr(),)) as flooder,
        make_peer(bootstrap=(a.addr(),)) as quiet,
    ):
        await until(lambda: len(a.bridge.peers()) == 2)
        raw = await flooder.mesh.host.new_stream(a.mesh.peer_id, [TProtocol("/meshsub/1.1.0")])
        chunk = encode_frame(b"f" * 10_000) * 50  # 500 KB per write
        async with trio.open_nursery() as nursery:

            async def flood() -> None:
                for _ in range(100):  # ~50 MB
                    await raw.write(chunk)

            nursery.start_soon(flood)
            await until(lambda: a.bridge.counters.frames_in > 500)
            assert quiet.bridge.send(a.pid, b"quiet one")
            with trio.fail_after(2):
                await a.sink.wait_for(lambda: (quiet.pid, b"quiet one") in a.sink.frames)
            assert a.bridge.counters.frames_in < 5000  # the flood was still going on
            nursery.cancel_scope.cancel()
