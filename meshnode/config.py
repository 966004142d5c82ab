"""Node configuration: strict TOML in, one frozen :class:`NodeConfig` out.

Strict because a typo in an operator's file must not silently fall back to a default: every
unknown key is a :class:`~protocols.errors.ConfigError` naming the key and the file, and every
bad type or value names the key. Every key is documented in ``docs/config.md``.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import multiaddr

from protocols.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
ZONE_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TOPIC_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
MAX_FRAME_CAP = 4 * 1024 * 1024


@dataclass(frozen=True)
class NodeSection:
    """``[node]``: where the node keeps its state."""

    data_dir: Path
    key_file: Path


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: libp2p listen/bootstrap addresses and link behaviour."""

    listen: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    mdns: bool = False
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 30.0
    dial_timeout_s: float = 10.0
    send_queue_frames: int = 256
    max_frame_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class ApiSection:
    """``[api]``: the local control API (loopback only)."""

    host: str = "127.0.0.1"
    port: int = 7700
    max_request_bytes: int = 64 * 1024
    request_timeout_s: float = 5.0


@dataclass(frozen=True)
class PubsubSection:
    """``[pubsub]``: plain (non-zone) topics this node subscribes to."""

    topics: tuple[str, ...] = ()
    ring_size: int = 1000


@dataclass(frozen=True)
class ZoneSection:
    """One ``[[zone]]``: a trust zone joined, anchored by its authority key(s)."""

    id: str
    authority_keys: tuple[bytes, ...]
    authority_threshold: int = 1
    """m of the m-of-k zone authority: signatures a signed object needs (default: all keys)."""


@dataclass(frozen=True)
class LogSection:
    """``[log]``: level and line format of the node's structured log."""

    level: str = "INFO"
    format: str = "text"


@dataclass(frozen=True)
class NodeConfig:
    """The whole resolved configuration of one node."""

    node: NodeSection
    network: NetworkSection = field(default_factory=NetworkSection)
    api: ApiSection = field(default_factory=ApiSection)
    pubsub: PubsubSection = field(default_factory=PubsubSection)
    zones: tuple[ZoneSection, ...] = ()
    log: LogSection = field(default_factory=LogSection)
    source: Path | None = None

    @staticmethod
    def for_data_dir(data_dir: Path) -> NodeConfig:
        """Defaults with state under ``data_dir`` (used by tests and embedding code)."""
        return NodeConfig(node=NodeSection(data_dir=data_dir, key_file=data_dir / "node.key"))

    @property
    def store_path(self) -> Path:
        return self.node.data_dir / "store.sqlite3"

    @property
    def info_path(self) -> Path:
        """JSON file the running node writes with its peer id, addresses and API port."""
        return self.node.data_dir / "node.json"


class _Table:
    """A TOML table being consumed key by key; leftovers are unknown keys."""

    def __init__(self, raw: Any, path: str, file: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(f"must be a table (in {file})", path=path)
        self._raw: dict[str, Any] = dict(raw)
        self.path = path
        self.file = file

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{message} (in {self.file})", path=self._key(key))

    def has(self, key: str) -> bool:
        return key in self._raw

    def take(self, key: str) -> Any:
        return self._raw.pop(key)

    def string(self, key: str, default: str) -> str:
        if key not in self._raw:
            return default
        value = self._raw.pop(key)
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return value

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        if key not in self._raw:
            return default
        value = self._raw.pop(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise self.error(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def number(self, key: str, default: float, lo: float, hi: float) -> float:
        if key not in self._raw:
            return default
        value = self._raw.pop(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value) or not lo <= value <= hi:
            raise self.error(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self._raw:
            return default
        value = self._raw.pop(key)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {type(value).__name__}")
        return value

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        if key not in self._raw:
            return default
        value = self._raw.pop(key)
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {type(value).__name__}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{i}]", f"expected a string, got {type(item).__name__}")
        return tuple(value)

    def finish(self) -> None:
        for key in sorted(self._raw):
            raise self.error(key, "unknown key")


def _check_multiaddr(table: _Table, key: str, index: int, text: str, *, need_p2p: bool) -> None:
    where = f"{key}[{index}]"
    try:
        addr = multiaddr.Multiaddr(text)
        names = [p.name for p in addr.protocols()]
    except Exception as exc:  # multiaddr raises assorted types on bad text
        raise table.error(where, f"not a multiaddr: {text!r} ({exc})") from exc
    if "tcp" not in names:
        raise table.error(where, f"must be a TCP multiaddr, got {text!r}")
    if need_p2p and "p2p" not in names:
        raise table.error(where, f"must end in /p2p/<peer id>, got {text!r}")
    if not need_p2p and "p2p" in names:
        raise table.error(where, f"listen address must not contain /p2p/, got {text!r}")


def _node_section(raw: Any, file: str, base: Path) -> NodeSection:
    t = _Table(raw, "node", file)
    if not t.has("data_dir"):
        raise t.error("data_dir", "required key is missing")
    data_dir_text = t.string("data_dir", "")
    if not data_dir_text:
        raise t.error("data_dir", "must not be empty")
    data_dir = (base / data_dir_text).resolve()
    key_text = t.string("key_file", "node.key")
    if not key_text:
        raise t.error("key_file", "must not be empty")
    t.finish()
    return NodeSection(data_dir=data_dir, key_file=(data_dir / key_text).resolve())


def _network_section(raw: Any, file: str) -> NetworkSection:
    d = NetworkSection()
    t = _Table(raw, "network", file)
    listen = t.strings("listen", d.listen)
    if not listen:
        raise t.error("listen", "needs at least one address")
    for i, text in enumerate(listen):
        _check_multiaddr(t, "listen", i, text, need_p2p=False)
    bootstrap = t.strings("bootstrap", d.bootstrap)
    for i, text in enumerate(bootstrap):
        _check_multiaddr(t, "bootstrap", i, text, need_p2p=True)
    section = NetworkSection(
        listen=listen,
        bootstrap=bootstrap,
        mdns=t.boolean("mdns", d.mdns),
        reconnect_initial_s=t.number("reconnect_initial_s", d.reconnect_initial_s, 0.01, 3600),
        reconnect_max_s=t.number("reconnect_max_s", d.reconnect_max_s, 0.01, 86400),
        dial_timeout_s=t.number("dial_timeout_s", d.dial_timeout_s, 0.1, 600),
        send_queue_frames=t.integer("send_queue_frames", d.send_queue_frames, 1, 1_000_000),
        max_frame_bytes=t.integer("max_frame_bytes", d.max_frame_bytes, 1024, MAX_FRAME_CAP),
    )
    if section.reconnect_max_s < section.reconnect_initial_s:
        raise t.error("reconnect_max_s", "must be >= reconnect_initial_s")
    t.finish()
    return section


def _api_section(raw: Any, file: str) -> ApiSection:
    d = ApiSection()
    t = _Table(raw, "api", file)
    host = t.string("host", d.host)
    if host != "127.0.0.1":
        raise t.error("host", f"the control API listens on 127.0.0.1 only, got {host!r}")
    section = ApiSection(
        host=host,
        port=t.integer("port", d.port, 0, 65535),
        max_request_bytes=t.integer("max_request_bytes", d.max_request_bytes, 1024, 16 << 20),
        request_timeout_s=t.number("request_timeout_s", d.request_timeout_s, 0.1, 600),
    )
    t.finish()
    return section


def _pubsub_section(raw: Any, file: str) -> PubsubSection:
    d = PubsubSection()
    t = _Table(raw, "pubsub", file)
    topics = t.strings("topics", d.topics)
    for i, topic in enumerate(topics):
        if not TOPIC_RE.match(topic):
            raise t.error(f"topics[{i}]", f"not a printable ASCII topic name: {topic!r}")
        if topic.startswith("/meshnode/zone/"):
            raise t.error(f"topics[{i}]", "zone topics are joined with [[zone]], not here")
    if len(set(topics)) != len(topics):
        raise t.error("topics", "lists a topic twice")
    section = PubsubSection(
        topics=topics, ring_size=t.integer("ring_size", d.ring_size, 1, 1_000_000)
    )
    t.finish()
    return section


def _zone_sections(raw: Any, file: str) -> tuple[ZoneSection, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"must be an array of tables [[zone]] (in {file})", path="zone")
    zones: list[ZoneSection] = []
    for i, item in enumerate(raw):
        t = _Table(item, f"zone[{i}]", file)
        if not t.has("id"):
            raise t.error("id", "required key is missing")
        zone_id = t.string("id", "")
        if not ZONE_ID_RE.match(zone_id):
            raise t.error("id", f"must match {ZONE_ID_RE.pattern}, got {zone_id!r}")
        if not t.has("authority_keys"):
            raise t.error("authority_keys", "required key is missing")
        texts = t.strings("authority_keys", ())
        if not texts:
            raise t.error("authority_keys", "needs at least one key")
        keys: list[bytes] = []
        for j, text in enumerate(texts):
            try:
                key = bytes.fromhex(text)
            except ValueError as exc:
                raise t.error(f"authority_keys[{j}]", "not hex") from exc
            if len(key) != 32:
                raise t.error(f"authority_keys[{j}]", f"an Ed25519 key is 32 bytes, got {len(key)}")
            keys.append(key)
        threshold = t.integer("authority_threshold", len(keys), 1, len(keys))
        t.finish()
        zones.append(
            ZoneSection(id=zone_id, authority_keys=tuple(keys), authority_threshold=threshold)
        )
    ids = [z.id for z in zones]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"a zone id appears twice (in {file})", path="zone")
    return tuple(zones)


def _log_section(raw: Any, file: str) -> LogSection:
    d = LogSection()
    t = _Table(raw, "log", file)
    level = t.string("level", d.level).upper()
    if level not in LOG_LEVELS:
        raise t.error("level", f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    fmt = t.string("format", d.format)
    if fmt not in LOG_FORMATS:
        raise t.error("format", f"must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    t.finish()
    return LogSection(level=level, format=fmt)


def parse_config(doc: Mapping[str, Any], *, file: str, base_dir: Path) -> NodeConfig:
    """Validate an already-parsed TOML document; relative paths resolve against base_dir."""
    top = _Table(dict(doc), "", file)
    if not top.has("node"):
        raise top.error("node", "required table [node] is missing")
    node = _node_section(top.take("node"), file, base_dir)
    network = _network_section(top.take("network"), file) if top.has("network") else None
    api = _api_section(top.take("api"), file) if top.has("api") else None
    pubsub = _pubsub_section(top.take("pubsub"), file) if top.has("pubsub") else None
    zones = _zone_sections(top.take("zone"), file) if top.has("zone") else ()
    log = _log_section(top.take("log"), file) if top.has("log") else None
    top.finish()
    return NodeConfig(
        node=node,
        network=network or NetworkSection(),
        api=api or ApiSection(),
        pubsub=pubsub or PubsubSection(),
        zones=zones,
        log=log or LogSection(),
        source=Path(file) if file else None,
    )


def load_config(path: Path) -> NodeConfig:
    """Read and validate ``path``; every failure is a ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8", offset=exc.start) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return parse_config(doc, file=str(path), base_dir=path.resolve().parent)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot render {type(value).__name__}")


def render(config: NodeConfig) -> str:
    """The resolved configuration as TOML (``meshnode config show``); loads back unchanged."""
    lines: list[str] = []
    if config.source is not None:
        lines.append(f"# resolved from {config.source}")
    sections: list[tuple[str, object]] = [
        ("node", config.node),
        ("network", config.network),
        ("api", config.api),
        ("pubsub", config.pubsub),
        ("log", config.log),
    ]
    for name, section in sections:
        lines.append(f"[{name}]")
        for key, value in vars(section).items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    for zone in config.zones:
        lines.append("[[zone]]")
        lines.append(f"id = {_toml_value(zone.id)}")
        keys = tuple(k.hex() for k in zone.authority_keys)
        lines.append(f"authority_keys = {_toml_value(keys)}")
        lines.append(f"authority_threshold = {zone.authority_threshold}")
        lines.append("")
    return "\n".join(lines)
