"""Time triggers: a campaign's ``schedule`` (cron, via croniter) fires exactly once per tick.

Every agent checks the schedules on its rescan; ``ctl_cron.lua`` is a compare-and-set of the
schedule's last fired tick, so however many agents see a tick due, one fires it. Ticks missed
while no agent ran are counted and reported (an event, a log line), never replayed: only the
newest due tick fires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from croniter import croniter

from owl.control import actions
from owl.control.model import CampaignState
from owl.errors import BoardError

#: A schedule that fell this far behind reports at most this many missed ticks.
MAX_COUNTED = 100_000


def check_expression(expr: str) -> None:
    if not croniter.is_valid(expr):
        raise BoardError(f"schedule {expr!r} is not a cron expression (5 fields, or 6 with "
                         "seconds first... e.g. '0 2 * * *' for 02:00 every night)")


def due(expr: str, last_ms: int, now_ms: int) -> tuple[int | None, int]:
    """The newest tick at or before now if it is after ``last_ms``, and how many earlier
    ticks after ``last_ms`` are skipped (missed)."""
    newest = int(croniter(expr, now_ms / 1000).get_prev(float) * 1000)
    if newest <= last_ms:
        return None, 0
    it = croniter(expr, last_ms / 1000)
    missed = 0
    while missed < MAX_COUNTED:
        t = int(it.get_next(float) * 1000)
        if t >= newest:
            break
        missed += 1
    return newest, missed


@dataclass(frozen=True)
class Fired:
    schedule: str
    tick_ms: int
    missed: int


class Cron:
    """The schedules an agent fires; ``check`` is called on every rescan."""

    def __init__(self, board: Any, who: str,
                 on_tick: Callable[[str, Any], object]) -> None:
        self.board = board
        self.who = who
        self.on_tick = on_tick  # (schedule name, campaign) -> runs the tick's work
        self._last: dict[str, int] = {}

    def check(self, view: Any, template: str, now_ms: int | None = None) -> list[Fired]:
        """Fire the due ticks of the schedules of the active campaigns of ``template``
        (or of campaigns over any template)."""
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        fired = []
        for name, camp in view.campaigns.items():
            if (camp.schedule and camp.template in ("", template)
                    and view.state(name) == CampaignState.ACTIVE):
                got = self.fire(f"campaign:{name}", camp.schedule, camp.created_ms, now)
                if got is not None:
                    fired.append(got)
                    self.on_tick(got.schedule, camp)
        return fired

    def fire(self, key: str, expr: str, since_ms: int, now_ms: int) -> Fired | None:
        """Fire schedule ``key``'s newest due tick if no one has; ticks count from
        ``since_ms`` when it never fired."""
        last = self._last.get(key)
        if last is None:
            raw = self.board.redis.hget(self.board.keys.ctl_key("cron"), key)
            last = int(raw) if raw else since_ms
        tick, missed = due(expr, last, now_ms)
        if tick is None:
            self._last[key] = last
            return None
        res = self.board.scripts["ctl_cron"](
            keys=[self.board.keys.ctl_key("cron"), self.board.keys.ctl_key("events")],
            args=[key, tick, self.who, actions.EVENT_CAP, missed], client=self.board.redis)
        self._last[key] = tick if res[0] == 1 else max(last, int(res[1]))
        return Fired(key, tick, missed) if res[0] == 1 else None
