"""Two-stage check for direct streams: handoff and quorum (SPEC 2.15, DESIGN 6).

Stage 1 screens the *header* against local slope state before the body is decoded: the
header names the slope (genesis DAH), the head this node must already trust (``base``) and
the new head DAH. If this node does not trust ``base`` for that slope, the body is never
decoded. Stage 2 decodes the body (a canonical agent), checks its slope from ``base`` and
that the DAH embedded in its head is the header's. Both must pass, in that order, so the
content is bound to the transport. Confidentiality comes from Noise; the keyless encryption
of SPEC 2.15 is not implemented (SPEC 5.13).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from protocols import codec
from protocols.agent import Validation, validate_bytes
from protocols.agent.schema import Agent
from protocols.errors import MeshError, SchemaError
from protocols.identity.host import HostDirectory
from protocols.identity.reasons import SlopeReason
from protocols.identity.slope import DEFAULT_PARAMS, SlopeCheck, SlopeParams, SlopeTracker

MAX_HEADER_BYTES: Final = 256
_K_HEADER: Final = ("dah", "base", "genesis")


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """Cleartext (inside Noise) header of a direct-stream message."""

    genesis: bytes
    base: bytes
    dah: bytes

    def to_cbor(self) -> dict[str, Any]:
        return {"dah": self.dah, "base": self.base, "genesis": self.genesis}

    def encode(self) -> bytes:
        return codec.encode_ordered(self.to_cbor())


def decode_header(data: bytes) -> StreamHeader:
    tree = codec.decode(data, max_bytes=MAX_HEADER_BYTES, max_depth=1)
    if not isinstance(tree, dict) or tuple(tree) != _K_HEADER:
        raise SchemaError("header must be a map of dah, base, genesis", path="header")
    for key in _K_HEADER:
        if type(tree[key]) is not bytes or len(tree[key]) != 32:
            raise SchemaError("expected 32 bytes", path=f"header.{key}")
    return StreamHeader(genesis=tree["genesis"], base=tree["base"], dah=tree["dah"])


def header_for(agent: Agent, base: bytes) -> StreamHeader:
    """The sender's header for ``agent``, continuing the head ``base`` the receiver trusts."""
    if agent.lineage is None:
        raise SchemaError("agent has no lineage", path="lineage")
    return StreamHeader(agent.lineage.genesis_dah, base, agent.lineage.head.dah)


@dataclass(frozen=True, slots=True)
class TwoStageResult:
    """``stage`` is where it stopped: 1 or 2 on refusal, 0 when both stages passed."""

    stage: int
    check: SlopeCheck
    agent: Agent | None = None

    @property
    def ok(self) -> bool:
        return self.stage == 0


BodyDecoder = Callable[[bytes], Validation]


def screen(header_bytes: bytes, tracker: SlopeTracker) -> tuple[StreamHeader | None, SlopeCheck]:
    """Stage 1: is the header well formed, and does it continue a head this node trusts?"""
    try:
        header = decode_header(header_bytes)
    except MeshError as exc:
        return None, SlopeCheck(SlopeReason.MALFORMED, -1, f"header: {exc.describe()}")
    known = tracker.trusted(header.genesis)
    if known is None:
        return header, SlopeCheck(SlopeReason.NON_DESCENDANT, -1, "header names an unknown slope")
    if known[0] != header.base:
        return header, SlopeCheck(
            SlopeReason.NON_DESCENDANT, -1, "header does not continue the head this node trusts"
        )
    return header, SlopeCheck(SlopeReason.OK)


def receive(
    header_bytes: bytes,
    body: bytes,
    tracker: SlopeTracker,
    hosts: HostDirectory,
    *,
    epoch: int,
    params: SlopeParams = DEFAULT_PARAMS,
    decode_body: BodyDecoder = validate_bytes,
) -> TwoStageResult:
    """Run both stages; on success the tracker trusts the new head."""
    header, first = screen(header_bytes, tracker)
    if header is None or not first.ok:
        return TwoStageResult(1, first)
    validation = decode_body(body)
    agent = validation.agent
    if agent is None or agent.lineage is None:
        why = "; ".join(p.describe() for p in validation.problems) or "no agent"
        return TwoStageResult(2, SlopeCheck(SlopeReason.MALFORMED, -1, why))
    if agent.lineage.genesis_dah != header.genesis or agent.lineage.head.dah != header.dah:
        return TwoStageResult(
            2,
            SlopeCheck(SlopeReason.NON_DESCENDANT, -1, "embedded DAH differs from the header"),
            agent,
        )
    check = tracker.accept(agent, hosts, epoch=epoch, params=params)
    return TwoStageResult(0 if check.ok else 2, check, agent)
