"""Agent objects: schema, structural validator, lineage, execution graph.

Building agents (``protocols.agent.build``) needs the identity layer, which needs the schema,
so it is imported from its module, not re-exported here.
"""

from protocols.agent.schema import SCHEMA_VERSION, Agent
from protocols.agent.validate import Problem, Validation, validate, validate_bytes

__all__ = [
    "SCHEMA_VERSION",
    "Agent",
    "Problem",
    "Validation",
    "validate",
    "validate_bytes",
]
