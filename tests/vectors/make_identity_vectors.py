"""Write the trust-slope conformance vectors (tests/vectors/identity/*.json) from a hand-written
table.

Each case builds a run of lineage entries (honest, or with one kind of damage) from seeded
hosts, and states *by hand* the reason and the step index verification must name. Expected
values are never taken from the implementation: the script only computes the input bytes.
A vector holds the authority key, the admitted host records and revocations (hex), the local
epoch and slope parameters, the trusted head entry (or null: from genesis), the entries as
one canonical CBOR array, the head state digest to check (or null) and the expected outcome.

Run after a schema change: ``.venv/bin/python tests/vectors/make_identity_vectors.py``
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from protocols import codec  # noqa: E402
from protocols.agent.build import AgentSpec, new_agent  # noqa: E402
from protocols.agent.lineage import body_digest, entry_hash, signing_message  # noqa: E402
from protocols.agent.lineage import state_digest as digest_of  # noqa: E402
from protocols.agent.schema import (  # noqa: E402
    SCHEMA_VERSION,
    Agent,
    LedgerEvent,
    LedgerKind,
    LineageEntry,
    MutationClass,
)
from protocols.identity import dah  # noqa: E402
from protocols.identity.host import (  # noqa: E402
    HostGrant,
    HostRecord,
    LocalHost,
    Revocation,
    new_host,
    sign_record,
    sign_revocation,
)
from protocols.identity.host_secrets import HostSecrets  # noqa: E402
from protocols.identity.recovery import (  # noqa: E402
    RecoveryRule,
    RecoveryToken,
    cast_vote,
    propose,
    recover,
    validator_set,
)

OUT = Path(__file__).resolve().parent / "identity"
AUTHORITY = SigningKey(hashlib.sha256(b"identity vector authority").digest())


@dataclass
class Host:
    host: LocalHost
    record: HostRecord
    secrets: HostSecrets = field(default_factory=HostSecrets)


def _hosts() -> tuple[Host, Host, Host]:
    """h1 and h2 admitted, the stranger not (its record is never published)."""
    rng = random.Random(77)
    out = []
    for _ in range(3):
        host = new_host(rng, 0)
        record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=("alpha",)), AUTHORITY)
        out.append(Host(host.with_record(record.name), record))
    return out[0], out[1], out[2]


H1, H2, STRANGER = _hosts()
RNG = random.Random(5)
VALIDATORS = [new_host(random.Random(500 + i), 0) for i in range(5)]
RULE = RecoveryRule(zone="alpha", eligible=tuple(v.key for v in VALIDATORS), n=5, min_gap=8)


def chain(steps: int, by: Host = H1) -> tuple[Agent, list[LineageEntry]]:
    """Genesis plus ``steps`` state transitions (memory changes each step), epochs 10+k//4."""
    made = new_agent(AgentSpec(verb="note", zone="alpha", epoch=10), by.host, by.secrets, RNG)
    agent, entries = made.agent, [made.entry]
    by.secrets = made.secrets
    for k in range(steps):
        assert agent.memory is not None
        event = LedgerEvent(epoch=10, kind=LedgerKind.EXECUTION, data={"k": k})
        change = dah.Change(
            MutationClass.STATE_TRANSITION, memory=replace(agent.memory, ledger=(event,))
        )
        step = dah.mutate(agent, change, by.host, by.secrets, 10 + k // 4, RNG)
        agent, by.secrets = step.agent, step.secrets
        entries.append(step.entry)
    return agent, entries


def resign(entry: LineageEntry, by: LocalHost, **changes: Any) -> LineageEntry:
    """The entry with ``changes`` (its DAH kept unless changed), signed again by ``by``."""
    changed = replace(entry, **changes)
    return replace(changed, sig=by.sign(signing_message(body_digest(changed), changed.dah)))


def restep(entry: LineageEntry, prev_dah: bytes, by: LocalHost, **changes: Any) -> LineageEntry:
    """The entry with ``changes``, its DAH recomputed honestly, signed by ``by``."""
    changed = replace(entry, **changes)
    changed = replace(changed, dah=dah.entry_dah(prev_dah, changed, body_digest(changed)))
    return resign(changed, by)


@dataclass(frozen=True)
class Run:
    entries: list[LineageEntry]
    trusted: LineageEntry | None = None
    head_state: bytes | None = None
    epoch: int = 12
    window: int | None = None
    revoked: tuple[Revocation, ...] = ()
    recovery: RecoveryRule | None = None


@dataclass(frozen=True)
class Case:
    name: str
    why: str
    reason: str
    step: int
    build: Callable[[], Run]


def honest(steps: int) -> Run:
    agent, entries = chain(steps)
    return Run(entries, head_state=digest_of(agent))


def migrated() -> Run:
    agent, entries = chain(3)
    handoff, H2.secrets = dah.arrival(H2.host, H2.secrets, RNG)
    seal = dah.mutate(
        agent, dah.Change(MutationClass.MIGRATION, handoff=handoff), H1.host, H1.secrets, 11, RNG
    )
    H1.secrets = seal.secrets
    arrived = dah.mutate(
        seal.agent, dah.Change(MutationClass.EXECUTION), H2.host, H2.secrets, 11, RNG
    )
    H2.secrets = arrived.secrets
    return Run([*entries, seal.entry, arrived.entry], head_state=digest_of(arrived.agent))


def old_host_after_seal() -> Run:
    agent, entries = chain(2)
    handoff, H2.secrets = dah.arrival(H2.host, H2.secrets, RNG)
    seal = dah.mutate(
        agent, dah.Change(MutationClass.MIGRATION, handoff=handoff), H1.host, H1.secrets, 11, RNG
    )
    # The old host signs a step on the sealed head anyway (it cannot reveal H2's secret).
    forged = dah.make_entry(
        dah.StepMaterial(
            prev=entry_hash(seal.entry),
            prev_dah=seal.entry.dah,
            cls=MutationClass.EXECUTION,
            epoch=11,
            zone="alpha",
            link=b"",
            state=seal.entry.state_digest,
            reveal=b"\x00" * 32,
            salt=b"\x01" * 16,
            commit=b"\x02" * 32,
            next_signer=H1.host.key,
            totals=dah.next_totals(seal.entry, MutationClass.EXECUTION, "alpha", 11),
            descriptor=b"",
        ),
        H1.host,
    )
    return Run([*entries, seal.entry, forged])


def recovered(votes: int, again: bool = False) -> Run:
    """H1 is gone after 2 steps; H2 resumes with a token of ``votes`` votes. With ``again``
    H2 is gone at once too and H1 resumes by a second token in the same epoch."""
    agent, entries = chain(2)
    for new in (H2, H1) if again else (H2,):
        commit, new.secrets = new.secrets.fresh(RNG)
        proposal = propose(agent, RULE, new.host.key, commit, deadline=20)
        chosen = set(validator_set(RULE, 10 // RULE.generation_epochs, proposal.scope_id()))
        voters = [v for v in VALIDATORS if v.key in chosen][:votes]
        token = RecoveryToken(proposal, tuple(cast_vote(proposal, RULE, v) for v in voters))
        step = recover(agent, token, new.host, new.secrets, 12, RNG)
        agent, new.secrets = step.agent, step.secrets
        entries.append(step.entry)
    return Run(entries, head_state=digest_of(agent), recovery=RULE)


def damaged(steps: int, at: int, edit: Callable[[list[LineageEntry]], LineageEntry]) -> Run:
    _agent, entries = chain(steps)
    entries[at] = edit(entries)
    return Run(entries)


CASES: list[Case] = [
    Case("ok_genesis_only", "a lone genesis step", "ok", -1, lambda: honest(0)),
    Case("ok_10_steps", "SPEC 2.11: an honest chain", "ok", -1, lambda: honest(10)),
    Case(
        "ok_migration",
        "SPEC 2.13: H1 seals naming H2, H2 continues; both entangled",
        "ok",
        -1,
        migrated,
    ),
    Case(
        "ok_from_trusted_head",
        "continuation of a trusted entry",
        "ok",
        -1,
        lambda: (lambda e: Run(e[5:], trusted=e[4]))(chain(8)[1]),
    ),
    Case(
        "bad_reveal",
        "reveal does not open the previous commit (re-signed by the rightful host)",
        "bad-reveal",
        3,
        lambda: damaged(5, 3, lambda e: resign(e[3], H1.host, reveal=b"\x05" * 32)),
    ),
    Case(
        "bad_signature",
        "one signature byte flipped",
        "bad-signature",
        2,
        lambda: damaged(4, 2, lambda e: replace(e[2], sig=bytes([e[2].sig[0] ^ 1]) + e[2].sig[1:])),
    ),
    Case(
        "resigned_by_other_admitted_host",
        "entry re-signed by another admitted host naming itself",
        "wrong-signer",
        4,
        lambda: damaged(
            5, 4, lambda e: resign(e[4], H2.host, host=H2.host.key, host_record=H2.host.record)
        ),
    ),
    Case(
        "signed_by_other_than_named",
        "SPEC 2.13: names H1, signed by H2",
        "bad-signature",
        1,
        lambda: damaged(3, 1, lambda e: resign(e[1], H2.host)),
    ),
    Case(
        "old_host_after_seal",
        "DESIGN 6: after the seal the old host can no longer extend",
        "wrong-signer",
        4,
        old_host_after_seal,
    ),
    Case(
        "unknown_host",
        "slope made by a host no authority admitted",
        "unknown-host",
        0,
        lambda: Run(chain(2, STRANGER)[1]),
    ),
    Case(
        "non_descendant",
        "SPEC 2.11: a successor built on a different predecessor",
        "non-descendant",
        3,
        lambda: Run([*chain(4)[1][:3], chain(4)[1][3]]),
    ),
    Case(
        "bad_step",
        "DAH replaced (signature made over the new DAH)",
        "bad-step",
        2,
        lambda: damaged(3, 2, lambda e: resign(e[2], H1.host, dah=b"\x07" * 32)),
    ),
    Case(
        "bad_totals",
        "depth skipped, DAH recomputed and re-signed",
        "bad-totals",
        2,
        lambda: damaged(
            3,
            2,
            lambda e: restep(e[2], e[1].dah, H1.host, totals=replace(e[2].totals, depth=5)),
        ),
    ),
    Case(
        "epoch_goes_back",
        "DESIGN 5: entry epochs never decrease",
        "epoch-window",
        5,
        lambda: damaged(6, 5, lambda e: restep(e[5], e[4].dah, H1.host, epoch=9)),
    ),
    Case(
        "epoch_ahead",
        "entries at most the local epoch + 1",
        "epoch-window",
        0,
        lambda: replace(honest(2), epoch=8),
    ),
    Case(
        "stale_head",
        "head outside the +-1 freshness window",
        "epoch-window",
        4,
        lambda: replace(honest(4), epoch=30, window=1),
    ),
    Case(
        "head_state_differs",
        "the agent's fields are not the ones the head committed to",
        "bad-state",
        3,
        lambda: replace(honest(3), head_state=b"\x00" * 32),
    ),
    Case(
        "truncated_from_genesis",
        "the first entries are missing and nothing is trusted",
        "bad-genesis",
        0,
        lambda: Run(chain(6)[1][3:]),
    ),
    Case(
        "wrong_trusted_head",
        "the run continues a different entry than the trusted one",
        "non-descendant",
        0,
        lambda: (lambda e: Run(e[5:], trusted=e[3]))(chain(8)[1]),
    ),
    Case(
        "ok_recovery",
        "DESIGN 6: a global quorum token names the new signer (k=4 of n=5)",
        "ok",
        -1,
        lambda: recovered(4),
    ),
    Case(
        "recovery_below_k",
        "SPEC 2.18: below the threshold there is no valid token",
        "bad-recovery",
        3,
        lambda: recovered(3),
    ),
    Case(
        "recovery_rate_limited",
        "SPEC 2.18: a repeat recovery inside the rate limit",
        "bad-recovery",
        4,
        lambda: recovered(5, again=True),
    ),
    Case(
        "recovery_without_rule",
        "a recovery entry where the zone has no recovery rule",
        "bad-recovery",
        3,
        lambda: replace(recovered(4), recovery=None),
    ),
    Case(
        "revoked_head_signer",
        "DESIGN 5: a revoked key may never sign a head entry",
        "revoked-host",
        3,
        lambda: replace(honest(3), revoked=(sign_revocation(H1.host.key, 11, AUTHORITY),)),
    ),
]


def vector(case: Case) -> dict[str, Any]:
    run = case.build()
    return {
        "name": case.name,
        "why": case.why,
        "schema_version": SCHEMA_VERSION,
        "authority": bytes(AUTHORITY.verify_key).hex(),
        "host_records": [codec.encode(h.record.to_cbor()).hex() for h in (H1, H2)],
        "revocations": [codec.encode(r.to_cbor()).hex() for r in run.revoked],
        "epoch": run.epoch,
        "window": run.window,
        "trusted_head": None if run.trusted is None else codec.encode(run.trusted.to_cbor()).hex(),
        "entries": codec.encode([e.to_cbor() for e in run.entries]).hex(),
        "head_state": None if run.head_state is None else run.head_state.hex(),
        "recovery": None
        if run.recovery is None
        else {
            "zone": run.recovery.zone,
            "eligible": [k.hex() for k in run.recovery.eligible],
            "n": run.recovery.n,
            "minimum": run.recovery.minimum,
            "min_gap": run.recovery.min_gap,
            "generation_epochs": run.recovery.generation_epochs,
        },
        "reason": case.reason,
        "step": case.step,
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for case in CASES:
        (OUT / f"{case.name}.json").write_text(json.dumps(vector(case), indent=1) + "\n")
    print(f"wrote {len(CASES)} vectors to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
