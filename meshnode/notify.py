"""A py-libp2p network notifee that ignores every event its subclass does not override.

py-libp2p's ``INotifee`` is abstract in all six events, and the swarm awaits each notifee
inline while it adds or drops a connection, so every override must return at once (set an
event, push to a channel): never await network work from here.
"""

from __future__ import annotations

from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from multiaddr import Multiaddr


class ConnectionNotifee(INotifee):
    """No-op base: override ``connected`` and/or ``disconnected``."""

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None
