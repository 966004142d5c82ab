"""Local control API: HTTP/1.1 + JSON on 127.0.0.1, served with h11 over ``trio.serve_tcp``.

Why so small: it is an operator's and the CLI's window into one node, never exposed beyond
loopback. h11 does the parsing (no hand-written HTTP); we add the bounds: request head and
body at most ``max_request_bytes``, the whole exchange within ``request_timeout_s``, one
request per connection. Routes are a table of ``(method, path) -> handler`` that the node
fills, so later work (publish, agents, quarantine, ...) adds rows without touching this file.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11
import trio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiParams:
    """Validated bounds of the API server."""

    host: str = "127.0.0.1"
    port: int = 0
    max_request_bytes: int = 64 * 1024
    request_timeout_s: float = 5.0
    max_connections: int = 64

    def __post_init__(self) -> None:
        if self.host != "127.0.0.1":
            raise ValueError("the control API listens on 127.0.0.1 only")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be within 0..65535")
        if self.max_request_bytes < 1024 or self.request_timeout_s <= 0:
            raise ValueError("max_request_bytes >= 1024 and request_timeout_s > 0 required")
        if self.max_connections < 1:
            raise ValueError("max_connections must be >= 1")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, Sequence[str]]
    body: bytes

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


class ApiError(Exception):
    """Raised by a handler to answer with a JSON error (4xx) instead of a result."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value, sort_keys=True).encode() + b"\n")


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (empty body: ``{}``); 400 naming what is wrong."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise ApiError(400, "body must be JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def hex32_field(value: Any, what: str) -> bytes:
    """A 32-byte value given as 64 hex digits in a JSON field; 400 naming the field."""
    raw = b""
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
    if len(raw) != 32:
        raise ApiError(400, f"'{what}' must be 64 hex digits")
    return raw


def error_response(status: int, message: str, **extra: Any) -> Response:
    return json_response({"error": message, **extra}, status)


Handler = Callable[[Request], Awaitable[Response]]
Routes = Mapping[tuple[str, str], Handler]

REASONS = {
    200: b"OK",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


# -- Prometheus text format ----------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric family; ``samples`` maps a label tuple (possibly empty) to a value."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: Mapping[tuple[tuple[str, str], ...], float] = field(default_factory=dict)


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def render_metrics(metrics: Sequence[Metric]) -> str:
    """Prometheus text exposition format 0.0.4."""
    lines: list[str] = []
    for m in metrics:
        lines.append(f"# HELP {m.name} {m.help}")
        lines.append(f"# TYPE {m.name} {m.kind}")
        for labels, value in sorted(m.samples.items()):
            if labels:
                inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels)
                lines.append(f"{m.name}{{{inner}}} {_number(value)}")
            else:
                lines.append(f"{m.name} {_number(value)}")
    return "\n".join(lines) + "\n"


def metrics_response(metrics: Sequence[Metric]) -> Response:
    return Response(200, render_metrics(metrics).encode(), "text/plain; version=0.0.4")


# -- server -------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class ControlApi:
    """The HTTP server. ``port = await nursery.start(api.run)`` gives the bound port."""

    def __init__(self, params: ApiParams, routes: Routes) -> None:
        self.params = params
        self.routes = dict(routes)
        self.requests = 0
        self.errors = 0
        self._slots = trio.Semaphore(params.max_connections)

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.params.port, host=self.params.host)
        port = int(listeners[0].socket.getsockname()[1])
        log.info("control API listening", extra={"host": self.params.host, "port": port})
        task_status.started(port)
        await trio.serve_listeners(self._serve, listeners)

    async def _serve(self, stream: trio.SocketStream) -> None:
        if self._slots.value == 0:
            # Over the connection cap: refuse fast rather than queue unboundedly.
            await _close(stream)
            return
        async with self._slots:
            try:
                with trio.move_on_after(self.params.request_timeout_s) as scope:
                    await self._exchange(stream)
                if scope.cancelled_caught:
                    self.errors += 1
                    with trio.move_on_after(0.5):
                        await _send_simple(stream, error_response(408, "request timeout"))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("API client went away", extra={"error": repr(exc)})
            finally:
                await _close(stream)

    async def _exchange(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.params.max_request_bytes)
        try:
            request = await self._read_request(conn, stream)
        except (h11.RemoteProtocolError, _TooLarge) as exc:
            self.errors += 1
            status = 413 if isinstance(exc, _TooLarge) else 400
            if isinstance(exc, h11.RemoteProtocolError) and exc.error_status_hint == 431:
                status = 413
            await _send_simple(stream, error_response(status, f"bad request: {exc}"))
            return
        if request is None:
            return
        self.requests += 1
        response = await self._dispatch(request)
        await _send(conn, stream, response)

    async def _read_request(
        self, conn: h11.Connection, stream: trio.SocketStream
    ) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        limit = self.params.max_request_bytes
        received = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(16 * 1024)
                received += len(data)
                if received > limit:  # head + body, however it is chunked
                    raise _TooLarge(f"request exceeds {limit} bytes")
                conn.receive_data(data)  # b"" means EOF
                continue
            if isinstance(event, h11.Request):
                head = event
                for name, value in event.headers:
                    if name == b"content-length" and int(value) > limit:
                        raise _TooLarge(f"body of {int(value)} bytes exceeds {limit}")
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > limit:
                    raise _TooLarge(f"body exceeds {limit} bytes")
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                parts = urlsplit(head.target.decode("ascii", "replace"))
                return Request(
                    method=head.method.decode("ascii", "replace"),
                    path=parts.path,
                    query=parse_qs(parts.query),
                    body=bytes(body),
                )
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _dispatch(self, request: Request) -> Response:
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            if any(path == request.path for _, path in self.routes):
                return error_response(405, "method not allowed", path=request.path)
            return error_response(404, "not found", path=request.path)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except Exception:  # a handler bug must not take the API down; it is logged in full
            self.errors += 1
            log.exception("API handler failed", extra={"path": request.path})
            return error_response(500, "internal error")


def _headers(response: Response) -> list[tuple[str, str]]:
    return [
        ("content-type", response.content_type),
        ("content-length", str(len(response.body))),
        ("connection", "close"),
    ]


async def _send(conn: h11.Connection, stream: trio.SocketStream, response: Response) -> None:
    reason = REASONS.get(response.status, b"")
    data = conn.send(
        h11.Response(status_code=response.status, headers=_headers(response), reason=reason)
    )
    data += conn.send(h11.Data(data=response.body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    await stream.send_all(data or b"")


async def _send_simple(stream: trio.SocketStream, response: Response) -> None:
    """Answer outside h11's state machine (after a protocol error or timeout)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    conn.next_event()
    await _send(conn, stream, response)


async def _close(stream: trio.SocketStream) -> None:
    with trio.move_on_after(0.5):
        await stream.aclose()
