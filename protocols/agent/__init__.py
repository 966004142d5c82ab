"""Agent objects: schema, structural validator, lineage, execution graph."""

from protocols.agent.build import AgentSpec, agent_content_id, encode_agent, new_agent
from protocols.agent.schema import SCHEMA_VERSION, Agent
from protocols.agent.validate import Problem, Validation, validate, validate_bytes

__all__ = [
    "SCHEMA_VERSION",
    "Agent",
    "AgentSpec",
    "Problem",
    "Validation",
    "agent_content_id",
    "encode_agent",
    "new_agent",
    "validate",
    "validate_bytes",
]
