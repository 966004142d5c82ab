"""GossipSub v1.1, sans-I/O: the router both the node and the simulator drive.

Start at :class:`GossipRouter` (``router.py``); inputs and outputs are in ``events.py``,
parameters in ``config.py``, the wire in ``rpc.py``.
"""

from protocols.gossip.config import GossipParams, PeerScoreParams, ScoreThresholds, TopicScoreParams
from protocols.gossip.router import GossipRouter
from protocols.gossip.validate import PENDING, TopicConfig, zone_topic, zone_topic_config

__all__ = [
    "PENDING",
    "GossipParams",
    "GossipRouter",
    "PeerScoreParams",
    "ScoreThresholds",
    "TopicConfig",
    "TopicScoreParams",
    "zone_topic",
    "zone_topic_config",
]
