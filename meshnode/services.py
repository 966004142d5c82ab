"""Request/response services on their own libp2p streams, beside gossip.

Quorum votes, migration handoff, descriptor/head sync and alias resolution are point-to-point
exchanges, not broadcasts, so each is a :class:`NodeService` with its own protocol id
(``/meshnode/<name>/1.0.0``). The node builds them with :func:`build_services`, lets each
register its stream handlers before the host listens (so identify advertises them), merges
their control-API routes, and starts each one in its nursery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from meshnode.api import Handler

if TYPE_CHECKING:
    from meshnode.node import MeshNode


class NodeService(Protocol):
    """One service: stream handlers, API routes and a background task."""

    name: str

    def install(self) -> None:
        """Register stream handlers on the node's host (called before the host listens)."""
        ...

    def routes(self) -> dict[tuple[str, str], Handler]:
        """Control-API routes this service adds."""
        ...

    async def run(self, *, task_status: Any = ...) -> None:
        """Background work; call ``task_status.started()`` once ready."""
        ...


def build_services(node: MeshNode) -> list[NodeService]:
    """The services a node runs, in start order."""
    del node
    return []
