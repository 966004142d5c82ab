"""Quarantine (SPEC 5 item 11): held, never executed or forwarded, TTL in epochs, all recorded.

The store interface is :class:`QuarantineStore`; :class:`MemoryQuarantine` is the in-memory
implementation used by the core, tests and the simulator (the node's is SQLite). A held agent
leaves by re-validation (a new admission no longer says QUARANTINE), by a meta-authority
RELEASE override, or by expiry, which counts as a rejection. Each of these, and each refusal
because the host's quota is full, appends one :class:`QuarantineRecord`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Event(enum.Enum):
    HELD = "held"
    REFUSED_QUOTA = "refused-quota"
    RELEASED_REVALIDATED = "released-revalidated"
    RELEASED_OVERRIDE = "released-override"
    EXPIRED = "expired-rejected"


@dataclass(frozen=True, slots=True)
class Held:
    """One quarantined agent: its content id, bytes, host, zone, and TTL window."""

    key: bytes
    data: bytes
    host: bytes
    zone: str
    target: bytes
    """The agent's quorum scope (what overrides name)."""
    since_epoch: int
    expires_epoch: int
    reason: str


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    event: Event
    key: bytes
    epoch: int
    reason: str


class QuarantineStore(Protocol):
    """What the pipeline's caller needs from a quarantine store (memory here, SQLite in node)."""

    def hold(self, item: Held, quota: int, epoch: int) -> QuarantineRecord: ...

    def release(
        self, key: bytes, event: Event, epoch: int, reason: str
    ) -> QuarantineRecord | None: ...

    def expire(self, epoch: int) -> list[QuarantineRecord]: ...

    def get(self, key: bytes) -> Held | None: ...

    def count(self, host: bytes) -> int: ...

    def held_keys(self) -> list[bytes]: ...


@dataclass
class MemoryQuarantine:
    """In-memory :class:`QuarantineStore` (deterministic: every listing is sorted)."""

    items: dict[bytes, Held] = field(default_factory=dict)
    records: list[QuarantineRecord] = field(default_factory=list)

    def _log(self, event: Event, key: bytes, epoch: int, reason: str) -> QuarantineRecord:
        record = QuarantineRecord(event, key, epoch, reason)
        self.records.append(record)
        return record

    def hold(self, item: Held, quota: int, epoch: int) -> QuarantineRecord:
        if item.key not in self.items and self.count(item.host) >= quota:
            return self._log(Event.REFUSED_QUOTA, item.key, epoch, f"host quota {quota} full")
        self.items[item.key] = item
        return self._log(Event.HELD, item.key, epoch, item.reason)

    def release(self, key: bytes, event: Event, epoch: int, reason: str) -> QuarantineRecord | None:
        if self.items.pop(key, None) is None:
            return None
        return self._log(event, key, epoch, reason)

    def expire(self, epoch: int) -> list[QuarantineRecord]:
        """Every item whose TTL ran out by ``epoch`` leaves as a rejection."""
        due = sorted(k for k, h in self.items.items() if h.expires_epoch <= epoch)
        out = []
        for key in due:
            del self.items[key]
            out.append(self._log(Event.EXPIRED, key, epoch, "quarantine TTL expired"))
        return out

    def get(self, key: bytes) -> Held | None:
        return self.items.get(key)

    def count(self, host: bytes) -> int:
        return sum(1 for h in self.items.values() if h.host == host)

    def held_keys(self) -> list[bytes]:
        return sorted(self.items)


def revalidate(
    store: QuarantineStore, still_quarantined: Callable[[Held], bool | None], epoch: int
) -> list[QuarantineRecord]:
    """Re-judge every held item: ``False`` releases it, ``True`` keeps it, None expires it.

    The caller passes a function running admission again (with its current descriptors,
    overrides and epoch), so release follows exactly the verdict a fresh node would reach.
    """
    out: list[QuarantineRecord] = []
    for key in store.held_keys():
        item = store.get(key)
        if item is None:
            continue
        verdict = still_quarantined(item)
        if verdict is False:
            rec = store.release(key, Event.RELEASED_REVALIDATED, epoch, "re-validated")
        elif verdict is None:
            rec = store.release(key, Event.EXPIRED, epoch, "re-validation refused it")
        else:
            continue
        if rec is not None:
            out.append(rec)
    return out


def release_by_overrides(
    store: QuarantineStore, released: Callable[[Held], bytes | None], epoch: int
) -> list[QuarantineRecord]:
    """Release every held item for which ``released`` names a holding override id."""
    out: list[QuarantineRecord] = []
    for key in store.held_keys():
        item = store.get(key)
        if item is None:
            continue
        oid = released(item)
        if oid is not None:
            rec = store.release(key, Event.RELEASED_OVERRIDE, epoch, f"override {oid.hex()}")
            if rec is not None:
                out.append(rec)
    return out
