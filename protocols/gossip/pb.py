"""The pubsub ``RPC`` protobuf schema, built in code (no protoc step, no generated file).

Schema of libp2p/specs pubsub/README.md and gossipsub-v1.1.md (plus v1.2 IDONTWANT). Strings
(topics) and message ids are declared ``bytes``: identical on the wire, and it lets
:mod:`protocols.gossip.rpc` report bad UTF-8 as a DecodeError instead of the runtime deciding.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PKG = "meshnode.pubsub.pb"
_F = descriptor_pb2.FieldDescriptorProto
_OPT = _F.LABEL_OPTIONAL
_REP = _F.LABEL_REPEATED

# message name -> [(field name, number, type, label, message type name or "")]
_SCHEMA: dict[str, list[tuple[str, int, int, int, str]]] = {
    "RPC": [
        ("subscriptions", 1, _F.TYPE_MESSAGE, _REP, "SubOpts"),
        ("publish", 2, _F.TYPE_MESSAGE, _REP, "Message"),
        ("control", 3, _F.TYPE_MESSAGE, _OPT, "ControlMessage"),
    ],
    "SubOpts": [
        ("subscribe", 1, _F.TYPE_BOOL, _OPT, ""),
        ("topicid", 2, _F.TYPE_BYTES, _OPT, ""),
    ],
    "Message": [
        ("from", 1, _F.TYPE_BYTES, _OPT, ""),
        ("data", 2, _F.TYPE_BYTES, _OPT, ""),
        ("seqno", 3, _F.TYPE_BYTES, _OPT, ""),
        ("topic", 4, _F.TYPE_BYTES, _REP, ""),  # repeated: old peers' topicIDs; we want one
        ("signature", 5, _F.TYPE_BYTES, _OPT, ""),
        ("key", 6, _F.TYPE_BYTES, _OPT, ""),
    ],
    "ControlMessage": [
        ("ihave", 1, _F.TYPE_MESSAGE, _REP, "ControlIHave"),
        ("iwant", 2, _F.TYPE_MESSAGE, _REP, "ControlIWant"),
        ("graft", 3, _F.TYPE_MESSAGE, _REP, "ControlGraft"),
        ("prune", 4, _F.TYPE_MESSAGE, _REP, "ControlPrune"),
        ("idontwant", 5, _F.TYPE_MESSAGE, _REP, "ControlIDontWant"),
    ],
    "ControlIHave": [
        ("topicID", 1, _F.TYPE_BYTES, _OPT, ""),
        ("messageIDs", 2, _F.TYPE_BYTES, _REP, ""),
    ],
    "ControlIWant": [("messageIDs", 1, _F.TYPE_BYTES, _REP, "")],
    "ControlGraft": [("topicID", 1, _F.TYPE_BYTES, _OPT, "")],
    "ControlPrune": [
        ("topicID", 1, _F.TYPE_BYTES, _OPT, ""),
        ("peers", 2, _F.TYPE_MESSAGE, _REP, "PeerInfo"),
        ("backoff", 3, _F.TYPE_UINT64, _OPT, ""),
    ],
    "PeerInfo": [
        ("peerID", 1, _F.TYPE_BYTES, _OPT, ""),
        ("signedPeerRecord", 2, _F.TYPE_BYTES, _OPT, ""),
    ],
    "ControlIDontWant": [("messageIDs", 1, _F.TYPE_BYTES, _REP, "")],
}


def _build() -> dict[str, Any]:
    fd = descriptor_pb2.FileDescriptorProto(
        name="meshnode/pubsub_rpc.proto", package=_PKG, syntax="proto2"
    )
    for name, fields in _SCHEMA.items():
        m = fd.message_type.add(name=name)
        for fname, num, typ, label, tname in fields:
            f = m.field.add(name=fname, number=num, type=typ, label=label)
            if tname:
                f.type_name = f".{_PKG}.{tname}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.{name}"))
        for name in _SCHEMA
    }


_CLASSES = _build()
RPC: Any = _CLASSES["RPC"]
"""The generated ``RPC`` message class (protobuf runtime, upb backend when available)."""
MESSAGE: Any = _CLASSES["Message"]
"""The generated ``Message`` class (what StrictSign signs)."""
