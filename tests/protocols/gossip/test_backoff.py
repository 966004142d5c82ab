"""PRUNE backoff: obeyed by us, enforced on others (P7 for GRAFTs inside it)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from protocols.gossip.rpc import Graft, Prune


def _meshed(gs: ModuleType, n: int = 1) -> tuple[Any, list[bytes]]:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(n)]
    h.connect(peers, outbound=True)
    h.beat()
    assert set(peers) <= h.mesh()
    return h, peers


def test_we_do_not_regraft_before_the_backoff_a_prune_asked_for(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, (), 30)]))
    assert p not in h.mesh()
    grafted_at = None
    for _ in range(40):
        outs = h.beat()
        if p in gs.grafts_to(outs):
            grafted_at = h.now
            break
    assert grafted_at is not None
    # pruned at t=1 with 30 s backoff: no GRAFT before t=31 (+ 2 heartbeats of slack)
    assert grafted_at >= 1 + 30 + 2


def test_prune_without_backoff_field_uses_our_prune_backoff(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC)]))  # a v1.0 peer's PRUNE
    assert h.router.overlay.backoff_until(gs.TOPIC, p) == h.now + 60


def test_graft_during_backoff_is_penalised_and_refused(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, (), 60)]))
    h.beat(20)  # past the 10 s flood window: one penalty, not two
    outs = h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert p not in h.mesh()
    assert gs.prunes_to(outs)[p].peers == ()  # refused, no PX
    penalties = h.recorder.named("penalty")
    assert [(a[0], a[1]) for a in penalties] == [(p, 1)]


def test_graft_flood_right_after_prune_earns_double_penalty(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.router.overlay.add_backoff(gs.TOPIC, p, h.now + 60)  # as when we prune it
    h.router.overlay.mesh[gs.TOPIC].discard(p)
    h.now += 1
    h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert sum(a[1] for a in h.recorder.named("penalty")) == 2


def test_repeated_backoff_violations_make_the_score_negative(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, (), 60)]))
    for _ in range(3):
        h.now += 1
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    assert h.score(p) < 0


def test_our_prune_carries_backoff_and_we_honour_it(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    peers = [gs.pid(i) for i in range(14)]
    h.connect(peers, outbound=True)
    for p in peers:
        h.recv(p, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    outs = h.beat()
    prunes = gs.prunes_to(outs)
    assert prunes
    assert all(pr.backoff == 60 for pr in prunes.values())
    pruned = set(prunes)
    for _ in range(55):
        outs = h.beat()
        assert not (gs.grafts_to(outs) & pruned)


def test_v10_peers_get_prune_without_backoff_or_px(gs: ModuleType) -> None:
    h = gs.make_harness()
    h.join()
    old = gs.pid(1)
    h.connect([old], protocol="/meshsub/1.0.0")
    h.connect([gs.pid(i) for i in range(2, 6)])
    h.router.overlay.add_backoff(gs.TOPIC, old, h.now + 60)
    outs = h.recv(old, gs.ctl_rpc(graft=[Graft(gs.TOPIC)]))
    pr = gs.prunes_to(outs)[old]
    assert (pr.backoff, pr.peers) == (None, ())


def test_expired_backoffs_are_forgotten(gs: ModuleType) -> None:
    h, [p] = _meshed(gs)
    h.recv(p, gs.ctl_rpc(prune=[Prune(gs.TOPIC, (), 5)]))
    assert h.router.overlay.backoff_until(gs.TOPIC, p) is not None
    h.beat(10)
    assert h.router.overlay.backoff_until(gs.TOPIC, p) is None
