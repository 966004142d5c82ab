"""Admission throughput on one core: prints one JSON line (issue 5 targets).

- ``fresh_per_s``: fresh FULL agents (about 1 KiB of fields plus a 5-entry slope, every host
  signature verified) against a 20-rule contract; target >= 2,000/s.
- ``successor_per_s``: successors of a tracked agent (one new signed entry); target >= 4,000/s.
- ``quorum_per_s``: successors carrying a 4-of-5 quorum certificate; target >= 1,000/s.
- ``pynacl_verify_per_s``: the Ed25519 verify baseline measured in the same run.
- ``successor_untracked_cached_per_s``: successors judged with no tracker on a view whose
  verified-signature cache saw their predecessors (one verification instead of six).
- ``verifies_per_admission``: Ed25519 verifications per decision, counted (the floor).
- ``cpu_per_s``: the same rates by this process's CPU time (the wall-clock rates on a shared
  machine mostly measure the other processes).

Every iteration judges a distinct agent; decisions are never cached.
Run: ``.venv/bin/python bench/admission.py [--agents N]``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace

import nacl.signing

from protocols.agent.build import encode_agent
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import Agent, MutationClass
from protocols.governance.pipeline import AdmitInput, admit
from protocols.governance.policy import Rule
from protocols.governance.world import DEFAULT_RULES, World, WorldParams, build_world
from protocols.identity import dah
from protocols.identity.host import VerifiedSignatures
from protocols.identity.slope import SlopeTracker
from protocols.types import PolicyVerdict, WireVerdict

E = 1000


def rules20() -> tuple[Rule, ...]:
    """16 rules that do not match ordinary agents, then the 4 defaults (20 in all)."""
    filler = tuple(
        Rule(
            f"filler-{i}",
            PolicyVerdict.DENY,
            "never",
            (("verbs", (f"verb{i}",)), ("roles", ("x",))),
        )
        for i in range(16)
    )
    return (*filler, *DEFAULT_RULES)


def fresh(world: World, i: int) -> Agent:
    rng = random.Random(i)
    text = "x" * 700
    agent = world.spawn(world.body(args={"text": text, "n": i}), i % 2, E - 1, rng)
    return world.grow(agent, 4, E, rng)


CPU: dict[str, float] = {}
"""Rates by CPU time of this process, filled in by :func:`rate` (robust on a shared machine,
where wall-clock rates mostly measure the other processes)."""


def rate(func, items, name: str = "") -> float:  # type: ignore[no-untyped-def]
    start, cpu = time.perf_counter(), time.process_time()
    for item in items:
        func(item)
    if name:
        CPU[name] = round(len(items) / (time.process_time() - cpu))
    return len(items) / (time.perf_counter() - start)


def count_verifies(func, items) -> float:  # type: ignore[no-untyped-def]
    """Ed25519 verifications per call of ``func`` (both pynacl entry points counted)."""
    import nacl.bindings

    import protocols.identity.host as host_mod

    calls = [0]
    real = nacl.bindings.crypto_sign_open

    def counting(signed: bytes, pk: bytes) -> bytes:
        calls[0] += 1
        return real(signed, pk)

    nacl.bindings.crypto_sign_open = counting
    setattr(host_mod, "crypto_sign_open", counting)  # noqa: B010 (patched only to count)
    try:
        for item in items:
            func(item)
    finally:
        nacl.bindings.crypto_sign_open = real
        setattr(host_mod, "crypto_sign_open", real)  # noqa: B010
    return calls[0] / len(items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=600)
    n = parser.parse_args().agents
    world = build_world(WorldParams(hosts=2, validators=5, rules=rules20()))
    view = world.view()
    host = bytes(32)

    agents = [fresh(world, i) for i in range(n)]
    envelopes = [world.envelope(a) for a in agents]
    size = sum(len(e) for e in envelopes) / n

    def judge(data: bytes, tracker: SlopeTracker | None = None) -> None:
        d = admit(AdmitInput(data, view, E, host, tracker=tracker))
        if d.wire is not WireVerdict.ACCEPT:
            raise SystemExit(f"bench agent refused: {d.code} {d.reason}")

    verifies = {"fresh": count_verifies(judge, envelopes[:20])}
    fresh_rate = rate(judge, envelopes, "fresh_per_s")

    # successors: the tracker trusts each agent's head; the successor adds one entry
    tracker = SlopeTracker(capacity=n * 2)
    for a in agents:
        assert a.lineage is not None
        head = a.lineage.entries[-1]
        tracker.remember(a.lineage.genesis_dah, entry_hash(head), head.totals.depth)
    rng = random.Random(7)
    successors = [
        world.envelope(world.step(a, dah.Change(cls=MutationClass.STATE_TRANSITION), E, rng))
        for a in agents
    ]
    verifies["successor"] = count_verifies(lambda d: judge(d, tracker), successors[:20])
    successor_rate = rate(lambda d: judge(d, tracker), successors, "successor_per_s")

    # successors without a tracker, on a view whose verified-signature cache saw the fresh
    # agents: only the new entry's signature is verified (the cache changes no verdict)
    cached_view = world.view()
    cached_view.verified = VerifiedSignatures(capacity=n * 8)
    for data in envelopes:
        admit(AdmitInput(data, cached_view, E, host))

    def judge_cached(data: bytes) -> None:
        d = admit(AdmitInput(data, cached_view, E, host))
        if d.wire is not WireVerdict.ACCEPT:
            raise SystemExit(f"bench agent refused: {d.code} {d.reason}")

    cached_rate = rate(judge_cached, successors, "successor_untracked_cached_per_s")

    def role_change(a: Agent) -> dah.Change:
        assert a.context is not None
        return dah.Change(cls=MutationClass.ROLE_CHANGE, context=replace(a.context, role="scout"))

    certified = [world.envelope(world.certified(a, role_change(a), E, rng)) for a in agents]
    verifies["quorum"] = count_verifies(lambda d: judge(d, tracker), certified[:20])
    quorum_rate = rate(lambda d: judge(d, tracker), certified, "quorum_per_s")

    key = nacl.signing.SigningKey(bytes(32))
    msg = b"m" * 200
    sig = key.sign(msg).signature
    vk = key.verify_key
    verify_rate = rate(lambda _: vk.verify(msg, sig), range(5000), "pynacl_verify_per_s")

    print(
        json.dumps(
            {
                "bench": "admission",
                "agents": n,
                "fresh_bytes_avg": round(size),
                "contract_rules": len(world.contract.rules),
                "fresh_per_s": round(fresh_rate),
                "successor_per_s": round(successor_rate),
                "quorum_per_s": round(quorum_rate),
                "pynacl_verify_per_s": round(verify_rate),
                "successor_untracked_cached_per_s": round(cached_rate),
                "verifies_per_admission": verifies,
                "cpu_per_s": CPU,
                "targets": {"fresh_per_s": 2000, "successor_per_s": 4000, "quorum_per_s": 1000},
                "bytes_example": len(encode_agent(agents[0])),
            }
        )
    )


if __name__ == "__main__":
    main()
