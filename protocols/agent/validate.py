"""Structural validator (SPEC 2.2): FULL, PARTIAL or INVALID, with every problem named.

``validate(tree)`` classifies a decoded agent and, unless it is INVALID, builds the typed
:class:`~protocols.agent.schema.Agent`. It decides structure only (types, keys, lengths,
lineage links), never policy, and is a pure function of the tree: every node gets the same
answer. Rules:

- exactly the six fields; any other top-level key is INVALID;
- ``intent``, ``context``, ``memory`` or ``mutation_descriptor`` missing or null: PARTIAL
  (may be forwarded, never executed);
- ``policy_ref`` or ``lineage`` missing or null: INVALID (nothing can vouch for the agent);
- inside a field every key is required, no other key is allowed, every value has its type;
- the lineage replays from genesis (or from its pruned checkpoint entry), holds at most
  ``LINEAGE_WINDOW`` entries (exactly that many once an entry was pruned), names its genesis
  DAH and epoch coherently, carries a ``proof`` exactly on recovery entries, and the head's
  zone is the context's zone.

Signatures, DAH steps, reveals, running totals and host admission are slope checks
(:mod:`protocols.identity.slope`), not structure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from protocols.agent import lineage as lineage_mod
from protocols.agent.schema import (
    DIGEST_LEN,
    FIELDS,
    GENESIS_PREV,
    KEY_LEN,
    LINEAGE_WINDOW,
    MAX_AGENT_BYTES,
    MAX_PROOF,
    MUTABLE_FIELDS,
    SALT_LEN,
    SIGNATURE_LEN,
    AccessAction,
    AccessRecord,
    Agent,
    Constraints,
    Context,
    DelegationPathway,
    Handle,
    Intent,
    LedgerEvent,
    LedgerKind,
    Lineage,
    LineageEntry,
    Memory,
    MutationClass,
    MutationDescriptor,
    PolicyRef,
    PropagationLimits,
    Totals,
    Value,
    canonical_key,
)
from protocols.codec import (
    MAX_DEPTH,
    capped,
    check_canonical,
    diagnose,
    encode_ordered,
    loads_strict,
)
from protocols.errors import DecodeError, LineageError, SchemaError
from protocols.types import ValidationStatus

MAX_LIST: Final = 1024
"""Cap on every list inside an agent (ledger, access log, lineage entries, ...)."""
MAX_POLICY_REFS: Final = 16
MAX_TEXT: Final = 256
MAX_UINT: Final = (1 << 63) - 1

_VERB_RE: Final = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")

# Key tuples are in canonical order: a decoded canonical map matches one exactly.
_K_ACCESS: Final = ("actor", "epoch", "action", "outcome")
_K_INTENT: Final = ("args", "verb")
_K_LEDGER_EVENT: Final = ("data", "kind", "epoch")
_K_LINEAGE: Final = ("pruned", "entries", "genesis_dah", "genesis_epoch")
_K_HANDLE: Final = ("kind", "size", "digest")
_K_MEMORY: Final = ("ledger", "handles", "access_log")
_K_DESCRIPTOR: Final = ("limits", "mutable", "delegation")
_K_LIMITS: Final = ("max_zones", "max_migrations", "max_delegation_depth")
_K_CONTEXT: Final = ("nest", "role", "zone", "principal", "constraints")
_K_CONSTRAINTS: Final = ("not_after_epoch", "not_before_epoch")
_K_PATHWAY: Final = ("role", "verbs", "max_depth")
_K_POLICY_REF: Final = ("signer", "contract", "signature")
_K_ENTRY: Final = (
    "dah",
    "ddh",
    "sig",
    "host",
    "link",
    "prev",
    "salt",
    "type",
    "zone",
    "epoch",
    "proof",
    "commit",
    "reveal",
    "totals",
    "descriptor",
    "host_record",
    "next_signer",
    "state_digest",
)
_K_TOTALS: Final = ("depth", "zones", "zone_path", "delegation", "migrations", "last_recovery")
_D32_FIELDS: Final = (
    "dah",
    "ddh",
    "host",
    "prev",
    "commit",
    "reveal",
    "next_signer",
    "state_digest",
)
_OPT32_FIELDS: Final = ("link", "descriptor", "host_record")
_CLASS_BY_VALUE: Final = {m.value: m for m in MutationClass}
_CANON_FIELDS: Final = (
    "intent",
    "memory",
    "context",
    "lineage",
    "policy_ref",
    "mutation_descriptor",
)

PARTIAL_CODES: Final = frozenset({"missing", "null"})
"""Problem codes that make an agent PARTIAL rather than INVALID."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an agent: where (field path or ``@offset``), a code, and why."""

    path: str
    code: str
    message: str

    def describe(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True, slots=True)
class Validation:
    """Result of structural validation; ``agent`` is None exactly when INVALID."""

    status: ValidationStatus
    problems: tuple[Problem, ...]
    agent: Agent | None

    @property
    def executable(self) -> bool:
        return self.status is ValidationStatus.FULL


class _Collector:
    """Accumulates problems while a tree is walked."""

    __slots__ = ("ordered", "problems")

    def __init__(self, *, ordered: bool) -> None:
        self.problems: list[Problem] = []
        self.ordered = ordered

    def add(self, path: str, code: str, message: str) -> None:
        self.problems.append(Problem(path, code, message))


class _NotCanonical(Exception):
    """A map of bytes input has its keys out of canonical order; the bytes are re-diagnosed."""


_T = TypeVar("_T")
_Bad = object()


def validate_bytes(data: bytes) -> Validation:
    """Decode canonical agent bytes (size and depth capped) and validate them.

    A canonical FULL agent is recognised by :func:`_fast_full` in one pass; any other input
    goes through the general path, which names every problem.
    """
    try:
        data = capped(data, MAX_AGENT_BYTES)
        tree = loads_strict(data, max_depth=MAX_DEPTH)
    except DecodeError as exc:
        return _decode_failure(exc)
    return _fast_full(tree, data) or _general(tree, data)


def _general(tree: Any, data: bytes) -> Validation:
    """The general path of :func:`validate_bytes` for a tree cbor2 decoded from ``data``."""
    try:
        check_canonical(data, tree, max_depth=MAX_DEPTH, key_order_checked=True)
    except DecodeError as exc:
        return _decode_failure(exc)
    try:
        return _validate(tree, ordered=True)
    except _NotCanonical:
        return _decode_failure(diagnose(data, fallback="map keys not in canonical order"))


def _decode_failure(exc: DecodeError) -> Validation:
    problem = Problem(exc.where, "decode", exc.message)
    return Validation(ValidationStatus.INVALID, (problem,), None)


def validate(tree: Any) -> Validation:
    """Classify a decoded agent tree and build the typed Agent unless it is INVALID."""
    return _validate(tree, ordered=False)


def _validate(tree: Any, *, ordered: bool) -> Validation:
    """``ordered``: the tree came from bytes, so map key order is part of canonical form."""
    out = _Collector(ordered=ordered)
    if not isinstance(tree, dict):
        out.add("$", "type", f"agent must be a map, got {_kind(tree)}")
        return Validation(ValidationStatus.INVALID, tuple(out.problems), None)
    for key in sorted(k for k in tree if k not in FIELDS or not isinstance(k, str)):
        out.add(str(key), "unknown-key", "not one of the six agent fields")
    if ordered and list(tree) != [k for k in _CANON_FIELDS if k in tree] and not out.problems:
        raise _NotCanonical

    intent = _field(tree, "intent", out, _intent, required=False)
    context = _field(tree, "context", out, _context, required=False)
    memory = _field(tree, "memory", out, _memory, required=False)
    policy_ref = _field(tree, "policy_ref", out, _policy_refs, required=True)
    descriptor = _field(tree, "mutation_descriptor", out, _descriptor, required=False)
    lineage = _field(tree, "lineage", out, _lineage, required=True)

    if isinstance(lineage, Lineage) and isinstance(context, Context) and lineage.entries:
        head_zone = lineage.entries[-1].zone
        if head_zone != context.zone:
            out.add(
                "context.zone",
                "incoherent",
                f"zone {context.zone!r} differs from the lineage head's zone {head_zone!r}",
            )

    problems = tuple(out.problems)
    if any(p.code not in PARTIAL_CODES for p in problems):
        return Validation(ValidationStatus.INVALID, problems, None)
    agent = Agent(
        intent=intent if isinstance(intent, Intent) else None,
        context=context if isinstance(context, Context) else None,
        memory=memory if isinstance(memory, Memory) else None,
        policy_ref=policy_ref if isinstance(policy_ref, tuple) else None,
        mutation_descriptor=descriptor if isinstance(descriptor, MutationDescriptor) else None,
        lineage=lineage if isinstance(lineage, Lineage) else None,
    )
    status = ValidationStatus.PARTIAL if problems else ValidationStatus.FULL
    return Validation(status, problems, agent)


# -- field parsers: each returns the typed value, or _Bad after recording problems ----------


def _field(
    tree: dict[Any, Any],
    name: str,
    out: _Collector,
    parse: Callable[[Any, str, _Collector], Any],
    *,
    required: bool,
) -> Any:
    code = "missing" if name not in tree else "null" if tree[name] is None else ""
    if code:
        if required:
            out.add(name, "required", f"{name} is {code}; it is required")
        else:
            out.add(name, code, f"{name} is {code} (agent is PARTIAL)")
        return None
    return parse(tree[name], name, out)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {
        dict: "map",
        list: "array",
        str: "text",
        bytes: "bytes",
        int: "integer",
        float: "float",
    }.get(type(value), type(value).__name__)


def _map(value: Any, path: str, keys: tuple[str, ...], out: _Collector) -> dict[str, Any] | None:
    """Check ``value`` is a map with exactly ``keys``; record every extra or missing key.

    ``keys`` is in canonical order, so one tuple comparison accepts a canonical map.
    """
    if type(value) is dict and tuple(value) == keys:
        return value
    if not isinstance(value, dict):
        out.add(path, "type", f"expected map, got {_kind(value)}")
        return None
    ok = True
    for key in sorted(str(k) for k in value if k not in keys):
        out.add(f"{path}.{key}", "unknown-key", "key not allowed here")
        ok = False
    for key in keys:
        if key not in value:
            out.add(f"{path}.{key}", "missing-key", "required key is missing")
            ok = False
    if ok and out.ordered:
        raise _NotCanonical
    return value if ok else None


def _uint(value: Any, path: str, out: _Collector) -> int | None:
    if type(value) is not int:
        out.add(path, "type", f"expected unsigned integer, got {_kind(value)}")
        return None
    if not 0 <= value <= MAX_UINT:
        out.add(path, "range", f"{value} is outside 0..2^63-1")
        return None
    return value


def _text(
    value: Any,
    path: str,
    out: _Collector,
    pattern: re.Pattern[str] | None = None,
    *,
    allow_empty: bool = False,
) -> str | None:
    if type(value) is not str:
        out.add(path, "type", f"expected text, got {_kind(value)}")
        return None
    if len(value) > MAX_TEXT:
        out.add(path, "length", f"text of {len(value)} characters, over {MAX_TEXT}")
        return None
    if not value and not allow_empty:
        out.add(path, "empty", "must not be empty")
        return None
    if value and pattern is not None and pattern.fullmatch(value) is None:
        out.add(path, "format", f"{value!r} does not match {pattern.pattern}")
        return None
    return value


def _bytes(value: Any, path: str, out: _Collector, lengths: tuple[int, ...]) -> bytes | None:
    if type(value) is not bytes:
        out.add(path, "type", f"expected bytes, got {_kind(value)}")
        return None
    if len(value) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        out.add(path, "length", f"{len(value)} bytes, expected {want}")
        return None
    return value


def _enum(value: Any, path: str, out: _Collector, enum_type: type[_T]) -> _T | None:
    if type(value) is not str:
        out.add(path, "type", f"expected text, got {_kind(value)}")
        return None
    try:
        return enum_type(value)  # type: ignore[call-arg]
    except ValueError:
        allowed = ", ".join(m.value for m in enum_type)  # type: ignore[attr-defined]
        out.add(path, "enum", f"{value!r} is not one of {allowed}")
        return None


def _list(
    value: Any, path: str, out: _Collector, *, max_len: int = MAX_LIST, non_empty: bool = False
) -> list[Any] | None:
    if type(value) is not list:
        out.add(path, "type", f"expected array, got {_kind(value)}")
        return None
    if len(value) > max_len:
        out.add(path, "length", f"{len(value)} items, over {max_len}")
        return None
    if non_empty and not value:
        out.add(path, "empty", "must not be empty")
        return None
    return value


def _value(value: Any, path: str, out: _Collector) -> bool:
    """Check a free-form Value tree: no floats, no tags, text map keys (iterative)."""
    ok = True
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        kind = type(item)
        if item is None or kind in (bool, str, bytes):
            continue
        if kind is int:
            if not -(1 << 64) <= item < (1 << 64):
                out.add(where, "range", "integer outside the 64-bit CBOR range")
                ok = False
        elif kind is list:
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        elif kind is dict:
            keys = list(item)
            if (
                out.ordered
                and all(type(k) is str for k in keys)
                and keys != sorted(keys, key=canonical_key)
            ):
                raise _NotCanonical
            for k, v in item.items():
                if type(k) is not str:
                    out.add(where, "type", f"map key must be text, got {_kind(k)}")
                    ok = False
                else:
                    stack.append((v, f"{where}.{k}"))
        else:
            out.add(where, "type", f"{_kind(item)} is not allowed in agent data")
            ok = False
    return ok


def _value_map(value: Any, path: str, out: _Collector) -> dict[str, Value] | None:
    if not isinstance(value, dict):
        out.add(path, "type", f"expected map, got {_kind(value)}")
        return None
    return value if _value(value, path, out) else None


def _intent(value: Any, path: str, out: _Collector) -> Intent | object:
    m = _map(value, path, _K_INTENT, out)
    if m is None:
        return _Bad
    verb = _text(m["verb"], f"{path}.verb", out, _VERB_RE)
    args = _value_map(m["args"], f"{path}.args", out)
    if verb is None or args is None:
        return _Bad
    return Intent(verb=verb, args=args)


def _context(value: Any, path: str, out: _Collector) -> Context | object:
    m = _map(value, path, _K_CONTEXT, out)
    if m is None:
        return _Bad
    zone = _text(m["zone"], f"{path}.zone", out, _NAME_RE)
    nest = _text(m["nest"], f"{path}.nest", out, _NAME_RE)
    role = _text(m["role"], f"{path}.role", out, _NAME_RE)
    principal = _text(m["principal"], f"{path}.principal", out, allow_empty=True)
    cpath = f"{path}.constraints"
    c = _map(m["constraints"], cpath, _K_CONSTRAINTS, out)
    constraints = None
    if c is not None:
        nb = _uint(c["not_before_epoch"], f"{cpath}.not_before_epoch", out)
        na = _uint(c["not_after_epoch"], f"{cpath}.not_after_epoch", out)
        if nb is not None and na is not None:
            if na and na < nb:
                out.add(
                    f"{cpath}.not_after_epoch",
                    "range",
                    f"not_after_epoch {na} is before not_before_epoch {nb}",
                )
            else:
                constraints = Constraints(not_before_epoch=nb, not_after_epoch=na)
    if zone is None or nest is None or role is None or principal is None or constraints is None:
        return _Bad
    return Context(zone=zone, nest=nest, role=role, principal=principal, constraints=constraints)


def _memory(value: Any, path: str, out: _Collector) -> Memory | object:
    m = _map(value, path, _K_MEMORY, out)
    if m is None:
        return _Bad
    ledger: list[LedgerEvent] = []
    access: list[AccessRecord] = []
    handles: list[Handle] = []
    ok = True
    items = _list(m["ledger"], f"{path}.ledger", out)
    ok &= items is not None
    for i, item in enumerate(items or ()):
        p = f"{path}.ledger[{i}]"
        e = _map(item, p, _K_LEDGER_EVENT, out)
        if e is None:
            ok = False
            continue
        epoch = _uint(e["epoch"], f"{p}.epoch", out)
        kind = _enum(e["kind"], f"{p}.kind", out, LedgerKind)
        data = _value_map(e["data"], f"{p}.data", out)
        if epoch is None or kind is None or data is None:
            ok = False
            continue
        ledger.append(LedgerEvent(epoch=epoch, kind=kind, data=data))
    items = _list(m["access_log"], f"{path}.access_log", out)
    ok &= items is not None
    for i, item in enumerate(items or ()):
        p = f"{path}.access_log[{i}]"
        a = _map(item, p, _K_ACCESS, out)
        if a is None:
            ok = False
            continue
        epoch = _uint(a["epoch"], f"{p}.epoch", out)
        actor = _text(a["actor"], f"{p}.actor", out)
        action = _enum(a["action"], f"{p}.action", out, AccessAction)
        outcome = _text(a["outcome"], f"{p}.outcome", out, allow_empty=True)
        if epoch is None or actor is None or action is None or outcome is None:
            ok = False
            continue
        access.append(AccessRecord(epoch=epoch, actor=actor, action=action, outcome=outcome))
    items = _list(m["handles"], f"{path}.handles", out)
    ok &= items is not None
    for i, item in enumerate(items or ()):
        p = f"{path}.handles[{i}]"
        h = _map(item, p, _K_HANDLE, out)
        if h is None:
            ok = False
            continue
        kind_s = _text(h["kind"], f"{p}.kind", out, _NAME_RE)
        digest = _bytes(h["digest"], f"{p}.digest", out, (DIGEST_LEN,))
        size = _uint(h["size"], f"{p}.size", out)
        if kind_s is None or digest is None or size is None:
            ok = False
            continue
        handles.append(Handle(kind=kind_s, digest=digest, size=size))
    if not ok:
        return _Bad
    return Memory(ledger=tuple(ledger), access_log=tuple(access), handles=tuple(handles))


def _policy_refs(value: Any, path: str, out: _Collector) -> tuple[PolicyRef, ...] | object:
    items = _list(value, path, out, max_len=MAX_POLICY_REFS, non_empty=True)
    if items is None:
        return _Bad
    refs: list[PolicyRef] = []
    ok = True
    for i, item in enumerate(items):
        p = f"{path}[{i}]"
        r = _map(item, p, _K_POLICY_REF, out)
        if r is None:
            ok = False
            continue
        contract = _bytes(r["contract"], f"{p}.contract", out, (DIGEST_LEN,))
        signer = _bytes(r["signer"], f"{p}.signer", out, (KEY_LEN,))
        signature = _bytes(r["signature"], f"{p}.signature", out, (SIGNATURE_LEN,))
        if contract is None or signer is None or signature is None:
            ok = False
            continue
        refs.append(PolicyRef(contract=contract, signer=signer, signature=signature))
    return tuple(refs) if ok else _Bad


def _descriptor(value: Any, path: str, out: _Collector) -> MutationDescriptor | object:
    m = _map(value, path, _K_DESCRIPTOR, out)
    if m is None:
        return _Bad
    ok = True
    mutable: list[str] = []
    items = _list(m["mutable"], f"{path}.mutable", out, max_len=len(MUTABLE_FIELDS))
    ok &= items is not None
    for i, item in enumerate(items or ()):
        p = f"{path}.mutable[{i}]"
        name = _text(item, p, out)
        if name is None:
            ok = False
        elif name not in MUTABLE_FIELDS:
            out.add(p, "enum", f"{name!r} is not one of {', '.join(sorted(MUTABLE_FIELDS))}")
            ok = False
        elif name in mutable:
            out.add(p, "duplicate", f"{name!r} listed twice")
            ok = False
        else:
            mutable.append(name)
    pathways: list[DelegationPathway] = []
    items = _list(m["delegation"], f"{path}.delegation", out)
    ok &= items is not None
    for i, item in enumerate(items or ()):
        p = f"{path}.delegation[{i}]"
        d = _map(item, p, _K_PATHWAY, out)
        if d is None:
            ok = False
            continue
        role = _text(d["role"], f"{p}.role", out, _NAME_RE)
        verbs_raw = _list(d["verbs"], f"{p}.verbs", out)
        verbs = [_text(v, f"{p}.verbs[{j}]", out, _VERB_RE) for j, v in enumerate(verbs_raw or ())]
        depth = _uint(d["max_depth"], f"{p}.max_depth", out)
        if role is None or verbs_raw is None or depth is None or None in verbs:
            ok = False
            continue
        pathways.append(
            DelegationPathway(role=role, verbs=tuple(v for v in verbs if v), max_depth=depth)
        )
    lpath = f"{path}.limits"
    lim = _map(m["limits"], lpath, _K_LIMITS, out)
    limits = None
    if lim is not None:
        mm = _uint(lim["max_migrations"], f"{lpath}.max_migrations", out)
        mz = _uint(lim["max_zones"], f"{lpath}.max_zones", out)
        md = _uint(lim["max_delegation_depth"], f"{lpath}.max_delegation_depth", out)
        if mm is not None and mz is not None and md is not None:
            limits = PropagationLimits(max_migrations=mm, max_zones=mz, max_delegation_depth=md)
    if not ok or limits is None:
        return _Bad
    return MutationDescriptor(mutable=tuple(mutable), delegation=tuple(pathways), limits=limits)


def _totals(value: Any, path: str, out: _Collector) -> Totals | None:
    m = _map(value, path, _K_TOTALS, out)
    if m is None:
        return None
    depth = _uint(m["depth"], f"{path}.depth", out)
    zones = _uint(m["zones"], f"{path}.zones", out)
    zone_path = _bytes(m["zone_path"], f"{path}.zone_path", out, (DIGEST_LEN,))
    delegation = _uint(m["delegation"], f"{path}.delegation", out)
    migrations = _uint(m["migrations"], f"{path}.migrations", out)
    last_recovery = _uint(m["last_recovery"], f"{path}.last_recovery", out)
    if (
        depth is None
        or zones is None
        or zone_path is None
        or delegation is None
        or migrations is None
        or last_recovery is None
    ):
        return None
    return Totals(depth, zones, zone_path, delegation, migrations, last_recovery)


def _fast_entry(e: dict[str, Any]) -> LineageEntry | None:
    """The common case in one pass of cheap checks; None sends the entry to the slow path."""
    for name in _D32_FIELDS:
        v = e[name]
        if type(v) is not bytes or len(v) != DIGEST_LEN:
            return None
    for name in _OPT32_FIELDS:
        v = e[name]
        if type(v) is not bytes or len(v) not in (0, DIGEST_LEN):
            return None
    salt, sig, proof, epoch, zone = e["salt"], e["sig"], e["proof"], e["epoch"], e["zone"]
    kind = _CLASS_BY_VALUE.get(e["type"]) if type(e["type"]) is str else None
    t = e["totals"]
    if (
        kind is None
        or type(salt) is not bytes
        or len(salt) != SALT_LEN
        or type(sig) is not bytes
        or len(sig) != SIGNATURE_LEN
        or type(proof) is not bytes
        or len(proof) > MAX_PROOF
        or (kind is MutationClass.RECOVERY) != bool(proof)
        or type(epoch) is not int
        or not 0 <= epoch <= MAX_UINT
        or type(zone) is not str
        or not 0 < len(zone) <= MAX_TEXT
        or _NAME_RE.fullmatch(zone) is None
        or type(t) is not dict
        or tuple(t) != _K_TOTALS
    ):
        return None
    nums = (t["depth"], t["zones"], t["delegation"], t["migrations"], t["last_recovery"])
    for n in nums:
        if type(n) is not int or not 0 <= n <= MAX_UINT:
            return None
    zp = t["zone_path"]
    if type(zp) is not bytes or len(zp) != DIGEST_LEN:
        return None
    return LineageEntry(
        prev=e["prev"],
        type=kind,
        epoch=epoch,
        zone=zone,
        link=e["link"],
        state_digest=e["state_digest"],
        dah=e["dah"],
        host=e["host"],
        ddh=e["ddh"],
        next_signer=e["next_signer"],
        reveal=e["reveal"],
        salt=salt,
        commit=e["commit"],
        totals=Totals(nums[0], nums[1], zp, nums[2], nums[3], nums[4]),
        descriptor=e["descriptor"],
        host_record=e["host_record"],
        proof=proof,
        sig=sig,
    )


def _entry(item: Any, p: str, out: _Collector) -> LineageEntry | None:
    """Parse one lineage entry, recording every problem under ``p``."""
    e = _map(item, p, _K_ENTRY, out)
    if e is None:
        return None
    fast = _fast_entry(e)
    if fast is not None:
        return fast
    d32 = {n: _bytes(e[n], f"{p}.{n}", out, (DIGEST_LEN,)) for n in _D32_FIELDS}
    opt = {n: _bytes(e[n], f"{p}.{n}", out, (0, DIGEST_LEN)) for n in _OPT32_FIELDS}
    kind = _enum(e["type"], f"{p}.type", out, MutationClass)
    epoch = _uint(e["epoch"], f"{p}.epoch", out)
    zone = _text(e["zone"], f"{p}.zone", out, _NAME_RE)
    salt = _bytes(e["salt"], f"{p}.salt", out, (SALT_LEN,))
    sig = _bytes(e["sig"], f"{p}.sig", out, (SIGNATURE_LEN,))
    proof: bytes | None = e["proof"]
    if type(proof) is not bytes:
        out.add(f"{p}.proof", "type", f"expected bytes, got {_kind(proof)}")
        proof = None
    elif len(proof) > MAX_PROOF:
        out.add(f"{p}.proof", "length", f"{len(proof)} bytes, over {MAX_PROOF}")
        proof = None
    elif kind is not None and (kind is MutationClass.RECOVERY) != bool(proof):
        want = "a recovery entry needs" if proof == b"" else "only recovery entries carry"
        out.add(f"{p}.proof", "incoherent", f"{want} a proof")
        proof = None
    totals = _totals(e["totals"], f"{p}.totals", out)
    if (
        None in d32.values()
        or None in opt.values()
        or kind is None
        or epoch is None
        or zone is None
        or salt is None
        or sig is None
        or proof is None
        or totals is None
    ):
        return None
    return LineageEntry(
        prev=e["prev"],
        type=kind,
        epoch=epoch,
        zone=zone,
        link=e["link"],
        state_digest=e["state_digest"],
        dah=e["dah"],
        host=e["host"],
        ddh=e["ddh"],
        next_signer=e["next_signer"],
        reveal=e["reveal"],
        salt=salt,
        commit=e["commit"],
        totals=totals,
        descriptor=e["descriptor"],
        host_record=e["host_record"],
        proof=proof,
        sig=sig,
    )


def entry_from_cbor(tree: Any, path: str = "entry") -> LineageEntry:
    """One lineage entry from a decoded tree (e.g. from a host's full-history store).

    Raises SchemaError naming the first problem; structure only, like the rest of this module.
    """
    out = _Collector(ordered=False)
    entry = _entry(tree, path, out)
    if entry is None:
        first = out.problems[0] if out.problems else Problem(path, "type", "not an entry")
        raise SchemaError(first.message, path=first.path)
    return entry


def _lineage(value: Any, path: str, out: _Collector) -> Lineage | object:
    m = _map(value, path, _K_LINEAGE, out)
    if m is None:
        return _Bad
    epath = f"{path}.entries"
    items = _list(m["entries"], epath, out, max_len=LINEAGE_WINDOW, non_empty=True)
    genesis_dah = _bytes(m["genesis_dah"], f"{path}.genesis_dah", out, (DIGEST_LEN,))
    genesis_epoch = _uint(m["genesis_epoch"], f"{path}.genesis_epoch", out)
    pruned: LineageEntry | None = None
    ok = genesis_dah is not None and genesis_epoch is not None
    if m["pruned"] is not None:
        pruned = _entry(m["pruned"], f"{path}.pruned", out)
        ok &= pruned is not None
    if items is None:
        return _Bad
    entries: list[LineageEntry] = []
    for i, item in enumerate(items):
        entry = _entry(item, f"{epath}[{i}]", out)
        if entry is None:
            ok = False
        else:
            entries.append(entry)
    if not ok or genesis_dah is None or genesis_epoch is None:
        return _Bad
    first = entries[0]
    if pruned is None:
        base = GENESIS_PREV
        if genesis_dah != first.dah:
            out.add(f"{path}.genesis_dah", "incoherent", "differs from the genesis entry's dah")
            ok = False
        if genesis_epoch != first.epoch:
            out.add(f"{path}.genesis_epoch", "incoherent", "differs from the genesis entry's epoch")
            ok = False
    else:
        base = lineage_mod.entry_hash(pruned)
        if len(entries) != LINEAGE_WINDOW:
            out.add(
                epath,
                "length",
                f"{len(entries)} entries after a pruned entry; a pruned lineage keeps exactly "
                f"{LINEAGE_WINDOW}",
            )
            ok = False
        if first.epoch < pruned.epoch:
            out.add(f"{epath}[0].epoch", "lineage", "epoch goes back from the pruned entry's")
            ok = False
        if genesis_epoch > pruned.epoch:
            out.add(f"{path}.genesis_epoch", "incoherent", "after the pruned entry's epoch")
            ok = False
    if not ok:
        return _Bad
    try:
        lineage_mod.replay(entries, base=base, path=epath)
    except LineageError as exc:
        out.add(exc.where, "lineage", exc.message)
        return _Bad
    return Lineage(
        entries=tuple(entries), pruned=pruned, genesis_dah=genesis_dah, genesis_epoch=genesis_epoch
    )


# -- fast path: a canonical FULL agent in one pass ------------------------------------------
#
# Every function below returns None (or False) on anything unusual, and ``validate_bytes``
# then judges the tree from scratch on the general path, so the fast path only has to accept
# exactly what the general path accepts as FULL with no problems, never to explain.

_LEDGER_BY_VALUE: Final = {m.value: m for m in LedgerKind}
_ACTION_BY_VALUE: Final = {m.value: m for m in AccessAction}
_INT64: Final = 1 << 64

# Canonical encodings of the fixed parts of an agent, for the piecewise re-encoding.
_E_LINEAGE: Final = encode_ordered("lineage") + b"\xa4" + encode_ordered("pruned")
_E_ENTRIES: Final = encode_ordered("entries")
_E_GENESIS_DAH: Final = encode_ordered("genesis_dah") + b"\x58\x20"
_E_GENESIS_EPOCH: Final = encode_ordered("genesis_epoch")
# An entry's encoding opens with the map head (18 keys: one byte) and its three 3-letter keys
# dah (32 bytes), ddh (32), sig (64): each key is 4 bytes, each byte-string head 2 bytes.
# Its body (every field but dah and sig, 16 keys) is the same bytes without dah and sig.
_DAH_END: Final = 1 + 4 + 2 + DIGEST_LEN
_DDH_END: Final = _DAH_END + 4 + 2 + DIGEST_LEN
_SIG_END: Final = _DDH_END + 4 + 2 + SIGNATURE_LEN
_BODY_HEAD: Final = bytes((0xA0 | (len(_K_ENTRY) - 2),))
_ENTRY_TAG: Final = lineage_mod.ENTRY_TAG
_OPT_LENS: Final = (0, DIGEST_LEN)
_RECOVERY: Final = MutationClass.RECOVERY


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    """Setters of every field of a frozen slotted dataclass, in ``names`` order.

    The fast path builds its entries (five per benchmark agent, 18 fields each) with them
    instead of the generated ``__init__``, which costs twice as much. ``names`` must list
    every field, so a field added to the class fails here at import, not silently later.
    """
    if names != tuple(f.name for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__name__} fields changed; update the fast-path builder")
    return tuple(getattr(cls, name).__set__ for name in names)


_new: Final = object.__new__
(
    _t_depth,
    _t_zones,
    _t_zone_path,
    _t_delegation,
    _t_migrations,
    _t_last_recovery,
) = _slot_setters(
    Totals, ("depth", "zones", "zone_path", "delegation", "migrations", "last_recovery")
)
(
    _e_prev,
    _e_type,
    _e_epoch,
    _e_zone,
    _e_link,
    _e_state_digest,
    _e_dah,
    _e_host,
    _e_ddh,
    _e_next_signer,
    _e_reveal,
    _e_salt,
    _e_commit,
    _e_totals,
    _e_descriptor,
    _e_host_record,
    _e_proof,
    _e_sig,
    _e_body,
    _e_name,
) = _slot_setters(
    LineageEntry,
    (
        "prev",
        "type",
        "epoch",
        "zone",
        "link",
        "state_digest",
        "dah",
        "host",
        "ddh",
        "next_signer",
        "reveal",
        "salt",
        "commit",
        "totals",
        "descriptor",
        "host_record",
        "proof",
        "sig",
        "_body",
        "_name",
    ),
)


def _array_head(n: int) -> bytes:
    return bytes((0x80 | n,)) if n < 24 else bytes((0x98, n))


def _uint_ok(v: Any) -> bool:
    return type(v) is int and 0 <= v <= MAX_UINT


def _name_ok(v: Any) -> bool:
    # the pattern bounds the length (<= 128 < MAX_TEXT) and refuses the empty string
    return type(v) is str and _NAME_RE.fullmatch(v) is not None


def _plain_value(value: Any) -> bool:
    """A Value tree ``_value`` accepts without a problem and without ``_NotCanonical``."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bytes or kind is bool or item is None:
            continue
        if kind is int:
            if not -_INT64 <= item < _INT64:
                return False
        elif kind is list:
            stack.extend(item)
        elif kind is dict:
            keys = list(item)
            for k in keys:
                if type(k) is not str:
                    return False
            if len(keys) > 1 and keys != sorted(keys, key=canonical_key):
                return False
            stack.extend(item.values())
        else:
            return False
    return True


def _fast_intent(v: Any) -> Intent | None:
    if type(v) is not dict or tuple(v) != _K_INTENT:
        return None
    verb, args = v["verb"], v["args"]
    if type(verb) is not str or _VERB_RE.fullmatch(verb) is None:
        return None
    if type(args) is not dict or not _plain_value(args):
        return None
    return Intent(verb=verb, args=args)


def _fast_context(v: Any) -> Context | None:
    if type(v) is not dict or tuple(v) != _K_CONTEXT:
        return None
    zone, nest, role, principal, c = (
        v["zone"],
        v["nest"],
        v["role"],
        v["principal"],
        v["constraints"],
    )
    if not (_name_ok(zone) and _name_ok(nest) and _name_ok(role)):
        return None
    if type(principal) is not str or len(principal) > MAX_TEXT:
        return None
    if type(c) is not dict or tuple(c) != _K_CONSTRAINTS:
        return None
    nb, na = c["not_before_epoch"], c["not_after_epoch"]
    if not (_uint_ok(nb) and _uint_ok(na)) or (na and na < nb):
        return None
    return Context(
        zone=zone,
        nest=nest,
        role=role,
        principal=principal,
        constraints=Constraints(not_before_epoch=nb, not_after_epoch=na),
    )


def _fast_memory(v: Any) -> Memory | None:
    if type(v) is not dict or tuple(v) != _K_MEMORY:
        return None
    ledger_raw, access_raw, handles_raw = v["ledger"], v["access_log"], v["handles"]
    for items in (ledger_raw, access_raw, handles_raw):
        if type(items) is not list or len(items) > MAX_LIST:
            return None
    ledger: list[LedgerEvent] = []
    for e in ledger_raw:
        if type(e) is not dict or tuple(e) != _K_LEDGER_EVENT:
            return None
        epoch, kind_v, data = e["epoch"], e["kind"], e["data"]
        kind = _LEDGER_BY_VALUE.get(kind_v) if type(kind_v) is str else None
        if kind is None or not _uint_ok(epoch) or type(data) is not dict:
            return None
        if not _plain_value(data):
            return None
        ledger.append(LedgerEvent(epoch=epoch, kind=kind, data=data))
    access: list[AccessRecord] = []
    for a in access_raw:
        if type(a) is not dict or tuple(a) != _K_ACCESS:
            return None
        epoch, actor, action_v, outcome = a["epoch"], a["actor"], a["action"], a["outcome"]
        action = _ACTION_BY_VALUE.get(action_v) if type(action_v) is str else None
        if (
            action is None
            or not _uint_ok(epoch)
            or type(actor) is not str
            or not 0 < len(actor) <= MAX_TEXT
            or type(outcome) is not str
            or len(outcome) > MAX_TEXT
        ):
            return None
        access.append(AccessRecord(epoch=epoch, actor=actor, action=action, outcome=outcome))
    handles: list[Handle] = []
    for h in handles_raw:
        if type(h) is not dict or tuple(h) != _K_HANDLE:
            return None
        kind_s, digest, size = h["kind"], h["digest"], h["size"]
        if not _name_ok(kind_s) or not _uint_ok(size):
            return None
        if type(digest) is not bytes or len(digest) != DIGEST_LEN:
            return None
        handles.append(Handle(kind=kind_s, digest=digest, size=size))
    return Memory(ledger=tuple(ledger), access_log=tuple(access), handles=tuple(handles))


def _fast_policy_refs(v: Any) -> tuple[PolicyRef, ...] | None:
    if type(v) is not list or not 0 < len(v) <= MAX_POLICY_REFS:
        return None
    refs: list[PolicyRef] = []
    for r in v:
        if type(r) is not dict or tuple(r) != _K_POLICY_REF:
            return None
        contract, signer, signature = r["contract"], r["signer"], r["signature"]
        if (
            type(contract) is not bytes
            or len(contract) != DIGEST_LEN
            or type(signer) is not bytes
            or len(signer) != KEY_LEN
            or type(signature) is not bytes
            or len(signature) != SIGNATURE_LEN
        ):
            return None
        refs.append(PolicyRef(contract=contract, signer=signer, signature=signature))
    return tuple(refs)


def _fast_descriptor(v: Any) -> MutationDescriptor | None:
    if type(v) is not dict or tuple(v) != _K_DESCRIPTOR:
        return None
    mutable_raw, delegation_raw, lim = v["mutable"], v["delegation"], v["limits"]
    if type(mutable_raw) is not list or len(mutable_raw) > len(MUTABLE_FIELDS):
        return None
    mutable: list[str] = []
    for name in mutable_raw:
        if type(name) is not str or name not in MUTABLE_FIELDS or name in mutable:
            return None
        mutable.append(name)
    if type(delegation_raw) is not list or len(delegation_raw) > MAX_LIST:
        return None
    pathways: list[DelegationPathway] = []
    for d in delegation_raw:
        if type(d) is not dict or tuple(d) != _K_PATHWAY:
            return None
        role, verbs, depth = d["role"], d["verbs"], d["max_depth"]
        if not _name_ok(role) or not _uint_ok(depth):
            return None
        if type(verbs) is not list or len(verbs) > MAX_LIST:
            return None
        for verb in verbs:
            if type(verb) is not str or _VERB_RE.fullmatch(verb) is None:
                return None
        pathways.append(DelegationPathway(role=role, verbs=tuple(verbs), max_depth=depth))
    if type(lim) is not dict or tuple(lim) != _K_LIMITS:
        return None
    mm, mz, md = lim["max_migrations"], lim["max_zones"], lim["max_delegation_depth"]
    if not (_uint_ok(mm) and _uint_ok(mz) and _uint_ok(md)):
        return None
    return MutationDescriptor(
        mutable=tuple(mutable),
        delegation=tuple(pathways),
        limits=PropagationLimits(max_migrations=mm, max_zones=mz, max_delegation_depth=md),
    )


def _fast_named_entry(item: Any) -> tuple[LineageEntry, bytes] | None:
    """A well-formed entry (as ``_entry`` would accept it) and its canonical encoding.

    Its body digest and name are memoized on it from that encoding: the body is the same
    bytes without dah and sig.
    """
    if type(item) is not dict or tuple(item) != _K_ENTRY:
        return None
    (
        dah,
        ddh,
        sig,
        host,
        link,
        prev,
        salt,
        type_v,
        zone,
        epoch,
        proof,
        commit,
        reveal,
        t,
        descriptor,
        host_record,
        next_signer,
        state_digest,
    ) = item.values()
    if (
        type(dah) is not bytes
        or type(ddh) is not bytes
        or type(sig) is not bytes
        or type(host) is not bytes
        or type(link) is not bytes
        or type(prev) is not bytes
        or type(salt) is not bytes
        or type(proof) is not bytes
        or type(commit) is not bytes
        or type(reveal) is not bytes
        or type(descriptor) is not bytes
        or type(host_record) is not bytes
        or type(next_signer) is not bytes
        or type(state_digest) is not bytes
    ):
        return None
    if not (
        len(dah)
        == len(ddh)
        == len(host)
        == len(prev)
        == len(commit)
        == len(reveal)
        == len(next_signer)
        == len(state_digest)
        == DIGEST_LEN
        and len(sig) == SIGNATURE_LEN
        and len(salt) == SALT_LEN
        and len(link) in _OPT_LENS
        and len(descriptor) in _OPT_LENS
        and len(host_record) in _OPT_LENS
        and len(proof) <= MAX_PROOF
    ):
        return None
    kind = _CLASS_BY_VALUE.get(type_v) if type(type_v) is str else None
    if kind is None or (kind is _RECOVERY) != (len(proof) > 0):
        return None
    if type(epoch) is not int or not 0 <= epoch <= MAX_UINT:
        return None
    if type(zone) is not str or _NAME_RE.fullmatch(zone) is None:
        return None
    if type(t) is not dict or tuple(t) != _K_TOTALS:
        return None
    depth, zones, zone_path, delegation, migrations, last_recovery = t.values()
    if (
        type(depth) is not int
        or type(zones) is not int
        or type(delegation) is not int
        or type(migrations) is not int
        or type(last_recovery) is not int
        or min(depth, zones, delegation, migrations, last_recovery) < 0
        or max(depth, zones, delegation, migrations, last_recovery) > MAX_UINT
        or type(zone_path) is not bytes
        or len(zone_path) != DIGEST_LEN
    ):
        return None
    enc = encode_ordered(item)
    body = hashlib.sha256(_BODY_HEAD + enc[_DAH_END:_DDH_END] + enc[_SIG_END:]).digest()
    totals = _new(Totals)
    _t_depth(totals, depth)
    _t_zones(totals, zones)
    _t_zone_path(totals, zone_path)
    _t_delegation(totals, delegation)
    _t_migrations(totals, migrations)
    _t_last_recovery(totals, last_recovery)
    entry = _new(LineageEntry)
    _e_prev(entry, prev)
    _e_type(entry, kind)
    _e_epoch(entry, epoch)
    _e_zone(entry, zone)
    _e_link(entry, link)
    _e_state_digest(entry, state_digest)
    _e_dah(entry, dah)
    _e_host(entry, host)
    _e_ddh(entry, ddh)
    _e_next_signer(entry, next_signer)
    _e_reveal(entry, reveal)
    _e_salt(entry, salt)
    _e_commit(entry, commit)
    _e_totals(entry, totals)
    _e_descriptor(entry, descriptor)
    _e_host_record(entry, host_record)
    _e_proof(entry, proof)
    _e_sig(entry, sig)
    _e_body(entry, body)
    _e_name(entry, hashlib.sha256(_ENTRY_TAG + body + dah + sig).digest())
    return entry, enc


def _fast_lineage(v: Any, zone: str) -> tuple[Lineage, list[bytes]] | None:
    """The lineage and the encoded pieces of its value (map head to genesis epoch)."""
    if type(v) is not dict or tuple(v) != _K_LINEAGE:
        return None
    items, genesis_dah, genesis_epoch, pruned_raw = (
        v["entries"],
        v["genesis_dah"],
        v["genesis_epoch"],
        v["pruned"],
    )
    if type(items) is not list or not 0 < len(items) <= LINEAGE_WINDOW:
        return None
    if type(genesis_dah) is not bytes or len(genesis_dah) != DIGEST_LEN:
        return None
    if not _uint_ok(genesis_epoch):
        return None
    pieces = [_E_LINEAGE]
    pruned: LineageEntry | None = None
    if pruned_raw is None:
        pieces.append(b"\xf6")
    else:
        named = _fast_named_entry(pruned_raw)
        if named is None:
            return None
        pruned = named[0]
        pieces.append(named[1])
    pieces += (_E_ENTRIES, _array_head(len(items)))
    entries: list[LineageEntry] = []
    for item in items:
        named = _fast_named_entry(item)
        if named is None:
            return None
        entries.append(named[0])
        pieces.append(named[1])
    pieces += (_E_GENESIS_DAH, genesis_dah, _E_GENESIS_EPOCH, encode_ordered(genesis_epoch))
    first = entries[0]
    if pruned is None:
        if first.type is not MutationClass.INITIALIZATION:
            return None
        if genesis_dah != first.dah or genesis_epoch != first.epoch:
            return None
        expected = GENESIS_PREV
    else:
        if len(entries) != LINEAGE_WINDOW or first.epoch < pruned.epoch:
            return None
        if genesis_epoch > pruned.epoch:
            return None
        expected = pruned._name
    epoch = first.epoch
    for entry in entries:  # lineage_mod.replay, on the names memoized above
        if entry.prev != expected or entry.epoch < epoch:
            return None
        expected, epoch = entry._name, entry.epoch
    if entries[-1].zone != zone:
        return None
    lineage = Lineage(
        entries=tuple(entries), pruned=pruned, genesis_dah=genesis_dah, genesis_epoch=genesis_epoch
    )
    return lineage, pieces


def _fast_full(tree: Any, data: bytes) -> Validation | None:
    """The FULL verdict for a canonical, well-formed agent; None sends it to the general path.

    Canonical form is proved by re-encoding piece by piece and comparing with ``data``: the
    entry pieces give each entry's body digest and name (no second encoding for the
    replay), and the five other fields give the state digest. Map key order is part of each
    key-tuple check, so the decoded order is the order re-encoded.
    """
    if type(tree) is not dict or tuple(tree) != _CANON_FIELDS:
        return None
    context = _fast_context(tree["context"])
    if context is None:
        return None
    lin = _fast_lineage(tree["lineage"], context.zone)
    if lin is None:
        return None
    intent = _fast_intent(tree["intent"])
    memory = _fast_memory(tree["memory"])
    policy_ref = _fast_policy_refs(tree["policy_ref"])
    descriptor = _fast_descriptor(tree["mutation_descriptor"])
    if intent is None or memory is None or policy_ref is None or descriptor is None:
        return None
    lineage, pieces = lin
    head = encode_ordered(
        {"intent": tree["intent"], "memory": tree["memory"], "context": tree["context"]}
    )
    tail = encode_ordered(
        {"policy_ref": tree["policy_ref"], "mutation_descriptor": tree["mutation_descriptor"]}
    )
    if b"".join((b"\xa6", head[1:], *pieces, tail[1:])) != data:
        return None
    agent = Agent(
        intent=intent,
        context=context,
        memory=memory,
        policy_ref=policy_ref,
        mutation_descriptor=descriptor,
        lineage=lineage,
    )
    object.__setattr__(agent, "_state", hashlib.sha256(b"\xa5" + head[1:] + tail[1:]).digest())
    return Validation(ValidationStatus.FULL, (), agent)
