"""What an agent does with the control state on every rescan: its own pause or drain,
the limits and pools its template declares, and the schedules it may fire."""

from __future__ import annotations

import time
from typing import Any

import structlog

from owl.control import actions, campaigns
from owl.control.cron import Cron
from owl.template import Template

log = structlog.get_logger("owl.control")

SERVE, PAUSED, DRAIN = "serve", "paused", "drain"


class AgentControl:
    """The control side of one agent."""

    def __init__(self, board: Any, agent_id: str, template: Template) -> None:
        self.board = board
        self.id = agent_id
        self.template = template
        self.mode = SERVE
        self.cron = Cron(board, agent_id, self._tick)
        self.started_ms = int(time.time() * 1000)

    def start(self) -> None:
        """Declare the template's limits; tell the claim path which pools each stage uses."""
        t = self.template
        limits = {f"pool:{p}": n for p, n in t.limits.items()}
        limits.update({f"stage:{t.name}:{s.name}": s.max_running for s in t.stages
                       if s.max_running is not None})
        actions.declare_limits(self.board, limits)
        for s in t.stages:
            self.board.claimer.pools[(t.name, s.name)] = s.pools

    def scan(self) -> str:
        """Read the control view; fire due schedules; return serve, paused or drain."""
        view = self.board.claimer.view.get()
        before = self.mode
        if f"drain:{self.id}" in view.pauses:
            self.mode = DRAIN
        elif view.paused("agent", self.id):
            self.mode = PAUSED
        else:
            self.mode = SERVE
        if self.mode != before:
            why = view.pauses.get(f"drain:{self.id}") or view.pauses.get(f"agent:{self.id}")
            log.info("agent.control", agent=self.id, mode=self.mode,
                     reason=(why or {}).get("why", ""), by=(why or {}).get("by", ""))
        if self.mode == SERVE:
            self.cron.check(view, self.template.name)
            self._scan_tick()
        return self.mode

    def _scan_tick(self) -> None:
        """The template's ``scan`` schedule: ingest its directories once per tick."""
        t = self.template
        if not t.scan_schedule:
            return
        got = self.cron.fire(f"template:{t.name}:scan", t.scan_schedule, self.started_ms,
                             int(time.time() * 1000))
        if got is None:
            return
        from pathlib import Path

        from owl.ingest import candidates, ingest_file

        counts: dict[str, int] = {}
        for path in candidates([Path(d) for d in t.scan_dirs], [t]):
            res = ingest_file(self.board, [t], path, who=f"scan:{self.id}")
            counts[res.status] = counts.get(res.status, 0) + 1
        log.info("schedule.fired", schedule=got.schedule, missed=got.missed, **counts)

    def finished(self) -> None:
        """A drained agent clears its request on exit, so a restart under its id serves."""
        if self.mode == DRAIN:
            actions.clear_drain(self.board, self.id, self.id)

    def _tick(self, name: str, campaign: Any) -> None:
        report = campaigns.rerun_selection(self.board, campaign, self.id)
        log.info("schedule.fired", schedule=name, started=report.started,
                 pending=report.pending)
