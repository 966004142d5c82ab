"""Write the agent conformance vectors (tests/vectors/agent/*.json) from a hand-written table.

Each case names an input (a valid base agent with one edit, or raw bytes), and by hand the
status it must get and the field paths (or ``@offset``) its problems must name. The expected
values are never taken from the implementation: the script only computes the input bytes and,
for decodable inputs, their content id (sha256 of the bytes, independent of our code).

Run after a schema change: ``.venv/bin/python tests/vectors/make_agent_vectors.py``
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from nacl.signing import SigningKey  # noqa: E402

from protocols.agent.build import AgentSpec, encode_agent, new_agent  # noqa: E402
from protocols.agent.schema import LINEAGE_WINDOW, SCHEMA_VERSION, Agent, MutationClass  # noqa: E402
from protocols.identity import dah  # noqa: E402
from protocols.identity.host import HostGrant, new_host, sign_record  # noqa: E402
from protocols.identity.host_secrets import HostSecrets  # noqa: E402

OUT = Path(__file__).resolve().parent / "agent"

Edit = Callable[[dict[str, Any]], object]

AUTHORITY = SigningKey(hashlib.sha256(b"vector authority").digest())
DESCRIPTOR = hashlib.sha256(b"descriptor v1").digest()


def grow(steps: int) -> Agent:
    """A FULL agent with ``steps`` + 1 signed entries, made by one seeded host."""
    rng = random.Random(20261123)
    host = new_host(rng, 39)
    record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=("fleet.north",)), AUTHORITY)
    host = host.with_record(record.name)
    spec = AgentSpec(
        verb="report",
        zone="fleet.north",
        role="scout",
        principal="ops@fleet",
        args={"unit": "u-17", "fuel": 63, "tags": ["a", "b"], "pos": {"x": 1, "y": -2}},
        epoch=40,
        origin=dah.Origin(descriptor=DESCRIPTOR),
    )
    made = new_agent(spec, host, HostSecrets(), rng)
    agent, secrets = made.agent, made.secrets
    for k in range(steps):
        cls = MutationClass.EXECUTION if k % 2 else MutationClass.STATE_TRANSITION
        step = dah.mutate(agent, dah.Change(cls), host, secrets, 41 + k // 8, rng)
        agent, secrets = step.agent, step.secrets
    return agent


def base_agent() -> Agent:
    """A FULL agent with a 3-entry signed lineage."""
    return grow(2)


def pruned_tree() -> dict[str, Any]:
    """A FULL agent whose lineage was pruned: the window plus the last pruned entry."""
    tree = grow(LINEAGE_WINDOW + 1).to_cbor()
    assert tree["lineage"]["pruned"] is not None
    return tree


def unpruned_overlong(tree: dict[str, Any]) -> bytes:
    line = tree["lineage"]
    line["entries"].insert(0, line["pruned"])
    line["pruned"] = None
    return enc(tree)


def base_tree() -> dict[str, Any]:
    tree = base_agent().to_cbor()
    tree["memory"] = {
        "ledger": [{"epoch": 41, "kind": "execution", "data": {"ok": True}}],
        "access_log": [{"epoch": 41, "actor": "node-a", "action": "access", "outcome": "ok"}],
        "handles": [{"kind": "image", "digest": hashlib.sha256(b"img").digest(), "size": 2048}],
    }
    tree["mutation_descriptor"]["delegation"] = [
        {"role": "helper", "verbs": ["fetch", "note"], "max_depth": 1}
    ]
    return tree


@dataclass(frozen=True)
class Case:
    name: str
    why: str
    status: str
    paths: tuple[str, ...]
    edit: Edit | None = None
    raw: Callable[[bytes], bytes] | None = None


def put(path: str, value: Any) -> Edit:
    """Edit setting a dotted/indexed path, e.g. ``lineage.entries[1].epoch``."""

    def edit(tree: dict[str, Any]) -> None:
        node: Any = tree
        parts = _split(path)
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value

    return edit


def drop(path: str) -> Edit:
    def edit(tree: dict[str, Any]) -> None:
        node: Any = tree
        parts = _split(path)
        for part in parts[:-1]:
            node = node[part]
        del node[parts[-1]]

    return edit


def _split(path: str) -> list[Any]:
    out: list[Any] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        if name:
            out.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            out.append(int(index))
            rest = rest.lstrip("[")
    return out


def enc(tree: Any) -> bytes:
    return cbor2.dumps(tree, canonical=True)


def swap_entries(tree: dict[str, Any]) -> None:
    e = tree["lineage"]["entries"]
    e[1], e[2] = e[2], e[1]


def cycle_entries(tree: dict[str, Any]) -> None:
    e = tree["lineage"]["entries"]
    e.append(dict(e[1]))


CASES: list[Case] = [
    # -- FULL ------------------------------------------------------------------------------
    Case("full_base", "every sub-structure populated", "FULL", ()),
    Case("full_empty_args", "intent with no args", "FULL", (), put("intent.args", {})),
    Case(
        "full_unicode_text",
        "non-ASCII principal",
        "FULL",
        (),
        put("context.principal", "opérateur-北"),
    ),
    Case(
        "full_negative_int_arg",
        "negative integers are allowed in data",
        "FULL",
        (),
        put("intent.args.fuel", -5),
    ),
    Case(
        "full_bytes_arg",
        "byte strings are allowed in data",
        "FULL",
        (),
        put("intent.args.blob", b"\x00\x01"),
    ),
    Case(
        "full_nested_data",
        "nested maps and arrays in data",
        "FULL",
        (),
        put("intent.args.deep", {"a": [{"b": [1, 2, {"c": None}]}]}),
    ),
    # -- PARTIAL ---------------------------------------------------------------------------
    Case(
        "partial_no_intent",
        "SPEC 2.1: intent missing, lineage and policy_ref present",
        "PARTIAL",
        ("intent",),
        drop("intent"),
    ),
    Case(
        "partial_null_context",
        "null counts as missing",
        "PARTIAL",
        ("context",),
        put("context", None),
    ),
    Case("partial_no_memory", "memory missing", "PARTIAL", ("memory",), drop("memory")),
    Case(
        "partial_no_descriptor",
        "mutation_descriptor missing",
        "PARTIAL",
        ("mutation_descriptor",),
        drop("mutation_descriptor"),
    ),
    Case(
        "partial_two_missing",
        "intent and memory missing",
        "PARTIAL",
        ("intent", "memory"),
        lambda t: (t.pop("intent"), t.pop("memory")),
    ),
    # -- INVALID: top level ------------------------------------------------------------------
    Case(
        "invalid_extra_top_key",
        "SPEC 2.1: unknown top-level key",
        "INVALID",
        ("owner",),
        put("owner", "mallory"),
    ),
    Case(
        "invalid_no_lineage", "DESIGN 5: lineage required", "INVALID", ("lineage",), drop("lineage")
    ),
    Case(
        "invalid_no_policy_ref",
        "DESIGN 5: policy_ref required",
        "INVALID",
        ("policy_ref",),
        drop("policy_ref"),
    ),
    Case(
        "invalid_not_a_map", "top level is an array", "INVALID", ("$",), raw=lambda _b: enc([1, 2])
    ),
    # -- INVALID: intent / context ----------------------------------------------------------
    Case(
        "invalid_verb_type",
        "verb is an integer",
        "INVALID",
        ("intent.verb",),
        put("intent.verb", 7),
    ),
    Case(
        "invalid_verb_format",
        "verb with upper case",
        "INVALID",
        ("intent.verb",),
        put("intent.verb", "Report"),
    ),
    Case(
        "invalid_intent_extra_key",
        "extra key inside intent",
        "INVALID",
        ("intent.why",),
        put("intent.why", "x"),
    ),
    Case(
        "invalid_float_arg",
        "floats are not allowed anywhere",
        "INVALID",
        ("intent.args.ratio",),
        put("intent.args.ratio", 0.5),
    ),
    Case(
        "invalid_args_not_map",
        "args is an array",
        "INVALID",
        ("intent.args",),
        put("intent.args", [1]),
    ),
    Case("invalid_zone_empty", "empty zone", "INVALID", ("context.zone",), put("context.zone", "")),
    Case(
        "invalid_context_missing_key",
        "context without role",
        "INVALID",
        ("context.role",),
        drop("context.role"),
    ),
    Case(
        "invalid_constraints_order",
        "not_after before not_before",
        "INVALID",
        ("context.constraints.not_after_epoch",),
        lambda t: t["context"]["constraints"].update(not_before_epoch=9, not_after_epoch=3),
    ),
    Case(
        "invalid_zone_incoherent",
        "context zone differs from lineage head zone",
        "INVALID",
        ("context.zone",),
        put("context.zone", "fleet.south"),
    ),
    # -- INVALID: memory ---------------------------------------------------------------------
    Case(
        "invalid_ledger_kind",
        "unknown ledger kind",
        "INVALID",
        ("memory.ledger[0].kind",),
        put("memory.ledger[0].kind", "gossip"),
    ),
    Case(
        "invalid_access_epoch_negative",
        "negative epoch",
        "INVALID",
        ("memory.access_log[0].epoch",),
        put("memory.access_log[0].epoch", -1),
    ),
    Case(
        "invalid_handle_digest_len",
        "31-byte digest",
        "INVALID",
        ("memory.handles[0].digest",),
        put("memory.handles[0].digest", b"\x01" * 31),
    ),
    # -- INVALID: policy_ref -----------------------------------------------------------------
    Case(
        "invalid_policy_ref_text",
        "SPEC 2.1: mistyped policy_ref",
        "INVALID",
        ("policy_ref",),
        put("policy_ref", "trust me"),
    ),
    Case(
        "invalid_policy_ref_empty",
        "no references at all",
        "INVALID",
        ("policy_ref",),
        put("policy_ref", []),
    ),
    Case(
        "invalid_policy_sig_len",
        "short signature",
        "INVALID",
        ("policy_ref[0].signature",),
        put("policy_ref[0].signature", b"\x00" * 10),
    ),
    # -- INVALID: mutation descriptor --------------------------------------------------------
    Case(
        "invalid_mutable_name",
        "unknown mutable field",
        "INVALID",
        ("mutation_descriptor.mutable[0]",),
        put("mutation_descriptor.mutable", ["policy_ref"]),
    ),
    Case(
        "invalid_mutable_duplicate",
        "field listed twice",
        "INVALID",
        ("mutation_descriptor.mutable[1]",),
        put("mutation_descriptor.mutable", ["memory", "memory"]),
    ),
    Case(
        "invalid_limits_bool",
        "bool where an integer is required",
        "INVALID",
        ("mutation_descriptor.limits.max_zones",),
        put("mutation_descriptor.limits.max_zones", True),
    ),
    Case(
        "invalid_delegation_verb",
        "bad verb in a delegation pathway",
        "INVALID",
        ("mutation_descriptor.delegation[0].verbs[1]",),
        put("mutation_descriptor.delegation[0].verbs", ["fetch", "No!"]),
    ),
    # -- INVALID: lineage --------------------------------------------------------------------
    Case(
        "invalid_lineage_edited",
        "entry 1 edited: entry 2 no longer links",
        "INVALID",
        ("lineage.entries[2].prev",),
        put("lineage.entries[1].epoch", 99),
    ),
    Case(
        "invalid_lineage_reordered",
        "entries 1 and 2 swapped",
        "INVALID",
        ("lineage.entries[1].prev",),
        swap_entries,
    ),
    Case(
        "invalid_lineage_cycle",
        "entry repeated after the head",
        "INVALID",
        ("lineage.entries[3].prev",),
        cycle_entries,
    ),
    Case(
        "invalid_lineage_dangling",
        "prev names nothing",
        "INVALID",
        ("lineage.entries[1].prev",),
        put("lineage.entries[1].prev", b"\x07" * 32),
    ),
    Case(
        "invalid_lineage_genesis_type",
        "first entry is not initialization",
        "INVALID",
        ("lineage.entries[0].type",),
        put("lineage.entries[0].type", "execution"),
    ),
    Case(
        "invalid_lineage_empty",
        "no entries",
        "INVALID",
        ("lineage.entries",),
        put("lineage.entries", []),
    ),
    Case(
        "invalid_lineage_type_enum",
        "unknown mutation class",
        "INVALID",
        ("lineage.entries[1].type",),
        put("lineage.entries[1].type", "teleport"),
    ),
    Case(
        "invalid_lineage_link_len",
        "5-byte link",
        "INVALID",
        ("lineage.entries[1].link",),
        put("lineage.entries[1].link", b"\x01" * 5),
    ),
    # -- lineage entries as trust-slope steps (schema 2) -----------------------------------
    Case(
        "full_pruned_window",
        "DESIGN 6: L=64 entries plus the last pruned entry, genesis DAH and epoch",
        "FULL",
        (),
        raw=lambda _b: enc(pruned_tree()),
    ),
    Case(
        "full_head_without_descriptor",
        "descriptor name may be empty (made outside a zone descriptor); structure only",
        "FULL",
        (),
        put("lineage.entries[2].descriptor", b""),
    ),
    Case(
        "invalid_entry_dah_len",
        "31-byte DAH",
        "INVALID",
        ("lineage.entries[1].dah",),
        put("lineage.entries[1].dah", b"\x01" * 31),
    ),
    Case(
        "invalid_entry_sig_len",
        "63-byte signature",
        "INVALID",
        ("lineage.entries[2].sig",),
        put("lineage.entries[2].sig", b"\x01" * 63),
    ),
    Case(
        "invalid_entry_host_text",
        "host key as text",
        "INVALID",
        ("lineage.entries[0].host",),
        put("lineage.entries[0].host", "host-a"),
    ),
    Case(
        "invalid_entry_salt_len",
        "salt of 32 bytes, not 16",
        "INVALID",
        ("lineage.entries[1].salt",),
        put("lineage.entries[1].salt", b"\x02" * 32),
    ),
    Case(
        "invalid_entry_next_signer_empty",
        "every entry names a next signer",
        "INVALID",
        ("lineage.entries[2].next_signer",),
        put("lineage.entries[2].next_signer", b""),
    ),
    Case(
        "invalid_entry_no_reveal",
        "reveal key missing",
        "INVALID",
        ("lineage.entries[1].reveal",),
        drop("lineage.entries[1].reveal"),
    ),
    Case(
        "invalid_entry_v1_field",
        "schema 1 payload_digest is not a schema 2 key",
        "INVALID",
        ("lineage.entries[1].payload_digest",),
        put("lineage.entries[1].payload_digest", b"\x00" * 32),
    ),
    Case(
        "invalid_totals_negative_depth",
        "running totals are unsigned",
        "INVALID",
        ("lineage.entries[1].totals.depth",),
        put("lineage.entries[1].totals.depth", -1),
    ),
    Case(
        "invalid_totals_no_zone_path",
        "zone_path missing from the totals",
        "INVALID",
        ("lineage.entries[1].totals.zone_path",),
        drop("lineage.entries[1].totals.zone_path"),
    ),
    Case(
        "invalid_descriptor_len",
        "descriptor name of 5 bytes",
        "INVALID",
        ("lineage.entries[1].descriptor",),
        put("lineage.entries[1].descriptor", b"\x05" * 5),
    ),
    Case(
        "invalid_proof_off_recovery",
        "only recovery entries carry a proof",
        "INVALID",
        ("lineage.entries[1].proof",),
        put("lineage.entries[1].proof", b"token"),
    ),
    Case(
        "invalid_recovery_without_proof",
        "a recovery entry must carry its token",
        "INVALID",
        ("lineage.entries[2].proof",),
        put("lineage.entries[2].type", "recovery"),
    ),
    Case(
        "invalid_genesis_dah_mismatch",
        "lineage names a genesis DAH its genesis entry does not have",
        "INVALID",
        ("lineage.genesis_dah",),
        put("lineage.genesis_dah", b"\x01" * 32),
    ),
    Case(
        "invalid_genesis_epoch_mismatch",
        "lineage names a genesis epoch its genesis entry does not have",
        "INVALID",
        ("lineage.genesis_epoch",),
        put("lineage.genesis_epoch", 0),
    ),
    Case(
        "invalid_lineage_v1_shape",
        "schema 1 lineage map: no pruned, genesis_dah, genesis_epoch",
        "INVALID",
        ("lineage.pruned", "lineage.genesis_dah", "lineage.genesis_epoch"),
        lambda t: [t["lineage"].pop(k) for k in ("pruned", "genesis_dah", "genesis_epoch")],
    ),
    Case(
        "invalid_pruned_short_window",
        "a pruned lineage keeps exactly L entries",
        "INVALID",
        ("lineage.entries",),
        lambda t: t["lineage"].__setitem__("pruned", dict(t["lineage"]["entries"][0])),
    ),
    Case(
        "invalid_pruned_base_edited",
        "the pruned entry was edited: the first kept entry no longer continues it",
        "INVALID",
        ("lineage.entries[0].prev",),
        raw=lambda _b: enc(_edit(pruned_tree(), put("lineage.pruned.salt", b"\x09" * 16))),
    ),
    Case(
        "invalid_window_exceeded",
        "65 entries and nothing pruned: over L",
        "INVALID",
        ("lineage.entries",),
        raw=lambda _b: unpruned_overlong(pruned_tree()),
    ),
    # -- INVALID: bytes ----------------------------------------------------------------------
    Case(
        "invalid_truncated",
        "last byte cut: the last value of the last map",
        "INVALID",
        ("mutation_descriptor.delegation[0].max_depth",),
        raw=lambda b: b[:-1],
    ),
    Case(
        "invalid_trailing",
        "a byte after the agent",
        "INVALID",
        (f"@{'LEN'}",),
        raw=lambda b: b + b"\x00",
    ),
    Case(
        "invalid_indefinite",
        "indefinite-length top-level map",
        "INVALID",
        ("@0",),
        raw=lambda _b: b"\xbf\x66intent\xf6\xff",
    ),
    Case(
        "invalid_duplicate_key",
        "intent key twice",
        "INVALID",
        ("@9",),
        raw=lambda _b: b"\xa2\x66intent\xf6\x66intent\xf6",
    ),
    Case(
        "invalid_unsorted_keys",
        "memory before intent",
        "INVALID",
        ("@9",),
        raw=lambda _b: b"\xa2\x66memory\xf6\x66intent\xf6",
    ),
    Case("invalid_tag", "a date tag", "INVALID", ("@0",), raw=lambda _b: b"\xc1\x01"),
    Case(
        "invalid_non_shortest_int",
        "1 encoded in two bytes",
        "INVALID",
        ("@0",),
        raw=lambda _b: b"\x18\x01",
    ),
    Case(
        "invalid_deep_nesting",
        "64 nested arrays",
        "INVALID",
        ("[0]" * 16,),
        raw=lambda _b: bytes([0x81] * 64) + b"\x00",
    ),
    Case(
        "invalid_huge_length",
        "byte string claiming 2^64-1 bytes",
        "INVALID",
        ("intent",),
        raw=lambda _b: b"\xa1\x66intent\x5b" + b"\xff" * 8,
    ),
    Case(
        "invalid_bad_utf8",
        "text key with invalid UTF-8",
        "INVALID",
        ("@1",),
        raw=lambda _b: b"\xa1\x62\xff\xfe\xf6",
    ),
    Case(
        "invalid_oversized",
        "over the 512 KiB cap",
        "INVALID",
        ("@524288",),
        raw=lambda _b: b"\x5a\x00\x08\x00\x00" + b"\x00" * (512 * 1024),
    ),
    Case("invalid_empty_input", "no bytes at all", "INVALID", ("@0",), raw=lambda _b: b""),
]


def _edit(tree: dict[str, Any], edit: Edit) -> dict[str, Any]:
    edit(tree)
    return tree


def build(case: Case, good: bytes) -> bytes:
    if case.raw is not None:
        return case.raw(good)
    tree = base_tree()
    if case.edit is not None:
        case.edit(tree)
    return enc(tree)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    good = enc(base_tree())
    for case in CASES:
        data = build(case, good)
        paths = [p.replace("LEN", str(len(good))) for p in case.paths]
        vector = {
            "name": case.name,
            "why": case.why,
            "schema_version": SCHEMA_VERSION,
            "input_hex": data.hex(),
            "status": case.status,
            "content_id": hashlib.sha256(data).hexdigest(),
            "problem_paths": paths,
        }
        (OUT / f"{case.name}.json").write_text(json.dumps(vector, indent=1) + "\n")
    assert encode_agent(base_agent()) != good  # base_tree adds memory/delegation content
    print(f"wrote {len(CASES)} vectors to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
