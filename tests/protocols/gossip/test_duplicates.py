"""Duplicate suppression by the seen cache (seen TTL), and self-origin messages."""

from __future__ import annotations

from types import ModuleType

from protocols.types import WireVerdict


def test_second_copy_is_neither_delivered_nor_forwarded(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(4)]
    h.connect(peers)
    h.beat()
    m = gs.zone_message(b"once")
    first = h.recv(peers[0], gs.Rpc(publish=(m,)))
    assert len(gs.delivered(first)) == 1
    again = h.recv(peers[1], gs.Rpc(publish=(m,)))
    assert again == []
    assert len(h.recorder.named("duplicate")) == 1


def test_seen_ttl_expiry_forgets_the_id(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    p = gs.pid(1)
    h.connect([p])
    m = gs.zone_message(b"old")
    assert gs.delivered(h.recv(p, gs.Rpc(publish=(m,))))
    h.beat(119)
    assert h.recv(p, gs.Rpc(publish=(m,))) == []
    h.beat(2)
    assert gs.delivered(h.recv(p, gs.Rpc(publish=(m,))))


def test_own_message_coming_back_is_a_duplicate(gs: ModuleType) -> None:
    h = gs.make_harness(zone=False)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    outs = h.publish(b"mine")
    [mine] = gs.msgs_to(outs, p)
    assert h.recv(p, gs.Rpc(publish=(mine,))) == []


def test_unseen_message_claiming_our_identity_is_rejected(gs: ModuleType) -> None:
    h = gs.make_harness(zone=False)
    h.join()
    p = gs.pid(1)
    h.connect([p])
    forged = gs.plain_message(9999, 123456)  # signed with our key: a replay from a past run
    assert h.recv(p, gs.Rpc(publish=(forged,))) == []
    assert [a[3:5] for a in h.recorder.named("reject")] == [(WireVerdict.REJECT, "self origin")]
