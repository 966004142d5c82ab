"""Policy contracts: TOML parsing, ordered data-only rules, explanations, signing."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.errors import MeshError, SchemaError
from protocols.governance.policy import Contract, Facts, contract_from_toml
from protocols.governance.signing import decode_signed, signing_key
from protocols.types import PolicyVerdict

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "zone-policy.toml"


def facts(**kw: object) -> Facts:
    base: dict[str, object] = dict(
        verb="note",
        args={},
        role="worker",
        nest="n",
        principal="",
        head_class="initialization",
        lineage_depth=0,
        delegation_depth=0,
        migrations=0,
        zone_path=("fleet",),
    )
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def test_the_example_contract_parses_and_the_first_matching_rule_decides() -> None:
    c = contract_from_toml(EXAMPLE.read_text())
    assert c.zone == "fleet"
    assert len(c.rules) == 5
    assert c.evaluate(facts()).rule_name == "ordinary-work"
    held = c.evaluate(facts(role="suspect", verb="wipe"))
    assert (held.verdict, held.rule_index) == (PolicyVerdict.QUARANTINE, 0)
    away = c.evaluate(facts(zone_path=("fleet", "elsewhere")))
    assert away.rule_name == "stay-home"
    assert away.skipped == (
        ("hold-suspects", "roles"),
        ("audits-to-meta", "verbs"),
        ("no-wipes", "verbs"),
    )
    deflt = c.evaluate(facts(verb="dance"))
    assert (deflt.verdict, deflt.rule_index) == (PolicyVerdict.DENY, -1)
    assert "default" in deflt.explain()


def test_depth_and_arg_conditions() -> None:
    c = contract_from_toml(
        '[contract]\nzone="z"\nname="n"\ndefault="permit"\n'
        '[[rule]]\nname="deep"\nverdict="escalate"\nreason="r"\nmin_lineage_depth=10\n'
        '[[rule]]\nname="sector"\nverdict="deny"\nreason="r"\nargs={sector="7"}\n'
    )
    assert c.evaluate(facts(lineage_depth=10)).rule_name == "deep"
    assert c.evaluate(facts(lineage_depth=9, args={"sector": "7"})).rule_name == "sector"
    assert c.evaluate(facts(args={"sector": "8"})).verdict is PolicyVerdict.PERMIT


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('[contract]\nzone="z"\nname="n"\n', "contract.default"),
        ('[contract]\nzone="z"\nname="n"\ndefault="maybe"\n', "contract.default"),
        ('[contract]\nzone="z"\nname="n"\ndefault="deny"\nextra=1\n', "contract.extra"),
        (
            '[contract]\nzone="z"\nname="n"\ndefault="deny"\n[[rule]]\nname="a"\nverdict="deny"\nreason="r"\neval="x"\n',
            "rule[0].eval",
        ),
        (
            '[contract]\nzone="z"\nname="n"\ndefault="deny"\n[[rule]]\nname="a"\nreason="r"\n',
            "rule[0].verdict",
        ),
    ],
)
def test_malformed_contracts_name_the_key(text: str, path: str) -> None:
    with pytest.raises(SchemaError) as err:
        contract_from_toml(text)
    assert err.value.path == path


def test_bad_toml_is_a_policy_error() -> None:
    with pytest.raises(MeshError):
        contract_from_toml("[contract\n")


def test_signed_contract_round_trips_with_the_same_id() -> None:
    c = contract_from_toml(EXAMPLE.read_text())
    signed = c.sign(signing_key(bytes(32)))
    back = decode_signed(signed.encode(), signed.tag)
    assert Contract.from_cbor(back.body) == c
    assert back.id == c.id


def test_explanations_say_what_the_agent_has_and_what_the_rule_needs() -> None:
    c = contract_from_toml(EXAMPLE.read_text())
    f = facts(verb="dance", lineage_depth=3)
    ev = c.evaluate(f)
    assert c.rules[0].why_not("roles", f) == "role is 'worker'; rule needs one of suspect"
    assert (
        c.rules[4].why_not("verbs", f)
        == "verb is 'dance'; rule needs one of note, echo, claim, report"
    )
    assert [name for name, _ in ev.skipped] == [r.name for r in c.rules]
