"""``meshnode sim``: run simulator scenarios and show their resolved configuration.

The only module of ``meshnode`` that imports ``sim`` (the import contract allows exactly this).
User errors (bad scenario files, bad ``--set``) print one line and exit with status 2.

``sim`` (and through it networkx and matplotlib) is imported inside the commands, never at
module level: every ``meshnode`` command loads this module to register the group, and the
simulator's imports would add seconds to each of them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from protocols.errors import ConfigError

err_console = Console(stderr=True)
console = Console()


def _fail(exc: ConfigError) -> None:
    click.echo(f"error: {exc.describe()}", err=True)  # one line, never wrapped
    sys.exit(2)


@click.group("sim")
def sim_group() -> None:
    """Discrete-event simulator: the real protocol code on thousands of virtual nodes."""


@sim_group.command("run")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=None, help="Seed (default: the scenario's run.seed).")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: sim-out/<scenario name>-<seed>).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a scenario key, e.g. --set topology.nodes=200 --set link_class.default.loss=0.1",
)
@click.option("--digest", "print_digest", is_flag=True, help="Print only the run digest (sha256).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots (faster).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run_cmd(
    scenario: Path,
    seed: int | None,
    out: Path | None,
    overrides: tuple[str, ...],
    print_digest: bool,
    no_plots: bool,
    quiet: bool,
) -> None:
    """Run SCENARIO (a TOML file) and write summary.json, metrics.jsonl and report.md."""
    from sim import report
    from sim.run import Simulation
    from sim.scenario import load

    try:
        sc = load(scenario, overrides)
        sim = Simulation(sc, seed)
    except ConfigError as exc:
        _fail(exc)
        return
    show_bar = not (quiet or print_digest) and err_console.is_terminal
    if show_bar:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.1f}/{task.total:.1f} s virtual"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(sc.run.name, total=sim.end_us / 1e6)
            result = sim.run(lambda now, _end: bar.update(task, completed=now / 1e6))
    else:
        result = sim.run()
    folder = out if out is not None else Path("sim-out") / f"{sc.run.name}-{sim.seed}"
    dig = report.write(result, sc, folder, plots=not no_plots)
    if print_digest:
        click.echo(dig)
        return
    r = result.data["results"]
    if "workload" in result.data:
        _print_workload(result.data["workload"], f"{sc.run.name} (seed {sim.seed}, {sim.n} nodes)")
        console.print(f"wall (s): {result.host['wall_s']}")
        console.print(f"report: {escape(str(folder / 'report.md'))}")
        console.print(f"digest: {dig}")
        return
    table = Table(title=f"{sc.run.name} (seed {sim.seed}, {sim.n} nodes)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("delivery ratio", f"{r['delivery_ratio']:.4f}"),
        ("latency p50 / p99 (ms)", f"{r['latency_ms']['p50']} / {r['latency_ms']['p99']}"),
        ("hops mean / max", f"{r['hops']['mean']} / {r['hops']['max']}"),
        ("duplicates per delivery", str(r["duplicates_per_delivery"])),
        ("bytes sent per node", str(r["bytes_sent_per_node"])),
        ("verdict disagreements", str(r["verdict_disagreements"])),
        ("events", str(result.data["events_executed"])),
        ("wall (s)", str(result.host["wall_s"])),
        ("events/s", str(result.host["events_per_s"])),
    ]
    if result.data["watched"]:
        rows.insert(1, ("watched delivery ratio", str(result.data["watched"]["delivery_ratio"])))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    console.print(f"report: {escape(str(folder / 'report.md'))}")
    console.print(f"digest: {dig}")


def _print_workload(w: dict[str, Any], title: str) -> None:
    """The headline table: each figure for the mesh and for the central baseline."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("mesh", justify="right")
    table.add_column("central baseline", justify="right")
    for fig, ours, base in w["headline"]:
        table.add_row(escape(str(fig)), _fmt(ours), _fmt(base))
    console.print(table)


def _fmt(value: Any) -> str:
    return "-" if value is None else escape(str(value))


@sim_group.command("show-config")
@click.argument("scenario", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Override a key.")
def show_config(scenario: Path, overrides: tuple[str, ...]) -> None:
    """Print SCENARIO fully resolved (every default filled in), as JSON."""
    from sim.scenario import load

    try:
        sc = load(scenario, overrides)
    except ConfigError as exc:
        _fail(exc)
        return
    click.echo(json.dumps(sc.to_dict(), indent=2))


@sim_group.command("sweep")
@click.argument("sweep_file", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--workers", type=int, default=2, show_default=True, help="Runs at a time (CPUs for Ray)."
)
@click.option(
    "--backend",
    type=click.Choice(["process", "ray"]),
    default="process",
    show_default=True,
    help="A local process pool, or Ray tasks.",
)
@click.option(
    "--ray-address",
    default=None,
    metavar="ADDR",
    help="Use the existing Ray cluster at ADDR (e.g. auto, ray://host:10001) instead of "
    "starting a local one; its nodes need this project installed.",
)
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="KEY=V1,V2",
    help="Add an axis: a scenario key and its values, e.g. --grid topology.degree=4,8",
)
@click.option("--seeds", default=None, help="Seeds A-B or A,B,C (default: the file's, or 1).")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE", help="Fixed override.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: sim-out/<sweep name>; sim-out/sweep for a scenario FILE).",
)
@click.option("--no-plots", is_flag=True, help="Skip sweep.png.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep_cmd(
    sweep_file: Path,
    workers: int,
    backend: str,
    ray_address: str | None,
    grid: tuple[str, ...],
    seeds: str | None,
    overrides: tuple[str, ...],
    out: Path | None,
    no_plots: bool,
    quiet: bool,
) -> None:
    """Run a sweep: FILE is a sweep file (a [sweep] table with axes, seeds and rules over a base
    scenario) or a scenario with --grid axes. Writes sweep.jsonl, sweep.csv, sweep.md,
    timings.csv and sweep.png (metric against the x axis, seed spread)."""
    from sim import sweep

    try:
        if sweep.is_sweep_file(sweep_file):
            base = sweep.load_sweep(sweep_file)
        else:
            base = sweep.SweepSpec.from_grid(str(sweep_file), (), (1,))
        spec = base.with_changes(
            seeds=sweep.parse_seeds(seeds) if seeds is not None else None,
            overrides=overrides,
            grid=sweep.parse_grid(grid),
        )
        total = len(spec.cells())
        show_bar = not quiet and err_console.is_terminal
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} runs"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not show_bar,
        ) as bar:
            task = bar.add_task(f"{spec.name} ({backend})", total=total)
            result = sweep.run_sweep(
                spec,
                workers,
                backend=backend,
                ray_address=ray_address,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    except ConfigError as exc:
        _fail(exc)
        return
    folder = out if out is not None else Path("sim-out") / spec.name
    files = sweep.write(spec, result, folder, plots=not no_plots)
    axes = [a.name for a in spec.axes]
    shown = [
        "delivery_ratio",
        "latency_p50_ms",
        "latency_p99_ms",
        "hops_mean",
        "duplicates_per_delivery",
        "bytes_sent_per_node",
    ]
    table = Table(
        title=f"{spec.name}: {len(result.rows)} runs, seeds {list(spec.seeds)} "
        "(mean over seeds, ± half the min-max spread)"
    )
    for col in (*axes, "runs", "delivery", "p50 ms", "p99 ms", "hops", "dup/deliv", "KB/node"):
        table.add_column(col, justify="left" if col in axes else "right", no_wrap=True)
    for labels, runs, figs in sweep.aggregate(result.rows, axes, shown):
        cells = []
        for m in shown:
            f = figs[m]
            scale = 1000.0 if m == "bytes_sent_per_node" else 1.0
            txt = f"{f.mean / scale:.4g}"
            if f.lo != f.hi:
                txt += f" [dim]±{(f.hi - f.lo) / 2 / scale:.2g}[/dim]"
            cells.append(txt)
        table.add_row(*(escape(x) for x in labels), str(runs), *cells)
    wide = console if console.is_terminal else Console(width=max(console.width, 140))
    wide.print(table)
    walls = [h["wall_s"] for h in result.host]
    console.print(f"runs took {sum(walls):.1f} s in all (longest {max(walls):.1f} s)")
    for path in files:
        console.print(f"wrote {escape(str(path))}")


def register(main_group: click.Group) -> None:
    """Add the ``sim`` group to the ``meshnode`` command (called from meshnode.cli)."""
    main_group.add_command(sim_group)


if __name__ == "__main__":
    sim_group()
