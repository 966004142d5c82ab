"""PKI fallback identity (SPEC 2.18 "PKI fallback"; SPEC 5 ambiguity 9).

Where a peer insists on a public key, a node may show a *fallback identity*
``FID = H(PK_pub || nonce || ctx_tag)`` made from a **temporary** Ed25519 keypair. It lives
behind an :class:`IsolationBoundary` and fails closed (:class:`FidError`) on each of:

- ``MIXING``: PKI material (a session's public key, nonce or FID, or any registered PKI key
  such as the libp2p key) offered as input to a DDH or DAH step; keyless identity must never
  depend on a key;
- ``EXPORT``: a DAH/DDH internal (host key seed, DDH extractor token, a host's pending
  next-step secrets) inside anything the session signs or would serialise;
- ``OUT_OF_SCOPE``: the FID used in another context or session, after its last epoch, or
  after the session was closed;
- ``BAD_PROOF``: a claimed FID that does not recompute, or a signature that does not verify.

Sessions are scoped to one ``ctx_tag`` and a last epoch; keys, nonces and session ids come
from the caller's ``random.Random`` (the core reads no entropy). The FID never decides a
governance verdict: it is a transport-level name for one session.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, NoReturn

from nacl.signing import SigningKey

from protocols import codec
from protocols.agent.schema import Agent
from protocols.errors import MeshError, SchemaError
from protocols.identity import dah as dah_mod
from protocols.identity import ddh as ddh_mod
from protocols.identity.hashing import h, text, u64
from protocols.identity.host import LocalHost, verify_signature
from protocols.identity.host_secrets import HostSecrets

FID_TAG: Final = b"meshnode/fid/1"
FID_SIGN_TAG: Final = b"meshnode/fid-sig/1\x00"
NONCE_LEN: Final = 16
SESSION_LEN: Final = 16
MIN_TAINT: Final = 16
"""Shortest value the boundary tracks (shorter ones would match by chance)."""


class FidViolation(enum.Enum):
    MIXING = "mixing"
    EXPORT = "export"
    OUT_OF_SCOPE = "out-of-scope"
    BAD_PROOF = "bad-proof"


class FidError(MeshError):
    """A closed-fail refusal of the PKI fallback, naming the violation."""

    def __init__(self, violation: FidViolation, message: str) -> None:
        self.violation = violation
        super().__init__(f"{violation.value}: {message}", path="fid")


def fid_of(public_key: bytes, nonce: bytes, ctx_tag: str) -> bytes:
    """``FID = H(PK_pub || nonce || ctx_tag)`` (BLAKE2b-256, its own domain tag)."""
    return h(FID_TAG, public_key, nonce, text(ctx_tag))


@dataclass(frozen=True, slots=True)
class FidClaim:
    """The public half of a session: what a peer is shown and checks signatures against."""

    fid: bytes
    public_key: bytes
    nonce: bytes
    ctx_tag: str
    session: bytes
    not_after_epoch: int

    def to_cbor(self) -> dict[str, object]:
        return {
            "fid": self.fid,
            "nonce": self.nonce,
            "ctx_tag": self.ctx_tag,
            "session": self.session,
            "public_key": self.public_key,
            "not_after_epoch": self.not_after_epoch,
        }

    def encode(self) -> bytes:
        return codec.encode_ordered(self.to_cbor())


def _signed_message(claim: FidClaim, message: bytes) -> bytes:
    return (
        FID_SIGN_TAG
        + claim.fid
        + claim.session
        + u64(claim.not_after_epoch)
        + text(claim.ctx_tag)
        + message
    )


class FidSession:
    """One temporary keypair behind the boundary. The signing key never leaves: there is no
    accessor, it is not in ``repr``, and the session refuses to be pickled or copied."""

    __slots__ = ("_boundary", "_key", "claim")

    def __init__(self, boundary: IsolationBoundary, key: SigningKey, claim: FidClaim) -> None:
        self._boundary = boundary
        self._key: SigningKey | None = key
        self.claim = claim

    @property
    def open(self) -> bool:
        return self._key is not None

    def _in_scope(self, ctx_tag: str, epoch: int) -> SigningKey:
        if self._key is None:
            raise FidError(FidViolation.OUT_OF_SCOPE, "the session is closed")
        if ctx_tag != self.claim.ctx_tag:
            raise FidError(
                FidViolation.OUT_OF_SCOPE,
                f"FID is scoped to {self.claim.ctx_tag!r}, used for {ctx_tag!r}",
            )
        if epoch > self.claim.not_after_epoch:
            raise FidError(
                FidViolation.OUT_OF_SCOPE,
                f"FID expired after epoch {self.claim.not_after_epoch} (now {epoch})",
            )
        return self._key

    def sign(self, message: bytes, *, ctx_tag: str, epoch: int) -> bytes:
        """Sign ``message`` in scope; EXPORT if it carries a DAH/DDH internal."""
        key = self._in_scope(ctx_tag, epoch)
        self._boundary.check_export(message)
        return key.sign(_signed_message(self.claim, message)).signature

    def close(self) -> None:
        """End the session: the key is dropped and every later use fails closed."""
        self._key = None

    def __repr__(self) -> str:
        state = "open" if self._key is not None else "closed"
        return f"FidSession(fid={self.claim.fid.hex()[:16]}, ctx={self.claim.ctx_tag!r}, {state})"

    def _refuse(self, *_: object) -> NoReturn:
        raise FidError(FidViolation.EXPORT, "a fallback session cannot be serialised or copied")

    __reduce__ = __reduce_ex__ = __copy__ = __deepcopy__ = __getstate__ = _refuse


def verify(
    claim: FidClaim,
    message: bytes,
    signature: bytes,
    *,
    ctx_tag: str,
    epoch: int,
    session: bytes | None = None,
) -> None:
    """Check a FID signature in the verifier's scope; FidError on anything else (closed fail)."""
    if fid_of(claim.public_key, claim.nonce, claim.ctx_tag) != claim.fid:
        raise FidError(FidViolation.BAD_PROOF, "FID does not recompute from its key and nonce")
    if claim.ctx_tag != ctx_tag:
        raise FidError(FidViolation.OUT_OF_SCOPE, f"FID for {claim.ctx_tag!r} shown in {ctx_tag!r}")
    if session is not None and claim.session != session:
        raise FidError(FidViolation.OUT_OF_SCOPE, "FID of another session")
    if epoch > claim.not_after_epoch:
        raise FidError(
            FidViolation.OUT_OF_SCOPE, f"FID expired after epoch {claim.not_after_epoch}"
        )
    if not verify_signature(claim.public_key, _signed_message(claim, message), signature):
        raise FidError(FidViolation.BAD_PROOF, "signature does not verify under the FID's key")


class IsolationBoundary:
    """Keeps PKI and keyless identity apart for one node.

    It remembers *PKI taint* (every session's key, nonce, FID and id, plus registered keys
    such as the libp2p key) and *protected internals* (host seed, DDH extractor token,
    pending secrets). Identity steps made through it refuse tainted input; sessions refuse
    to sign anything carrying an internal.
    """

    def __init__(self) -> None:
        self._taint: set[bytes] = set()
        self._protected: set[bytes] = set()

    @staticmethod
    def _values(values: Iterable[bytes]) -> list[bytes]:
        out = list(values)
        if any(len(v) < MIN_TAINT for v in out):
            raise SchemaError(f"tracked values must be >= {MIN_TAINT} bytes", path="fid")
        return out

    def isolate(self, *pki_values: bytes) -> None:
        """Register PKI material (e.g. the libp2p public key) that must never feed DAH/DDH."""
        self._taint.update(self._values(pki_values))

    def protect(self, *internals: bytes) -> None:
        """Register DAH/DDH internals that must never leave through a session."""
        self._protected.update(self._values(internals))

    def protect_host(self, host: LocalHost, secrets: HostSecrets | None = None) -> None:
        """Protect a host's key seed, its DDH extractor token and its pending secrets."""
        pending = secrets.pending.values() if secrets is not None else ()
        self.protect(host.seed, host.ddh.ext, *pending)

    def open(self, rng: random.Random, ctx_tag: str, epoch: int, ttl: int) -> FidSession:
        """A new session for ``ctx_tag`` valid through epoch ``epoch + ttl``."""
        if not ctx_tag or ttl < 0 or epoch < 0:
            raise SchemaError("a context tag, epoch >= 0 and ttl >= 0 are needed", path="fid")
        key = SigningKey(rng.randbytes(32))
        public = bytes(key.verify_key)
        nonce = rng.randbytes(NONCE_LEN)
        session = rng.randbytes(SESSION_LEN)
        claim = FidClaim(
            fid=fid_of(public, nonce, ctx_tag),
            public_key=public,
            nonce=nonce,
            ctx_tag=ctx_tag,
            session=session,
            not_after_epoch=epoch + ttl,
        )
        self._taint.update((public, nonce, session, claim.fid))
        return FidSession(self, key, claim)

    @staticmethod
    def _hit(data: bytes, values: set[bytes]) -> bool:
        return any(v in data for v in values)

    def check_identity_input(self, *parts: bytes, what: str = "identity input") -> None:
        """MIXING if any part carries PKI material."""
        if any(self._hit(p, self._taint) for p in parts):
            raise FidError(FidViolation.MIXING, f"PKI material in {what}")

    def check_export(self, data: bytes) -> None:
        """EXPORT if ``data`` carries a protected DAH/DDH internal."""
        if self._hit(data, self._protected):
            raise FidError(FidViolation.EXPORT, "DAH/DDH internals would leave the boundary")

    # -- identity steps through the boundary ---------------------------------------------

    def ddh_genesis(self, entropy: bytes, epoch: int, role: str = "node") -> ddh_mod.DdhState:
        """:func:`~.ddh.genesis`, refusing PKI-tainted entropy."""
        self.check_identity_input(entropy, role.encode(), what="DDH entropy")
        state = ddh_mod.genesis(entropy, epoch, role)
        self.protect(state.ext)
        return state

    def ddh_advance(self, state: ddh_mod.DdhState, entropy: bytes, epoch: int) -> ddh_mod.DdhState:
        """:func:`~.ddh.advance`, refusing PKI-tainted entropy."""
        self.check_identity_input(entropy, what="DDH entropy")
        new = ddh_mod.advance(state, entropy, epoch)
        self.protect(new.ext)
        return new

    def mutate(
        self,
        agent: Agent,
        change: dah_mod.Change,
        host: LocalHost,
        secrets: HostSecrets,
        epoch: int,
        rng: random.Random,
    ) -> dah_mod.Step:
        """:func:`~.dah.mutate`, refusing a step whose state or material carries PKI
        material (nothing is returned, so nothing tainted can be published)."""
        step = dah_mod.mutate(agent, change, host, secrets, epoch, rng)
        self.check_identity_input(
            codec.encode_ordered(step.agent.to_cbor()),
            step.entry.salt,
            step.entry.reveal,
            host.ddh.value,
            what="DAH step",
        )
        return step


__all__ = [
    "FID_TAG",
    "FidClaim",
    "FidError",
    "FidSession",
    "FidViolation",
    "IsolationBoundary",
    "fid_of",
    "verify",
]
