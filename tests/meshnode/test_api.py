"""Control API over real loopback TCP: routing, JSON errors, bounds on size and time."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from meshnode.api import (
    ApiError,
    ApiParams,
    ControlApi,
    Metric,
    Request,
    Response,
    json_response,
    render_metrics,
)


async def echo(request: Request) -> Response:
    return json_response(
        {"path": request.path, "q": request.param("q"), "body": request.body.decode()}
    )


async def refuse(request: Request) -> Response:
    raise ApiError(400, "nope")


async def crash(request: Request) -> Response:
    raise RuntimeError("handler bug")


ROUTES = {
    ("GET", "/echo"): echo,
    ("POST", "/echo"): echo,
    ("GET", "/refuse"): refuse,
    ("GET", "/crash"): crash,
}


@asynccontextmanager
async def serving(**kw: object) -> AsyncIterator[int]:
    params = ApiParams(port=0, **kw)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        port = await nursery.start(ControlApi(params, ROUTES).run)
        yield port
        nursery.cancel_scope.cancel()


async def exchange(port: int, raw: bytes, *, stall: bool = False) -> tuple[int, dict]:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(raw)
        data = b""
        with trio.fail_after(5):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body) if body else {}


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: localhost\r\n\r\n".encode()


@pytest.mark.trio
async def test_routes_and_json_errors() -> None:
    async with serving() as port:
        assert await exchange(port, get("/echo?q=1")) == (
            200,
            {"path": "/echo", "q": "1", "body": ""},
        )
        body = b"hello"
        post = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\n" + body
        assert (await exchange(port, post))[1]["body"] == "hello"
        assert await exchange(port, get("/missing")) == (
            404,
            {"error": "not found", "path": "/missing"},
        )
        assert (await exchange(port, b"DELETE /echo HTTP/1.1\r\nhost: x\r\n\r\n"))[0] == 405
        assert await exchange(port, get("/refuse")) == (400, {"error": "nope"})
        assert await exchange(port, get("/crash")) == (500, {"error": "internal error"})
        # and the server still serves after a handler bug
        assert (await exchange(port, get("/echo")))[0] == 200


@pytest.mark.trio
async def test_oversized_and_malformed_requests() -> None:
    async with serving(max_request_bytes=1024) as port:
        big = b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5000\r\n\r\n" + b"x" * 5000
        assert (await exchange(port, big))[0] == 413
        huge_head = b"GET /echo HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * 4000 + b"\r\n\r\n"
        assert (await exchange(port, huge_head))[0] == 413
        assert (await exchange(port, b"NOT HTTP AT ALL\r\n\r\n"))[0] == 400
        assert (await exchange(port, get("/echo")))[0] == 200


@pytest.mark.trio
async def test_stalled_client_times_out() -> None:
    async with serving(request_timeout_s=0.3) as port:
        with trio.fail_after(3):
            status, body = await exchange(port, b"GET /echo HTTP/1.1\r\nhost:")
        assert status == 408
        assert body == {"error": "request timeout"}


def test_params_refuse_non_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        ApiParams(host="0.0.0.0")


def test_prometheus_text_format() -> None:
    text = render_metrics(
        [
            Metric("x_total", "counter", "Things.", {(("kind", 'a"b'),): 3.0}),
            Metric("y", "gauge", "Level.", {(): 0.5}),
        ]
    )
    assert text == (
        "# HELP x_total Things.\n"
        "# TYPE x_total counter\n"
        'x_total{kind="a\\"b"} 3\n'
        "# HELP y Level.\n"
        "# TYPE y gauge\n"
        "y 0.5\n"
    )
