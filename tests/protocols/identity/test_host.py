"""Host records, revocations and the directory (DESIGN 5 host identity)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from nacl.signing import SigningKey

from protocols import codec
from protocols.errors import MeshError, SignatureError
from protocols.identity.host import (
    HostGrant,
    LocalHost,
    MemoryHostDirectory,
    decode_record,
    new_host,
    sign_record,
    sign_revocation,
)

AUTH = SigningKey(b"\x03" * 32)


def _record() -> tuple[LocalHost, object]:
    host = new_host(random.Random(4), 0)
    grant = HostGrant(
        peer_id=b"\x00\x24" + b"\x01" * 36,
        addrs=("/ip4/127.0.0.1/tcp/4001",),
        zones=("beta", "alpha"),
        roles=("validator",),
        valid_from_epoch=3,
    )
    return host, sign_record(host.key, host.ddh.genesis, grant, AUTH)


def test_a_record_binds_host_key_to_ddh_genesis_and_round_trips() -> None:
    host, record = _record()
    assert record.host_key == host.key
    assert record.ddh_genesis == host.ddh.genesis
    assert record.zones == ("alpha", "beta")
    assert record.signature_ok()
    assert decode_record(record.encode()) == record
    assert len(record.name) == 32


def test_the_directory_admits_only_trusted_authorities() -> None:
    _host, record = _record()
    trusting = MemoryHostDirectory([bytes(AUTH.verify_key)])
    trusting.admit(record)
    assert trusting.by_key(record.host_key) == record
    assert trusting.by_name(record.name) == record
    with pytest.raises(SignatureError):
        MemoryHostDirectory([b"\x00" * 32]).admit(record)
    with pytest.raises(SignatureError):
        trusting.admit(replace(record, valid_from_epoch=0))


def test_revocation() -> None:
    _host, record = _record()
    hosts = MemoryHostDirectory([bytes(AUTH.verify_key)])
    hosts.admit(record)
    assert not hosts.is_revoked(record.host_key)
    with pytest.raises(SignatureError):
        hosts.revoke(sign_revocation(record.host_key, 5, SigningKey(b"\x09" * 32)))
    hosts.revoke(sign_revocation(record.host_key, 5, AUTH))
    assert hosts.is_revoked(record.host_key)


@pytest.mark.parametrize("cut", [0, 1, 10, -1])
def test_damaged_record_bytes_give_a_typed_error(cut: int) -> None:
    _host, record = _record()
    data = record.encode()
    with pytest.raises(MeshError):
        decode_record(data[:cut] if cut else b"")
    tree = codec.decode(data, max_bytes=4096)
    tree["host_key"] = b"short"
    with pytest.raises(MeshError) as info:
        decode_record(codec.encode(tree))
    assert info.value.path == "host_record.host_key"


def test_local_host_persists() -> None:
    host = new_host(random.Random(9), 2).with_record(b"\x01" * 32)
    assert LocalHost.from_cbor(codec.decode(codec.encode(host.to_cbor()), max_bytes=4096)) == host
    assert host.sign(b"m") == LocalHost(host.seed, host.ddh).sign(b"m")
