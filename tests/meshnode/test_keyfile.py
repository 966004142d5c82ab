"""The libp2p key file: created 0600 on first run, stable, refused when unsafe or malformed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from libp2p.peer.id import ID

from meshnode.keys import KeyFileError, load_or_create_key


def test_created_with_mode_0600_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "node.key"
    first = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(path)
    assert ID.from_pubkey(first.public_key) == ID.from_pubkey(again.public_key)
    assert not (tmp_path / "sub" / "node.key.tmp").exists()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_wider_permissions_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    load_or_create_key(path)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_or_create_key(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x08\x01\x12\x20" + b"x" * 5])
def test_malformed_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=r"malformed|not an Ed25519"):
        load_or_create_key(path)


def test_directory_refused(tmp_path: Path) -> None:
    (tmp_path / "node.key").mkdir()
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_or_create_key(tmp_path / "node.key")
