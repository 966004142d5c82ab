"""HostSecrets: the next-step secrets a host holds for the agents it hosts (DESIGN 6).

Each lineage entry commits to the secret of the next step (``commit = H(s)``) and the next
signer must reveal ``s``. The secret never travels in the gossiped agent: the host keeps it
here, keyed by its commitment, and the node persists this object with its host state.
Values are immutable; every change returns a new object.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from protocols.errors import SchemaError
from protocols.identity.hashing import COMMIT_TAG, h

SECRET_LEN: Final = 32


def commitment(secret: bytes) -> bytes:
    """c = H(s): what an entry publishes about the next step's secret."""
    return h(COMMIT_TAG, secret)


@dataclass(frozen=True, slots=True)
class HostSecrets:
    """Secrets by commitment. ``fresh`` makes one; ``take`` spends one."""

    pending: Mapping[bytes, bytes] = field(default_factory=lambda: MappingProxyType({}))

    def get(self, commit: bytes) -> bytes | None:
        return self.pending.get(commit)

    def fresh(self, rng: random.Random) -> tuple[bytes, HostSecrets]:
        """A new secret from ``rng``: its commitment and the secrets holding it."""
        secret = rng.randbytes(SECRET_LEN)
        commit = commitment(secret)
        return commit, HostSecrets(MappingProxyType({**self.pending, commit: secret}))

    def take(self, commit: bytes) -> HostSecrets:
        """Drop a spent secret (revealed, or handed on at a seal)."""
        rest = {c: s for c, s in self.pending.items() if c != commit}
        return HostSecrets(MappingProxyType(rest))

    def __len__(self) -> int:
        return len(self.pending)

    def to_cbor(self) -> dict[str, Any]:
        return {"pending": [[c, self.pending[c]] for c in sorted(self.pending)]}

    @classmethod
    def from_cbor(cls, tree: Any) -> HostSecrets:
        if not isinstance(tree, dict) or set(tree) != {"pending"}:
            raise SchemaError("not a host secrets map", path="secrets")
        items = tree["pending"]
        if type(items) is not list:
            raise SchemaError("expected an array", path="secrets.pending")
        out: dict[bytes, bytes] = {}
        for i, pair in enumerate(items):
            if (
                type(pair) is not list
                or len(pair) != 2
                or type(pair[1]) is not bytes
                or len(pair[1]) != SECRET_LEN
                or pair[0] != commitment(pair[1])
            ):
                raise SchemaError("expected [commitment, secret]", path=f"secrets.pending[{i}]")
            out[pair[0]] = pair[1]
        return cls(MappingProxyType(out))
