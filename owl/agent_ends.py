"""The two ends of an agent's life: adopting what survived a restart, and stopping (jobs
that outlive the agent left running, local tasks finished within the grace period or given
back)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from owl.faults import explain, passing
from owl.model import Claim
from owl.queries import held_by

if TYPE_CHECKING:
    from owl.agent import Agent

#: Seconds a stopping agent keeps trying to give its items back through an outage.
GIVEBACK_RETRY_S = 10.0


def adopt(self: Agent) -> None:
    """After a restart under the same id: re-attach to the jobs the executor still has
    for items the board says we hold; remove jobs whose token is stale; give back held
    items that have no job, so they run again at once."""
    mine = {(c.dataset, c.stage): c for c in held_by(self.board, self.id,
                                                      self.template.name)}
    held = {(c.dataset, c.stage, c.token) for c in mine.values()}
    for job in self.executor.adopt(self.board.name, self.id, held):
        claim = mine.pop((job.dataset, job.stage), None)
        if claim is None or claim.token != job.token:
            self.executor.cancel(job.dataset, job.stage, job.token)
            self._log.warning("item.fenced", dataset=job.dataset, stage=job.stage,
                              token=job.token, detail="adopted job's token is stale")
            continue
        self.running[(claim.dataset, claim.stage, claim.token)] = claim
        self._log.info("item.adopted", dataset=claim.dataset, stage=claim.stage,
                       token=claim.token)
    for claim in mine.values():
        self.board.giveback(claim, self.id)
        self._log.info("item.given_back", dataset=claim.dataset, stage=claim.stage,
                       token=claim.token, detail="no job survived the restart")

def shutdown(self: Agent) -> None:
    """Stop claiming. Jobs that outlive their agent (condor) are left running for the
    restarted agent to adopt; local tasks that have not started are given back at once,
    running ones may finish within the grace period; the rest are given back so another
    agent can take them at once."""
    for key, claim in list(self.running.items()):
        if self.executor.outlives_agent(claim.stage):
            del self.running[key]
            self._log.info("item.left_running", dataset=claim.dataset, stage=claim.stage,
                           token=claim.token,
                           detail="restart this agent with the same --id to adopt it")
    # items queued behind running tasks (agent --prefetch) never start in the grace period:
    # they go back to the board now, for another agent to take at once
    withdraw = getattr(self.executor, "withdraw_unstarted", None)
    if callable(withdraw):
        unstarted = [self.running.pop(key) for key in withdraw() if key in self.running]
        give_back(self, unstarted)
    deadline = time.monotonic() + self.grace
    while (self.running or self._pending) and time.monotonic() < deadline:
        self._pending += self.executor.poll(
            min(1.0, max(0.0, deadline - time.monotonic())))
        try:
            if self._pending:
                self._flush()
            self._renew()
        except Exception as exc:
            if not passing(exc):
                raise
            self._log.warning("board.unreachable", error=explain(exc), detail="stopping")
            time.sleep(0.5)
    for claim in self.running.values():
        self.executor.cancel(claim.dataset, claim.stage, claim.token)
    give_back(self, list(self.running.values()))
    self.running.clear()

def give_back(self: Agent, claims: Sequence[Claim]) -> None:
    """Give back unfinished items, retrying through a passing fault for a while; what
    cannot be given back is reaped once its lease expires."""
    deadline = time.monotonic() + max(self.grace, GIVEBACK_RETRY_S)
    todo = list(claims)
    while todo:
        claim = todo[0]
        try:
            res = self.board.giveback(claim, self.id)
        except Exception as exc:
            if not passing(exc):
                raise
            if time.monotonic() > deadline:
                for left in todo:
                    self._log.warning("item.not_given_back", dataset=left.dataset,
                                      stage=left.stage, token=left.token,
                                      error=explain(exc),
                                      detail="another agent takes it when its lease ends")
                return
            time.sleep(0.5)
            continue
        todo.pop(0)
        self._log.info("item.given_back", dataset=claim.dataset, stage=claim.stage,
                       token=claim.token, ok=res.ok)
