"""Alias registrations bound to the slope they name (SPEC 2.11, 2.13, 2.17), sans-I/O.

Like a signed peer record or an IPNS record, a registration is accepted only when signed by
the key the name is bound to. Here that key is the *current host of the UID's slope*: the
host that signed the lineage head being registered. A registration carries

- ``proof``: a contiguous run of lineage entries ending at the head (what the agent carries:
  its window, or only the head when the anchor already holds its predecessor), and
- ``sig``: the head signer's Ed25519 signature over (alias, uid, head, depth, scope).

An anchor accepts it (:func:`check_binding`) only when:

1. the head entry is ``proof[-1]`` with ``dah == head`` and ``totals.depth == depth``, its
   signer is an admitted, unrevoked host, and ``sig`` verifies under that signer's key;
2. the alias is unbound here or bound to the same UID (an alias never moves to another UID);
3. the proof ties the head to the UID's slope, checked with the identity code
   (:func:`protocols.identity.slope.verify_slope`: links, signer rule, reveals, totals, DAH
   steps, host admission, signatures):

   - when the anchor already holds a head of this UID, the proof must pass through that
     head (or start right after it) and continue it; a deeper head that does not descend
     from it, or that the named next signer did not sign, is refused;
   - otherwise the proof must start at the genesis entry whose DAH is the UID.

A deeper head is therefore not enough to take an alias over: only the host the slope itself
names as next signer can extend it, which is exactly what an honest migration produces (the
old host's seal names the new host, who signs the next entry and re-registers).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from protocols import codec
from protocols.agent import lineage as lineage_mod
from protocols.agent.schema import GENESIS_PREV, LINEAGE_WINDOW, LineageEntry
from protocols.errors import MeshError
from protocols.identity.host import HostDirectory, VerifiedSignatures, check_signature
from protocols.identity.slope import SlopeParams, verify_slope

if TYPE_CHECKING:
    from protocols.index.resolve import Registration

REGISTRATION_DOMAIN: Final = b"meshnode/alias-registration/2\x00"
MAX_PROOF: Final = LINEAGE_WINDOW + 1
"""An agent carries at most LINEAGE_WINDOW entries plus its pruned checkpoint."""
PROOF_PARAMS: Final = SlopeParams(window=None, max_gap=MAX_PROOF)
"""No freshness window: a registration may name a head made epochs ago."""


class BindingReason(enum.Enum):
    """Why an anchor refused a registration (the wire carries the value)."""

    MALFORMED_PROOF = "malformed-proof"
    """No proof, or more entries than an agent can carry."""
    HEAD_MISMATCH = "head-mismatch"
    """The proof's last entry is not the registered head and depth."""
    UNKNOWN_HOST = "unknown-host"
    """The head is signed by a host that is not admitted, or is revoked."""
    BAD_SIGNATURE = "bad-signature"
    """The registration is not signed by the host that signed the head."""
    ALIAS_BOUND = "alias-bound"
    """The alias is already bound to another UID."""
    NOT_DESCENDANT = "not-descendant"
    """The head does not descend from the head this anchor holds for the UID."""
    UNPROVEN_SLOPE = "unproven-slope"
    """The anchor holds no head of the UID and the proof does not start at its genesis."""
    BROKEN_SLOPE = "broken-slope"
    """The proof's entries do not verify as a slope (the message names the slope reason)."""


class RegistrationRefused(MeshError):
    """An anchor refused a registration; ``reason`` names what was wrong. Nothing is stored."""

    def __init__(self, reason: BindingReason, message: str, *, path: str = "reg") -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {message}", path=path)


def registration_bytes(reg: Registration) -> bytes:
    """What the head signer signs: every registration field except proof and signature."""
    body = {
        "uid": reg.uid,
        "head": reg.head,
        "alias": reg.alias,
        "depth": reg.depth,
        "scope": list(reg.scope),
    }
    return REGISTRATION_DOMAIN + codec.encode(body)


def proof_of(
    entries: Sequence[LineageEntry], pruned: LineageEntry | None
) -> tuple[LineageEntry, ...]:
    """The proof an agent can give: its pruned checkpoint (if any) and its carried window."""
    return ((pruned,) if pruned is not None else ()) + tuple(entries)


def signed(
    reg: Registration, proof: Sequence[LineageEntry], sign: Callable[[bytes], bytes]
) -> Registration:
    """``reg`` with ``proof`` and the signature of ``sign`` (the head signer's host key)."""
    unsigned = replace(reg, proof=tuple(proof), sig=b"")
    return replace(unsigned, sig=sign(registration_bytes(unsigned)))


def check_binding(
    reg: Registration,
    *,
    bound: Registration | None,
    known: Registration | None,
    hosts: HostDirectory,
    epoch: int,
    verified: VerifiedSignatures | None = None,
) -> None:
    """Raise RegistrationRefused unless ``reg`` is bound to its UID's slope (module doc).

    ``bound`` is the registration this anchor holds for ``reg.alias``, ``known`` the one it
    holds for ``reg.uid`` (its proof ends at the UID's deepest verified head); ``epoch`` is
    the caller's local epoch (entries may not run ahead of it).
    """
    proof = reg.proof
    if not proof or len(proof) > MAX_PROOF:
        raise RegistrationRefused(
            BindingReason.MALFORMED_PROOF, f"a proof holds 1..{MAX_PROOF} entries", path="reg.proof"
        )
    head = proof[-1]
    if head.dah != reg.head or head.totals.depth != reg.depth:
        raise RegistrationRefused(
            BindingReason.HEAD_MISMATCH, "the proof does not end at the registered head and depth"
        )
    if hosts.by_key(head.host) is None or hosts.is_revoked(head.host):
        raise RegistrationRefused(
            BindingReason.UNKNOWN_HOST, "the head is signed by a host that is not admitted"
        )
    if not check_signature(head.host, registration_bytes(reg), reg.sig, verified):
        raise RegistrationRefused(
            BindingReason.BAD_SIGNATURE,
            "the registration is not signed by the host that signed the head",
            path="reg.sig",
        )
    if bound is not None and bound.uid != reg.uid:
        raise RegistrationRefused(
            BindingReason.ALIAS_BOUND, f"alias {reg.alias!r} is bound to another UID"
        )
    base = known.proof[-1] if known is not None and known.proof else None
    if base is None:
        if proof[0].prev != GENESIS_PREV or proof[0].dah != reg.uid:
            raise RegistrationRefused(
                BindingReason.UNPROVEN_SLOPE,
                "no head of this UID is known here and the proof does not start at its genesis",
            )
        _slope(proof, None, hosts, epoch, verified)
        return
    base_name = lineage_mod.entry_hash(base)
    names = [lineage_mod.entry_hash(e) for e in proof]
    if base_name in names:
        rest = proof[names.index(base_name) + 1 :]
    elif proof[0].prev == base_name:
        rest = proof
    else:
        raise RegistrationRefused(
            BindingReason.NOT_DESCENDANT,
            f"the head does not descend from the UID's head at depth {base.totals.depth}",
        )
    if rest:
        _slope(rest, base, hosts, epoch, verified)


def _slope(
    entries: Sequence[LineageEntry],
    trusted: LineageEntry | None,
    hosts: HostDirectory,
    epoch: int,
    verified: VerifiedSignatures | None,
) -> None:
    check = verify_slope(
        entries, trusted, hosts, epoch=epoch, params=PROOF_PARAMS, verified=verified
    )
    if not check.ok:
        raise RegistrationRefused(
            BindingReason.BROKEN_SLOPE,
            f"{check.reason.value} at proof step {check.step}: {check.message}",
            path="reg.proof",
        )


__all__ = [
    "MAX_PROOF",
    "BindingReason",
    "RegistrationRefused",
    "check_binding",
    "proof_of",
    "registration_bytes",
    "signed",
]
