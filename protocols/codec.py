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
    data = capped(data, max_bytes)
    obj = loads_strict(data, max_depth=max_depth)
    check_canonical(data, obj, max_depth=max_depth, key_order_checked=key_order_checked)
    return obj


def capped(data: bytes, max_bytes: int) -> bytes:
    """``data`` as bytes, refused (DecodeError) when it is not bytes-like or over the cap."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", offset=0)
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(
            f"input is {len(data)} bytes, over the cap of {max_bytes}", offset=max_bytes
        )
    return data


def loads_strict(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """First half of :func:`decode`: cbor2's C decoder with the depth cap and indefinite
    lengths, duplicate keys and tags refused, but *no* canonical-form check.

    For callers that establish canonical form more cheaply themselves (the agent validator
    re-encodes piece by piece, reusing the pieces for lineage hashes) and fall back to
    :func:`check_canonical` otherwise. ``data`` must already be bytes within the size cap.
    """
    try:
        return cbor2.loads(
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


def check_canonical(
    data: bytes, obj: Any, *, max_depth: int = MAX_DEPTH, key_order_checked: bool = False
) -> None:
    """Second half of :func:`decode`: ``obj`` (decoded from ``data``) re-encodes to ``data``.

    Raises :class:`DecodeError` naming the offset of the first difference.
    """
    if not key_order_checked and _plain(obj, sorted_keys=True):
        # Only plain values and every map already in canonical key order: then cbor2's
        # canonical encoding *is* the encoding in decoded order, which is four times
        # cheaper to produce (no sort). Anything else takes the general check below.
        try:
            if cbor2.dumps(obj) == data:
                return
        except (cbor2.CBOREncodeError, ValueError, TypeError):
            pass
    try:
        again = cbor2.dumps(obj, canonical=not key_order_checked)
    except (cbor2.CBOREncodeError, ValueError, TypeError) as exc:
        raise diagnose(data, max_depth=max_depth, fallback=str(exc)) from None
    if again != data:
        raise diagnose(data, max_depth=max_depth, fallback=_first_difference(data, again))
    if not key_order_checked and not _plain(obj):
        raise diagnose(data, max_depth=max_depth, fallback="value of a type CBOR data may not hold")


_PLAIN_SCALARS: Final = (bool, int, str, bytes)


def _plain(obj: Any, *, sorted_keys: bool = False) -> bool:
    """True when the tree holds only null/bool/int/text/bytes/arrays/text-keyed maps (and,
    with ``sorted_keys``, every map's keys are in canonical order).

    Floats and simple values survive a canonical round trip, so they are refused here. The
    agent validator does the same check itself while walking its schema, so the agent path
    skips this walk (``key_order_checked=True``).
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        if item is None or type(item) in _PLAIN_SCALARS:
            continue
        if type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            if sorted_keys:
                if not _sorted_text_keys(item):
                    return False
            elif any(type(k) is not str for k in item):
                return False
            stack.extend(item.values())
        else:
            return False
    return True


def _sorted_text_keys(item: dict[Any, Any]) -> bool:
    """Every key is text and the keys ascend in RFC 8949 4.2.1 order: by UTF-8 length, then
    bytewise (for equal lengths, code-point order of ``str`` is UTF-8 byte order)."""
    prev_len, prev = -1, ""
    for k in item:
        if type(k) is not str:
            return False
        n = len(k) if k.isascii() else len(k.encode("utf-8"))
        if n < prev_len or (n == prev_len and k <= prev):
            return False
        prev_len, prev = n, k
    return True


def _first_difference(data: bytes, again: bytes) -> str:
    if data.startswith(again):
        return f"trailing bytes after the top-level item at offset {len(again)}"
    limit = min(len(data), len(again))
    offset = next((i for i in range(limit) if data[i] != again[i]), limit)
    return f"not canonical CBOR: first differs from the canonical form at offset {offset}"


def diagnose(data: bytes, *, max_depth: int = MAX_DEPTH, fallback: str = "") -> DecodeError:
    """Walk ``data`` item by item and return a DecodeError for the first rule it breaks.

    The error names the byte offset and, where the bytes got that far, the field path (e.g.
    ``intent.args.ratio``). Iterative (no recursion), linear in the input, and bounded by its
    length: every count is checked against the bytes that remain before it is trusted.
    """
    problem = _Scanner(data, max_depth).run()
    if problem is not None:
        offset, path, message = problem
        return DecodeError(f"{message} (byte {offset})", path=path, offset=offset)
    # cbor2 refused but the scan found nothing: report cbor2's reason at the start.
    return DecodeError(fallback or "not canonical CBOR", offset=0)


class _Frame:
    """An open array or map while scanning."""

    __slots__ = ("index", "is_map", "key", "prev_key", "remaining")

    def __init__(self, items: int, is_map: bool) -> None:
        self.remaining = items  # items still to read (a map counts keys and values)
        self.is_map = is_map
        self.index = 0  # array index of the next item
        self.key: str | None = None  # map key whose value is being read
        self.prev_key: bytes | None = None  # encoded previous key, for order checks

    @property
    def at_key(self) -> bool:
        return self.is_map and self.remaining % 2 == 0

    def consume(self) -> None:
        self.remaining -= 1
        if not self.is_map:
            self.index += 1


class _Scanner:
    """Pure-Python CBOR walker used only to explain a refusal."""

    def __init__(self, data: bytes, max_depth: int) -> None:
        self.data = data
        self.max_depth = max_depth
        self.stack: list[_Frame] = []

    def path(self) -> str:
        parts: list[str] = []
        for frame in self.stack:
            if frame.is_map:
                if frame.at_key or frame.key is None:
                    break
                parts.append(("." if parts else "") + frame.key)
            else:
                parts.append(f"[{frame.index}]")
        return "".join(parts)

    def run(self) -> tuple[int, str, str] | None:
        data, n, stack = self.data, len(self.data), self.stack
        pos = 0
        while True:
            while stack and stack[-1].remaining == 0:
                stack.pop()
                if stack:
                    self._finish_value()
            if not stack and pos > 0:
                break
            if pos >= n:
                return pos, self.path(), "unexpected end of input (truncated)"
            start = pos
            ib = data[pos]
            major, ai = ib >> 5, ib & 0x1F
            pos += 1
            if ai >= 28:
                if ai == 31:
                    what = (
                        "break byte outside an indefinite-length item"
                        if major == 7
                        else "indefinite-length item not allowed"
                    )
                    return start, self.path(), what
                return start, self.path(), f"reserved additional information {ai}"
            if ai < 24:
                arg = ai
            else:
                size = 1 << (ai - 24)
                if pos + size > n:
                    return start, self.path(), "unexpected end of input in an item header"
                arg = int.from_bytes(data[pos : pos + size], "big")
                pos += size
                if major != 7 and (arg < 24 if size == 1 else arg < (1 << (4 * size))):
                    return start, self.path(), "integer or length not in shortest form"
            frame = stack[-1] if stack else None
            is_key = frame is not None and frame.at_key
            if is_key and major != 3:
                return start, self.path(), "map key is not a text string"
            if major in (2, 3):
                if arg > n - pos:
                    return start, self.path(), f"length {arg} exceeds the {n - pos} bytes left"
                chunk = data[pos : pos + arg]
                pos += arg
                text = ""
                if major == 3:
                    try:
                        text = chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return start, self.path(), "text string is not valid UTF-8"
                if is_key and frame is not None:
                    key, prev = data[start:pos], frame.prev_key
                    if prev is not None and key == prev:
                        return start, self.path(), f"duplicate map key {text!r}"
                    if prev is not None and (len(key), key) < (len(prev), prev):
                        return start, self.path(), f"map key {text!r} not in canonical order"
                    frame.prev_key = key
                    frame.key = text
                    frame.consume()
                    continue
            elif major in (4, 5):
                items = arg * 2 if major == 5 else arg
                if items > n - pos:
                    return start, self.path(), f"count {arg} exceeds the {n - pos} bytes left"
                if len(stack) + 1 > self.max_depth:
                    return start, self.path(), f"nesting deeper than {self.max_depth} containers"
                stack.append(_Frame(items, major == 5))
                continue
            elif major == 6:
                return start, self.path(), f"tag {arg} not allowed"
            elif major == 7:
                if ai in (25, 26, 27):
                    return start, self.path(), "floating-point value not allowed"
                if ai not in (20, 21, 22):
                    return start, self.path(), f"simple value {arg} not allowed"
            if frame is None:
                break
            self._finish_value()
        if pos != n:
            return pos, "", "trailing bytes after the top-level item"
        return None

    def _finish_value(self) -> None:
        """A value (scalar or completed container) was read in the innermost open frame."""
        frame = self.stack[-1]
        frame.consume()
