"""IWANT promises: a peer that advertises and then does not deliver is penalised (P7)."""

from __future__ import annotations

from types import ModuleType

from protocols.gossip.rpc import IHave


def test_broken_promise_is_penalised_after_followup_time(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    liar = gs.pid(1)
    h.connect([liar])
    h.recv(liar, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"ghost",))]))
    h.beat(2)  # 2 s < iwant_followup_time (3 s)
    assert h.recorder.named("penalty") == []
    h.beat(2)
    assert [(a[0], a[1]) for a in h.recorder.named("penalty")] == [(liar, 1)]


def test_promise_kept_is_not_penalised(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    honest = gs.pid(1)
    h.connect([honest])
    data = b"real"
    h.recv(honest, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (gs.zone_id(data),))]))
    h.beat()
    h.recv(honest, gs.Rpc(publish=(gs.zone_message(data),)))
    h.beat(5)
    assert h.recorder.named("penalty") == []


def test_promise_kept_by_another_peer_delivering_first_is_not_penalised(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    a, b = gs.pid(1), gs.pid(2)
    h.connect([a, b])
    data = b"real"
    h.recv(a, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (gs.zone_id(data),))]))
    h.recv(b, gs.Rpc(publish=(gs.zone_message(data),)))
    h.beat(5)
    assert h.recorder.named("penalty") == []


def test_many_broken_promises_push_the_score_below_gossip_threshold(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    liar = gs.pid(1)
    h.connect([liar])
    for i in range(6):
        h.recv(liar, gs.ctl_rpc(ihave=[IHave(gs.TOPIC, (b"ghost%d" % i,))]))
        h.beat()
    h.beat(4)
    assert h.score(liar) < h.router.params.thresholds.gossip
