"""The node's persistent libp2p identity key (Ed25519), kept in one file with mode 0600.

The file holds the libp2p protobuf ``PrivateKey`` encoding (the format go-, rust- and
js-libp2p use), so the PeerId survives restarts. A file that other users can read, or whose
contents are not an Ed25519 private key, is refused: silently replacing it would change the
node's identity, and silently using it would leak it.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key

from protocols.errors import ConfigError

log = logging.getLogger(__name__)

MAX_KEY_FILE_BYTES = 4096


class KeyFileError(ConfigError):
    """The key file exists but is unsafe or unreadable; names the file."""


def _create(path: Path) -> KeyPair:
    private = Ed25519PrivateKey.new()
    data = private.serialize()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    log.info("created libp2p key file", extra={"path": str(path)})
    return KeyPair(private, private.get_public_key())


def load_or_create_key(path: Path) -> KeyPair:
    """Load the key at ``path``, or create it (0600) when the file does not exist."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        raise KeyFileError(f"cannot stat key file {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"key file {path} has mode {mode:04o}; it must not be readable by others "
            f"(chmod 600 {path})"
        )
    if st.st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"key file {path} is {st.st_size} bytes; not a libp2p key")
    data = path.read_bytes()
    try:
        private = deserialize_private_key(data)
    except Exception as exc:  # protobuf/nacl raise assorted types
        raise KeyFileError(f"key file {path} is malformed: not a libp2p private key") from exc
    if private.get_type() != KeyType.Ed25519 or len(private.to_bytes()) != 32:
        raise KeyFileError(f"key file {path} is not an Ed25519 key")
    return KeyPair(private, private.get_public_key())
