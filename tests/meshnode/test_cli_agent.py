"""`meshnode agent ...` commands, run as real processes: exit codes, JSON lines, no tracebacks."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import cbor2
import pytest

from protocols.agent.build import AgentSpec, encode_agent, new_agent
from protocols.identity.host import new_host
from protocols.identity.host_secrets import HostSecrets

BIN = Path(sys.executable).parent / "meshnode"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command keeps its identity file under the test's directory, never in ~."""
    monkeypatch.setenv("MESHNODE_HOME", str(tmp_path / "home"))


def meshnode(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "meshnode.cli"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False, env=os.environ
    )


def _signed(verb: str = "note", zone: str = "z", **args: str) -> bytes:
    """Agent bytes signed by a throwaway host (structurally FULL, slope unknown here)."""
    rng = random.Random(5)
    spec = AgentSpec(verb=verb, zone=zone, args=args)
    return encode_agent(new_agent(spec, new_host(rng, 0), HostSecrets(), rng).agent)


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["agent", "--help"],
        ["agent", "new", "--help"],
        ["agent", "show", "--help"],
        ["agent", "validate", "--help"],
        ["agent", "verify", "--help"],
        ["agent", "demo", "--help"],
    ):
        result = meshnode(*args)
        assert result.returncode == 0, args
        assert "Usage:" in result.stdout


def test_new_show_validate(tmp_path: Path) -> None:
    out = tmp_path / "a.cbor"
    made = meshnode(
        "agent",
        "new",
        "--intent",
        "note:text=hello,to=ops",
        "--zone",
        "alpha",
        "--role",
        "scout",
        "--out",
        str(out),
    )
    assert made.returncode == 0, made.stderr
    shown = meshnode("agent", "show", str(out))
    assert shown.returncode == 0
    assert "note" in shown.stdout
    assert "initialization" in shown.stdout
    assert "trust slope" in shown.stdout
    assert "genesis DAH" in shown.stdout
    checked = meshnode("agent", "validate", "--json", str(out))
    assert checked.returncode == 0
    record = json.loads(checked.stdout)
    assert record["status"] == "FULL"
    assert record["problems"] == []


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.cbor"
    good.write_bytes(_signed())
    tree = cbor2.loads(good.read_bytes())
    del tree["intent"]
    partial = tmp_path / "partial.cbor"
    partial.write_bytes(cbor2.dumps(tree, canonical=True))
    assert meshnode("agent", "validate", str(good)).returncode == 0
    assert meshnode("agent", "validate", str(good), str(partial)).returncode == 1
    assert meshnode("agent", "validate").returncode == 2
    assert meshnode("agent", "validate", str(tmp_path / "missing.cbor")).returncode == 2
    bad_intent = meshnode("agent", "new", "--intent", "note:oops", "--zone", "z")
    assert bad_intent.returncode == 2
    assert "Traceback" not in bad_intent.stderr


def test_demo_prints_the_verdict_table() -> None:
    result = meshnode("agent", "demo")
    assert result.returncode == 0
    for word in ("FULL", "PARTIAL", "INVALID", "deep nesting", "trailing garbage"):
        assert word in result.stdout


def _damage(rng: random.Random, good: bytes, tree: dict[str, object]) -> bytes:
    kind = rng.randrange(10)
    raw = bytearray(good)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return bytes(raw)
    if kind == 1:  # truncation
        return bytes(raw[: rng.randrange(len(raw))])
    if kind == 2:  # trailing garbage
        return bytes(raw) + rng.randbytes(rng.randint(1, 16))
    if kind == 3:  # extra key
        t = dict(tree)
        t[rng.choice(["x", "owner", "zz", "intent2"])] = rng.randint(0, 9)
        return cbor2.dumps(t, canonical=True)
    if kind == 4:  # duplicate key: splice the intent entry in twice
        t = cbor2.dumps({"intent": tree["intent"]}, canonical=True)[1:]
        return bytes([0xA0 + len(tree) + 1]) + t + good[1:]
    if kind == 5:  # wrong types
        t = dict(tree)
        t[rng.choice(sorted(t))] = rng.choice([1, "x", b"y", [1], True])
        return cbor2.dumps(t, canonical=True)
    if kind == 6:  # indefinite lengths
        return b"\xbf" + good[1:] + b"\xff"
    if kind == 7:  # deep nesting
        depth = rng.randint(17, 5000)
        return bytes([0x81] * depth) + b"\x00"
    if kind == 8:  # huge length prefixes
        return good[: rng.randrange(1, len(good))] + b"\x5b" + b"\xff" * 8
    return rng.randbytes(rng.randint(0, 64))  # noise


def test_thousands_of_damaged_files_get_a_typed_status(tmp_path: Path) -> None:
    rng = random.Random(20261123)
    good = _signed(zone="alpha", t="x")
    tree = cbor2.loads(good)
    files = []
    for i in range(2000):
        path = tmp_path / f"d{i:04d}.cbor"
        path.write_bytes(_damage(rng, good, tree))
        files.append(str(path))
    result = meshnode("agent", "validate", "--json", *files, timeout=300)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    seen = set()
    for line in lines:
        record = json.loads(line)
        assert record["status"] in {"FULL", "PARTIAL", "INVALID"}
        seen.add(record["status"])
        if record["status"] == "INVALID":
            assert record["problems"]
            for problem in record["problems"]:
                assert problem["path"]
                assert problem["message"]
    assert "INVALID" in seen


def test_new_creates_a_private_identity_and_verify_accepts_its_slopes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.cbor", tmp_path / "b.cbor"
    for out in (a, b):
        made = meshnode("agent", "new", "--intent", "note", "--zone", "alpha", "--out", str(out))
        assert made.returncode == 0, made.stderr
    identity = tmp_path / "home" / "identity.cbor"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    checked = meshnode("agent", "verify", "--json", str(a), str(b))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    records = [json.loads(line) for line in checked.stdout.splitlines()]
    assert [r["status"] for r in records] == ["OK", "OK"]
    assert records[0]["genesis_dah"] != records[1]["genesis_dah"]
    assert records[0]["depth"] == 0


def test_verify_names_reason_and_step_and_exits_1(tmp_path: Path) -> None:
    out = tmp_path / "a.cbor"
    assert (
        meshnode(
            "agent", "new", "--intent", "note", "--zone", "alpha", "--out", str(out)
        ).returncode
        == 0
    )
    tree = cbor2.loads(out.read_bytes())
    tree["lineage"]["entries"][0]["salt"] = b"\x00" * 16
    tampered = tmp_path / "t.cbor"
    tampered.write_bytes(cbor2.dumps(tree, canonical=True))
    foreign = tmp_path / "f.cbor"
    foreign.write_bytes(_signed())
    garbage = tmp_path / "g.cbor"
    garbage.write_bytes(b"\xff")
    result = meshnode(
        "agent", "verify", "--json", str(out), str(tampered), str(foreign), str(garbage)
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["status"], r["reason"], r["step"]) for r in records] == [
        ("OK", "ok", None),
        ("REFUSED", "bad-step", 0),
        ("REFUSED", "unknown-host", 0),
        ("INVALID", "malformed", None),
    ]
    plain = meshnode("agent", "verify", str(tampered))
    assert plain.returncode == 1
    assert "REFUSED bad-step at lineage.entries[0]" in plain.stdout


def test_the_ddh_advances_with_the_epoch_and_slopes_still_verify(tmp_path: Path) -> None:
    files = [tmp_path / f"e{epoch}.cbor" for epoch in (5, 5, 9)]
    for path, epoch in zip(files, (5, 5, 9), strict=True):
        made = meshnode(
            "agent",
            "new",
            "--intent",
            "note",
            "--zone",
            "z",
            "--epoch",
            str(epoch),
            "--out",
            str(path),
        )
        assert made.returncode == 0, made.stderr
    ddhs = [cbor2.loads(p.read_bytes())["lineage"]["entries"][0]["ddh"] for p in files]
    assert ddhs[0] == ddhs[1]
    assert ddhs[1] != ddhs[2]
    checked = meshnode("agent", "verify", "--epoch", "9", *map(str, files))
    assert checked.returncode == 0, checked.stdout


def test_identity_readable_by_others_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "a.cbor"
    assert (
        meshnode(
            "agent", "new", "--intent", "note", "--zone", "alpha", "--out", str(out)
        ).returncode
        == 0
    )
    identity = tmp_path / "home" / "identity.cbor"
    identity.chmod(0o644)
    again = meshnode("agent", "new", "--intent", "note", "--zone", "alpha", "--out", str(out))
    assert again.returncode == 1
    assert "chmod 600" in again.stderr
    assert "Traceback" not in again.stderr
