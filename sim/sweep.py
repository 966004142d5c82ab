"""Sweeps: one base scenario over a grid of axes x seeds, on a process pool or Ray tasks.

A sweep file is strict TOML (every key below is all there is; an unknown key, a wrong type or
an unknown axis name is a :class:`ConfigError` naming the key and the file)::

    [sweep]
    name = "topology-sweep"          # label; default: the file's stem
    scenario = "gossip-10k.toml"     # base scenario, relative to this file (required)
    seeds = [1, 2, 3]
    set = { "run.duration_s" = 20.0 }  # fixed overrides for every run
    x = "size"                       # plots: the axis on the x axis (numeric labels)
    series = "topology"              # plots: the axis whose values are the lines
    metrics = ["latency_p99_ms"]     # plots: one panel per metric

    [[axis]]                         # a key and the values it takes
    name = "size"
    key = "topology.nodes"
    values = [100, 1000]

    [[axis]]                         # or labelled bundles of overrides
    name = "topology"
    [axis.values.small-world]
    "topology.kind" = "watts_strogatz"

    [[rule]]                         # extra overrides for the cells matching every label
    when = { topology = "small-world", size = 100 }
    set = { "topology.k" = 4 }

Cells are the product of the axes (first axis outermost) x seeds. Each cell is an independent
single-process run (DESIGN §8: a run stays single-process; scale out is across runs); the driver
loads and validates every cell's scenario before anything runs, ships the resolved scenario to
the worker, and puts rows back in cell order whatever order workers finish in. Rows carry the
run's digest, so a sweep is reproducible byte for byte, on either backend. Ray is imported only
when the Ray backend is chosen.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import multiprocessing
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocols.errors import ConfigError
from sim import report
from sim.run import Simulation
from sim.scenario import Scenario, load
from sim.topology import describe

BACKENDS = ("process", "ray")
ProgressFn = Callable[[int, int], None]
"""(cells done, cells in all) -> None, called in the driver as runs finish."""

METRICS: tuple[str, ...] = (
    "nodes",
    "edges",
    "degree_mean",
    "components",
    "delivery_ratio",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "hops_mean",
    "hops_max",
    "duplicates_per_delivery",
    "bytes_sent_per_node",
    "rpcs_sent_total",
    "verdict_disagreements",
    "events",
)
"""Numeric figures of every row (deterministic: part of the results files)."""
HOST: tuple[str, ...] = ("wall_s", "run_s", "events_per_s", "peak_rss_bytes")
"""Host figures of every run (wall clock, memory): in ``timings.csv`` only."""
DEFAULT_PLOT_METRICS = ("delivery_ratio", "latency_p50_ms", "latency_p99_ms", "bytes_sent_per_node")
RESERVED = frozenset({"cell", "seed", "overrides", "digest", "labels", *METRICS, *HOST})


@dataclass(frozen=True, slots=True)
class Axis:
    """One dimension of the grid: ``values`` are ``(label, overrides)`` in file order."""

    name: str
    values: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True, slots=True)
class Rule:
    """Overrides added to every cell whose labels include all of ``when``."""

    when: tuple[tuple[str, str], ...]
    sets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """One run of the sweep: its grid labels, seed and every override, in order."""

    index: int
    labels: tuple[tuple[str, str], ...]
    seed: int
    overrides: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """What to sweep; :func:`load_sweep` reads one from a file, :meth:`from_grid` from flags."""

    scenario: str
    axes: tuple[Axis, ...]
    seeds: tuple[int, ...]
    base_overrides: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    name: str = "sweep"
    x: str = ""
    series: str = ""
    metrics: tuple[str, ...] = DEFAULT_PLOT_METRICS
    source: str = "<sweep>"

    @staticmethod
    def from_grid(
        scenario: str,
        grid: Sequence[tuple[str, Sequence[str]]],
        seeds: Sequence[int],
        base_overrides: Sequence[str] = (),
    ) -> SweepSpec:
        """The ``--grid KEY=V1,V2`` form: one axis per key, labelled by the value's text."""
        axes = tuple(Axis(k, tuple((v, (f"{k}={v}",)) for v in vs)) for k, vs in grid)
        return SweepSpec(scenario, axes, tuple(seeds), tuple(base_overrides))

    def cells(self) -> list[Cell]:
        """Every grid point x seed, first axis outermost, seeds innermost."""
        out: list[Cell] = []
        for combo in itertools.product(*(a.values for a in self.axes)):
            labels = tuple((a.name, label) for a, (label, _) in zip(self.axes, combo, strict=True))
            sets = [s for _, overrides in combo for s in overrides]
            have = set(labels)
            for rule in self.rules:
                if all(w in have for w in rule.when):
                    sets.extend(rule.sets)
            for seed in self.seeds:
                out.append(Cell(len(out), labels, seed, (*self.base_overrides, *sets)))
        return out

    def with_changes(
        self,
        *,
        seeds: Sequence[int] | None = None,
        overrides: Sequence[str] = (),
        grid: Sequence[tuple[str, Sequence[str]]] = (),
    ) -> SweepSpec:
        """The command line's additions: seeds replaced, fixed overrides and axes appended."""
        extra = SweepSpec.from_grid(self.scenario, grid, ()).axes
        _check_axis_names([*(a.name for a in self.axes), *(a.name for a in extra)], "--grid")
        return SweepSpec(
            self.scenario,
            (*self.axes, *extra),
            tuple(seeds) if seeds is not None else self.seeds,
            (*self.base_overrides, *overrides),
            self.rules,
            self.name,
            self.x,
            self.series,
            self.metrics,
            self.source,
        )


# ----------------------------------------------------------------------------- parsing


def parse_grid(items: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``key=v1,v2,v3`` items -> grid; a ConfigError names a malformed item."""
    grid: list[tuple[str, tuple[str, ...]]] = []
    for item in items:
        key, eq, values = item.partition("=")
        if not eq or not key or not values:
            raise ConfigError(f"--grid wants KEY=V1,V2,..., got {item!r}", path="--grid")
        grid.append((key.strip(), tuple(v.strip() for v in values.split(","))))
    return tuple(grid)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``1-4`` or ``1,5,9`` -> seeds."""
    try:
        if "-" in text:
            lo, hi = text.split("-", 1)
            return tuple(range(int(lo), int(hi) + 1))
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--seeds wants A-B or A,B,C, got {text!r}", path="--seeds") from None


def toml_text(value: object) -> str:
    """A TOML scalar as ``--set`` text (and as an axis label)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _set_text(value: object) -> str:
    """The value side of an override: strings quoted so they stay strings."""
    return json.dumps(value) if isinstance(value, str) else toml_text(value)


SWEEP_KEYS: Mapping[str, type] = {
    "name": str,
    "scenario": str,
    "seeds": list,
    "set": dict,
    "x": str,
    "series": str,
    "metrics": list,
}
AXIS_KEYS: Mapping[str, type] = {"name": str, "key": str, "values": object}
RULE_KEYS: Mapping[str, type] = {"when": dict, "set": dict}
SCALARS = (bool, int, float, str)


@dataclass(slots=True)
class _Reader:
    file: str
    errors: list[str] = field(default_factory=list)

    def err(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{message} (in {self.file})", path=path)

    def table(self, raw: object, keys: Mapping[str, type], path: str) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.err(path, "must be a table")
        for name in sorted(raw):
            if name not in keys:
                raise self.err(f"{path}.{name}", f"unknown key (one of: {', '.join(keys)})")
            kind = keys[name]
            if kind is not object and not isinstance(raw[name], kind):
                raise self.err(f"{path}.{name}", f"must be a {_type_name(kind)}")
        return raw

    def overrides(self, raw: dict[str, Any], path: str) -> tuple[str, ...]:
        out: list[str] = []
        for key, value in raw.items():
            if not isinstance(value, SCALARS):
                raise self.err(f"{path}.{key}", "override values are numbers, booleans or strings")
            if isinstance(value, float) and not math.isfinite(value):
                raise self.err(f"{path}.{key}", "must be finite")
            out.append(f"{key}={_set_text(value)}")
        return tuple(out)


def _type_name(kind: type) -> str:
    names: dict[type, str] = {str: "string", list: "array", dict: "table"}
    return names.get(kind, kind.__name__)


def _check_axis_names(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if not name or name in RESERVED:
            raise ConfigError(f"axis name {name!r} is empty or a results column", path=where)
        if name in seen:
            raise ConfigError(f"axis {name!r} appears twice", path=where)
        seen.add(name)


def is_sweep_file(path: str | Path) -> bool:
    """Whether ``path`` is a sweep file (it has a ``[sweep]`` table), not a scenario."""
    try:
        return "sweep" in tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and check a sweep file (cells' scenarios are checked by :func:`resolve`)."""
    p = Path(path)
    rd = _Reader(str(p))
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read sweep {p}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8", offset=exc.start) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
    for name in sorted(doc):
        if name not in ("sweep", "axis", "rule"):
            raise rd.err(name, "unknown section (one of: sweep, axis, rule)")
    if "sweep" not in doc:
        raise rd.err("sweep", "required section is missing")
    sw = rd.table(doc["sweep"], SWEEP_KEYS, "sweep")
    if "scenario" not in sw:
        raise rd.err("sweep.scenario", "required key is missing")
    seeds = sw.get("seeds", [1])
    if not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise rd.err("sweep.seeds", "must be a non-empty array of integers >= 0")
    metrics = sw.get("metrics", list(DEFAULT_PLOT_METRICS))
    for m in metrics:
        if m not in METRICS:
            raise rd.err("sweep.metrics", f"unknown metric {m!r} (one of: {', '.join(METRICS)})")
    axes = _axes(rd, doc.get("axis", []))
    names = {a.name: a for a in axes}
    rules = _rules(rd, doc.get("rule", []), names)
    for key in ("x", "series"):
        if sw.get(key, "") and sw[key] not in names:
            raise rd.err(f"sweep.{key}", f"no axis named {sw[key]!r}")
    base = Path(sw["scenario"])
    if not base.is_absolute():
        base = p.parent / base
    return SweepSpec(
        scenario=str(base),
        axes=axes,
        seeds=tuple(seeds),
        base_overrides=rd.overrides(sw.get("set", {}), "sweep.set"),
        rules=rules,
        name=sw.get("name", p.stem),
        x=sw.get("x", ""),
        series=sw.get("series", ""),
        metrics=tuple(metrics),
        source=str(p),
    )


def _axes(rd: _Reader, raw: object) -> tuple[Axis, ...]:
    if not isinstance(raw, list):
        raise rd.err("axis", "must be an array of tables ([[axis]])")
    axes: list[Axis] = []
    for i, item in enumerate(raw):
        path = f"axis[{i}]"
        t = rd.table(item, AXIS_KEYS, path)
        for key in ("name", "values"):
            if key not in t:
                raise rd.err(f"{path}.{key}", "required key is missing")
        name, values = t["name"], t["values"]
        values_path = f"{path}.values"
        out: list[tuple[str, tuple[str, ...]]] = []
        if "key" in t:
            if not isinstance(values, list) or not values:
                raise rd.err(values_path, "with `key`, must be a non-empty array of values")
            for v in values:
                sets = rd.overrides({t["key"]: v}, values_path)
                out.append((toml_text(v), sets))
        else:
            if not isinstance(values, dict) or not values:
                raise rd.err(values_path, "without `key`, must be a table of label = {overrides}")
            for label, sets_raw in values.items():
                if not isinstance(sets_raw, dict):
                    raise rd.err(f"{values_path}.{label}", "must be a table of overrides")
                out.append((label, rd.overrides(sets_raw, f"{values_path}.{label}")))
        if len({label for label, _ in out}) != len(out):
            raise rd.err(values_path, "labels must be distinct")
        try:
            _check_axis_names([*(a.name for a in axes), name], f"{path}.name")
        except ConfigError as exc:
            raise rd.err(f"{path}.name", exc.message) from None
        axes.append(Axis(name, tuple(out)))
    return tuple(axes)


def _rules(rd: _Reader, raw: object, axes: Mapping[str, Axis]) -> tuple[Rule, ...]:
    if not isinstance(raw, list):
        raise rd.err("rule", "must be an array of tables ([[rule]])")
    rules: list[Rule] = []
    for i, item in enumerate(raw):
        path = f"rule[{i}]"
        t = rd.table(item, RULE_KEYS, path)
        for key in ("when", "set"):
            if key not in t:
                raise rd.err(f"{path}.{key}", "required key is missing")
        when: list[tuple[str, str]] = []
        for axis, value in t["when"].items():
            if axis not in axes:
                raise rd.err(f"{path}.when.{axis}", "no axis of that name")
            label = toml_text(value)
            if label not in {lb for lb, _ in axes[axis].values}:
                raise rd.err(f"{path}.when.{axis}", f"axis {axis!r} has no value {label!r}")
            when.append((axis, label))
        rules.append(Rule(tuple(when), rd.overrides(t["set"], f"{path}.set")))
    return tuple(rules)


# ----------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker gets: the resolved scenario (no file access on the worker) and a seed."""

    scenario: Scenario
    seed: int


def resolve(spec: SweepSpec) -> list[tuple[Cell, Job]]:
    """Load and validate every cell's scenario in the driver: a bad key fails before any run."""
    if is_sweep_file(spec.scenario):
        raise ConfigError(f"{spec.scenario} is a sweep file, not a scenario", path="sweep.scenario")
    loaded: dict[tuple[str, ...], Scenario] = {}
    out: list[tuple[Cell, Job]] = []
    for cell in spec.cells():
        sc = loaded.get(cell.overrides)
        if sc is None:
            sc = loaded[cell.overrides] = load(spec.scenario, cell.overrides)
        out.append((cell, Job(sc, cell.seed)))
    return out


def run_job(job: Job) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run (in a worker): its figures (deterministic) and its host figures."""
    sim = Simulation(job.scenario, job.seed)
    result = sim.run()
    r = result.data["results"]
    topo = describe(sim.topology)
    row = {
        "nodes": result.data["nodes"],
        "edges": topo["edges"],
        "degree_mean": topo["degree_mean"],
        "components": topo["components"],
        "delivery_ratio": r["delivery_ratio"],
        "latency_p50_ms": r["latency_ms"]["p50"],
        "latency_p90_ms": r["latency_ms"]["p90"],
        "latency_p99_ms": r["latency_ms"]["p99"],
        "hops_mean": r["hops"]["mean"],
        "hops_max": r["hops"]["max"],
        "duplicates_per_delivery": r["duplicates_per_delivery"],
        "bytes_sent_per_node": r["bytes_sent_per_node"],
        "rpcs_sent_total": r["rpcs_sent_total"],
        "verdict_disagreements": r["verdict_disagreements"],
        "events": result.data["events_executed"],
        "digest": report.digest(result),
    }
    host = {k: result.host[k] for k in HOST}
    return row, host


@dataclass(frozen=True, slots=True)
class SweepResult:
    rows: list[dict[str, Any]]
    """One per cell, in cell order: labels, seed, overrides, figures, digest."""
    host: list[dict[str, Any]]
    """Host figures per cell (wall clock, memory): not reproducible, kept apart."""


def run_sweep(
    spec: SweepSpec,
    workers: int,
    *,
    backend: str = "process",
    ray_address: str | None = None,
    progress: ProgressFn | None = None,
) -> SweepResult:
    """Every cell, ``workers`` at a time; rows in cell order whatever the backend."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r} (one of: {', '.join(BACKENDS)})")
    resolved = resolve(spec)
    jobs = [job for _, job in resolved]
    if backend == "ray":
        outs = _run_ray(jobs, workers, ray_address, progress)
    else:
        outs = _run_processes(jobs, workers, progress)
    rows: list[dict[str, Any]] = []
    host: list[dict[str, Any]] = []
    for (cell, _), (fig, h) in zip(resolved, outs, strict=True):
        rows.append(
            {
                "cell": cell.index,
                "labels": dict(cell.labels),
                "seed": cell.seed,
                "overrides": list(cell.overrides),
                **fig,
            }
        )
        host.append({"cell": cell.index, "seed": cell.seed, **h})
    return SweepResult(rows, host)


Out = tuple[dict[str, Any], dict[str, Any]]


def _run_processes(jobs: list[Job], workers: int, progress: ProgressFn | None) -> list[Out]:
    total = len(jobs)
    if workers <= 1:
        outs: list[Out] = []
        for k, job in enumerate(jobs):
            outs.append(run_job(job))
            if progress is not None:
                progress(k + 1, total)
        return outs
    ctx = multiprocessing.get_context("spawn")
    results: list[Out | None] = [None] * total
    with ProcessPoolExecutor(max_workers=min(workers, total), mp_context=ctx) as pool:
        futures = {pool.submit(run_job, job): k for k, job in enumerate(jobs)}
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, total)
    return [r for r in results if r is not None]


def _run_ray(
    jobs: list[Job], workers: int, address: str | None, progress: ProgressFn | None
) -> list[Out]:
    """Ray tasks on a local cluster of ``workers`` CPUs (started and shut down here), or on
    an existing cluster at ``address`` (whose nodes must have this project installed)."""
    import logging

    import ray

    started = False
    if not ray.is_initialized():
        common: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        if address:
            ray.init(address=address, **common)
        else:
            ray.init(num_cpus=max(1, workers), object_store_memory=80 << 20, **common)
        started = True
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(run_job)
        refs = [task.remote(job) for job in jobs]
        pending = list(refs)
        done = 0
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done += len(ready)
            if progress is not None:
                progress(done, len(refs))
        return list(ray.get(refs))
    finally:
        if started:
            ray.shutdown()


# ----------------------------------------------------------------------------- outputs


def csv_text(rows: list[dict[str, Any]], axes: Sequence[str]) -> str:
    """One line per run: axis labels, seed, figures, digest, overrides."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*axes, "seed", *METRICS, "digest", "overrides"])
    for r in rows:
        labels = r["labels"]
        w.writerow(
            [
                *(labels[a] for a in axes),
                r["seed"],
                *(r[m] for m in METRICS),
                r["digest"],
                " ".join(r["overrides"]),
            ]
        )
    return buf.getvalue()


@dataclass(frozen=True, slots=True)
class Spread:
    mean: float
    lo: float
    hi: float


def aggregate(
    rows: list[dict[str, Any]], axes: Sequence[str], metrics: Sequence[str]
) -> list[tuple[tuple[str, ...], int, dict[str, Spread]]]:
    """Per grid point (in cell order): labels, runs, and mean/min/max over seeds per metric."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r["labels"][a] for a in axes), []).append(r)
    out: list[tuple[tuple[str, ...], int, dict[str, Spread]]] = []
    for labels, members in groups.items():
        figs: dict[str, Spread] = {}
        for m in metrics:
            xs = [float(x[m]) for x in members]
            figs[m] = Spread(sum(xs) / len(xs), min(xs), max(xs))
        out.append((labels, len(members), figs))
    return out


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def summary_markdown(spec: SweepSpec, rows: list[dict[str, Any]]) -> str:
    """``sweep.md``: per grid point, each figure as mean [min-max] over seeds."""
    axes = [a.name for a in spec.axes]
    metrics = [m for m in METRICS if m not in ("edges", "components")]
    head = [*axes, "runs", *metrics]
    lines = [
        f"# Sweep {spec.name}",
        "",
        f"Base scenario `{Path(spec.scenario).name}`, seeds {list(spec.seeds)}; "
        "each figure is the mean over seeds, [min-max] when they differ.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for labels, runs, figs in aggregate(rows, axes, metrics):
        cells = [*labels, str(runs)]
        for m in metrics:
            s = figs[m]
            txt = _fmt(s.mean)
            if s.lo != s.hi:
                txt += f" [{_fmt(s.lo)}-{_fmt(s.hi)}]"
            cells.append(txt)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write(spec: SweepSpec, result: SweepResult, out: Path, *, plots: bool = True) -> list[Path]:
    """``sweep.jsonl``, ``sweep.csv``, ``sweep.md`` (data), ``timings.csv`` (host figures) and,
    when the sweep names an ``x`` axis, ``sweep.png``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    axes = [a.name for a in spec.axes]
    files = {
        "sweep.jsonl": "".join(report.canonical(r) + "\n" for r in result.rows),
        "sweep.csv": csv_text(result.rows, axes),
        "sweep.md": summary_markdown(spec, result.rows),
    }
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", *axes, "seed", *HOST])
    for r, h in zip(result.rows, result.host, strict=True):
        w.writerow([r["cell"], *(r["labels"][a] for a in axes), r["seed"], *(h[k] for k in HOST)])
    files["timings.csv"] = buf.getvalue()
    written = []
    for name, text in files.items():
        (out / name).write_text(text)
        written.append(out / name)
    if plots and spec.x:
        written.append(plot(spec, result.rows, out / "sweep.png"))
    return written


def _number(label: str) -> float | None:
    try:
        return float(label)
    except ValueError:
        return None


def plot(spec: SweepSpec, rows: list[dict[str, Any]], path: Path) -> Path:
    """One panel per metric: the metric against the ``x`` axis, a line per ``series`` value
    (mean over seeds), the seeds' min-max as a band and each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_axis = next(a for a in spec.axes if a.name == spec.x)
    x_labels = [label for label, _ in x_axis.values]
    numeric = [_number(x) for x in x_labels]
    use_numbers = all(v is not None for v in numeric)
    pos = {
        lb: (v if use_numbers and v is not None else float(k))
        for k, (lb, v) in enumerate(zip(x_labels, numeric, strict=True))
    }
    log_x = use_numbers and min(pos.values()) > 0 and max(pos.values()) / min(pos.values()) >= 20
    series_axis = next((a for a in spec.axes if a.name == spec.series), None)
    series = [label for label, _ in series_axis.values] if series_axis else [""]
    others = [a.name for a in spec.axes if a.name not in (spec.x, spec.series)]
    n = len(spec.metrics)
    cols = 2 if n > 1 else 1
    nrows = math.ceil(n / cols)
    fig, axs = plt.subplots(nrows, cols, figsize=(6.0 * cols, 4.0 * nrows), squeeze=False)
    for k, metric in enumerate(spec.metrics):
        ax = axs[k // cols][k % cols]
        for s in series:
            by_other: dict[tuple[str, ...], dict[str, list[float]]] = {}
            for r in rows:
                lab = r["labels"]
                if series_axis is not None and lab[spec.series] != s:
                    continue
                key = tuple(lab[o] for o in others)
                by_other.setdefault(key, {}).setdefault(lab[spec.x], []).append(float(r[metric]))
            for other, per_x in by_other.items():
                xs = [x for x in x_labels if x in per_x]
                px = [pos[x] for x in xs]
                mean = [sum(per_x[x]) / len(per_x[x]) for x in xs]
                name = " ".join(p for p in (s, *other) if p) or metric
                (line,) = ax.plot(px, mean, marker="o", label=name)
                lo = [min(per_x[x]) for x in xs]
                hi = [max(per_x[x]) for x in xs]
                ax.fill_between(px, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
                for x in xs:
                    ys = per_x[x]
                    ax.scatter([pos[x]] * len(ys), ys, color=line.get_color(), s=8, alpha=0.6)
        if log_x:
            ax.set_xscale("log")
        if not use_numbers:
            ax.set_xticks([pos[x] for x in x_labels], x_labels)
        ax.set_xlabel(spec.x)
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
        if k == 0:
            ax.legend(fontsize="small")
    for k in range(n, nrows * cols):
        axs[k // cols][k % cols].set_visible(False)
    seeds = ", ".join(str(s) for s in spec.seeds)
    fig.suptitle(f"{spec.name}: mean over seeds {seeds} (band: min-max)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
