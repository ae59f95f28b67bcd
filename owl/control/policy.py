"""Scheduling policy as pure functions: which campaigns go first, which limits bind."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from owl.control.model import CLAIMABLE, ControlView


@dataclass(frozen=True)
class Ranked:
    """A campaign in claim order: effective band, then virtual time."""

    name: str
    band: int
    vtime: float
    weight: float


def effective_band(rank: int, served_ms: int, now_ms: int, aging_ms: int) -> int:
    """A campaign's band, promoted by one for every ``aging_ms`` it waited with work."""
    if aging_ms <= 0:
        return rank
    return max(0, rank - max(0, now_ms - served_ms) // aging_ms)


def claimable(view: ControlView) -> list[str]:
    """Campaigns whose items may be claimed now (their state and campaign pauses)."""
    return [n for n in view.campaigns
            if view.state(n) in CLAIMABLE and not view.paused("campaign", n)]


def rank(view: ControlView, names: Iterable[str], extra_vtime: dict[str, float]) -> list[Ranked]:
    """Campaigns in claim order. ``extra_vtime`` holds charges not yet written back."""
    out = []
    for n in names:
        c = view.campaigns[n]
        served = view.served.get(n, c.created_ms or view.now_ms)
        out.append(Ranked(n, effective_band(c.band.rank, served, view.now_ms,
                                            view.band_aging_ms),
                          view.vtime.get(n, 0.0) + extra_vtime.get(n, 0.0), c.weight))
    out.sort(key=lambda r: (r.band, r.vtime, r.name))
    return out


def limits_for(view: ControlView, template: str, stage: str, pools: Iterable[str],
               campaign: str) -> tuple[str, ...]:
    """The limits that bind a claim of (template, stage) for a campaign."""
    names = [f"stage:{template}:{stage}", f"campaign:{campaign}",
             *(f"pool:{p}" for p in pools)]
    return tuple(n for n in names if n in view.limits)
