"""50 pipelines, each its own OS process, same 1,000 agents in different orders (issue 5).

Every agent whose verdict does not depend on local state gets the same wire verdict and
disposition in every process; those that do (a revocation only some processes know) get
IGNORE there, never REJECT. Each process also counts decisions in and records out.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

WORKER = Path(__file__).with_name("consistency_worker.py")
PROCESSES = 50
AGENTS = 1000
PARALLEL = 2

# Expected verdicts written by hand (wire initial + disposition prefix), per category.
EXPECTED = {
    "honest": "AST",
    "forged-slope": "RDR",
    "bad-signature": "RDR",
    "extra-key": "RDR",
    "partial": "AFA",
    "cross-zone": "RDR",
    "self-widening": "AES",
    "stale-descriptor": "IDR",
    "quarantine": "AQU",
}
CATEGORIES = (*EXPECTED, "revoked-host")


def _load_worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("consistency_worker", WORKER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _judge(args: tuple[str, int]) -> dict[str, object]:
    """Runs in a fresh child process (one per pipeline: maxtasksperchild=1)."""
    result: dict[str, object] = _load_worker().judge(Path(args[0]), args[1])
    result["pid"] = os.getpid()
    return result


def test_fifty_processes_agree_on_every_agent_that_does_not_depend_on_local_state(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus.cbor"
    made = subprocess.run(
        [sys.executable, str(WORKER), "make", str(corpus), str(AGENTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    # fork: each pipeline is its own OS process that starts with the modules already
    # imported (spawning 50 interpreters would spend most of the time importing)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(PARALLEL, maxtasksperchild=1) as pool:
        results = pool.map(_judge, [(str(corpus), i) for i in range(PROCESSES)], chunksize=1)
    assert len({r["pid"] for r in results}) == PROCESSES
    assert os.getpid() not in {r["pid"] for r in results}
    assert len(results) == PROCESSES
    assert len({r["index"] for r in results}) == PROCESSES
    for r in results:
        assert r["decisions"] == AGENTS
        assert r["records"] == AGENTS
    table = {int(str(r["index"])): str(r["verdicts"]).split(",") for r in results}
    for agent in range(AGENTS):
        category = CATEGORIES[agent % len(CATEGORIES)]
        seen = {table[p][agent] for p in table}
        if category in EXPECTED:
            assert seen == {EXPECTED[category]}, (agent, category, seen)
        else:
            assert all(v[0] != "R" for v in seen), (agent, seen)
            for p, verdicts in table.items():
                knows_revocation = p % 2 == 0
                assert verdicts[agent] == ("IDR" if knows_revocation else "AST"), (p, agent)
