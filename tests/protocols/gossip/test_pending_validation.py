"""Three-valued validation and PENDING (the node commits to disk before it ACCEPTs)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from protocols.gossip.events import ValidationCompleted
from protocols.gossip.validate import PENDING
from protocols.types import WireVerdict


def _pending_harness(gs: ModuleType) -> tuple[Any, list[bytes], list[bytes]]:
    asked: list[bytes] = []

    def validator(peer: bytes, mid: bytes, msg: Any) -> Any:
        asked.append(mid)
        return PENDING

    h = gs.make_harness(validator=validator)
    h.join()
    peers = [gs.pid(i) for i in range(8)]
    h.connect(peers)
    h.beat()
    return h, sorted(h.mesh()), asked


def test_pending_message_is_neither_delivered_nor_forwarded(gs: ModuleType) -> None:
    h, mesh, asked = _pending_harness(gs)
    outs = h.recv(mesh[0], gs.Rpc(publish=(gs.zone_message(b"a"),)))
    assert asked == [gs.zone_id(b"a")]
    assert outs == []


def test_accept_after_pending_delivers_and_forwards(gs: ModuleType) -> None:
    h, mesh, _ = _pending_harness(gs)
    h.recv(mesh[0], gs.Rpc(publish=(gs.zone_message(b"a"),)))
    h.now += 0.5
    outs = h.do(ValidationCompleted(gs.zone_id(b"a"), WireVerdict.ACCEPT))
    assert [d.message.data for d in gs.delivered(outs)] == [b"a"]
    forwarded = {s.peer for s in gs.sends(outs) if s.rpc.publish}
    assert forwarded == set(mesh) - {mesh[0]}


def test_duplicates_while_pending_are_not_revalidated(gs: ModuleType) -> None:
    h, mesh, asked = _pending_harness(gs)
    for p in mesh[:3]:
        h.recv(p, gs.Rpc(publish=(gs.zone_message(b"a"),)))
    assert len(asked) == 1
    assert len(h.recorder.named("duplicate")) == 2


def test_reject_after_pending_penalises_source_and_pending_duplicators(gs: ModuleType) -> None:
    h, mesh, _ = _pending_harness(gs)
    for p in mesh[:2]:
        h.recv(p, gs.Rpc(publish=(gs.zone_message(b"bad"),)))
    outs = h.do(ValidationCompleted(gs.zone_id(b"bad"), WireVerdict.REJECT))
    assert gs.delivered(outs) == []
    assert gs.sends(outs) == []
    h.beat()
    assert h.score(mesh[0]) < 0
    assert h.score(mesh[1]) < 0


def test_ignore_after_pending_penalises_nobody(gs: ModuleType) -> None:
    h, mesh, _ = _pending_harness(gs)
    h.recv(mesh[0], gs.Rpc(publish=(gs.zone_message(b"meh"),)))
    outs = h.do(ValidationCompleted(gs.zone_id(b"meh"), WireVerdict.IGNORE))
    assert outs == []
    h.beat()
    assert h.score(mesh[0]) >= 0


def test_unknown_completion_is_a_no_op(gs: ModuleType) -> None:
    h, _, _ = _pending_harness(gs)
    assert h.do(ValidationCompleted(b"never-seen", WireVerdict.ACCEPT)) == []


def test_unanswered_validation_expires_as_ignore(gs: ModuleType) -> None:
    h, mesh, _ = _pending_harness(gs)
    h.recv(mesh[0], gs.Rpc(publish=(gs.zone_message(b"slow"),)))
    h.beat(121)
    assert [a[3] for a in h.recorder.named("reject")] == [WireVerdict.IGNORE]
    assert h.do(ValidationCompleted(gs.zone_id(b"slow"), WireVerdict.ACCEPT)) == []


def test_synchronous_verdicts(gs: ModuleType) -> None:
    verdicts = {b"ok": WireVerdict.ACCEPT, b"no": WireVerdict.REJECT, b"eh": WireVerdict.IGNORE}
    h = gs.make_harness(validator=lambda peer, mid, msg: verdicts[msg.data])
    h.join()
    p = gs.pid(1)
    h.connect([p])
    outs = h.recv(p, gs.Rpc(publish=tuple(gs.zone_message(d) for d in verdicts)))
    assert [d.message.data for d in gs.delivered(outs)] == [b"ok"]
    assert [a[3] for a in h.recorder.named("reject")] == [WireVerdict.REJECT, WireVerdict.IGNORE]
