"""The ``meshnode`` command: one click group, ``--help`` on every command.

User errors (bad files, bad options) print one clear line and exit non-zero; they never show
a traceback.
"""

from __future__ import annotations

import json
import os
import random
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from nacl.signing import SigningKey
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshnode import demo
from protocols import codec
from protocols.agent import validate_bytes
from protocols.agent.build import AgentSpec, encode_agent, new_agent
from protocols.agent.schema import MAX_AGENT_BYTES, Agent, Value
from protocols.codec import content_id
from protocols.errors import MeshError
from protocols.identity import ddh
from protocols.identity.host import (
    HostGrant,
    HostRecord,
    LocalHost,
    MemoryHostDirectory,
    decode_record,
    record_from_cbor,
    sign_record,
)
from protocols.identity.host_secrets import HostSecrets
from protocols.identity.slope import SlopeCheck, SlopeParams, verify_agent
from protocols.types import ValidationStatus

console = Console()

EPOCH_S = 10
"""DESIGN 5: epoch = floor(unix_time / EPOCH_S) on real nodes."""
MAX_IDENTITY_BYTES = 1 << 20


def wall_epoch() -> int:
    return int(time.time()) // EPOCH_S


# -- local identity file ---------------------------------------------------------------------


def default_identity_path() -> Path:
    """``$MESHNODE_HOME/identity.cbor``, else ``~/.meshnode/identity.cbor``."""
    home = os.environ.get("MESHNODE_HOME")
    base = Path(home) if home else Path.home() / ".meshnode"
    return base / "identity.cbor"


@dataclass(frozen=True)
class LocalIdentity:
    """The CLI's host: key and DDH, a local authority that admits it, and its secrets.

    Kept in one CBOR file with mode 0600. The local authority stands in for a zone authority
    so ``agent verify`` can check slopes made here; a node admitted to a real zone uses the
    zone authority's record instead.
    """

    host: LocalHost
    authority_seed: bytes
    record: HostRecord
    secrets: HostSecrets

    def directory(self) -> MemoryHostDirectory:
        hosts = MemoryHostDirectory([self.record.authority])
        hosts.admit(self.record)
        return hosts

    def to_cbor(self) -> dict[str, Any]:
        return {
            "v": 1,
            "host": self.host.to_cbor(),
            "record": self.record.to_cbor(),
            "secrets": self.secrets.to_cbor(),
            "authority": self.authority_seed,
        }


def _entropy() -> bytes:
    """OS entropy plus timing jitter (DESIGN 6 DDH sources on a real node)."""
    jitter = b"".join(time.perf_counter_ns().to_bytes(8, "big") for _ in range(8))
    return os.urandom(32) + jitter


def _create_identity(epoch: int) -> LocalIdentity:
    authority = SigningKey(os.urandom(32))
    host = LocalHost(os.urandom(32), ddh.genesis(_entropy(), epoch))
    record = sign_record(host.key, host.ddh.genesis, HostGrant(zones=("local",)), authority)
    return LocalIdentity(host.with_record(record.name), bytes(authority), record, HostSecrets())


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def load_identity(path: Path, *, create: bool, epoch: int) -> LocalIdentity | None:
    """Read the identity file (refusing one others can read); create it when asked."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            return None
        made = _create_identity(epoch)
        _write_private(path, codec.encode(made.to_cbor()))
        console.print(f"created local identity {path}", style="dim")
        return made
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise click.ClickException(
            f"identity file {path} has mode {stat.S_IMODE(st.st_mode):04o}; "
            "it must not be readable by others (chmod 600)"
        )
    try:
        tree = codec.decode(path.read_bytes(), max_bytes=MAX_IDENTITY_BYTES)
        if not isinstance(tree, dict) or tree.get("v") != 1:
            raise click.ClickException(f"identity file {path} is not a version 1 identity")
        return LocalIdentity(
            host=LocalHost.from_cbor(tree["host"]),
            authority_seed=tree["authority"],
            record=record_from_cbor(tree["record"]),
            secrets=HostSecrets.from_cbor(tree["secrets"]),
        )
    except (MeshError, KeyError, TypeError) as exc:
        raise click.ClickException(f"identity file {path} is damaged: {exc}") from None


def save_identity(path: Path, identity: LocalIdentity) -> None:
    _write_private(path, codec.encode(identity.to_cbor()))


IDENTITY_OPTION = click.option(
    "--identity",
    "identity_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Local identity file (default: $MESHNODE_HOME/identity.cbor or "
    "~/.meshnode/identity.cbor; created on first use by 'agent new').",
)


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
    default=None,
    type=click.IntRange(min=0),
    help="Epoch of the genesis entry (default: now, floor(unix time / 10 s)).",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the agent (default: agent-<id>.cbor here).",
)
@IDENTITY_OPTION
def agent_new(
    intent: str,
    zone: str,
    role: str,
    epoch: int | None,
    out: Path | None,
    identity_path: Path | None,
) -> None:
    """Write a new FULL agent whose genesis DAH is signed by the local host."""
    verb, args = _parse_intent(intent)
    epoch = wall_epoch() if epoch is None else epoch
    ident_path = identity_path or default_identity_path()
    identity = load_identity(ident_path, create=True, epoch=epoch)
    assert identity is not None
    if epoch > identity.host.ddh.epoch:  # the DDH advances once per epoch it is used in
        host = identity.host.with_ddh(ddh.advance(identity.host.ddh, _entropy(), epoch))
        identity = LocalIdentity(host, identity.authority_seed, identity.record, identity.secrets)
    spec = AgentSpec(verb=verb, zone=zone, role=role, args=args, epoch=epoch)
    try:
        step = new_agent(spec, identity.host, identity.secrets, random.SystemRandom())
    except MeshError as exc:
        raise click.UsageError(f"these options do not make a valid agent: {exc}") from None
    made = step.agent
    data = encode_agent(made)
    check = validate_bytes(data)
    if check.status is not ValidationStatus.FULL:
        problems = "; ".join(p.describe() for p in check.problems)
        raise click.UsageError(f"these options do not make a valid agent: {problems}")
    cid = content_id(data).hex()
    path = out or Path(f"agent-{cid[:12]}.cbor")
    path.write_bytes(data)
    save_identity(
        ident_path,
        LocalIdentity(identity.host, identity.authority_seed, identity.record, step.secrets),
    )
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
        line = made.lineage
        pruned = f", {line.entries[0].totals.depth} earlier pruned" if line.pruned else ""
        lin = Table(
            title=f"trust slope: genesis DAH {line.genesis_dah.hex()[:16]} "
            f"(epoch {line.genesis_epoch}){pruned}",
            box=None,
        )
        for col in ("depth", "type", "epoch", "zone", "DAH", "signer", "next"):
            lin.add_column(col, no_wrap=True)
        for entry in line.entries:
            lin.add_row(
                str(entry.totals.depth),
                entry.type.value,
                str(entry.epoch),
                entry.zone,
                entry.dah.hex()[:12],
                entry.host.hex()[:8],
                "same" if entry.next_signer == entry.host else entry.next_signer.hex()[:8],
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


def _slope_record(
    path: Path, data: bytes, hosts: MemoryHostDirectory, epoch: int
) -> dict[str, Any]:
    check = validate_bytes(data)
    record: dict[str, Any] = {"file": str(path), "structure": check.status.value}
    if check.agent is None:
        problems = [{"path": p.path, "code": p.code, "message": p.message} for p in check.problems]
        record.update(status="INVALID", reason="malformed", step=None, problems=problems)
        return record
    result: SlopeCheck = verify_agent(
        check.agent, hosts, None, epoch, params=SlopeParams(window=None)
    )
    assert check.agent.lineage is not None
    record.update(
        status="OK" if result.ok else "REFUSED",
        reason=result.reason.value,
        step=None if result.step < 0 else result.step,
        message=result.message,
        genesis_dah=check.agent.lineage.genesis_dah.hex(),
        head_dah=result.head_dah.hex() if result.ok else None,
        depth=result.depth if result.ok else None,
    )
    return record


@agent.command("verify")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option(
    "--host-record",
    "record_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also admit the host in this signed host record file (trusting its authority).",
)
@click.option(
    "--epoch",
    default=None,
    type=click.IntRange(min=0),
    help="Local epoch to check against (default: now).",
)
@IDENTITY_OPTION
def agent_verify(
    files: tuple[Path, ...],
    as_json: bool,
    record_files: tuple[Path, ...],
    epoch: int | None,
    identity_path: Path | None,
) -> None:
    """Verify agents' trust slopes: exit 0 if all verify, 1 if any is refused or INVALID.

    Every DAH step, reveal, running total and host signature is checked from genesis (or
    from the pruned checkpoint entry), and the head's state digest is recomputed. Hosts
    are admitted by the local identity's authority and any --host-record given.
    """
    epoch = wall_epoch() if epoch is None else epoch
    identity = load_identity(identity_path or default_identity_path(), create=False, epoch=epoch)
    records = [identity.record] if identity else []
    for rf in record_files:
        try:
            records.append(decode_record(_read_capped(rf)))
        except MeshError as exc:
            raise click.BadParameter(f"{rf}: {exc}", param_hint="--host-record") from None
    hosts = MemoryHostDirectory({r.authority for r in records})
    for r in records:
        try:
            hosts.admit(r)
        except MeshError as exc:
            raise click.BadParameter(f"host record: {exc}", param_hint="--host-record") from None
    worst = 0
    for path in files:
        record = _slope_record(path, _read_capped(path), hosts, epoch)
        if record["status"] != "OK":
            worst = 1
        if as_json:
            click.echo(json.dumps(record, sort_keys=True))
        elif record["status"] == "OK":
            click.echo(f"{path}: OK (depth {record['depth']}, head DAH {record['head_dah'][:16]})")
        elif record["status"] == "INVALID":
            detail = "; ".join(f"{p['path']}: {p['message']}" for p in record["problems"])
            click.echo(f"{path}: INVALID ({detail})")
        else:
            step = "" if record["step"] is None else f" at lineage.entries[{record['step']}]"
            click.echo(f"{path}: REFUSED {record['reason']}{step} ({record['message']})")
    sys.exit(worst)


@agent.command("demo")
def agent_demo() -> None:
    """Build agents, damage some, check structure and slope, and print the verdict table."""
    table = Table(title="meshnode agent demo: structure and trust slope of canonical agents")
    for col in ("case", "bytes", "status", "slope", "content id / problems"):
        table.add_column(col)
    colours = {"FULL": "green", "PARTIAL": "yellow", "INVALID": "red"}
    world = demo.demo_world()
    for case in demo.demo_cases(world):
        check = validate_bytes(case.data)
        slope = "-"
        if check.agent is not None:
            result = verify_agent(
                check.agent, world.hosts, None, demo.DEMO_EPOCH, params=SlopeParams(window=None)
            )
            slope = "[green]ok[/green]" if result.ok else f"[red]{result.reason.value}[/red]"
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
            slope,
            escape(detail),
        )
    console.print(table)


def _register_command_groups() -> None:
    """Commands of the node, governance and simulator live in their own modules."""
    from meshnode import cli_alias, cli_demo, cli_governance, cli_node, cli_sim

    cli_node.register(main)
    cli_governance.register(main)
    cli_sim.register(main)
    cli_alias.register(main)
    cli_demo.register(main)


_register_command_groups()


if __name__ == "__main__":  # pragma: no cover
    main()
