"""The pure core stays pure: no clock, no module-level random, no I/O in protocols/.

import-linter (``make test``) enforces which packages may be imported; this test checks the
call-level rules import-linter cannot see.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "protocols"
FILES = sorted(CORE.rglob("*.py"))
BANNED_MODULES = {"time", "datetime", "socket", "threading", "subprocess", "os", "secrets", "uuid"}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORE)) for p in FILES])
def test_core_module_reads_no_clock_and_no_global_random(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in BANNED_MODULES, f"{path}: {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            assert root not in BANNED_MODULES, f"{path}: from {node.module}"
            if root == "random":
                assert {a.name for a in node.names} <= {"Random"}, f"{path}: from random import"
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
        ):
            assert node.attr == "Random", f"{path}:{node.lineno}: random.{node.attr}"


def test_the_check_sees_the_core() -> None:
    assert len(FILES) >= 5
