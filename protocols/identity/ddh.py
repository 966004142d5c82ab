"""Dynamic Device Hash slope (SPEC 2.12, DESIGN 6): a node identity regrown per epoch.

``DDH_0 = H(tag || 0^32 || Ext(entropy_0) || epoch_0 || role)``, then one step per epoch:
``DDH_e = H(tag || DDH_prev || Ext(entropy_e) || e || role)``. The entropy comes from the
caller (os.urandom plus timing jitter on a real node, the node's seeded ``random.Random`` in
the simulator) and never from the libp2p key. The state is stable within an epoch, each
value links to the one before it (the state keeps the extractor token of its last step, so
the node can prove the link to itself after a restart), and a node that lost its stored
state starts an unrelated slope that does not continue the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from protocols.errors import SchemaError, SlopeError
from protocols.identity.hashing import DDH_EXT_TAG, DDH_TAG, DIGEST_LEN, h, text, u64

MIN_ENTROPY: Final = 16
"""Bytes of caller entropy required per step."""
ZERO: Final = bytes(DIGEST_LEN)


@dataclass(frozen=True, slots=True)
class DdhState:
    """The node's current DDH, the genesis it grew from and the material of its last step."""

    genesis: bytes
    value: bytes
    epoch: int
    prev: bytes
    ext: bytes
    role: str

    def to_cbor(self) -> dict[str, Any]:
        return {
            "ext": self.ext,
            "prev": self.prev,
            "role": self.role,
            "epoch": self.epoch,
            "value": self.value,
            "genesis": self.genesis,
        }

    @classmethod
    def from_cbor(cls, tree: Any) -> DdhState:
        """Rebuild a persisted state; SchemaError names the bad key."""
        if not isinstance(tree, dict) or set(tree) != {
            "ext",
            "prev",
            "role",
            "epoch",
            "value",
            "genesis",
        }:
            raise SchemaError("not a DDH state map", path="ddh")
        for key in ("ext", "prev", "value", "genesis"):
            if type(tree[key]) is not bytes or len(tree[key]) != DIGEST_LEN:
                raise SchemaError("expected 32 bytes", path=f"ddh.{key}")
        if type(tree["epoch"]) is not int or tree["epoch"] < 0:
            raise SchemaError("expected an unsigned integer", path="ddh.epoch")
        if type(tree["role"]) is not str:
            raise SchemaError("expected text", path="ddh.role")
        state = cls(
            tree["genesis"], tree["value"], tree["epoch"], tree["prev"], tree["ext"], tree["role"]
        )
        if not links(state.prev, state):
            raise SchemaError("stored DDH does not recompute from its last step", path="ddh")
        return state


def extract(entropy: bytes) -> bytes:
    """Ext: condense raw entropy to a 32-byte token (only the token enters the slope)."""
    if len(entropy) < MIN_ENTROPY:
        raise SlopeError(f"need at least {MIN_ENTROPY} bytes of entropy, got {len(entropy)}")
    return h(DDH_EXT_TAG, entropy)


def step(prev: bytes, ext: bytes, epoch: int, role: str) -> bytes:
    """One DDH step (pure; the same inputs give the same DDH)."""
    return h(DDH_TAG, prev, ext, u64(epoch), text(role))


def genesis(entropy: bytes, epoch: int, role: str = "node") -> DdhState:
    """Start a DDH slope at ``epoch``."""
    ext = extract(entropy)
    value = step(ZERO, ext, epoch, role)
    return DdhState(genesis=value, value=value, epoch=epoch, prev=ZERO, ext=ext, role=role)


def advance(state: DdhState, entropy: bytes, epoch: int) -> DdhState:
    """The state at ``epoch``: unchanged within the same epoch, one linked step otherwise."""
    if epoch == state.epoch:
        return state
    if epoch < state.epoch:
        raise SlopeError(f"epoch {epoch} is before the DDH epoch {state.epoch}", path="ddh.epoch")
    ext = extract(entropy)
    value = step(state.value, ext, epoch, state.role)
    return DdhState(state.genesis, value, epoch, state.value, ext, state.role)


def links(prev_value: bytes, state: DdhState) -> bool:
    """True when ``state`` is one recomputable step on from ``prev_value`` (continuity)."""
    return state.prev == prev_value and state.value == step(
        state.prev, state.ext, state.epoch, state.role
    )
