"""Governance CLI as real processes: help everywhere, signed files, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from protocols.governance.bundle import ZoneBundle

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "examples" / "zone-policy.toml"
MESHNODE = Path(sys.executable).parent / "meshnode"


def gov(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshnode.cli_governance", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["keygen", "--help"],
        ["zone", "--help"],
        ["zone", "new", "--help"],
        ["zone", "show", "--help"],
        ["zone", "admit-host", "--help"],
        ["zone", "revoke-host", "--help"],
        ["zone", "override", "--help"],
        ["policy", "--help"],
        ["policy", "check", "--help"],
    ):
        result = gov(*args)
        assert result.returncode == 0, args
        assert "Usage:" in result.stdout


@pytest.fixture
def zone_dir(tmp_path: Path) -> Path:
    assert gov("keygen", "--out", "auth.key", cwd=tmp_path).returncode == 0
    assert gov("keygen", "--out", "meta.key", cwd=tmp_path).returncode == 0
    made = gov(
        "zone",
        "new",
        "--id",
        "fleet",
        "--policy",
        str(POLICY),
        "--key",
        "auth.key",
        "--meta-key",
        "meta.key",
        "--out",
        "fleet.cbor",
        cwd=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    return tmp_path


def test_keygen_writes_a_private_key_and_refuses_to_overwrite(tmp_path: Path) -> None:
    assert gov("keygen", "--out", "k.key", cwd=tmp_path).returncode == 0
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    again = gov("keygen", "--out", "k.key", cwd=tmp_path)
    assert again.returncode == 1
    assert "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_zone_new_show_admit_revoke_override(zone_dir: Path) -> None:
    host = "ab" * 32
    steps = [
        (
            "zone",
            "admit-host",
            "fleet.cbor",
            "--key",
            "auth.key",
            "--host-key",
            host,
            "--ddh",
            "cd" * 32,
        ),
        (
            "zone",
            "revoke-host",
            "fleet.cbor",
            "--key",
            "auth.key",
            "--host-key",
            host,
            "--epoch",
            "5",
        ),
        (
            "zone",
            "override",
            "fleet.cbor",
            "--meta-key",
            "meta.key",
            "--action",
            "release",
            "--from-epoch",
            "0",
            "--until-epoch",
            "9",
            "--reason",
            "cleared",
        ),
    ]
    for step in steps:
        done = gov(*step, cwd=zone_dir)
        assert done.returncode == 0, done.stderr
    shown = gov("zone", "show", "fleet.cbor", cwd=zone_dir)
    assert shown.returncode == 0, shown.stderr
    for text in ("fleet-basic", "hold-suspects", "abababab", "release", "cleared"):
        assert text in shown.stdout
    assert "NO" not in shown.stdout
    view = ZoneBundle.decode((zone_dir / "fleet.cbor").read_bytes()).view(epoch=3)
    assert view.hosts.is_revoked(bytes.fromhex(host))
    assert len(view.contracts) == 1
    assert view.descriptors.governing(0) is not None


def test_override_needs_the_meta_authority(zone_dir: Path) -> None:
    done = gov(
        "zone",
        "override",
        "fleet.cbor",
        "--meta-key",
        "auth.key",
        "--action",
        "suspend",
        "--from-epoch",
        "0",
        "--until-epoch",
        "9",
        "--reason",
        "x",
        cwd=zone_dir,
    )
    assert done.returncode == 1
    assert "meta-authority" in done.stderr


def _agent(tmp: Path, intent: str, name: str) -> Path:
    cmd = [str(MESHNODE)] if MESHNODE.exists() else [sys.executable, "-m", "meshnode.cli"]
    out = tmp / name
    made = subprocess.run(
        [*cmd, "agent", "new", "--intent", intent, "--zone", "fleet", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp,
        env={"HOME": str(tmp), "PATH": "/usr/bin:/bin"},
    )
    assert made.returncode == 0, made.stderr
    return out


def test_policy_check_explains_the_deciding_rule(tmp_path: Path) -> None:
    ok = gov("policy", "check", str(POLICY), str(_agent(tmp_path, "note:text=hi", "n.cbor")))
    assert ok.returncode == 0, ok.stderr
    assert "ordinary-work" in ok.stdout
    assert "MATCHED" in ok.stdout
    bad = gov("policy", "check", "--json", str(POLICY), str(_agent(tmp_path, "wipe", "w.cbor")))
    assert bad.returncode == 1
    record = json.loads(bad.stdout)
    assert record["verdict"] == "DENY"
    assert record["rule"] == "no-wipes"
    assert [s["rule"] for s in record["skipped"]] == ["hold-suspects", "audits-to-meta"]
    assert record["skipped"][1]["why"] == "verb is 'wipe'; rule needs one of audit"


def test_user_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[contract]\nzone = 'fleet'\nname = 'x'\ndefault = 'maybe'\n")
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"\xff\xff")
    for args in (
        ("policy", "check", str(bad_toml), str(junk)),
        ("policy", "check", str(POLICY), str(junk)),
        ("zone", "show", str(junk)),
    ):
        result = gov(*args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_meshnode_command_carries_the_governance_groups() -> None:
    cmd = [str(MESHNODE)] if MESHNODE.exists() else [sys.executable, "-m", "meshnode.cli"]
    for group in ("keygen", "zone", "policy"):
        result = subprocess.run(
            [*cmd, group, "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


def test_a_key_file_readable_by_others_is_refused(zone_dir: Path) -> None:
    (zone_dir / "auth.key").chmod(0o644)
    done = gov(
        "zone",
        "revoke-host",
        "fleet.cbor",
        "--key",
        "auth.key",
        "--host-key",
        "ab" * 32,
        "--epoch",
        "1",
        cwd=zone_dir,
    )
    assert done.returncode == 1
    assert "chmod 600" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# -- zone update: descriptor versions > 1 (in-process, for speed) ----------------------------


def _run(*args: str) -> Result:
    from meshnode.cli_governance import _standalone

    return CliRunner().invoke(_standalone, list(args), catch_exceptions=False)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("auth.key", "meta.key", "meta2.key"):
        assert _run("keygen", "--out", name).exit_code == 0
    made = _run(
        "zone", "new", "--id", "fleet", "--policy", str(POLICY), "--key", "auth.key",
        "--meta-key", "meta.key", "--activation-epoch", "10", "--out", "fleet.cbor",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    return tmp_path


def _versions(path: Path) -> list[tuple[int, int]]:
    view = ZoneBundle.decode(path.read_bytes()).view(epoch=0)
    return [(d.version, d.activation_epoch) for d in view.descriptors.versions()]


def test_zone_update_signs_the_next_version_with_a_later_activation(fleet: Path) -> None:
    other = fleet / "other.toml"
    other.write_text(POLICY.read_text().replace('name = "fleet-basic"', 'name = "fleet-two"'))
    done = _run(
        "zone", "update", "fleet.cbor", "--key", "auth.key", "--activation-epoch", "40",
        "--now-epoch", "38", "--policy", str(other), "--meta-key", "meta2.key",
        "--n", "3", "--k-min", "2", "--validator", "ab" * 32,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "descriptor v2" in done.output
    assert "activates at epoch 40 (published at epoch 38)" in done.output
    assert _versions(fleet / "fleet.cbor") == [(1, 10), (2, 40)]
    view = ZoneBundle.decode((fleet / "fleet.cbor").read_bytes()).view(epoch=0)
    v1, v2 = view.descriptors.versions()
    assert view.descriptors.governing(39) == v1
    assert view.descriptors.governing(40) == v2
    assert len(v2.contracts) == 2
    assert set(v1.contracts) < set(v2.contracts)
    assert len(view.contracts) == 2
    assert (v2.quorum.n, v2.quorum.k_min) == (3, 2)
    assert v2.validators == (bytes.fromhex("ab" * 32),)
    assert v2.meta_authority != v1.meta_authority
    third = _run(
        "zone", "update", "fleet.cbor", "--key", "auth.key",
        "--activation-epoch", "60", "--now-epoch", "50",
    )  # fmt: skip
    assert third.exit_code == 0, third.output
    assert _versions(fleet / "fleet.cbor") == [(1, 10), (2, 40), (3, 60)]
    shown = _run("zone", "show", "fleet.cbor")
    assert shown.exit_code == 0
    assert "NO" not in shown.output


def test_zone_update_refuses_a_version_published_too_late(fleet: Path) -> None:
    before = (fleet / "fleet.cbor").read_bytes()
    for activation, now, why in (
        ("40", "39", "too-late"),
        ("40", "45", "too-late"),
        ("10", "0", "activation-not-later"),
    ):
        done = _run(
            "zone", "update", "fleet.cbor", "--key", "auth.key",
            "--activation-epoch", activation, "--now-epoch", now,
        )  # fmt: skip
        assert done.exit_code == 1, done.output
        assert why in done.output
        assert len(done.output.strip().splitlines()) == 1
    assert (fleet / "fleet.cbor").read_bytes() == before
    wrong_key = _run(
        "zone", "update", "fleet.cbor", "--key", "meta.key",
        "--activation-epoch", "90", "--now-epoch", "0",
    )  # fmt: skip
    assert wrong_key.exit_code == 1
    assert "not a key of the zone authority" in wrong_key.output
    assert (fleet / "fleet.cbor").read_bytes() == before
    assert _run("zone", "update", "--help").exit_code == 0
