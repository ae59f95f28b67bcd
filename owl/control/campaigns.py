"""Campaigns: named reprocessing (or urgent) work with a band, a weight and limits.

A campaign is stored first (so agents schedule it from its first dataset on), then its
selection is rerun in batches; cancel withdraws its unfinished work shard by shard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from owl.control import actions
from owl.control.model import PRODUCTION, Band, Campaign, CampaignState
from owl.control.rerun import RerunReport, rerun
from owl.control.select import Selector, Walk, matching
from owl.control.view import read_view
from owl.errors import BoardError
from owl.keys import valid_name
from owl.template import Template


@dataclass(frozen=True)
class Created:
    campaign: Campaign
    walk: Walk
    report: RerunReport


def create(board: Any, *, name: str, selector: Selector, who: str, band: Band = Band.REPROCESSING,
           weight: float = 1.0, from_stage: str = "", target: Template | None = None,
           max_running: int | None = None, schedule: str | None = None,
           dry_run: bool = False, progress: Callable[[int], object] | None = None) -> Created:
    """Create a campaign and rerun its selection (or, with ``dry_run``, only report it)."""
    if not valid_name(name) or name == PRODUCTION:
        raise BoardError(f"campaign name {name!r}: use letters, digits, '.', '_', '-' (and "
                         f"not {PRODUCTION!r}, which every board has)")
    if weight <= 0:
        raise BoardError(f"campaign {name}: weight must be > 0, got {weight}")
    if schedule is not None:
        from owl.control.cron import check_expression

        check_expression(schedule)
    camp = Campaign(name=name, band=band, weight=weight, template=selector.template,
                    version=target.version if target is not None else "",
                    from_stage=from_stage, selector=selector.to_json(),
                    max_running=max_running, schedule=schedule,
                    created_ms=int(time.time() * 1000), by=who)
    if not dry_run:
        k = board.keys
        res = board.scripts["ctl_campaign"](
            keys=_ctl_keys(board), client=board.redis,
            args=["create", name, who, actions.EVENT_CAP, camp.to_json(), "created"])
        if res[0] == 0:
            raise BoardError(f"campaign {name!r} already exists on board {board.name!r} "
                             "(owl campaign show NAME)")
        if max_running is not None:
            board.redis.hset(k.ctl_key("tlimits"), f"campaign:{name}", max_running)
    walk = Walk()
    report = rerun(board, matching(board, selector, from_stage, walk), campaign=name, who=who,
                   why=f"campaign {name}", target=target, dry_run=dry_run, progress=progress)
    if not dry_run:
        board.redis.hset(board.keys.ctl_key("cselected"), name, walk.selected)
        actions.wake_all(board)
    return Created(camp, walk, report)


def rerun_selection(board: Any, camp: Campaign, who: str) -> RerunReport:
    """A scheduled campaign's tick: its selection again, under the campaign."""
    from owl.control.select import parse_filter

    sel = Selector(template=camp.template,
                   filters=tuple(parse_filter(f) for f in camp.selector.get("filters", [])))
    walk = Walk()
    return rerun(board, matching(board, sel, camp.from_stage, walk), campaign=camp.name,
                 who=who, why=f"campaign {camp.name} (schedule)")


def _ctl_keys(board: Any) -> list[str]:
    k = board.keys
    return [k.ctl_key(n) for n in ("campaigns", "cstate", "vtime", "served", "events")]


def get(board: Any, name: str) -> Campaign:
    view = read_view(board)
    if name not in view.campaigns:
        from difflib import get_close_matches

        near = get_close_matches(name, list(view.campaigns), 1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise BoardError(f"no campaign {name!r} on board {board.name!r}{hint}")
    return view.campaigns[name]


def set_state(board: Any, name: str, state: CampaignState, who: str, why: str) -> str:
    """pause / resume (active) / drain / cancel. Returns the previous state."""
    if name == PRODUCTION and state is CampaignState.CANCELLED:
        raise BoardError("production cannot be cancelled; pause it instead")
    get(board, name)
    if name == PRODUCTION and PRODUCTION not in board.redis.hkeys(board.keys.ctl_key("cstate")):
        board.scripts["ctl_campaign"](keys=_ctl_keys(board), client=board.redis,
                                      args=["create", name, "board", actions.EVENT_CAP,
                                            Campaign(PRODUCTION).to_json(), "first change"])
    res = board.scripts["ctl_campaign"](keys=_ctl_keys(board), client=board.redis,
                                        args=["state", name, who, actions.EVENT_CAP,
                                              state.value, why])
    if res[0] == 0:
        raise BoardError(f"campaign {name!r} is {res[1]}; it cannot become {state.value}")
    actions._fan_out(board, [("set", f"cstate:{name}", state.value)])
    if state is CampaignState.ACTIVE:
        _unpark(board, name, who)
    if state is CampaignState.CANCELLED:
        _withdraw(board, name, who, why)
    actions.wake_all(board)
    return str(res[1])


def _unpark(board: Any, name: str, who: str) -> None:
    k = board.keys
    for s in range(board.shards):
        left = 1
        while left:
            _, left = board.scripts["unpark"](
                keys=[k.counts(s), k.events(s), k.parked(s, name)], client=board.redis,
                args=[k.prefix(s), name, who, board.event_cap, board.wake(s), 1000])


def _withdraw(board: Any, name: str, who: str, why: str) -> int:
    k = board.keys
    reason = f"cancelled: campaign {name} by {who}" + (f" ({why})" if why else "")
    n = 0
    for s in range(board.shards):
        left = 1
        while left:
            dead, left = board.scripts["campaign_cancel"](
                keys=[k.counts(s), k.events(s), k.campaign_datasets(s, name), k.dead(s)],
                client=board.redis,
                args=[k.prefix(s), name, who, board.event_cap, 500, reason])
            n += int(dead)
    return n


@dataclass(frozen=True)
class Progress:
    """A campaign's figures, from the per-campaign counters (O(shards))."""

    campaign: Campaign
    state: str
    selected: int
    stages: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> state -> n
    done_per_s: float = 0.0
    eta_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.campaign
        return {"name": c.name, "state": self.state, "band": c.band.value, "weight": c.weight,
                "template": c.template, "version": c.version, "from_stage": c.from_stage,
                "selector": c.selector, "max_running": c.max_running,
                "schedule": c.schedule, "created_ms": c.created_ms, "by": c.by,
                "selected": self.selected, "stages": self.stages,
                "done_per_s": round(self.done_per_s, 3), "eta_s": self.eta_s}


def progress(board: Any) -> list[Progress]:
    """Every campaign with its per-stage counts, rate and ETA."""
    view = read_view(board)
    pipe = board.redis.pipeline(transaction=False)
    for s in range(board.shards):
        pipe.hgetall(board.keys.campaign_counts(s))
    pipe.hgetall(board.keys.ctl_key("cselected"))
    *shards, selected = pipe.execute()
    per: dict[str, dict[str, dict[str, int]]] = {}
    for counts in shards:
        for f, n in counts.items():
            camp, _tpl, stage, state = f.split("|")
            slot = per.setdefault(camp, {}).setdefault(stage, {})
            slot[state] = slot.get(state, 0) + int(n)
    out = []
    now = time.time() * 1000
    for name, camp in view.campaigns.items():
        stages = {st: {k: v for k, v in d.items() if v} for st, d in per.get(name, {}).items()}
        done = sum(d.get("done", 0) + d.get("skipped", 0) for d in stages.values())
        left = sum(v for d in stages.values() for k, v in d.items()
                   if k in ("waiting", "ready", "running", "retry", "held"))
        elapsed = max(1.0, (now - camp.created_ms) / 1000) if camp.created_ms else 0.0
        rate = done / elapsed if elapsed else 0.0
        eta = left / rate if rate > 0 and left else (0.0 if not left else None)
        out.append(Progress(camp, view.state(name), int(selected.get(name, 0)), stages, rate,
                            eta))
    return out
