"""The node's py-libp2p host: TCP, Noise, yamux (mplex fallback), identify, ping.

Why these choices: Noise is the only security offered (py-libp2p's default also offers TLS,
secio and plaintext, which we never want to negotiate); identify and ping are the host's
default handlers. Bootstrap peers are redialled by our own loop with bounded exponential
backoff and jitter rather than py-libp2p's one-shot bootstrap discovery, so a restarted
peer is found again.
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost, INetConn, INetwork
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.ping import ID as PING_PROTOCOL_ID
from libp2p.host.ping import perform_ping_roundtrip
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from multiaddr import Multiaddr

from meshnode.config import NetworkSection
from meshnode.notify import ConnectionNotifee

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """Bounded exponential backoff for redialling: initial, doubling, capped, with jitter."""

    initial_s: float
    max_s: float
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("need 0 < initial_s <= max_s")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be within [0, 1)")

    def delay(self, failures: int, rng: random.Random) -> float:
        """Delay after ``failures`` consecutive failures (>= 1)."""
        base = min(self.max_s, self.initial_s * float(2 ** min(failures - 1, 32)))
        return base * (1 + self.jitter * (2 * rng.random() - 1))


YAMUX_RELEASE_ON_READ = "PY_YAMUX_RELEASE_ON_READ"


def build_host(key_pair: KeyPair, network: NetworkSection) -> IHost:
    """A host that is not yet listening; register stream handlers, then run it."""
    # go-yamux's window updates: py-libp2p 0.8's yamux by default sends a WINDOW_UPDATE
    # frame after every read (RELEASE_ON_READ=1), i.e. one more encrypted frame per gossip
    # RPC received (~8 % of a node's samples in bench/mesh.py); with 0 it batches them until
    # half the window is consumed, as go-yamux does. An operator's own setting wins.
    os.environ.setdefault(YAMUX_RELEASE_ON_READ, "0")
    security = {
        NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=new_x25519_key_pair().private_key)
    }
    host = new_host(
        key_pair=key_pair,
        sec_opt=security,
        muxer_preference="YAMUX",  # yamux first, mplex offered as fallback
        listen_addrs=[Multiaddr(a) for a in network.listen],
        enable_mDNS=network.mdns,
    )
    _disable_auto_connect(host)
    return host


def _disable_auto_connect(host: IHost) -> None:
    """Turn off py-libp2p 0.8.1's swarm auto-connector.

    It dials every peerstore peer with addresses (targeting ~200 connections) every 30 s and
    after every disconnect, which would override the topology the operator configured (and
    the line/partition topologies our tests build). Our bootstrap loop redials what config
    names; gossip PX will add more.
    """
    connector = getattr(host.get_network(), "auto_connector", None)
    if connector is None:
        return

    async def _off() -> None:
        return None

    connector.maybe_connect = _off


class _ConnectionWatch(ConnectionNotifee):
    """Wakes the redial loops when any connection closes (never blocks the swarm)."""

    def __init__(self) -> None:
        self.changed = trio.Event()

    def _poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._poke()


class MeshHost:
    """Owns the libp2p host's lifetime and the bootstrap redial loops.

    ``MeshHost(key_pair, network)`` builds the host; add handlers to ``.host`` (the bridge),
    then ``await nursery.start(mesh_host.run)``: ``started()`` fires once it is listening.
    """

    def __init__(self, key_pair: KeyPair, network: NetworkSection) -> None:
        self.network = network
        self.host = build_host(key_pair, network)
        self.backoff = Backoff(network.reconnect_initial_s, network.reconnect_max_s)
        self._watch = _ConnectionWatch()
        self.host.get_network().register_notifee(self._watch)
        self._rng = random.Random()
        self.dial_failures = 0
        self.dials = 0

    @property
    def peer_id(self) -> ID:
        return self.host.get_id()

    def listen_addrs(self) -> list[str]:
        """Our addresses including ``/p2p/<id>`` (actual ports once running)."""
        return [str(a) for a in self.host.get_addrs()]

    def connected_peers(self) -> list[ID]:
        return list(self.host.get_connected_peers())

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listen = [Multiaddr(a) for a in self.network.listen]
        async with self.host.run(listen_addrs=listen), trio.open_nursery() as nursery:
            log.info(
                "host listening",
                extra={"peer": self.peer_id.to_base58(), "addrs": self.listen_addrs()},
            )
            for text in self.network.bootstrap:
                info = info_from_p2p_addr(multiaddr.Multiaddr(text))
                if info.peer_id == self.peer_id:
                    continue
                nursery.start_soon(self._keep_connected, info)
            if self.network.mdns:
                nursery.start_soon(self._dial_discovered)
            task_status.started()
            await trio.sleep_forever()

    def is_connected(self, peer_id: ID) -> bool:
        return bool(self.host.get_network().get_connections(peer_id))

    async def _keep_connected(self, info: PeerInfo) -> None:
        """Dial ``info`` whenever we are not connected, backing off on failure."""
        failures = 0
        while True:
            if self.is_connected(info.peer_id):
                failures = 0
                await self._watch.changed.wait()
                continue
            self.dials += 1
            # py-libp2p 0.8.1 refuses to redial a peer for 60 s after one failed dial (its
            # "negative cache"); our loop owns the backoff, so clear that entry first.
            unblock = getattr(self.host.get_network(), "unblock_peer", None)
            if unblock is not None:
                unblock(info.peer_id)
            try:
                with trio.fail_after(self.network.dial_timeout_s):
                    await self.host.connect(info)
            except (BaseLibp2pError, trio.TooSlowError, OSError) as exc:
                failures += 1
                self.dial_failures += 1
                delay = self.backoff.delay(failures, self._rng)
                log.info(
                    "bootstrap dial failed",
                    extra={
                        "peer": info.peer_id.to_base58(),
                        "failures": failures,
                        "retry_in_s": round(delay, 3),
                        "error": repr(exc),
                    },
                )
                await trio.sleep(delay)
                continue
            if self.is_connected(info.peer_id):
                failures = 0
                log.info("bootstrap peer connected", extra={"peer": info.peer_id.to_base58()})
            else:  # connected and lost at once: back off rather than spin
                failures += 1
                await trio.sleep(self.backoff.delay(failures, self._rng))

    async def _dial_discovered(self) -> None:
        """Dial peers that mDNS put in the peerstore.

        py-libp2p 0.8.1's mDNS only adds addresses to the peerstore and relies on the swarm
        auto-connector (which we turn off) to dial them, so with ``mdns = true`` we dial each
        discovered, unconnected peer ourselves, at most once per ``reconnect_max_s``.
        """
        last_try: dict[ID, float] = {}
        store = self.host.get_peerstore()
        async with trio.open_nursery() as nursery:
            while True:
                now = trio.current_time()
                for peer_id in list(store.peer_ids()):
                    if peer_id == self.peer_id or self.is_connected(peer_id):
                        continue
                    if now - last_try.get(peer_id, -math.inf) < self.network.reconnect_max_s:
                        continue
                    try:
                        addrs = store.addrs(peer_id)
                    except KeyError:  # PeerStoreError: unknown or expired
                        continue
                    if addrs:
                        last_try[peer_id] = now
                        nursery.start_soon(self._dial_once, PeerInfo(peer_id, addrs))
                await trio.sleep(1.0)

    async def _dial_once(self, info: PeerInfo) -> None:
        await self.dial(info)

    async def dial(self, info: PeerInfo) -> bool:
        """Connect to ``info`` once (the router's Dial output: PX, direct peers).

        Returns whether we are connected afterwards; failures are logged and counted.
        """
        self.dials += 1
        unblock = getattr(self.host.get_network(), "unblock_peer", None)
        if unblock is not None:
            unblock(info.peer_id)
        try:
            with trio.fail_after(self.network.dial_timeout_s):
                await self.host.connect(info)
        except (BaseLibp2pError, trio.TooSlowError, OSError) as exc:
            self.dial_failures += 1
            log.info("dial failed", extra={"peer": info.peer_id.to_base58(), "error": repr(exc)})
            return False
        log.info("dialled peer", extra={"peer": info.peer_id.to_base58()})
        return self.is_connected(info.peer_id)

    async def disconnect(self, peer_id: ID) -> None:
        """Close every connection to ``peer_id`` (the router's graylist/Disconnect)."""
        try:
            await self.host.disconnect(peer_id)
        except BaseLibp2pError as exc:
            log.info("disconnect failed", extra={"peer": peer_id.to_base58(), "error": repr(exc)})

    async def ping(self, peer_id: ID, timeout_s: float = 5.0) -> float:
        """One ping round trip in milliseconds over ``/ipfs/ping/1.0.0``."""
        with trio.fail_after(timeout_s):
            stream = await self.host.new_stream(peer_id, [TProtocol(PING_PROTOCOL_ID)])
            try:
                return float(await perform_ping_roundtrip(stream))
            finally:
                await stream.close()
