"""Alias commands: ``meshnode alias register UID ALIAS`` and ``meshnode resolve ALIAS``.

Both talk to a running node's control API (``--api HOST:PORT``), which drives the
``/meshnode/alias/1.1.0`` service. ``resolve`` exits 0 when the alias is found, 1 when it is
not found or refused, 2 on usage errors, so scripts can branch on it.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshnode.cli_node import _api_option, _call, _json_option

console = Console()


def _hex32(value: str, what: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise click.BadParameter(f"{what} must be hex") from None
    if len(raw) != 32:
        raise click.BadParameter(f"{what} must be 32 bytes (64 hex digits)")
    return raw.hex()


@click.group("alias")
def alias_group() -> None:
    """Register aliases in the slope-band index."""


@alias_group.command("register")
@click.argument("uid")
@click.argument("alias")
@_api_option
@click.option("--scope", "scopes", multiple=True, help="Zone allowed to resolve it (repeat).")
@click.option(
    "--head", default=None, help="Expected head DAH (hex): refused if the node's copy differs."
)
@click.option("--depth", default=None, type=click.IntRange(min=0), help="Expected head depth.")
@_json_option
def alias_register(
    uid: str,
    alias: str,
    api: str,
    scopes: tuple[str, ...],
    head: str | None,
    depth: int | None,
    as_json: bool,
) -> None:
    """Bind ALIAS to agent UID (its genesis DAH, hex) at the anchors of their bands.

    The node must hold the agent and be its current host: it signs the registration with
    its host key and sends the agent's lineage as proof; anchors refuse anything else.
    """
    body: dict[str, Any] = {"uid": _hex32(uid, "UID"), "alias": alias, "scope": list(scopes)}
    if head is not None:
        body["head"] = _hex32(head, "--head")
    if depth is not None:
        body["depth"] = depth
    result = _call(api, "POST", "/alias/register", json.dumps(body).encode())
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    table = Table(title=f"registered {escape(alias)} at {result['stored']} anchors")
    table.add_column("anchor")
    table.add_column("result")
    for row in result["anchors"]:
        table.add_row(row["anchor"][:16], escape(row["error"]) or "[green]stored[/green]")
    console.print(table)


@click.command("resolve")
@click.argument("alias")
@_api_option
@click.option("--zone", default=None, help="Zone to resolve as (default: the node's first).")
@_json_option
def resolve_cmd(alias: str, api: str, zone: str | None, as_json: bool) -> None:
    """Resolve ALIAS to its agent UID and lineage head through a running node."""
    params = {"alias": alias}
    if zone:
        params["zone"] = zone
    result = _call(api, "GET", "/alias/resolve?" + urllib.parse.urlencode(params))
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        colour = {"found": "green", "not-found": "yellow", "refused": "red"}
        outcome = result["outcome"]
        table = Table(title=f"resolve {escape(alias)}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        table.add_row("outcome", f"[{colour.get(outcome, 'white')}]{outcome}[/]")
        reg = result.get("registration") or {}
        for key in ("uid", "head", "depth", "scope"):
            if key in reg:
                value = reg[key]
                table.add_row(
                    key, escape(", ".join(value) if isinstance(value, list) else str(value))
                )
        table.add_row("zone", escape(result.get("zone") or "-"))
        table.add_row("hops", str(result["hops"]))
        table.add_row("messages", str(result["messages"]))
        if result.get("reason"):
            table.add_row("reason", escape(result["reason"]))
        console.print(table)
    if result["outcome"] != "found":
        raise SystemExit(1)


def register(main: click.Group) -> None:
    """Add ``alias`` and ``resolve`` to the ``meshnode`` group."""
    main.add_command(alias_group)
    main.add_command(resolve_cmd)
