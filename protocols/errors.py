"""The error vocabulary of the protocol core.

Every error a peer can provoke with bytes is a :class:`MeshError` subclass that names *where*
the problem is: a field path such as ``lineage.entries[3].prev`` or a byte offset into the
input. Drivers catch ``MeshError`` only; anything else escaping a decode path is a bug.
"""

from __future__ import annotations


class MeshError(Exception):
    """Base of every error caused by input (remote bytes, files, config)."""

    def __init__(self, message: str, *, path: str = "", offset: int | None = None) -> None:
        self.message = message
        self.path = path
        self.offset = offset
        super().__init__(self.describe())

    @property
    def where(self) -> str:
        """Field path, or ``@<offset>`` for byte-level errors, or ``$`` for the whole input."""
        if self.path:
            return self.path
        if self.offset is not None:
            return f"@{self.offset}"
        return "$"

    def describe(self) -> str:
        return f"{self.where}: {self.message}"


class DecodeError(MeshError):
    """Bytes that are not acceptable canonical CBOR / protobuf (names a byte offset)."""


class SchemaError(MeshError):
    """Well-formed data of the wrong shape: wrong type, unknown or missing key (names a path)."""


class LineageError(MeshError):
    """A lineage that does not replay: dangling prev, reordering, edit, cycle, epoch regress."""


class SignatureError(MeshError):
    """A signature that does not verify, or a key of an unusable type."""


class SlopeError(MeshError):
    """A trust-slope step that does not continue the slope (names the refusal reason)."""


class PolicyError(MeshError):
    """A policy contract or zone descriptor that is malformed or unsigned."""


class ConfigError(MeshError):
    """A configuration or scenario file with an unknown key, bad value or bad type."""
