"""Sweep files are strict; cells are the axes' product x seeds with rules applied; the CLI
writes the results table (CSV, JSONL), the summary and the plot."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from protocols.errors import ConfigError
from sim.sweep import SweepSpec, is_sweep_file, load_sweep, resolve

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "scenarios" / "smoke-50.toml"
SWEEPS = sorted((ROOT / "scenarios").glob("*-sweep.toml"))

TINY = f"""
[sweep]
name = "tiny"
scenario = "{SMOKE.as_posix()}"
seeds = [1, 2]
x = "size"
series = "topology"
metrics = ["delivery_ratio", "latency_p99_ms"]
set = {{ "run.duration_s" = 9.0 }}

[[axis]]
name = "topology"
[axis.values.regular]
"topology.kind" = "random_regular"
"topology.degree" = 6
[axis.values.small-world]
"topology.kind" = "watts_strogatz"
"topology.k" = 6

[[axis]]
name = "size"
key = "topology.nodes"
values = [30, 40]

[[rule]]
when = {{ topology = "small-world", size = 40 }}
set = {{ "topology.rewire_p" = 0.3 }}
"""


def write(tmp_path: Path, text: str, name: str = "s-sweep.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_cells_are_the_product_of_axes_times_seeds_with_rules(tmp_path: Path) -> None:
    spec = load_sweep(write(tmp_path, TINY))
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2
    assert [c.index for c in cells] == list(range(8))
    assert [(dict(c.labels)["topology"], dict(c.labels)["size"], c.seed) for c in cells[:4]] == [
        ("regular", "30", 1),
        ("regular", "30", 2),
        ("regular", "40", 1),
        ("regular", "40", 2),
    ]
    last = cells[-1]
    assert last.overrides == (
        "run.duration_s=9.0",
        'topology.kind="watts_strogatz"',
        "topology.k=6",
        "topology.nodes=40",
        "topology.rewire_p=0.3",
    )
    assert "topology.rewire_p=0.3" not in cells[4].overrides  # small-world at 30
    scenarios = [job.scenario for _, job in resolve(spec)]
    assert scenarios[-1].topology.rewire_p == 0.3
    assert scenarios[0].topology.nodes == 30
    assert scenarios[0].run.duration_s == 9.0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[sweep]\nscenario = 'x.toml'\nspeed = 1\n", "sweep.speed"),
        ("[sweep]\nscenario = 'x.toml'\n[bogus]\n", "bogus"),
        ("[sweep]\nname = 'a'\n", "sweep.scenario"),
        ("[sweep]\nscenario = 'x.toml'\nseeds = ['a']\n", "sweep.seeds"),
        ("[sweep]\nscenario = 'x.toml'\nmetrics = ['speed']\n", "sweep.metrics"),
        ("[sweep]\nscenario = 'x.toml'\nx = 'size'\n", "sweep.x"),
        ("[sweep]\nscenario = 'x.toml'\n[[axis]]\nname = 'a'\nvalues = [1]\n", "axis[0].values"),
        (
            "[sweep]\nscenario = 'x.toml'\n[[axis]]\nname = 'a'\nkey = 'run.seed'\n"
            "values = [1]\ncolour = 2\n",
            "axis[0].colour",
        ),
        (
            "[sweep]\nscenario = 'x.toml'\n[[axis]]\nname = 'seed'\nkey = 'run.seed'\n"
            "values = [1]\n",
            "axis[0].name",
        ),
        (
            "[sweep]\nscenario = 'x.toml'\n[[axis]]\nname = 'a'\nkey = 'run.seed'\n"
            "values = [1]\n[[rule]]\nwhen = { b = 1 }\nset = {}\n",
            "rule[0].when.b",
        ),
        (
            "[sweep]\nscenario = 'x.toml'\n[[axis]]\nname = 'a'\nkey = 'run.seed'\n"
            "values = [1]\n[[rule]]\nwhen = { a = 2 }\nset = {}\n",
            "rule[0].when.a",
        ),
        (
            "[sweep]\nscenario = 'x.toml'\n[[rule]]\nwhen = {}\nset = {}\nelse = 1\n",
            "rule[0].else",
        ),
    ],
)
def test_bad_sweep_files_name_key_and_file(tmp_path: Path, text: str, where: str) -> None:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sweep(p)
    assert info.value.path == where
    assert str(p) in info.value.message


def test_unknown_scenario_key_fails_before_any_run(tmp_path: Path) -> None:
    spec = load_sweep(write(tmp_path, TINY)).with_changes(overrides=["topology.colour=3"])
    with pytest.raises(ConfigError) as info:
        resolve(spec)
    assert info.value.path == "topology.colour"


def test_shipped_sweep_files_resolve() -> None:
    assert SWEEPS
    for path in SWEEPS:
        assert is_sweep_file(path)
        spec = load_sweep(path)
        resolved = resolve(spec)
        assert len(resolved) == len(spec.cells())
    topo = load_sweep(ROOT / "scenarios" / "topology-sweep.toml")
    assert len(topo.cells()) == 4 * 3 * 3
    sizes = {job.scenario.topology.nodes for _, job in resolve(topo)}
    assert sizes == {100, 1000, 10000}


def test_grid_form_matches_the_old_command_line() -> None:
    spec = SweepSpec.from_grid(str(SMOKE), [("topology.degree", ["4", "8"])], [1, 2], ["a=1"])
    assert [(c.seed, c.overrides) for c in spec.cells()] == [
        (1, ("a=1", "topology.degree=4")),
        (2, ("a=1", "topology.degree=4")),
        (1, ("a=1", "topology.degree=8")),
        (2, ("a=1", "topology.degree=8")),
    ]


def test_cli_sweep_file_writes_table_csv_jsonl_and_plot(tmp_path: Path) -> None:
    sweep_file = write(tmp_path, TINY)
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshnode.cli_sim",
            "sweep",
            str(sweep_file),
            "--seeds",
            "1",
            "--workers",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "tiny" in r.stdout
    assert "small-world" in r.stdout
    rows = [json.loads(x) for x in (out / "sweep.jsonl").read_text().splitlines()]
    assert [(x["labels"]["topology"], x["labels"]["size"]) for x in rows] == [
        ("regular", "30"),
        ("regular", "40"),
        ("small-world", "30"),
        ("small-world", "40"),
    ]
    assert [x["nodes"] for x in rows] == [30, 40, 30, 40]
    with (out / "sweep.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [t["digest"] for t in table] == [x["digest"] for x in rows]
    assert table[0]["topology"] == "regular"
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "| topology | size | runs |" in (out / "sweep.md").read_text()
    assert (out / "timings.csv").read_text().startswith("cell,topology,size,seed,wall_s")


def test_cli_sweep_help_and_one_line_errors(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshnode.cli_sim", "sweep", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )

    h = cli("--help")
    assert h.returncode == 0
    assert "--backend" in h.stdout
    assert "--ray-address" in h.stdout
    bad = write(tmp_path, TINY.replace('name = "tiny"', 'name = "tiny"\ncolour = 1'))
    r = cli(str(bad))
    assert r.returncode == 2
    assert "sweep.colour" in r.stderr
    assert str(bad) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
