"""Trust zones and signed policy (DESIGN 5): the admission pipeline and what it reads.

Public API used by the node and the simulator (everything pure; epochs passed in):

- ``admit(AdmitInput) -> Decision``: wire verdict, local disposition, code, reason, audit
  record (:mod:`.pipeline`); ``OUTCOMES`` is the code -> (verdict, disposition) table;
  ``encode_envelope(zone, agent_bytes)`` makes zone-topic message data;
  ``admit_rehydrated`` re-enters a rehydrated agent at the policy stage.
- ``ZoneView``: one zone's signed knowledge (descriptors, contracts, hosts, overrides),
  fed by the node from the control topic and sync (:mod:`.view`).
- ``ZoneDescriptor``, ``DescriptorSet``, ``QuorumParams`` (:mod:`.zone`); ``Contract``,
  ``contract_from_toml``, ``make_policy_ref`` (:mod:`.policy`).
- Quorum: ``new_proposal``, ``VoteLedger``, ``tally``, ``verify_certificate``,
  ``find_conflicts``, ``MetaDecision``/``settle``, ``HealthMonitor`` (:mod:`.quorum`).
- Overrides: ``Override``, ``OverrideTable``, ``Action`` (:mod:`.meta`).
- Quarantine: ``QuarantineStore`` protocol, ``MemoryQuarantine`` (:mod:`.quarantine`).
- Execution: ``execute``, ``HANDLERS``, ``ExecContext`` (:mod:`.execute`).
- Eligibility from memory (remediation, grants, negative authority): :mod:`.eligibility`.
- Also: ``migration``, ``xzone``, ``fallback``, ``delegation``, ``nest``, ``route``;
  ``world`` builds deterministic zones for tests, vectors, bench and the simulator.
"""

from protocols.governance.execute import HANDLERS, ExecContext, Execution, NotExecuted, execute
from protocols.governance.meta import Action, Override, OverrideTable
from protocols.governance.pipeline import (
    OUTCOMES,
    AdmitInput,
    AuditRecord,
    Decision,
    Disposition,
    QuarantineCounter,
    admit,
    admit_rehydrated,
    encode_envelope,
)
from protocols.governance.policy import Contract, Evaluation, contract_from_toml, make_policy_ref
from protocols.governance.quarantine import Held, MemoryQuarantine, QuarantineStore
from protocols.governance.quorum import (
    MetaDecision,
    Outcome,
    Proposal,
    QuorumCertificate,
    VoteLedger,
    find_conflicts,
    new_proposal,
    settle,
    tally,
    verify_certificate,
)
from protocols.governance.signing import Authority, Signed
from protocols.governance.view import ZoneView
from protocols.governance.zone import DescriptorSet, QuorumParams, ZoneDescriptor

__all__ = [
    "HANDLERS",
    "OUTCOMES",
    "Action",
    "AdmitInput",
    "AuditRecord",
    "Authority",
    "Contract",
    "Decision",
    "DescriptorSet",
    "Disposition",
    "Evaluation",
    "ExecContext",
    "Execution",
    "Held",
    "MemoryQuarantine",
    "MetaDecision",
    "NotExecuted",
    "Outcome",
    "Override",
    "OverrideTable",
    "Proposal",
    "QuarantineCounter",
    "QuarantineStore",
    "QuorumCertificate",
    "QuorumParams",
    "Signed",
    "VoteLedger",
    "ZoneDescriptor",
    "ZoneView",
    "admit",
    "admit_rehydrated",
    "contract_from_toml",
    "encode_envelope",
    "execute",
    "find_conflicts",
    "make_policy_ref",
    "new_proposal",
    "settle",
    "tally",
    "verify_certificate",
]
