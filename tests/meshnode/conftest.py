"""Helpers for real py-libp2p tests: a collecting RpcSink and running host+bridge pairs."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from meshnode.bridge import Bridge, BridgeParams, LinkInfo
from meshnode.config import NetworkSection
from meshnode.host import MeshHost
from meshnode.keys import load_or_create_key
from protocols.errors import MeshError
from protocols.types import PeerId


@dataclass
class CollectSink:
    """Test-only RpcSink: records events; optionally echoes every frame back."""

    echo: bool = False
    bridge: Bridge | None = None
    connected: list[PeerId] = field(default_factory=list)
    links: dict[PeerId, LinkInfo] = field(default_factory=dict)
    disconnected: list[PeerId] = field(default_factory=list)
    frames: list[tuple[PeerId, bytes]] = field(default_factory=list)
    bad_inputs: list[tuple[PeerId, MeshError]] = field(default_factory=list)
    changed: trio.Event = field(default_factory=trio.Event)

    def _poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def on_peer_connected(self, peer: PeerId, link: LinkInfo) -> None:
        self.connected.append(peer)
        self.links[peer] = link
        self._poke()

    def on_frame(self, peer: PeerId, frame: bytes) -> None:
        self.frames.append((peer, frame))
        if self.echo and self.bridge is not None:
            self.bridge.send(peer, frame)
        self._poke()

    def on_peer_disconnected(self, peer: PeerId) -> None:
        self.disconnected.append(peer)
        self._poke()

    def on_bad_input(self, peer: PeerId, error: MeshError) -> None:
        self.bad_inputs.append((peer, error))
        self._poke()

    async def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not cond():
                await self.changed.wait()


@dataclass
class Peer:
    mesh: MeshHost
    bridge: Bridge
    sink: CollectSink

    @property
    def pid(self) -> PeerId:
        return PeerId(self.mesh.peer_id.to_bytes())

    def addr(self) -> str:
        return self.mesh.listen_addrs()[0]


PeerFactory = Callable[..., AbstractAsyncContextManager[Peer]]


@pytest.fixture
def make_peer(tmp_path: Path) -> PeerFactory:
    counter = iter(range(1000))

    @asynccontextmanager
    async def factory(
        *,
        bootstrap: tuple[str, ...] = (),
        params: BridgeParams | None = None,
        echo: bool = False,
        network: NetworkSection | None = None,
    ) -> AsyncIterator[Peer]:
        key = load_or_create_key(tmp_path / f"k{next(counter)}.key")
        net = network or NetworkSection(reconnect_initial_s=0.1, reconnect_max_s=0.5)
        net = dataclasses.replace(net, bootstrap=bootstrap)
        mesh = MeshHost(key, net)
        sink = CollectSink(echo=echo)
        bridge = Bridge(mesh.host, sink, params or BridgeParams())
        sink.bridge = bridge
        bridge.install()
        async with trio.open_nursery() as nursery:
            await nursery.start(bridge.run)
            await nursery.start(mesh.run)
            yield Peer(mesh, bridge, sink)
            nursery.cancel_scope.cancel()

    return factory


async def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a real-network condition with a bounded deadline."""
    with trio.fail_after(timeout):
        while not cond():
            await trio.sleep(0.01)


@pytest.fixture
def until() -> Callable[..., object]:
    return wait_until
