"""``meshnode demo``: five real nodes on loopback, two zones, a live table of decisions.

``register(main)`` adds the command to the ``meshnode`` click group. The work is in
:mod:`meshnode.demo_mesh`; this module is the terminal side: a rich live table while it runs,
summary tables (or one JSON object) at the end, exit status 1 if a step failed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
from types import FrameType
from typing import Any

import click
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from meshnode.demo_mesh import (
    FAILED,
    NOT_AVAILABLE,
    OK,
    DemoError,
    DemoMesh,
    Poller,
    Scenario,
    workspace,
)

STATUS_STYLE = {OK: "green", FAILED: "red", NOT_AVAILABLE: "yellow", "running": "cyan"}


def nodes_table(scenario: Scenario, title: str) -> Table:
    table = Table(title=title)
    for col in ("node", "pid", "peer id", "zones", "peers", "msgs"):
        table.add_column(col)
    for col, style in (
        ("ACCEPT", "green"),
        ("REJECT", "red"),
        ("QUARANTINE", "yellow"),
        ("EXECUTE", "cyan"),
    ):
        table.add_column(col, justify="right", style=style)
    for n in scenario.nodes:
        t = n.tally
        state = "" if t.up else " [red](down)[/red]"
        counts = (
            (str(t.accept), str(t.reject), str(t.quarantine), str(t.execute))
            if t.zone_api
            else ("-", "-", "-", "-")
        )
        table.add_row(
            n.name + state,
            str(n.pid or "-"),
            n.peer_id[-6:],
            ", ".join(n.zones) or "-",
            str(t.peers),
            str(t.messages),
            *counts,
        )
    return table


def steps_table(scenario: Scenario) -> Table:
    table = Table(title="steps")
    for col in ("#", "step", "status", "s", "detail"):
        table.add_column(col)
    for i, s in enumerate(scenario.steps, 1):
        style = STATUS_STYLE.get(s.status, "")
        table.add_row(
            str(i),
            escape(s.name),
            f"[{style}]{escape(s.status)}[/{style}]",
            f"{s.seconds:.1f}",
            escape(s.detail[:160]),
        )
    return table


def agents_table(scenario: Scenario) -> Table:
    table = Table(title="agents: expected vs. what every node recorded")
    for col in ("agent", "zone", "sent to", "expected", "observed", ""):
        table.add_column(col)
    for a in scenario.agents:
        mark = {True: "[green]ok[/green]", False: "[red]NO[/red]", None: "-"}[a.ok]
        table.add_row(escape(a.label), a.zone, a.origin, escape(a.expect), escape(a.observed), mark)
    return table


class _Screen:
    """The live renderable: rebuilt from the scenario each refresh."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def __rich__(self) -> Group:
        return Group(
            nodes_table(self.scenario, "meshnode demo: 5 nodes on loopback (live)"),
            steps_table(self.scenario),
        )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the mesh's stop: every child is stopped


@click.command("demo")
@click.option("--quick", is_flag=True, help="No pauses between steps (for tests and CI).")
@click.option(
    "--json", "as_json", is_flag=True, help="No live table; print one JSON summary object."
)
@click.option("--keep", is_flag=True, help="Keep the temp dir (node data, logs, zone files).")
@click.option(
    "--pace",
    default=1.5,
    show_default=True,
    type=click.FloatRange(0, 30),
    help="Seconds to pause after each step so the table can be watched (0 with --quick).",
)
def demo_cmd(quick: bool, as_json: bool, keep: bool, pace: float) -> None:
    """Run 5 real nodes on loopback with two zones; show each node's decisions live.

    Publishes on a plain topic, makes two zones with the governance CLI, publishes honest,
    forged, partial and quarantine-worthy agents, executes the permitted ones, migrates one
    agent between zones, then stops every process it started (also on Ctrl-C).
    """
    pause = 0.0 if quick else pace
    console = Console(stderr=as_json)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        summary, failed = _run(console, pause, as_json, keep)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every node process was stopped[/yellow]")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    if failed:
        sys.exit(1)


def _run(console: Console, pause: float, as_json: bool, keep: bool) -> tuple[dict[str, Any], bool]:
    with workspace(keep) as root:
        console.print(f"demo workspace {root}" + ("" if keep else " (removed at the end)"))
        with DemoMesh(root / "nodes") as mesh:
            scenario = Scenario(mesh, root, pause=pause)
            live: contextlib.AbstractContextManager[Any] = (
                contextlib.nullcontext()
                if as_json
                else Live(_Screen(scenario), console=console, refresh_per_second=4)
            )
            with live, Poller(mesh, every=0.5) as poller:
                try:
                    if scenario.start():
                        scenario.run()
                except DemoError as exc:  # steps catch their own; this is a safety net
                    scenario.skip("demo stopped", str(exc))
                    scenario.steps[-1].status = FAILED
                poller.poll_once()
                if pause:
                    time.sleep(pause * 2)
            mesh.stop()
        if not as_json:
            console.print()
        summary = scenario.summary()
        summary["workspace"] = str(root) if keep else None
    failed = any(s.status == FAILED for s in scenario.steps)
    if not as_json:
        console.print(nodes_table(scenario, "summary: each node's own records"))
        if scenario.agents:
            console.print(agents_table(scenario))
        console.print(steps_table(scenario))
        codes = ", ".join(f"{n.name}={n.exit_code}" for n in scenario.nodes)
        console.print(f"every node process stopped (exit codes {codes})")
    return summary, failed


def register(main: click.Group) -> None:
    """Add ``demo`` to the top-level ``meshnode`` group."""
    main.add_command(demo_cmd)
