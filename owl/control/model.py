"""Value types of the control layer: bands, campaigns, the board-wide control view."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from owl.errors import BoardError

#: The campaign production ingest belongs to; it exists on every board.
PRODUCTION = "production"


class Band(StrEnum):
    """Priority bands, strictly ordered (work that waits is promoted, see docs/control.md)."""

    URGENT = "urgent"
    PRODUCTION = "production"
    REPROCESSING = "reprocessing"
    BULK = "bulk"

    @property
    def rank(self) -> int:
        return list(Band).index(self)


class CampaignState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DRAINING = "draining"
    DRAINED = "drained"
    CANCELLED = "cancelled"


#: States in which a campaign's items may be claimed.
CLAIMABLE = (CampaignState.ACTIVE, CampaignState.DRAINING)


def parse_band(value: str) -> Band:
    try:
        return Band(value)
    except ValueError:
        raise BoardError(f"unknown band {value!r}; bands are "
                         f"{', '.join(b.value for b in Band)}") from None


@dataclass(frozen=True)
class Campaign:
    """A campaign as stored on the board (its state is kept apart: it changes)."""

    name: str
    band: Band = Band.PRODUCTION
    weight: float = 1.0
    template: str = ""
    version: str = ""  # target template version ("" keeps each dataset's own)
    from_stage: str = ""  # "" means each dataset's first stages
    selector: dict[str, Any] = field(default_factory=dict)
    max_running: int | None = None
    schedule: str | None = None  # cron expression: rerun the selection at each tick
    created_ms: int = 0
    by: str = ""
    selected: int = 0

    def to_json(self) -> str:
        return json.dumps({
            "name": self.name, "band": self.band.value, "weight": self.weight,
            "template": self.template, "version": self.version,
            "from_stage": self.from_stage, "selector": self.selector,
            "max_running": self.max_running, "schedule": self.schedule,
            "created_ms": self.created_ms, "by": self.by, "selected": self.selected,
        }, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Campaign:
        d = json.loads(raw)
        return cls(name=d["name"], band=Band(d["band"]), weight=float(d["weight"]),
                   template=d.get("template", ""), version=d.get("version", ""),
                   from_stage=d.get("from_stage", ""), selector=d.get("selector") or {},
                   max_running=d.get("max_running"), schedule=d.get("schedule"),
                   created_ms=int(d.get("created_ms", 0)), by=d.get("by", ""),
                   selected=int(d.get("selected", 0)))


#: Production exists on every board without being created.
PRODUCTION_CAMPAIGN = Campaign(name=PRODUCTION, band=Band.PRODUCTION, weight=1.0)


@dataclass(frozen=True)
class ControlView:
    """The board-wide control state as one agent read it (one round trip)."""

    campaigns: dict[str, Campaign]
    states: dict[str, str]
    vtime: dict[str, float]
    served: dict[str, int]
    pauses: dict[str, dict[str, Any]]
    limits: dict[str, int]  # effective: live over template-declared
    band_aging_ms: int
    now_ms: int

    def state(self, campaign: str) -> str:
        return self.states.get(campaign, CampaignState.ACTIVE.value)

    def paused(self, kind: str, name: str) -> bool:
        return f"{kind}:{name}" in self.pauses
