"""Validated parameters: DESIGN §4 defaults, and ConfigError naming the field otherwise."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.errors import ConfigError
from protocols.gossip.config import (
    GossipParams,
    PeerScoreParams,
    ScoreThresholds,
    TopicScoreParams,
)


def test_defaults_are_design_section_4() -> None:
    p = GossipParams()
    assert (p.d, p.d_lo, p.d_hi, p.d_lazy, p.d_score, p.d_out) == (6, 5, 12, 6, 4, 2)
    assert p.heartbeat_interval == 1.0
    assert (p.history_length, p.history_gossip) == (5, 3)
    assert (p.seen_ttl, p.fanout_ttl, p.prune_backoff) == (120.0, 60.0, 60.0)
    assert p.flood_publish is True
    assert p.max_message_size == 1 << 20
    t = p.thresholds
    assert (t.gossip, t.publish, t.graylist, t.accept_px, t.opportunistic_graft) == (
        -10.0,
        -50.0,
        -80.0,
        100.0,
        5.0,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"d_lo": 7}, "d_lo"),
        ({"d_hi": 5}, "d_hi"),
        ({"d_out": 5}, "d_out"),
        ({"d": 6, "d_lo": 5, "d_out": 4}, "d_out"),
        ({"d_score": 7}, "d_score"),
        ({"gossip_factor": 1.5}, "gossip_factor"),
        ({"history_gossip": 6}, "history_gossip"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"prune_backoff": -1.0}, "prune_backoff"),
        ({"seen_ttl": 2.0}, "seen_ttl"),
        ({"max_ihave_length": 0}, "max_ihave_length"),
        ({"gossip_retransmission": 0}, "gossip_retransmission"),
        ({"max_message_size": 0}, "max_message_size"),
    ],
)
def test_overlay_invariants_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        GossipParams(**kwargs)
    assert err.value.path == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"gossip": 1.0}, "thresholds.gossip"),
        ({"publish": -5.0}, "thresholds.publish"),
        ({"graylist": -20.0}, "thresholds.graylist"),
        ({"accept_px": -1.0}, "thresholds.accept_px"),
        ({"opportunistic_graft": -1.0}, "thresholds.opportunistic_graft"),
    ],
)
def test_thresholds_ordered(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScoreThresholds(**kwargs)
    assert err.value.path == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"topic_weight": -1.0}, "topic_weight"),
        ({"time_in_mesh_quantum": 0.0}, "time_in_mesh_quantum"),
        ({"first_message_deliveries_weight": -1.0}, "first_message_deliveries_weight"),
        ({"first_message_deliveries_decay": 1.0}, "first_message_deliveries_decay"),
        ({"mesh_message_deliveries_weight": 1.0}, "mesh_message_deliveries_weight"),
        ({"mesh_message_deliveries_threshold": 0.0}, "mesh_message_deliveries_threshold"),
        ({"mesh_message_deliveries_activation": 0.5}, "mesh_message_deliveries_activation"),
        ({"mesh_failure_penalty_weight": 1.0}, "mesh_failure_penalty_weight"),
        ({"invalid_message_deliveries_weight": 1.0}, "invalid_message_deliveries_weight"),
        ({"invalid_message_deliveries_decay": 0.0}, "invalid_message_deliveries_decay"),
    ],
)
def test_topic_score_params_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        PeerScoreParams(topics={"z": TopicScoreParams(**kwargs)})
    assert err.value.path == f"score.topics[z].{field}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"behaviour_penalty_weight": 1.0}, "score.behaviour_penalty_weight"),
        ({"behaviour_penalty_decay": 2.0}, "score.behaviour_penalty_decay"),
        ({"ip_colocation_factor_weight": 1.0}, "score.ip_colocation_factor_weight"),
        ({"ip_colocation_factor_threshold": 0}, "score.ip_colocation_factor_threshold"),
        ({"decay_interval": 0.0}, "score.decay_interval"),
        ({"decay_to_zero": 0.0}, "score.decay_to_zero"),
        ({"app_specific_weight": -1.0}, "score.app_specific_weight"),
    ],
)
def test_peer_score_params_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as err:
        PeerScoreParams(**kwargs)
    assert err.value.path == field


def test_params_are_frozen() -> None:
    p = GossipParams()
    with pytest.raises(AttributeError):
        p.d = 8  # type: ignore[misc]
    sp = PeerScoreParams(topics={"z": TopicScoreParams()})
    with pytest.raises(TypeError):
        sp.topics["y"] = TopicScoreParams()  # type: ignore[index]


def test_default_topic_params_keep_p1_below_opportunistic_graft_threshold() -> None:
    """The design reason for the P1 values: sitting in the mesh alone never looks good."""
    tp = TopicScoreParams()
    p1_max = tp.time_in_mesh_weight * tp.time_in_mesh_cap * tp.topic_weight
    assert p1_max < ScoreThresholds().opportunistic_graft
