"""Canonical CBOR: the one byte form of every signed or hashed object.

Encoding is cbor2 with ``canonical=True``. All our map keys are text strings; for text keys
cbor2's length-first order equals RFC 8949 section 4.2.1 bytewise order, because the encoded
header grows with the length.

Decoding is strict and bounded. The fast path is cbor2's C decoder with a size cap, its own
nesting-depth cap (checked while parsing, before a container is allocated), indefinite
lengths and duplicate keys refused, and every tag refused; the result is re-encoded and must
equal the input byte for byte (which refuses non-shortest forms, unsorted keys and trailing
bytes). When the fast path refuses, :func:`diagnose` walks the bytes in pure Python to name
the byte offset and the rule broken, so a peer or an operator learns exactly what was wrong.
Only the failure path pays for that walk.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import cbor2

from protocols.errors import DecodeError

MAX_DEPTH: Final = 16
"""Default container nesting cap (top-level map counts as 1)."""

# Tags cbor2 decodes natively (checked against cbor2 6.3). Each is mapped to a rejecting
# decoder; any other tag reaches ``_reject_tag`` through ``tag_hook``.
_BUILTIN_TAGS: Final = (
    0,
    1,
    2,
    3,
    4,
    5,
    25,
    28,
    29,
    30,
    35,
    36,
    37,
    52,
    54,
    100,
    256,
    258,
    260,
    261,
    1004,
    55799,
)


class _TagRefused(ValueError):
    """Raised inside cbor2 when a tag is met; converted to DecodeError by the caller."""


def _reject_semantic(*_args: object, **_kwargs: object) -> object:
    raise _TagRefused("tag")


def _reject_tag(_decoder: object, tag: object) -> object:
    raise _TagRefused("tag")


_REJECT_TAGS: Final = dict.fromkeys(_BUILTIN_TAGS, _reject_semantic)


def encode(obj: Any) -> bytes:
    """Canonical CBOR bytes of a tree of dict/list/str/bytes/int/bool/None."""
    return cbor2.dumps(obj, canonical=True)


def encode_ordered(obj: Any) -> bytes:
    """CBOR bytes of a tree whose maps are already in canonical key order.

    Skips cbor2's key sort (about 3x faster than :func:`encode`); cbor2 always writes
    shortest-form integers and lengths, so the result is canonical when the caller's key order
    is. Only for trees built by ``to_cbor`` methods that promise that order.
    """
    return cbor2.dumps(obj)


def content_id(data: bytes) -> bytes:
    """Content id of canonical bytes: sha256, 32 bytes."""
    return hashlib.sha256(data).digest()


def decode(
    data: bytes, *, max_bytes: int, max_depth: int = MAX_DEPTH, key_order_checked: bool = False
) -> Any:
    """Decode canonical CBOR, refusing anything that is not canonical.

    With ``key_order_checked=True`` the caller promises to check the key order of every map
    itself (the agent validator does, as part of its key-set check); the re-encoding then
    keeps the decoded order instead of sorting, which is three times cheaper.

    Raises :class:`DecodeError` naming a byte offset; never any other exception for any input.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", offset=0)
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(
            f"input is {len(data)} bytes, over the cap of {max_bytes}", offset=max_bytes
        )
    try:
        obj = cbor2.loads(
            data,
            max_depth=max_depth,
            allow_indefinite=False,
            allow_duplicate_keys=False,
            semantic_decoders=_REJECT_TAGS,
            tag_hook=_reject_tag,
            str_errors="strict",
        )
    except (
        cbor2.CBORDecodeError,
        _TagRefused,
        ValueError,
        TypeError,
        OverflowError,
        RecursionError,
        MemoryError,
    ) as exc:
        raise diagnose(data, max_depth=max_depth, fallback=str(exc)) from None
    try:
        again = cbor2.dumps(obj, canonical=not key_order_checked)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise diagnose(data, max_depth=max_depth, fallback=str(exc)) from None
    if again != data:
        raise diagnose(data, max_depth=max_depth, fallback=_first_difference(data, again))
    return obj


def _first_difference(data: bytes, again: bytes) -> str:
    if data.startswith(again):
        return f"trailing bytes after the top-level item at offset {len(again)}"
    limit = min(len(data), len(again))
    offset = next((i for i in range(limit) if data[i] != again[i]), limit)
    return f"not canonical CBOR: first differs from the canonical form at offset {offset}"


def diagnose(data: bytes, *, max_depth: int = MAX_DEPTH, fallback: str = "") -> DecodeError:
    """Walk ``data`` item by item and return a DecodeError for the first rule it breaks.

    Iterative (no recursion), linear in the input, and bounded by its length: every count is
    checked against the bytes that remain before it is trusted.
    """
    problem = _scan(data, max_depth)
    if problem is not None:
        offset, message = problem
        return DecodeError(message, offset=offset)
    # cbor2 refused but the scan found nothing: report cbor2's reason at the start.
    return DecodeError(fallback or "not canonical CBOR", offset=0)


def _scan(data: bytes, max_depth: int) -> tuple[int, str] | None:
    n = len(data)
    pos = 0
    # Stack frames: [remaining_items, is_map, expecting_key, previous_key_bytes]
    stack: list[list[Any]] = []
    done_top = False
    while True:
        if stack and stack[-1][0] == 0:
            stack.pop()
            if not stack:
                done_top = True
            continue
        if done_top or (not stack and pos > 0):
            break
        if pos >= n:
            return pos, "unexpected end of input (truncated)"
        start = pos
        ib = data[pos]
        major, ai = ib >> 5, ib & 0x1F
        pos += 1
        if ai >= 28:
            if ai == 31:
                if major == 7:
                    return start, "break byte outside an indefinite-length item"
                return start, "indefinite-length item not allowed"
            return start, f"reserved additional information {ai}"
        if ai < 24:
            arg = ai
        else:
            size = 1 << (ai - 24)
            if pos + size > n:
                return start, "unexpected end of input inside an item header (truncated)"
            arg = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if major != 7 and (arg < 24 if size == 1 else arg < (1 << (4 * size))):
                return start, "integer or length not in shortest form (not canonical)"
        frame = stack[-1] if stack else None
        is_key = frame is not None and frame[1] and frame[2]
        if is_key and major != 3:
            return start, "map key is not a text string"
        if major in (0, 1):
            pass
        elif major in (2, 3):
            if arg > n - pos:
                return start, f"length {arg} exceeds the {n - pos} bytes that remain"
            chunk = data[pos : pos + arg]
            pos += arg
            if major == 3:
                try:
                    chunk.decode("utf-8")
                except UnicodeDecodeError:
                    return start, "text string is not valid UTF-8"
            if is_key and frame is not None:
                key = data[start:pos]
                prev = frame[3]
                if prev is not None:
                    if key == prev:
                        return start, f"duplicate map key {chunk.decode('utf-8')!r}"
                    if (len(key), key) < (len(prev), prev):
                        return start, "map keys not in canonical order"
                frame[3] = key
        elif major in (4, 5):
            items = arg * 2 if major == 5 else arg
            if items > n - pos:
                return start, f"count {arg} exceeds the {n - pos} bytes that remain"
            if len(stack) + 1 > max_depth:
                return start, f"nesting deeper than {max_depth} containers"
            if frame is not None:
                _consume(frame)
            stack.append([items, major == 5, True, None])
            if items == 0:
                continue
            continue
        elif major == 6:
            return start, f"tag {arg} not allowed"
        else:  # major 7
            if ai in (25, 26, 27):
                return start, "floating-point value not allowed"
            if ai not in (20, 21, 22):
                return start, f"simple value {arg} not allowed"
        if frame is None:
            done_top = True
        else:
            _consume(frame)
    if pos != n:
        return pos, f"trailing bytes after the top-level item at offset {pos}"
    return None


def _consume(frame: list[Any]) -> None:
    frame[0] -= 1
    if frame[1]:
        frame[2] = not frame[2]
