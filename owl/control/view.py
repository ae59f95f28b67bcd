"""Reading the control slot: one round trip gives an agent everything it schedules by."""

from __future__ import annotations

import json
import time
from typing import Any

from owl.control.model import PRODUCTION, PRODUCTION_CAMPAIGN, Campaign, ControlView

#: Default promotion of a waiting campaign by one band (seconds with work, unserved).
BAND_AGING_S = 300.0
#: Default waiting time one point of stage priority is worth (seconds).
PRIORITY_AGING_S = 60.0


def read_view(board: Any) -> ControlView:
    """The campaigns, their states and virtual times, pauses and limits of a board."""
    k = board.keys
    pipe = board.redis.pipeline(transaction=False)
    for name in ("campaigns", "cstate", "vtime", "served", "pauses", "limits", "tlimits",
                 "settings"):
        pipe.hgetall(k.ctl_key(name))
    camps, states, vtime, served, pauses, live, declared, settings = pipe.execute()
    campaigns = {PRODUCTION: PRODUCTION_CAMPAIGN}
    campaigns.update({n: Campaign.from_json(raw) for n, raw in camps.items()})
    limits = {n: int(v) for n, v in declared.items()}
    limits.update({n: int(v) for n, v in live.items()})
    return ControlView(
        campaigns=campaigns, states=dict(states),
        vtime={n: float(v) for n, v in vtime.items()},
        served={n: int(v) for n, v in served.items()},
        pauses={n: json.loads(v) for n, v in pauses.items()},
        limits=limits,
        band_aging_ms=int(float(settings.get("band_aging", BAND_AGING_S)) * 1000),
        now_ms=int(time.time() * 1000),
    )


class CachedView:
    """The control view, read again when older than ``max_age`` seconds or when told."""

    def __init__(self, board: Any, max_age: float = 1.0) -> None:
        self.board = board
        self.max_age = max_age
        self._view: ControlView | None = None
        self._read = 0.0

    def get(self) -> ControlView:
        now = time.monotonic()
        if self._view is None or now - self._read > self.max_age:
            self._view = read_view(self.board)
            self._read = now
        return self._view

    def invalidate(self) -> None:
        self._view = None

    def nudge(self, min_age: float = 0.2) -> None:
        """A wake-up arrived: read the view again at the next claim if it is older than
        ``min_age`` (a control change wakes agents; busy boards wake them often)."""
        if time.monotonic() - self._read > min_age:
            self._view = None
