"""Zone topics (DESIGN §4): StrictNoSign, sha256 content ids, a validator that judges the
canonical CBOR envelope ``{v: 1, zone, agent}``; relays learn no publisher identity."""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

from protocols import codec
from protocols.errors import DecodeError
from protocols.gossip.config import GossipParams
from protocols.gossip.rpc import Message
from protocols.gossip.sign import SignaturePolicy, msg_id_sha256
from protocols.gossip.validate import (
    PLAIN_TOPIC,
    ZONE_TOPIC,
    TopicConfig,
    default_topic_config,
    zone_topic,
    zone_topic_config,
)
from protocols.types import MsgId, PeerId, WireVerdict
from sim.routernet import build_gossip_net

TOPIC = zone_topic("fleet")


def envelope(agent: bytes, zone: str = "fleet") -> bytes:
    return codec.encode({"v": 1, "zone": zone, "agent": agent})


def judge(peer: PeerId, mid: MsgId, msg: Message) -> WireVerdict:
    """What the node's admission does first: undecodable or wrong zone is REJECT."""
    try:
        env: Any = codec.decode(msg.data, max_bytes=600 * 1024)
    except DecodeError:
        return WireVerdict.REJECT
    if not isinstance(env, dict) or env.get("v") != 1 or env.get("zone") != "fleet":
        return WireVerdict.REJECT
    return WireVerdict.ACCEPT


def zone_config(topic: str) -> TopicConfig:
    return zone_topic_config(judge) if ZONE_TOPIC.match(topic) else PLAIN_TOPIC


def test_zone_topics_are_recognised_by_name() -> None:
    assert TOPIC == "/meshnode/zone/fleet/agents/1"
    for t in (TOPIC, zone_topic("fleet", "control")):
        cfg = default_topic_config(t)
        assert cfg.policy is SignaturePolicy.STRICT_NO_SIGN
        assert cfg.msg_id is msg_id_sha256
    assert default_topic_config("/other/1").policy is SignaturePolicy.STRICT_SIGN


def test_envelope_flows_through_a_line_with_content_id_and_no_author() -> None:
    net = build_gossip_net(
        4,
        [(0, 1), (1, 2), (2, 3)],
        params=GossipParams(),
        seed=2,
        topic_config=zone_config,
        topics=[TOPIC],
    )
    net.start_heartbeats(random.Random(1))
    net.run_for(2)
    seen: list[Message] = []
    net.on_output = lambda i, o: seen.extend(getattr(getattr(o, "rpc", None), "publish", ()))
    data = envelope(b"agent-bytes")
    mid = net.publish(0, TOPIC, data)
    net.run_for(1)
    assert mid == codec.content_id(data)
    assert sorted(net.deliveries[mid]) == [0, 1, 2, 3]
    assert seen
    assert all((m.sender, m.seqno, m.signature, m.key) == (b"", b"", b"", b"") for m in seen)


def test_bad_envelopes_are_rejected_and_not_relayed(gs: ModuleType) -> None:
    h = gs.make_harness(topic_config=zone_config)
    h.join(TOPIC)
    peers = [gs.pid(i) for i in range(4)]
    h.connect(peers, topics=(TOPIC,))
    h.beat()
    src = sorted(h.mesh(TOPIC))[0]
    for bad in (b"\xff not cbor", envelope(b"x", zone="other")):
        outs = h.recv(src, gs.Rpc(publish=(Message(TOPIC, bad),)))
        assert outs == []
    assert h.score(src) < h.router.params.thresholds.gossip
    good = envelope(b"ok")
    outs = h.recv(peers[1], gs.Rpc(publish=(Message(TOPIC, good),)))
    assert [d.msg_id for d in gs.delivered(outs)] == [codec.content_id(good)]
