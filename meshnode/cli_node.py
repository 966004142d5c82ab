"""Node commands of the ``meshnode`` CLI: run, config show, status, peers, publish, messages.

``register(main)`` adds them to the top-level click group (``meshnode.cli`` calls it). Every
command that talks to a running node takes ``--api HOST:PORT`` (the node writes its actual
API address to ``<data_dir>/node.json``). User errors print one line and exit non-zero;
never a traceback.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from meshnode.config import NodeConfig, load_config, render
from protocols.errors import MeshError

console = Console()
DEFAULT_API = "127.0.0.1:7700"
API_TIMEOUT_S = 10.0
MAX_PUBLISH_BYTES = 1024 * 1024


def _load(path: Path) -> NodeConfig:
    try:
        return load_config(path)
    except MeshError as exc:
        raise click.ClickException(str(exc)) from exc


def _api_base(api: str) -> str:
    host, sep, port = api.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"expected HOST:PORT, got {api!r}", param_hint="--api")
    return f"http://{host}:{port}"


def _call(api: str, method: str, path: str, body: bytes | None = None) -> Any:
    """One request to a node's control API; returns the decoded JSON body."""
    url = _api_base(api) + path
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise click.ClickException(f"{method} {path}: HTTP {exc.code}: {message}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise click.ClickException(f"cannot reach the node API at {api}: {reason}") from exc
    except ValueError as exc:
        raise click.ClickException(f"the node API at {api} answered non-JSON") from exc


def _api_option(func: Any) -> Any:
    return click.option(
        "--api",
        default=DEFAULT_API,
        show_default=True,
        metavar="HOST:PORT",
        help="Control API of the running node (see <data_dir>/node.json).",
    )(func)


def _json_option(func: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


@click.command("run")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Node configuration (strict TOML; see docs/config.md).",
)
def run_cmd(config_path: Path) -> None:
    """Run a mesh node until SIGINT/SIGTERM."""
    from meshnode import node  # imported here: libp2p is slow to import for other commands

    config = _load(config_path)
    try:
        node.run(config)
    except (MeshError, OSError, BaseExceptionGroup) as exc:
        user = node.user_error(exc)
        if user is None:
            raise
        raise click.ClickException(str(user)) from exc


@click.group("config")
def config_group() -> None:
    """Inspect node configuration files."""


@config_group.command("show")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Node configuration file.",
)
def config_show(config_path: Path) -> None:
    """Print the configuration resolved (defaults filled in, paths absolute)."""
    click.echo(render(_load(config_path)), nl=False)


@click.command("status")
@_api_option
@_json_option
def status_cmd(api: str, as_json: bool) -> None:
    """Show a running node's identity, addresses, peers and store counts."""
    status = _call(api, "GET", "/status")
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    table = Table(title="node status", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("peer_id", "version", "api", "epoch", "uptime_s", "router"):
        table.add_row(key, escape(str(status.get(key, ""))))
    table.add_row("addrs", escape("\n".join(status.get("addrs", []))))
    table.add_row("peers", f"{status.get('connected_peers')} ({status.get('pubsub_peers')} pubsub)")
    table.add_row("topics", escape(", ".join(status.get("topics", [])) or "-"))
    table.add_row("zones", escape(", ".join(status.get("zones", [])) or "-"))
    store = status.get("store", {})
    table.add_row("store", escape(", ".join(f"{k}={v}" for k, v in sorted(store.items()))))
    console.print(table)


@click.command("peers")
@_api_option
@_json_option
def peers_cmd(api: str, as_json: bool) -> None:
    """List the peers a running node is connected to."""
    peers = _call(api, "GET", "/peers")["peers"]
    if as_json:
        click.echo(json.dumps(peers, indent=2, sort_keys=True))
        return
    table = Table(title=f"{len(peers)} connected peers")
    for col in ("peer id", "pubsub", "dir", "topics", "sent", "dropped", "addrs"):
        table.add_column(col)
    for p in peers:
        table.add_row(
            escape(p["peer_id"]),
            escape(str(p.get("protocol") or "-")),
            "out" if p.get("outbound") else "in",
            escape(", ".join(p.get("topics", []))),
            str(p.get("sent", 0)),
            str(p.get("dropped", 0)),
            escape("\n".join(p.get("addrs", []))),
        )
    console.print(table)


@click.command("publish")
@_api_option
@click.option("--topic", required=True, help="Plain topic to publish on.")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="File whose bytes are the message (at most 1 MiB).",
)
@_json_option
def publish_cmd(api: str, topic: str, data_path: Path, as_json: bool) -> None:
    """Publish a file's bytes on a plain topic through a running node."""
    data = data_path.read_bytes()[: MAX_PUBLISH_BYTES + 1]
    if len(data) > MAX_PUBLISH_BYTES:
        raise click.ClickException(f"{data_path} is larger than {MAX_PUBLISH_BYTES} bytes")
    query = urllib.parse.urlencode({"topic": topic})
    result = _call(api, "POST", f"/publish?{query}", data)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        console.print(f"published {escape(result['msg_id'])} to {result['peers']} peers")


@click.command("messages")
@_api_option
@click.option("--topic", required=True, help="Plain topic to list.")
@click.option("--after", default=0, show_default=True, help="Only messages after this seq.")
@click.option("--limit", default=100, show_default=True, help="At most this many messages.")
@_json_option
def messages_cmd(api: str, topic: str, after: int, limit: int, as_json: bool) -> None:
    """List messages a running node received on a plain topic."""
    query = urllib.parse.urlencode({"topic": topic, "after": after, "limit": limit})
    messages = _call(api, "GET", f"/messages?{query}")["messages"]
    if as_json:
        click.echo(json.dumps(messages, indent=2, sort_keys=True))
        return
    table = Table(title=f"{len(messages)} messages on {escape(topic)}")
    for col in ("seq", "msg id", "data"):
        table.add_column(col)
    for m in messages:
        shown = m["text"] if m.get("text") is not None else base64.b64decode(m["data_b64"]).hex()
        table.add_row(str(m["seq"]), m["msg_id"][-16:], escape(shown[:120]))
    console.print(table)


COMMANDS: tuple[click.Command, ...] = (
    run_cmd,
    config_group,
    status_cmd,
    peers_cmd,
    publish_cmd,
    messages_cmd,
)


def register(main: click.Group) -> None:
    """Add the node commands to the top-level ``meshnode`` group."""
    for command in COMMANDS:
        main.add_command(command)
