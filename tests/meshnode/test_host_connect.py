"""Real py-libp2p hosts on loopback: connect via bootstrap, Noise + yamux, ping, redial."""

from __future__ import annotations

import random
import socket

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.stream_muxer.mplex.mplex import MPLEX_PROTOCOL_ID, Mplex

from meshnode.config import NetworkSection
from meshnode.host import Backoff


def test_backoff_doubles_and_caps() -> None:
    b = Backoff(initial_s=0.5, max_s=4.0, jitter=0.0)
    rng = random.Random(1)
    assert [b.delay(n, rng) for n in (1, 2, 3, 4, 5, 50)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    j = Backoff(initial_s=1.0, max_s=1.0, jitter=0.2)
    delays = [j.delay(3, rng) for _ in range(200)]
    assert 0.8 <= min(delays) < max(delays) <= 1.2
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=2.0, max_s=1.0)


@pytest.mark.trio
async def test_bootstrap_connects_with_noise_and_yamux(make_peer, until) -> None:
    async with make_peer() as a, make_peer(bootstrap=(a.addr(),)) as b:
        await until(
            lambda: a.mesh.is_connected(b.mesh.peer_id) and b.mesh.is_connected(a.mesh.peer_id)
        )
        conns = b.mesh.host.get_network().get_connections(a.mesh.peer_id)
        muxed = conns[0].muxed_conn
        assert type(muxed).__name__ == "Yamux"
        upgrader = b.mesh.host.get_network().upgrader
        assert list(upgrader.security_multistream.transports) == ["/noise"]
        assert list(upgrader.muxer_multistream.transports)[:2] == [
            "/yamux/1.0.0",
            "/mplex/6.7.0",
        ]
        rtt = await b.mesh.ping(a.mesh.peer_id)
        assert rtt >= 0


@pytest.mark.trio
async def test_redials_bootstrap_peer_after_disconnect(make_peer, until) -> None:
    async with make_peer() as a, make_peer(bootstrap=(a.addr(),)) as b:
        await until(lambda: b.mesh.is_connected(a.mesh.peer_id))
        dials = b.mesh.dials
        await a.mesh.host.disconnect(b.mesh.peer_id)
        await until(lambda: b.mesh.dials > dials, timeout=10)
        await until(lambda: b.mesh.is_connected(a.mesh.peer_id), timeout=10)


@pytest.mark.trio
async def test_unreachable_bootstrap_backs_off(make_peer, until) -> None:
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nobody = ID.from_pubkey(create_new_key_pair().public_key)
    dead = f"/ip4/127.0.0.1/tcp/{port}/p2p/{nobody.to_base58()}"
    async with make_peer(bootstrap=(dead,)) as b:
        await until(lambda: b.mesh.dial_failures >= 2, timeout=10)
        with trio.move_on_after(0.3):
            await until(lambda: b.mesh.dial_failures >= 6, timeout=10)
        assert b.mesh.dial_failures < 6  # 0.1, 0.2, 0.4 ... not a tight loop


@pytest.mark.trio
async def test_mplex_only_peer_connects_via_fallback(make_peer, until) -> None:
    async with make_peer() as a:
        old = new_host(
            key_pair=create_new_key_pair(),
            muxer_opt={TProtocol(MPLEX_PROTOCOL_ID): Mplex},
        )
        async with old.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            await old.connect(info_from_p2p_addr(multiaddr.Multiaddr(a.addr())))
            await until(lambda: a.mesh.is_connected(old.get_id()))
            conn = a.mesh.host.get_network().get_connections(old.get_id())[0]
            assert type(conn.muxed_conn).__name__ == "Mplex"
            assert await a.mesh.ping(old.get_id()) >= 0


@pytest.mark.trio
async def test_mdns_discovered_peers_are_dialled(make_peer, until) -> None:
    lan = NetworkSection(mdns=True, reconnect_initial_s=0.1, reconnect_max_s=1.0)
    async with make_peer(network=lan) as a, make_peer(network=lan) as b:
        await until(lambda: a.mesh.is_connected(b.mesh.peer_id), timeout=15)
        await a.sink.wait_for(lambda: b.pid in a.sink.connected)


@pytest.mark.trio
async def test_dial_and_disconnect(make_peer, until) -> None:
    async with make_peer() as a, make_peer() as b:
        info = info_from_p2p_addr(multiaddr.Multiaddr(a.addr()))
        assert await b.mesh.dial(info)
        await a.sink.wait_for(lambda: b.pid in a.sink.connected)
        await b.mesh.disconnect(a.mesh.peer_id)
        await a.sink.wait_for(lambda: b.pid in a.sink.disconnected)
        assert not b.mesh.is_connected(a.mesh.peer_id)
