"""The ``meshnode`` command: one click group, ``--help`` on every command.

User errors (bad files, bad options) print one clear line and exit non-zero; they never show
a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshnode import demo
from protocols.agent import AgentSpec, encode_agent, new_agent, validate_bytes
from protocols.agent.lineage import entry_hash
from protocols.agent.schema import MAX_AGENT_BYTES, Agent, Value
from protocols.codec import content_id
from protocols.types import ValidationStatus

console = Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshnode")
def main() -> None:
    """meshnode: a governed peer-to-peer mesh for agent objects."""


@main.group()
def agent() -> None:
    """Create, inspect and validate agent objects (canonical CBOR files)."""


def _parse_intent(text: str) -> tuple[str, dict[str, Value]]:
    verb, _, rest = text.partition(":")
    args: dict[str, Value] = {}
    if rest:
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise click.BadParameter(
                    f"argument {part!r} is not KEY=VALUE", param_hint="--intent"
                )
            args[key] = value
    return verb, args


@agent.command("new")
@click.option(
    "--intent",
    "intent",
    required=True,
    metavar="VERB[:K=V,...]",
    help="Intent verb and optional text arguments, e.g. note:text=hello.",
)
@click.option("--zone", required=True, help="Trust zone the agent starts in.")
@click.option("--role", default="worker", show_default=True, help="Semantic role.")
@click.option(
    "--epoch",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Epoch of the genesis lineage entry.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the agent (default: agent-<id>.cbor here).",
)
def agent_new(intent: str, zone: str, role: str, epoch: int, out: Path | None) -> None:
    """Write a new FULL agent with a genesis lineage entry."""
    verb, args = _parse_intent(intent)
    made = new_agent(AgentSpec(verb=verb, zone=zone, role=role, args=args, epoch=epoch))
    data = encode_agent(made)
    check = validate_bytes(data)
    if check.status is not ValidationStatus.FULL:
        problems = "; ".join(p.describe() for p in check.problems)
        raise click.UsageError(f"these options do not make a valid agent: {problems}")
    cid = content_id(data).hex()
    path = out or Path(f"agent-{cid[:12]}.cbor")
    path.write_bytes(data)
    console.print(f"wrote {path} ({len(data)} bytes, content id {cid[:16]}...)")


def _read_capped(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(MAX_AGENT_BYTES + 1)


@agent.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def agent_show(file: Path) -> None:
    """Print an agent's fields and lineage as tables."""
    data = _read_capped(file)
    check = validate_bytes(data)
    if check.agent is None:
        for problem in check.problems:
            console.print(f"[red]INVALID[/red] {escape(problem.describe())}")
        sys.exit(1)
    _print_agent(check.agent, content_id(data).hex(), check.status)


def _print_agent(made: Agent, cid: str, status: ValidationStatus) -> None:
    fields = Table(title=f"agent {cid[:16]}  [{status.value}]", show_lines=False)
    fields.add_column("field", style="bold")
    fields.add_column("value")
    if made.intent:
        fields.add_row("intent", f"{made.intent.verb} {json.dumps(made.intent.args, default=str)}")
    if made.context:
        c = made.context
        fields.add_row(
            "context", f"zone={c.zone} nest={c.nest} role={c.role} principal={c.principal or '-'}"
        )
    if made.memory:
        m = made.memory
        fields.add_row(
            "memory",
            f"{len(m.ledger)} ledger events, {len(m.access_log)} access "
            f"records, {len(m.handles)} handles",
        )
    if made.policy_ref:
        fields.add_row("policy_ref", ", ".join(p.contract.hex()[:16] for p in made.policy_ref))
    if made.mutation_descriptor:
        d = made.mutation_descriptor
        fields.add_row(
            "mutation_descriptor",
            f"mutable={','.join(d.mutable) or '-'} migrations<={d.limits.max_migrations}"
            f" zones<={d.limits.max_zones} "
            f"delegation<={d.limits.max_delegation_depth}",
        )
    for name in made.missing:
        fields.add_row(name, "[yellow]missing[/yellow]")
    console.print(fields)
    if made.lineage:
        lin = Table(title="lineage")
        for col in ("#", "type", "epoch", "zone", "hash", "prev"):
            lin.add_column(col)
        for i, entry in enumerate(made.lineage.entries):
            lin.add_row(
                str(i),
                entry.type.value,
                str(entry.epoch),
                entry.zone,
                entry_hash(entry).hex()[:16],
                entry.prev.hex()[:16],
            )
        console.print(lin)


@agent.command("validate")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def agent_validate(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate agent files: exit 0 if all are FULL, 1 if any is PARTIAL or INVALID."""
    worst = 0
    for path in files:
        data = _read_capped(path)
        check = validate_bytes(data)
        problems = [{"path": p.path, "code": p.code, "message": p.message} for p in check.problems]
        if check.status is not ValidationStatus.FULL:
            worst = 1
        if as_json:
            record = {
                "file": str(path),
                "status": check.status.value,
                "problems": problems,
                "content_id": content_id(data).hex() if check.agent else None,
            }
            click.echo(json.dumps(record, sort_keys=True))
        else:
            detail = "; ".join(p.describe() for p in check.problems)
            click.echo(f"{path}: {check.status.value}" + (f" ({detail})" if detail else ""))
    sys.exit(worst)


@agent.command("demo")
def agent_demo() -> None:
    """Build agents, damage some, validate all and print the verdict table."""
    table = Table(title="meshnode agent demo: structural validation of canonical agents")
    for col in ("case", "bytes", "status", "content id / problems"):
        table.add_column(col)
    colours = {"FULL": "green", "PARTIAL": "yellow", "INVALID": "red"}
    for case in demo.demo_cases():
        check = validate_bytes(case.data)
        colour = colours[check.status.value]
        detail = (
            content_id(case.data).hex()[:16]
            if check.status is ValidationStatus.FULL
            else "; ".join(p.describe() for p in check.problems)
        )
        table.add_row(
            escape(case.name),
            str(len(case.data)),
            f"[{colour}]{check.status.value}[/{colour}]",
            escape(detail),
        )
    console.print(table)


if __name__ == "__main__":  # pragma: no cover
    main()
