"""Policy contracts: ordered data-only rules, written in TOML, signed as canonical CBOR.

A contract is a list of rules and a required default. Each rule names a verdict (PERMIT,
DENY, QUARANTINE, ESCALATE), a reason, and conditions over :class:`Facts`: what the agent's
own bytes say (intent verb and arguments, context role/nest/principal, the head entry's
mutation class, lineage depth, delegation depth, migrations, zone path). No rule can read
anything that differs between relays, and nothing is evaluated as code. The first rule whose
conditions all hold decides; ``evaluate`` says which one and why the earlier ones did not.

TOML form::

    [contract]
    zone = "fleet"
    name = "fleet-basic"
    version = 1
    default = "deny"
    default_reason = "not allowed by fleet-basic"

    [[rule]]
    name = "notes"
    verdict = "permit"
    reason = "notes are harmless"
    verbs = ["note", "echo"]
    max_lineage_depth = 500
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import nacl.signing

from protocols import codec
from protocols.agent.schema import Agent, MutationClass, PolicyRef
from protocols.errors import PolicyError, SchemaError
from protocols.governance.signing import (
    TAG_CONTRACT,
    TAG_POLICY_REF,
    Signed,
    expect_int,
    expect_list,
    expect_map,
    expect_text,
    make_signed,
    public_key,
    sign,
    verify,
)
from protocols.types import PolicyVerdict

MAX_RULES: Final = 256

Scalar = str | int | bool


@dataclass(frozen=True, slots=True)
class Facts:
    """What rules may read: derived from the agent's bytes only, equal on every relay."""

    verb: str | None
    args: Mapping[str, Any]
    role: str | None
    nest: str | None
    principal: str | None
    head_class: str
    lineage_depth: int
    delegation_depth: int
    migrations: int
    zone_path: tuple[str, ...]


def zone_path(agent: Agent) -> tuple[str, ...]:
    """Zones the carried lineage passed through, in order, consecutive repeats merged."""
    path: list[str] = []
    for entry in agent.lineage.entries if agent.lineage else ():
        if not path or path[-1] != entry.zone:
            path.append(entry.zone)
    return tuple(path)


def facts_of(agent: Agent) -> Facts:
    """The facts of an agent (PARTIAL agents give None for fields they lack)."""
    entries = agent.lineage.entries if agent.lineage else ()
    depth = _checkpoint(agent, "depth", max(0, len(entries) - 1))
    return Facts(
        verb=agent.intent.verb if agent.intent else None,
        args=agent.intent.args if agent.intent else {},
        role=agent.context.role if agent.context else None,
        nest=agent.context.nest if agent.context else None,
        principal=agent.context.principal if agent.context else None,
        head_class=entries[-1].type.value if entries else "",
        lineage_depth=depth,
        delegation_depth=_checkpoint(
            agent,
            "delegation",
            sum(1 for e in entries if e.type is MutationClass.DELEGATION),
        ),
        migrations=_checkpoint(
            agent, "migrations", sum(1 for e in entries if e.type is MutationClass.MIGRATION)
        ),
        zone_path=zone_path(agent),
    )


def _checkpoint(agent: Agent, name: str, fallback: int) -> int:
    """A running total from the head entry's checkpoint when the schema carries one."""
    entries = agent.lineage.entries if agent.lineage else ()
    if entries:
        cp = getattr(entries[-1], "totals", None)
        value = getattr(cp, name, None)
        if isinstance(value, int):
            return value
    return fallback


# -- rule conditions as a table: name -> (parse, holds) ----------------------------------


def _text_list(value: Any, path: str) -> tuple[str, ...]:
    return tuple(expect_text(v, f"{path}[{i}]") for i, v in enumerate(expect_list(value, path)))


def _scalar_map(value: Any, path: str) -> tuple[tuple[str, Scalar], ...]:
    if not isinstance(value, dict):
        raise SchemaError("expected a table of KEY = VALUE", path=path)
    out = []
    for k in sorted(value):
        v = value[k]
        if not isinstance(v, str | int) or isinstance(v, float):
            raise SchemaError("values must be text, integers or booleans", path=f"{path}.{k}")
        out.append((str(k), v))
    return tuple(out)


def _in(attr: str) -> Callable[[Facts, Any], bool]:
    return lambda f, allowed: getattr(f, attr) in allowed


_CONDITIONS: Final[dict[str, tuple[Callable[[Any, str], Any], Callable[[Facts, Any], bool]]]] = {
    "verbs": (_text_list, _in("verb")),
    "roles": (_text_list, _in("role")),
    "nests": (_text_list, _in("nest")),
    "principals": (_text_list, _in("principal")),
    "classes": (_text_list, _in("head_class")),
    "args": (_scalar_map, lambda f, want: all(f.args.get(k) == v for k, v in want)),
    "min_lineage_depth": (expect_int, lambda f, n: f.lineage_depth >= n),
    "max_lineage_depth": (expect_int, lambda f, n: f.lineage_depth <= n),
    "max_delegation_depth": (expect_int, lambda f, n: f.delegation_depth <= n),
    "min_delegation_depth": (expect_int, lambda f, n: f.delegation_depth >= n),
    "max_migrations": (expect_int, lambda f, n: f.migrations <= n),
    "min_migrations": (expect_int, lambda f, n: f.migrations >= n),
    "zone_path_within": (_text_list, lambda f, zs: all(z in zs for z in f.zone_path)),
    "zone_path_outside": (_text_list, lambda f, zs: any(z not in zs for z in f.zone_path)),
}
"""Every condition a rule may state: how to parse its value and when it holds."""

_FACT: Final = {
    "verbs": "verb",
    "roles": "role",
    "nests": "nest",
    "principals": "principal",
    "classes": "head_class",
    "args": "args",
    "min_lineage_depth": "lineage_depth",
    "max_lineage_depth": "lineage_depth",
    "max_delegation_depth": "delegation_depth",
    "min_delegation_depth": "delegation_depth",
    "max_migrations": "migrations",
    "min_migrations": "migrations",
    "zone_path_within": "zone_path",
    "zone_path_outside": "zone_path",
}
"""The fact each condition reads (for explanations)."""

_VERDICTS: Final = {v.value.lower(): v for v in PolicyVerdict}


def _verdict(value: Any, path: str) -> PolicyVerdict:
    text = expect_text(value, path).lower()
    if text not in _VERDICTS:
        raise SchemaError(f"verdict must be one of {sorted(_VERDICTS)}, not {text!r}", path=path)
    return _VERDICTS[text]


@dataclass(frozen=True, slots=True)
class Rule:
    """One ordered rule: all its conditions must hold for its verdict to apply."""

    name: str
    verdict: PolicyVerdict
    reason: str
    conditions: tuple[tuple[str, Any], ...]

    def first_failure(self, facts: Facts) -> str | None:
        """Name of the first condition that does not hold, or None when the rule matches."""
        for key, want in self.conditions:
            if not _CONDITIONS[key][1](facts, want):
                return key
        return None

    def why_not(self, key: str, facts: Facts) -> str:
        """One line: the condition, what the agent has, what the rule needs."""
        want = dict(self.conditions)[key]
        have = getattr(facts, _FACT[key])
        if key == "args":
            need = "args " + ", ".join(f"{k}={v!r}" for k, v in want)
            have = dict(have)
        elif key.startswith("min_"):
            need = f">= {want}"
        elif key.startswith("max_"):
            need = f"<= {want}"
        elif key == "zone_path_within":
            need = "every zone in " + ", ".join(want)
        elif key == "zone_path_outside":
            need = "some zone outside " + ", ".join(want)
        else:
            need = "one of " + ", ".join(want)
        return f"{_FACT[key]} is {have!r}; rule needs {need}"

    def to_cbor(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "reason": self.reason}
        out["verdict"] = self.verdict.value.lower()
        for key, want in self.conditions:
            if key == "args":
                out[key] = dict(want)
            elif isinstance(want, tuple):
                out[key] = list(want)
            else:
                out[key] = want
        return out

    @classmethod
    def from_tree(cls, tree: Any, path: str) -> Rule:
        if not isinstance(tree, dict):
            raise SchemaError("a rule must be a table", path=path)
        for key in sorted(tree):
            if key not in ("name", "verdict", "reason") and key not in _CONDITIONS:
                raise SchemaError(f"unknown rule key {key!r}", path=f"{path}.{key}")
        for key in ("name", "verdict", "reason"):
            if key not in tree:
                raise SchemaError("missing key", path=f"{path}.{key}")
        conditions = tuple(
            (key, _CONDITIONS[key][0](tree[key], f"{path}.{key}"))
            for key in sorted(tree)
            if key in _CONDITIONS
        )
        return cls(
            name=expect_text(tree["name"], f"{path}.name"),
            verdict=_verdict(tree["verdict"], f"{path}.verdict"),
            reason=expect_text(tree["reason"], f"{path}.reason", 1024),
            conditions=conditions,
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Which rule decided (index, or -1 for the default), its verdict, and why."""

    verdict: PolicyVerdict
    rule_index: int
    rule_name: str
    reason: str
    skipped: tuple[tuple[str, str], ...]
    """(rule name, first failing condition) for each earlier rule that did not match."""

    def explain(self) -> str:
        where = f"rule {self.rule_index} {self.rule_name!r}" if self.rule_index >= 0 else "default"
        return f"{self.verdict.value} by {where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Contract:
    """A policy contract: zone, name, version, ordered rules and a required default."""

    zone: str
    name: str
    version: int
    default: PolicyVerdict
    default_reason: str
    rules: tuple[Rule, ...]

    def evaluate(self, facts: Facts) -> Evaluation:
        skipped: list[tuple[str, str]] = []
        for i, rule in enumerate(self.rules):
            failed = rule.first_failure(facts)
            if failed is None:
                return Evaluation(rule.verdict, i, rule.name, rule.reason, tuple(skipped))
            skipped.append((rule.name, failed))
        return Evaluation(self.default, -1, "default", self.default_reason, tuple(skipped))

    def to_cbor(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "zone": self.zone,
            "rules": [r.to_cbor() for r in self.rules],
            "default": self.default.value.lower(),
            "version": self.version,
            "default_reason": self.default_reason,
        }

    @property
    def id(self) -> bytes:
        return codec.content_id(codec.encode(self.to_cbor()))

    def sign(self, *keys: nacl.signing.SigningKey) -> Signed:
        return make_signed(TAG_CONTRACT, self.to_cbor(), *keys)

    @classmethod
    def from_cbor(cls, tree: Any, path: str = "body") -> Contract:
        m = expect_map(
            tree, path, ("name", "zone", "rules", "default", "version", "default_reason")
        )
        rules = expect_list(m["rules"], f"{path}.rules", MAX_RULES)
        return cls(
            zone=expect_text(m["zone"], f"{path}.zone"),
            name=expect_text(m["name"], f"{path}.name"),
            version=expect_int(m["version"], f"{path}.version"),
            default=_verdict(m["default"], f"{path}.default"),
            default_reason=expect_text(m["default_reason"], f"{path}.default_reason", 1024),
            rules=tuple(Rule.from_tree(r, f"{path}.rules[{i}]") for i, r in enumerate(rules)),
        )


def contract_from_toml(text: str) -> Contract:
    """Parse a contract's TOML source; PolicyError/SchemaError naming the key on any fault."""
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"not valid TOML: {exc}") from None
    for key in sorted(tree):
        if key not in ("contract", "rule"):
            raise SchemaError(f"unknown top-level key {key!r}", path=key)
    head = tree.get("contract")
    if not isinstance(head, dict):
        raise SchemaError("missing [contract] table", path="contract")
    for key in sorted(head):
        if key not in ("zone", "name", "version", "default", "default_reason"):
            raise SchemaError(f"unknown key {key!r}", path=f"contract.{key}")
    if "default" not in head:
        raise SchemaError("a contract needs a default verdict", path="contract.default")
    rules = tree.get("rule", [])
    if not isinstance(rules, list) or len(rules) > MAX_RULES:
        raise SchemaError(f"[[rule]] must be a list of at most {MAX_RULES} tables", path="rule")
    return Contract(
        zone=expect_text(head.get("zone"), "contract.zone"),
        name=expect_text(head.get("name"), "contract.name"),
        version=expect_int(head.get("version", 1), "contract.version"),
        default=_verdict(head["default"], "contract.default"),
        default_reason=expect_text(
            head.get("default_reason", "no rule matched"), "contract.default_reason", 1024
        ),
        rules=tuple(Rule.from_tree(r, f"rule[{i}]") for i, r in enumerate(rules)),
    )


def parse_contract(signed: Signed) -> Contract:
    if signed.tag != TAG_CONTRACT:
        raise PolicyError(f"not a policy contract: {signed.tag!r}", path="tag")
    return Contract.from_cbor(signed.body)


def _ref_body(zone: str, contract_id: bytes) -> dict[str, Any]:
    return {"zone": zone, "contract": contract_id}


def make_policy_ref(zone: str, contract_id: bytes, key: nacl.signing.SigningKey) -> PolicyRef:
    """The signed reference an agent carries: an authority key's signature over the id."""
    return PolicyRef(
        contract=contract_id,
        signer=public_key(key),
        signature=sign(key, TAG_POLICY_REF, _ref_body(zone, contract_id)),
    )


def policy_ref_valid(ref: PolicyRef, zone: str) -> bool:
    return verify(ref.signer, TAG_POLICY_REF, _ref_body(zone, ref.contract), ref.signature)
