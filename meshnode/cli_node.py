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
from collections.abc import Callable
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
        raise _unreachable(api, exc) from exc
    except ValueError as exc:
        raise click.ClickException(f"the node API at {api} answered non-JSON") from exc


def _unreachable(api: str, exc: OSError) -> click.ClickException:
    reason = getattr(exc, "reason", exc)
    return click.ClickException(f"cannot reach the node API at {api}: {reason}")


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


@click.command("id")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Node configuration file.",
)
@click.option(
    "--field",
    type=click.Choice(["peer_id", "host_key", "ddh_genesis"]),
    help="Print only this value (for shell scripts).",
)
@_json_option
def id_cmd(config_path: Path, field: str | None, as_json: bool) -> None:
    """Print a node's peer id, host key, DDH genesis and listen addresses without starting
    it. Like `run`, it creates the libp2p key file and the host identity when absent."""
    import time

    from libp2p.peer.id import ID

    from meshnode.keys import load_or_create_key
    from meshnode.store import Store
    from meshnode.zones import host_identity

    config = _load(config_path)
    try:
        key = load_or_create_key(config.node.key_file)
        store = Store.open(config.store_path)
        try:
            host = host_identity(store, int(time.time() // 10))
        finally:
            store.close()
    except MeshError as exc:
        raise click.ClickException(exc.describe()) from None
    except OSError as exc:
        raise click.ClickException(f"{exc.filename or ''}: {exc.strerror}") from None
    peer = ID.from_pubkey(key.public_key).to_base58()
    ident = {
        "peer_id": peer,
        "host_key": host.key.hex(),
        "ddh_genesis": host.ddh.genesis.hex(),
        "listen": list(config.network.listen),
        "addrs": [f"{a}/p2p/{peer}" for a in config.network.listen],
        "key_file": str(config.node.key_file),
    }
    if field is not None:
        click.echo(ident[field])
    elif as_json:
        click.echo(json.dumps(ident, indent=2, sort_keys=True))
    else:
        table = Table(title="node identity", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for name in ("peer_id", "host_key", "ddh_genesis", "key_file"):
            table.add_row(name, escape(str(ident[name])))
        table.add_row("addrs", escape("\n".join(ident["addrs"]) or "-"))
        console.print(table)


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
    for key in ("peer_id", "host_key", "version", "api", "epoch", "uptime_s", "router"):
        table.add_row(key, escape(str(status.get(key, ""))))
    ddh = status.get("ddh") or {}
    if ddh:
        table.add_row("ddh", f"genesis {ddh['genesis'][:16]}  value {ddh['value'][:16]}")
    mesh = status.get("mesh") or {}
    table.add_row("mesh", escape(", ".join(f"{t}={n}" for t, n in sorted(mesh.items())) or "-"))
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
@click.option("--topic", help="Plain topic to publish --data on.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="File whose bytes are the plain-topic message (at most 1 MiB).",
)
@click.option("--zone", help="Zone to publish the agent FILE in (admitted here first).")
@click.argument(
    "file", required=False, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@_json_option
def publish_cmd(
    api: str,
    topic: str | None,
    data_path: Path | None,
    zone: str | None,
    file: Path | None,
    as_json: bool,
) -> None:
    """Publish through a running node: an agent with --zone Z FILE, or bytes with --topic T
    --data FILE. A zone agent is admitted by the node first; exit 1 if it is not ACCEPTed."""
    if zone is not None:
        if file is None or topic is not None or data_path is not None:
            raise click.UsageError("use --zone Z FILE (an agent file), without --topic/--data")
        data = _read_capped(file)
        query = urllib.parse.urlencode({"zone": zone})
        status, result = _call_status(api, "POST", f"/publish?{query}", data)
        _print_outcome(result, as_json)
        if status != 200:
            raise SystemExit(1)
        return
    if topic is None or data_path is None or file is not None:
        raise click.UsageError("use --topic T --data FILE, or --zone Z FILE")
    data = _read_capped(data_path)
    query = urllib.parse.urlencode({"topic": topic})
    result = _call(api, "POST", f"/publish?{query}", data)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        console.print(f"published {escape(result['msg_id'])} to {result['peers']} peers")


def _read_capped(path: Path) -> bytes:
    with path.open("rb") as fh:
        data = fh.read(MAX_PUBLISH_BYTES + 1)
    if len(data) > MAX_PUBLISH_BYTES:
        raise click.ClickException(f"{path} is larger than {MAX_PUBLISH_BYTES} bytes")
    return data


def _print_outcome(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    table = Table(title="admission", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in ("zone", "content_id", "wire", "disposition", "code", "reason", "peers", "error"):
        if key in result:
            table.add_row(key, escape(str(result[key])))
    console.print(table)


def _call_status(api: str, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
    """Like :func:`_call`, but a 422 answer (a refused agent) is a result, not an error."""
    return _call_answer(api, method, path, body, results=frozenset({422}))


@click.command("spawn")
@_api_option
@click.option("--zone", required=True, help="Zone the new agent starts in.")
@click.option(
    "--intent",
    required=True,
    metavar="VERB[:K=V,...]",
    help="Intent verb and optional text arguments, e.g. note:text=hello.",
)
@click.option("--role", default="worker", show_default=True, help="Semantic role.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the agent here instead of publishing it.",
)
@_json_option
def spawn_cmd(api: str, zone: str, intent: str, role: str, out: Path | None, as_json: bool) -> None:
    """Create an agent hosted by the running node (its host signs the genesis) and publish
    it, or with --out write it for `publish --zone` elsewhere."""
    verb, _, rest = intent.partition(":")
    args: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise click.BadParameter(f"argument {part!r} is not KEY=VALUE", param_hint="--intent")
        args[key] = value
    body = json.dumps({"verb": verb, "args": args, "role": role}).encode()
    query = urllib.parse.urlencode({"zone": zone, "publish": "0" if out else "1"})
    status, result = _call_status(api, "POST", f"/agents/new?{query}", body)
    if out is not None and status == 200:
        out.write_bytes(base64.b64decode(result["agent_b64"]))
        console.print(f"wrote {escape(str(out))} (agent {result['content_id'][:16]})")
        return
    _print_outcome(result, as_json)
    if status != 200:
        raise SystemExit(1)


def _get_rows(api: str, route: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """GET a list route of the control API; parameters that are None are left out."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    rows: list[dict[str, Any]] = _call(api, "GET", f"{route}?{query}")[key]
    return rows


def _show_rows(
    rows: list[dict[str, Any]],
    as_json: bool,
    title: str,
    columns: tuple[str, ...],
    cells: Callable[[dict[str, Any]], tuple[str, ...]],
) -> None:
    """Rows as JSON for scripts, or as one rich table."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)


@click.command("messages")
@_api_option
@click.option("--topic", required=True, help="Plain topic to list.")
@click.option("--after", default=0, show_default=True, help="Only messages after this seq.")
@click.option("--limit", default=100, show_default=True, help="At most this many messages.")
@_json_option
def messages_cmd(api: str, topic: str, after: int, limit: int, as_json: bool) -> None:
    """List messages a running node received on a plain topic."""
    messages = _get_rows(api, "/messages", "messages", topic=topic, after=after, limit=limit)

    def cells(m: dict[str, Any]) -> tuple[str, ...]:
        shown = m["text"] if m.get("text") is not None else base64.b64decode(m["data_b64"]).hex()
        return str(m["seq"]), m["msg_id"][-16:], escape(shown[:120])

    title = f"{len(messages)} messages on {escape(topic)}"
    _show_rows(messages, as_json, title, ("seq", "msg id", "data"), cells)


@click.command("agents")
@_api_option
@click.option("--zone", required=True, help="Zone to list.")
@click.option("--limit", default=100, show_default=True, help="At most this many agents.")
@_json_option
def agents_cmd(api: str, zone: str, limit: int, as_json: bool) -> None:
    """List agent states a running node accepted in a zone (newest first)."""
    rows = _get_rows(api, "/agents", "agents", zone=zone, limit=limit)
    _show_rows(
        rows,
        as_json,
        f"{len(rows)} agents in {escape(zone)}",
        ("content id", "slope (genesis)", "depth", "disposition", "epoch", "bytes"),
        lambda r: (
            r["content_id"][:16],
            r["genesis"][:16],
            str(r["depth"]),
            r["disposition"],
            str(r["epoch"]),
            str(r["bytes"]),
        ),
    )


@click.command("quarantine")
@_api_option
@click.option("--zone", help="Only this zone.")
@click.option("--limit", default=100, show_default=True, help="At most this many entries.")
@_json_option
def quarantine_cmd(api: str, zone: str | None, limit: int, as_json: bool) -> None:
    """List agents a running node holds in quarantine (never executed)."""
    rows = _get_rows(api, "/quarantine", "quarantine", zone=zone or None, limit=limit)
    _show_rows(
        rows,
        as_json,
        f"{len(rows)} quarantined agents",
        ("content id", "zone", "host", "expires (epoch)", "bytes"),
        lambda r: (
            r["content_id"][:16],
            escape(r["zone"]),
            r["host_key"][:16],
            str(r["expires_epoch"]),
            str(r["bytes"]),
        ),
    )


@click.command("executions")
@_api_option
@click.option("--zone", help="Only this zone.")
@click.option("--limit", default=100, show_default=True, help="At most this many records.")
@_json_option
def executions_cmd(api: str, zone: str | None, limit: int, as_json: bool) -> None:
    """List the intent handlers a running node ran as its agents' host."""
    rows = _get_rows(api, "/executions", "executions", zone=zone or None, limit=limit)
    _show_rows(
        rows,
        as_json,
        f"{len(rows)} executions",
        ("executed state", "zone", "verb", "epoch", "new state", "output"),
        lambda r: (
            r["content_id"][:16],
            escape(r["zone"]),
            escape(r["verb"]),
            str(r["epoch"]),
            r["result_id"][:16],
            escape(json.dumps(r["output"], sort_keys=True)[:80]),
        ),
    )


@click.command("zones")
@_api_option
@_json_option
def zones_cmd(api: str, as_json: bool) -> None:
    """Show the zones a running node joined: descriptors, hosts, mesh."""
    rows = _call(api, "GET", "/zones")["zones"]
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    table = Table(title=f"{len(rows)} zones")
    for col in ("zone", "descriptors", "active", "contracts", "hosts", "admitted", "mesh"):
        table.add_column(col)
    for z in rows:
        table.add_row(
            escape(z["zone"]),
            ",".join(str(v) for v in z["descriptors"]) or "-",
            str(z["active_descriptor"] if z["active_descriptor"] is not None else "-"),
            str(z["contracts"]),
            str(z["hosts"]),
            "yes" if z["host_admitted"] else "NO",
            str(z["mesh_peers"]),
        )
    console.print(table)


@click.command("publish")
@_api_option
@click.option("--zone", help="Zone id (default: the zone the file is for).")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_json_option
def zone_publish_cmd(api: str, zone: str | None, file: Path, as_json: bool) -> None:
    """Publish a zone file (descriptors, contracts, host records, revocations, overrides)
    through a running node: it verifies and keeps them, then gossips them on the zone's
    control topic."""
    from protocols.governance.bundle import MAX_BUNDLE_BYTES, ZoneBundle

    with file.open("rb") as fh:
        data = fh.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_PUBLISH_BYTES:
        raise click.ClickException(f"{file} is larger than {MAX_PUBLISH_BYTES} bytes")
    try:
        bundle = ZoneBundle.decode(data)
    except MeshError as exc:
        raise click.ClickException(f"{file} is not a zone file ({exc.describe()})") from None
    zone_id = zone or bundle.zone
    query = urllib.parse.urlencode({"zone": zone_id})
    result = _call(api, "POST", f"/zone/publish?{query}", data)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    applied = ", ".join(f"{k}={v}" for k, v in sorted(result["applied"].items())) or "nothing new"
    console.print(
        f"zone {escape(zone_id)}: applied {escape(applied)}; "
        f"published to {result.get('peers', 0)} peers"
    )


# -- agent mutate / migrate (added to the ``agent`` group) ---------------------------------


def _call_any(api: str, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
    """Like :func:`_call`, but any HTTP error with a JSON body is a result (status, body)."""
    return _call_answer(api, method, path, body, results=None)


def _call_answer(
    api: str, method: str, path: str, body: bytes | None, *, results: frozenset[int] | None
) -> tuple[int, Any]:
    """(status, JSON object) of one request, where an HTTP error answered with a JSON object
    is a result when its code is in ``results`` (any code if None); other errors are
    :func:`_call`'s one-line errors."""
    url = _api_base(api) + path
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if results is None or exc.code in results:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = None
            if isinstance(answer, dict):
                return exc.code, answer
        return 0, _call(api, method, path, body)  # re-raise as the usual one-line error
    except (urllib.error.URLError, OSError) as exc:
        raise _unreachable(api, exc) from exc


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def resolve_uid(api: str, zone: str, uid: str) -> str:
    """An agent's genesis DAH (64 hex) from itself or a unique prefix of >= 8 hex digits
    among the agents the node holds in ``zone`` (as ``meshnode agents`` shows them)."""
    if not _is_hex(uid) or len(uid) < 8 or len(uid) > 64:
        raise click.BadParameter("expected the genesis DAH (hex) or a prefix of >= 8 digits")
    if len(uid) == 64:
        return uid.lower()
    query = urllib.parse.urlencode({"zone": zone, "limit": 10_000})
    rows = _call(api, "GET", f"/agents?{query}")["agents"]
    found = sorted({r["genesis"] for r in rows if r["genesis"].startswith(uid.lower())})
    if len(found) != 1:
        what = "no agent" if not found else f"{len(found)} agents"
        raise click.ClickException(f"{what} in zone {zone!r} with a genesis starting {uid}")
    return str(found[0])


def resolve_host(api: str, zone: str, to: str) -> str:
    """A host key (64 hex) from itself, a unique prefix (>= 8 hex digits) or a peer id, by
    the host records the node holds for ``zone``."""
    if _is_hex(to) and len(to) == 64:
        return to.lower()
    query = urllib.parse.urlencode({"zone": zone})
    hosts = [h for h in _call(api, "GET", f"/zone/hosts?{query}")["hosts"] if not h["revoked"]]
    by_peer = [h["host_key"] for h in hosts if h.get("peer_id") == to]
    by_key = [h["host_key"] for h in hosts if _is_hex(to) and h["host_key"].startswith(to.lower())]
    found = sorted(set(by_peer or (by_key if len(to) >= 8 else [])))
    if len(found) != 1:
        what = "no admitted host" if not found else f"{len(found)} hosts"
        raise click.ClickException(f"{what} in zone {zone!r} matches --to {to}")
    return str(found[0])


def _parse_sets(sets: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in sets:
        path, eq, value = item.partition("=")
        if not eq or not path:
            raise click.BadParameter(f"{item!r} is not PATH=VALUE", param_hint="--set")
        out[path] = value
    if not out:
        raise click.UsageError("give at least one --set PATH=VALUE")
    return out


def _print_rows(title: str, result: dict[str, Any], keys: tuple[str, ...]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key in keys:
        if key in result:
            table.add_row(key, escape(str(result[key])))
    console.print(table)


@click.command("mutate")
@_api_option
@click.option("--zone", required=True, help="Zone the agent is in.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="PATH=VALUE",
    help="A change (repeatable): memory.KEY=V (a ledger event), context.role|nest|principal=V,"
    " intent.verb=V, intent.args.KEY=V. The agent's mutation descriptor must allow the field.",
)
@click.argument("uid")
@_json_option
def agent_mutate_cmd(api: str, zone: str, sets: tuple[str, ...], uid: str, as_json: bool) -> None:
    """Mutate agent UID (genesis DAH or a unique prefix) on the node that hosts it.

    The node signs the successor state, judges it with its own admission, and commits and
    publishes it only when admitted (EXECUTE or STORE). Exits 1 when refused: by the
    descriptor (not-mutable), by policy (e.g. policy-deny), or because the node is not the
    agent's host.
    """
    changes = _parse_sets(sets)
    genesis = resolve_uid(api, zone, uid)
    body = json.dumps({"zone": zone, "genesis": genesis, "set": changes}).encode()
    status, result = _call_any(api, "POST", "/mutate", body)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        keys: tuple[str, ...] = ("zone", "genesis", "stage", "code", "wire", "disposition")
        keys = (*keys, "reason", "content_id", "head", "depth", "published", "peers", "error")
        _print_rows("mutation", result, keys)
    if status != 200:
        raise SystemExit(1)


@click.command("migrate")
@_api_option
@click.option("--zone", required=True, help="Zone the agent is in now.")
@click.option(
    "--to",
    "to",
    required=True,
    metavar="HOST_KEY|PEER_ID",
    help="The new host: its host key (hex or a unique prefix) or its libp2p peer id.",
)
@click.option("--to-zone", help="Destination zone (default: stay in --zone).")
@click.argument("uid")
@_json_option
def agent_migrate_cmd(
    api: str, zone: str, to: str, to_zone: str | None, uid: str, as_json: bool
) -> None:
    """Hand agent UID over to another host (seal here, admission there; handoff protocol).

    Run it against the agent's current host. Exits 1 when the handoff is refused.
    """
    genesis = resolve_uid(api, zone, uid)
    host_key = resolve_host(api, zone, to)
    body = {"zone": zone, "to_zone": to_zone or zone, "genesis": genesis, "to": host_key}
    status, result = _call_any(api, "POST", "/migrate", json.dumps(body).encode())
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    elif status == 200:
        seal, admission = result.get("seal") or {}, result.get("admission") or {}
        rows = {
            "from zone": zone,
            "to zone": to_zone or zone,
            "to host": result.get("to", host_key),
            "seal": f"{seal.get('content_id', '')[:16]} {seal.get('wire', '')} "
            f"{seal.get('code', '')}",
            "admission": f"{admission.get('content_id', '')[:16]} {admission.get('wire', '')}"
            f" {admission.get('code', '')}",
            "new head": result.get("head", ""),
        }
        _print_rows("migration", rows, tuple(rows))
    else:
        raise click.ClickException(f"migration refused: {result.get('error')}")
    if status != 200:
        raise SystemExit(1)


# -- meta-policy overrides ---------------------------------------------------------------


@click.group("override")
def override_group() -> None:
    """Publish and list meta-policy overrides (made and signed by `meshnode zone override`)."""


def _override_zone(data: bytes, file: Path) -> str:
    """The zone a zone file or a signed override is for (shape only; the node verifies)."""
    from protocols.governance.bundle import ZoneBundle
    from protocols.governance.signing import TAG_OVERRIDE, decode_signed

    try:
        return ZoneBundle.decode(data).zone
    except MeshError:
        pass
    try:
        zone = decode_signed(data, TAG_OVERRIDE).body.get("zone")
    except MeshError as exc:
        raise click.ClickException(
            f"{file} is neither a zone file nor a signed override ({exc.describe()})"
        ) from None
    if not isinstance(zone, str):
        raise click.ClickException(f"{file}: the override names no zone")
    return zone


@override_group.command("publish")
@_api_option
@click.option("--zone", help="Zone id (default: the zone the file is for).")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@_json_option
def override_publish_cmd(api: str, zone: str | None, file: Path, as_json: bool) -> None:
    """Publish the overrides of FILE (a zone file, or one override written by `zone override
    --out`) through a running node: it checks them against the zone's meta-authority, keeps
    them, and gossips them on the zone's control topic."""
    data = _read_capped(file)
    zone_id = zone or _override_zone(data, file)
    query = urllib.parse.urlencode({"zone": zone_id})
    result = _call(api, "POST", f"/override?{query}", data)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    _print_overrides(f"published to {result.get('peers', 0)} peers", result["overrides"], zone_id)


@override_group.command("list")
@_api_option
@click.option("--zone", help="Only this zone.")
@_json_option
def override_list_cmd(api: str, zone: str | None, as_json: bool) -> None:
    """List the overrides a running node holds that have not expired."""
    query = f"?{urllib.parse.urlencode({'zone': zone})}" if zone else ""
    rows = _call(api, "GET", f"/overrides{query}")["overrides"]
    if as_json:
        click.echo(json.dumps(rows, indent=2, sort_keys=True))
        return
    _print_overrides(f"{len(rows)} overrides", rows, None)


def _print_overrides(title: str, rows: list[dict[str, Any]], zone: str | None) -> None:
    table = Table(title=title)
    for col in ("id", "zone", "action", "target", "epochs", "reason"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["id"][:16],
            escape(str(r.get("zone", zone))),
            escape(r["action"]),
            r["target"][:16] or "(whole zone)",
            f"{r['from_epoch']}..{r['expires_epoch']}",
            escape(r["reason"][:60]),
        )
    console.print(table)


COMMANDS: tuple[click.Command, ...] = (
    run_cmd,
    id_cmd,
    config_group,
    status_cmd,
    peers_cmd,
    publish_cmd,
    spawn_cmd,
    messages_cmd,
    agents_cmd,
    quarantine_cmd,
    executions_cmd,
    zones_cmd,
    override_group,
)


def register(main: click.Group) -> None:
    """Add the node commands to the top-level ``meshnode`` group, ``zone publish`` to the
    governance ``zone`` group (which makes the files this command publishes), and ``agent
    mutate`` / ``agent migrate`` to the ``agent`` group when it is already there."""
    from meshnode.cli_governance import zone as zone_group

    for command in COMMANDS:
        main.add_command(command)
    zone_group.add_command(zone_publish_cmd)
    agent_group = main.commands.get("agent")
    if isinstance(agent_group, click.Group):
        agent_group.add_command(agent_mutate_cmd)
        agent_group.add_command(agent_migrate_cmd)
