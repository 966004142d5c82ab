"""The central baseline: the same workload through one coordinator, as a well-run dispatcher.

Model (scenarios/README.md "Central baseline"):

- Every task is a request from the unit where it appears to the coordinator's service address
  (a virtual IP); the coordinator picks the claimant with the same rule the mesh uses, pushes
  the assignment to it and acknowledges the client. Messages travel the same simulated network
  with the same direct-stream latency as the mesh's quorum traffic.
- Clients retry like real clients: an attempt times out after ``request_timeout_s``, doubling
  per attempt up to ``retry_max_s``; the coordinator answers a repeated request with the
  assignment it already made (idempotent), and re-pushes an assignment that did not arrive.
- Requests are served one at a time with ``service_ms`` each (a queue).
- State is replicated synchronously to a standby coordinator (no assignment is lost or made
  twice); when the primary fails, the standby takes over the address ``failover_s`` later
  (heartbeat detection plus promotion) and keeps it (no failback).
- A partition that cuts a unit off from the coordinator that holds the address stalls it
  until the partition heals: nothing is decided at the edge.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.run import Simulation
    from sim.workloads import Paths

US = 1_000_000
PickFn = Callable[[int, int, "array[int]"], int]
"""(task, origin unit, current load per unit) -> claimant unit, or -1 when there is none."""


class CentralBaseline:
    """Coordinator, standby and clients for ``tasks`` task slots (results by task index)."""

    def __init__(
        self,
        sim: Simulation,
        paths: Paths,
        pick: PickFn,
        primary: int,
        standby: int,
        tasks: int,
        exec_us: int,
        key_of: Callable[[int], int] | None = None,
    ) -> None:
        w = sim.scenario.workload
        self.sim = sim
        self.paths = paths
        self.pick = pick
        self.primary = primary
        self.standby = standby
        self.active = primary
        self.failover_us = round(w.failover_s * US)
        self.timeout_us = round(w.request_timeout_s * US)
        self.retry_max_us = round(w.retry_max_s * US)
        self.service_us = round(w.service_ms * 1000)
        self.exec_us = exec_us
        self.busy_until = 0
        self.load = array("i", [0]) * sim.n
        self.assigned = array("i", [-1]) * tasks
        self.acked = bytearray(tasks)
        self.origin = array("i", [-1]) * tasks
        self.claimed_us = array("q", [-1]) * tasks
        self.done_us = array("q", [-1]) * tasks
        self.messages = 0
        self.retries = 0
        self.takeover_us = -1
        self.key_of = key_of
        """Requests with the same key (e.g. one sector) are one assignment: the first."""
        self.by_key: dict[int, int] = {}

    # ------------------------------------------------------------------ coordinator life

    def primary_down(self) -> None:
        """The primary crashed: the standby takes the address after the failover delay."""
        if self.active == self.primary:
            self.sim.engine.after(self.failover_us, self._takeover)

    def _takeover(self) -> None:
        if not self.sim.network.up[self.primary] and self.sim.network.up[self.standby]:
            self.active = self.standby
            self.takeover_us = self.sim.engine.now_us

    # ------------------------------------------------------------------ client

    def submit(self, task: int, origin: int) -> None:
        self.origin[task] = origin
        self._attempt(task, 0)

    def _attempt(self, task: int, k: int) -> None:
        if self.acked[task]:
            return
        if k:
            self.retries += 1
        eng = self.sim.engine
        coord = self.active
        self._send(self.origin[task], coord, self._request, task, coord)
        wait = min(self.timeout_us << min(k, 20), self.retry_max_us)
        eng.after(wait, self._attempt, task, k + 1)

    def _send(self, u: int, v: int, fn: Callable[..., None], *args: int) -> bool:
        """One message u -> v over the current network; False when it cannot get there."""
        self.messages += 1
        lat = self.paths.us(u, v)
        if lat is None:
            return False
        self.sim.engine.after(lat, fn, *args)
        return True

    # ------------------------------------------------------------------ coordinator

    def _request(self, task: int, coord: int) -> None:
        net = self.sim.network
        if not net.up[coord] or coord != self.active:
            return  # lost: the address is not served by this node (any more)
        now = self.sim.engine.now_us
        start = max(now, self.busy_until)
        self.busy_until = start + self.service_us
        self.sim.engine.at(self.busy_until, self._decide, task, coord)

    def _decide(self, task: int, coord: int) -> None:
        if not self.sim.network.up[coord]:
            return
        if self.key_of is not None and self.assigned[task] < 0:
            first = self.by_key.setdefault(self.key_of(task), task)
            if first != task:
                self._send(coord, self.origin[task], self._ack, task)  # already covered
                return
        if self.assigned[task] < 0:
            winner = self.pick(task, self.origin[task], self.load)
            if winner < 0:
                return  # nobody to assign: the client retries
            self.assigned[task] = winner
            self.load[winner] += 1
            self._push(task, coord)
        self._send(coord, self.origin[task], self._ack, task)

    def _push(self, task: int, coord: int) -> None:
        if self.claimed_us[task] >= 0:
            return
        coord = self.active
        if self.sim.network.up[coord]:
            self._send(coord, self.assigned[task], self._assignment, task)
        self.sim.engine.after(self.timeout_us, self._push, task, coord)

    def _ack(self, task: int) -> None:
        self.acked[task] = 1

    # ------------------------------------------------------------------ claimant

    def _assignment(self, task: int) -> None:
        if self.claimed_us[task] >= 0:
            return
        now = self.sim.engine.now_us
        self.claimed_us[task] = now
        self.sim.engine.after(self.exec_us, self._done, task)

    def _done(self, task: int) -> None:
        self.done_us[task] = self.sim.engine.now_us
        self.load[self.assigned[task]] -= 1
