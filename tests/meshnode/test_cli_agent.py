"""`meshnode agent ...` commands, run as real processes: exit codes, JSON lines, no tracebacks."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import cbor2

from protocols.agent import AgentSpec, encode_agent, new_agent

BIN = Path(sys.executable).parent / "meshnode"


def meshnode(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "meshnode.cli"]
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_every_command_has_help() -> None:
    for args in (
        ["--help"],
        ["agent", "--help"],
        ["agent", "new", "--help"],
        ["agent", "show", "--help"],
        ["agent", "validate", "--help"],
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
    checked = meshnode("agent", "validate", "--json", str(out))
    assert checked.returncode == 0
    record = json.loads(checked.stdout)
    assert record["status"] == "FULL"
    assert record["problems"] == []


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.cbor"
    good.write_bytes(encode_agent(new_agent(AgentSpec(verb="note", zone="z"))))
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
    good = encode_agent(new_agent(AgentSpec(verb="note", zone="alpha", args={"t": "x"})))
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
