"""Publishing successor descriptors (DESIGN 5): next version, later activation, 2-epoch lead."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import SchemaError
from protocols.governance.signing import Authority, public_key, signing_key
from protocols.governance.zone import (
    PUBLISH_LEAD_EPOCHS,
    DescriptorSet,
    PublicationRefused,
    PublishProblem,
    QuorumParams,
    ZoneDescriptor,
    check_publication,
    successor,
)

AUTH = signing_key(hashlib.sha256(b"auth").digest())
AUTHORITY = Authority.of([public_key(AUTH)])
META = Authority.of([public_key(signing_key(hashlib.sha256(b"meta").digest()))])
V1 = ZoneDescriptor(
    zone="fleet",
    version=1,
    activation_epoch=10,
    contracts=(hashlib.sha256(b"c").digest(),),
    validators=(),
    meta_authority=META,
)


def _problem(exc: pytest.ExceptionInfo[PublicationRefused]) -> PublishProblem:
    return exc.value.problem


def test_the_lead_is_two_epochs() -> None:
    assert PUBLISH_LEAD_EPOCHS == 2
    v2 = successor(V1, 30)
    check_publication([V1], v2, 28)  # exactly two epochs ahead
    with pytest.raises(PublicationRefused) as exc:
        check_publication([V1], v2, 29)
    assert _problem(exc) is PublishProblem.TOO_LATE
    assert "activation >= 31" in str(exc.value)
    with pytest.raises(PublicationRefused):
        check_publication([V1], v2, 40)  # already active when published


def test_a_successor_is_the_next_version_and_activates_later() -> None:
    v2 = successor(V1, 30, quorum=QuorumParams(n=3, k_min=2, health_ceiling=3))
    assert (v2.version, v2.activation_epoch, v2.quorum.n) == (2, 30, 3)
    assert (v2.contracts, v2.meta_authority) == (V1.contracts, V1.meta_authority)
    assert v2.id != V1.id
    with pytest.raises(PublicationRefused) as exc:
        check_publication([V1, v2], successor(V1, 50), 0)  # version 2 again
    assert _problem(exc) is PublishProblem.NOT_NEXT_VERSION
    with pytest.raises(PublicationRefused) as exc:
        check_publication([V1], successor(V1, 10), 0)
    assert _problem(exc) is PublishProblem.NOT_LATER
    other = ZoneDescriptor(
        zone="other",
        version=2,
        activation_epoch=40,
        contracts=(),
        validators=(),
        meta_authority=META,
    )
    with pytest.raises(PublicationRefused) as exc:
        check_publication([V1], other, 0)
    assert _problem(exc) is PublishProblem.OTHER_ZONE
    with pytest.raises(PublicationRefused) as exc:
        check_publication([], v2, 0)  # nothing known: the first must be version 1
    assert _problem(exc) is PublishProblem.NOT_NEXT_VERSION
    check_publication([], V1, 10)  # version 1 needs no lead
    with pytest.raises(SchemaError):
        successor(V1, 30, quorum=QuorumParams(n=3, k_min=1))


def test_published_successors_govern_from_their_activation() -> None:
    ds = DescriptorSet("fleet", AUTHORITY)
    ds.add(V1.sign(AUTH))
    v2 = successor(V1, 30)
    check_publication(ds.versions(), v2, 20)
    ds.add(v2.sign(AUTH))
    v3 = successor(v2, 45)
    check_publication(ds.versions(), v3, 43)
    ds.add(v3.sign(AUTH))
    assert [ds.governing(e) for e in (29, 30, 44, 45)] == [V1, v2, v2, v3]


@given(st.integers(0, 1000), st.integers(0, 1000))
def test_publication_is_allowed_exactly_with_the_lead(published: int, activation: int) -> None:
    v2 = successor(V1, activation)
    allowed = activation > V1.activation_epoch and activation >= published + 2
    try:
        check_publication([V1], v2, published)
    except PublicationRefused:
        assert not allowed
    else:
        assert allowed
