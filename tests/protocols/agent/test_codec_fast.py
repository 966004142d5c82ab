"""codec.decode's cheaper canonical check accepts exactly what the sorting check accepts."""

from __future__ import annotations

import cbor2
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols import codec
from protocols.errors import DecodeError

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.text(max_size=6)
    | st.binary(max_size=6)
    | st.floats(allow_nan=False, width=16)
)
trees = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=4)
            | st.text(alphabet="ab\u00e9\u4e2d\U0001f600", max_size=3)
            | st.integers(0, 3),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


def reference(data: bytes) -> object:
    """The check before the fast form: re-encode canonically (sorting), then the plain walk."""
    obj = codec.loads_strict(data)
    if cbor2.dumps(obj, canonical=True) != data or not codec._plain(obj):
        raise DecodeError("not canonical", offset=0)
    return obj


def verdict(fn: object, data: bytes) -> tuple[bool, object]:
    try:
        return True, fn(data)  # type: ignore[operator]
    except DecodeError:
        return False, None


@settings(max_examples=400, deadline=None)
@given(tree=trees, canonical=st.booleans())
def test_fast_canonical_check_agrees_with_the_sorting_check(tree: object, canonical: bool) -> None:
    data = cbor2.dumps(tree, canonical=canonical)
    got = verdict(lambda d: codec.decode(d, max_bytes=1 << 16), data)
    assert got == verdict(reference, data)
