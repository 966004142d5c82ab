"""Topologies are a pure function of spec and seed, in any process, and compact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protocols.errors import ConfigError
from sim.scenario import from_dict
from sim.topology import build, describe, geometric_edges, hop_distance

KINDS = {
    "random_regular": {"degree": 6},
    "erdos_renyi": {"p": 0.05},
    "watts_strogatz": {"k": 4},
    "barabasi_albert": {"m": 2},
    "random_geometric": {"radius": 0.2},
    "clustered": {"clusters": 4, "p": 0.2},
    "line": {},
}


def spec(kind: str, nodes: int = 200, **extra: object):  # type: ignore[no-untyped-def]
    doc = {"run": {"duration_s": 1.0}, "topology": {"kind": kind, "nodes": nodes, **extra}}
    return from_dict(doc).topology


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_same_seed_same_graph_other_seed_other_graph(kind: str) -> None:
    a = build(spec(kind, **KINDS[kind]), 7)
    b = build(spec(kind, **KINDS[kind]), 7)
    assert list(a.edges()) == list(b.edges())
    assert a.n == 200
    if kind != "line":
        c = build(spec(kind, **KINDS[kind]), 8)
        assert list(a.edges()) != list(c.edges())


def test_graph_is_identical_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from sim.scenario import from_dict; from sim.topology import build; import hashlib;"
        "s = from_dict({'run': {'duration_s': 1.0}, 'topology': {'kind': 'clustered', "
        "'nodes': 300, 'clusters': 5, 'p': 0.1}}).topology;"
        "t = build(s, 3); print(hashlib.sha256(str(list(t.edges())).encode()).hexdigest())"
    )
    outs = set()
    for hashseed in ("1", "999"):
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hashseed, "PATH": ""},
            cwd=Path(__file__).resolve().parents[2],
        )
        outs.add(r.stdout.strip())
    assert len(outs) == 1


def test_random_regular_degrees_and_csr_neighbours_sorted() -> None:
    t = build(spec("random_regular", 100, degree=8), 1)
    d = describe(t)
    assert (d["degree_min"], d["degree_max"], d["edges"]) == (8, 8, 400)
    for i in range(t.n):
        nb = list(t.neighbours(i))
        assert nb == sorted(nb)
        assert all(i in t.neighbours(j) for j in nb)
    assert t.nbytes() < 100 * 8 * 4 + 101 * 4 + 1


def test_clustered_marks_clusters_and_stays_connected() -> None:
    t = build(spec("clustered", 100, clusters=4, p=0.0, inter_links=1), 1)
    assert t.cluster is not None
    assert sorted(set(t.cluster)) == [0, 1, 2, 3]
    assert describe(t)["components"] == 1


def test_geometric_edges_match_brute_force() -> None:
    import random

    rng = random.Random(5)
    xy = [rng.random() for _ in range(400)]
    got = geometric_edges(xy, 0.1)
    want = sorted(
        (a, b)
        for a in range(200)
        for b in range(a + 1, 200)
        if (xy[2 * a] - xy[2 * b]) ** 2 + (xy[2 * a + 1] - xy[2 * b + 1]) ** 2 <= 0.01
    )
    assert got == want


def test_edge_list_file(tmp_path: Path) -> None:
    p = tmp_path / "e.txt"
    p.write_text("# a triangle and a tail\n0 1\n1 2\n2 0\n2 3\n")
    t = build(spec("edge_list", 4, path=str(p)), 1)
    assert list(t.edges()) == [(0, 1), (0, 2), (1, 2), (2, 3)]
    assert list(hop_distance(t, 0)) == [0, 1, 1, 2]
    p.write_text("0 1\n1 9\n")
    with pytest.raises(ConfigError) as info:
        build(spec("edge_list", 4, path=str(p)), 1)
    assert ":2:" in info.value.message
