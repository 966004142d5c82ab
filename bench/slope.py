"""Trust-slope benchmark: prints one JSON line of figures.

Targets (issue 4): verify a 1,000-step slope from genesis (every DAH step and host signature,
the head's state digest recomputed) <= 80 ms; the hash steps alone <= 8 ms; incremental
check of one new step against a tracked head >= 8,000/s; a SlopeTracker holding 1,000,000
slopes <= 300 MB. The hashlib (BLAKE2b) and pynacl (Ed25519 verify) baselines measured in the
same run are printed so the figures read as ratios on this machine.

Run: ``.venv/bin/python bench/slope.py [--tracker N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import replace

from nacl.signing import SigningKey

from protocols.agent.build import AgentSpec, new_agent
from protocols.agent.lineage import body_digest, signing_message, state_digest
from protocols.agent.schema import Agent, LedgerEvent, LedgerKind, LineageEntry, MutationClass
from protocols.codec import encode_ordered
from protocols.identity import dah
from protocols.identity.hashing import COMMIT_TAG, h
from protocols.identity.host import HostGrant, LocalHost, MemoryHostDirectory, new_host, sign_record
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeParams, SlopeTracker, verify_slope

SYNC = SlopeParams(window=None, max_gap=10_000)


def world() -> tuple[LocalHost, MemoryHostDirectory]:
    authority = SigningKey(b"\x01" * 32)
    host = new_host(random.Random(1), 0)
    record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=("z",)), authority)
    hosts = MemoryHostDirectory([bytes(authority.verify_key)])
    hosts.admit(record)
    return host.with_record(record.name), hosts


def slope(host: LocalHost, steps: int) -> tuple[Agent, list[LineageEntry], HostSecrets]:
    """An agent after ``steps`` state transitions (memory changes each step) and all entries."""
    rng = random.Random(2)
    made = new_agent(AgentSpec(verb="note", zone="z", epoch=0), host, HostSecrets(), rng)
    agent, secrets, entries = made.agent, made.secrets, [made.entry]
    for k in range(steps):
        assert agent.memory is not None
        event = LedgerEvent(epoch=k // 10, kind=LedgerKind.EXECUTION, data={"k": k})
        change = dah.Change(
            MutationClass.STATE_TRANSITION, memory=replace(agent.memory, ledger=(event,))
        )
        step = dah.mutate(agent, change, host, secrets, k // 10, rng)
        agent, secrets = step.agent, step.secrets
        entries.append(step.entry)
    return agent, entries, secrets


def best_ms(fn: Callable[[], object], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracker", type=int, default=1_000_000, help="slopes in the tracker")
    args = parser.parse_args()

    host, hosts = world()
    agent, entries, secrets = slope(host, 999)
    assert len(entries) == 1000
    epoch = entries[-1].epoch

    def verify_all() -> None:
        result = verify_slope(
            entries, None, hosts, epoch=epoch, params=SYNC, head_state=state_digest(agent)
        )
        assert result.ok, result

    verify_ms = best_ms(verify_all)

    bodies = [body_digest(e) for e in entries]

    def hash_steps() -> None:
        prev = dah.GENESIS_DAH_PREV
        for i, (e, body) in enumerate(zip(entries, bodies, strict=True)):
            if i:
                assert h(COMMIT_TAG, e.reveal) == entries[i - 1].commit
            assert dah.entry_dah(prev, e, body) == e.dah
            prev = e.dah

    def hash_steps_with_digests() -> None:
        prev = dah.GENESIS_DAH_PREV
        for e in entries:
            assert dah.entry_dah(prev, e, body_digest(e)) == e.dah
            prev = e.dah

    hash_ms = best_ms(hash_steps)
    hash_enc_ms = best_ms(hash_steps_with_digests)

    # Incremental: a tracker trusts the head; the agent arrives with one new step.
    tracker = SlopeTracker(capacity=10)
    assert tracker.accept(agent, hosts, epoch=epoch, params=SYNC).ok
    nxt = dah.mutate(
        agent, dah.Change(MutationClass.EXECUTION), host, secrets, epoch, random.Random(3)
    ).agent
    n_inc = 2000

    def incremental() -> None:
        for _ in range(n_inc):
            tracker.check(nxt, hosts, epoch=epoch, params=SYNC)

    assert tracker.check(nxt, hosts, epoch=epoch, params=SYNC).ok
    inc_per_s = n_inc / (best_ms(incremental, 3) / 1000)

    # Baselines on this machine.
    msgs = [signing_message(b, e.dah) for b, e in zip(bodies, entries, strict=True)]
    key = SigningKey(b"\x02" * 32)
    sigs = [key.sign(m).signature for m in msgs]
    vk = key.verify_key
    blake_ms = best_ms(lambda: [hashlib.blake2b(m, digest_size=32).digest() for m in msgs])
    sha_ms = best_ms(lambda: [hashlib.sha256(m).digest() for m in msgs])
    nacl_ms = best_ms(lambda: [vk.verify(m, s) for m, s in zip(msgs, sigs, strict=True)])

    # Tracker memory: N slopes (random genesis DAH keys, head names, depths).
    rng = random.Random(4)
    before = rss_bytes()
    big = SlopeTracker(capacity=args.tracker)
    start = time.perf_counter()
    for i in range(args.tracker):
        big.remember(rng.randbytes(32), rng.randbytes(32), i)
    fill_s = time.perf_counter() - start
    tracker_mb = (rss_bytes() - before) / 1e6
    assert len(big) == args.tracker

    figures = {
        "bench": "slope",
        "python": platform.python_version(),
        "entry_bytes": len(encode_ordered(entries[-1].to_cbor())),
        "verify_1000_ms": round(verify_ms, 2),
        "hash_steps_1000_ms": round(hash_ms, 2),
        "hash_steps_with_body_digests_1000_ms": round(hash_enc_ms, 2),
        "incremental_check_per_s": round(inc_per_s),
        "tracker_slopes": args.tracker,
        "tracker_mb": round(tracker_mb, 1),
        "tracker_fill_s": round(fill_s, 2),
        "baseline_blake2b_1000_ms": round(blake_ms, 3),
        "baseline_sha256_1000_ms": round(sha_ms, 3),
        "baseline_ed25519_verify_1000_ms": round(nacl_ms, 2),
        "targets": {
            "verify_1000_ms": 80,
            "hash_steps_1000_ms": 8,
            "incremental_check_per_s": 8000,
            "tracker_mb_per_1m": 300,
        },
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
