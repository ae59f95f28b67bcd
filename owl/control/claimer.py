"""The scheduled claim path of an agent (see docs/control.md, "Scheduling").

A claim round reads the per-shard, per-campaign ready counters of the stages served, orders
the campaigns (band, then virtual time), takes permits for the groups a limit binds, and
calls ``sched_claim.lua`` on the shards that have the work, best first. Charges to the
campaigns' virtual times go back to the control slot with the next round trip.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from owl.control import policy
from owl.control.view import CachedView
from owl.model import Claim
from owl.provenance import prior_of

#: A reservation of permits lives this long if its round never settles (agent died).
RESERVATION_MS = 30_000
#: An item's permit outlives its last renewal by this many leases. Reaping normally frees
#: it; the deadline only covers a reaper that dies between reaping and releasing, and must
#: exceed the longest an expired item can wait to be reaped (the lease, plus the time for a
#: dead agent's reaping share to pass to another agent: its heartbeat's 2 leases).
PERMIT_LEASES = 10
#: Hand-off claims (one shard, queued behind completions) go on for at most this long before
#: the agent makes a full round over every shard again: the round refreshes which campaigns
#: have work anywhere, so higher-band work in another shard waits at most about this long.
ROUND_S = 0.1


@dataclass(frozen=True)
class Group:
    """The items of one campaign and stage, with the permits a limit allows (-1: no cap)."""

    campaign: int  # index into the ranked campaigns
    stage: str
    cap: int
    limits: tuple[str, ...] = ()


class Claimer:
    """Claims for one board; keeps the cached control view and unsent charges."""

    def __init__(self, board: Any) -> None:
        self.board = board
        self.view = CachedView(board)
        self.pools: dict[tuple[str, str], tuple[str, ...]] = {}  # (template, stage) -> pools
        self._charges: dict[str, float] = {}
        self._idle: set[str] = set()
        self._live: set[str] = set()  # campaigns seen with ready work at the last full claim
        self._offset = 0
        self._round_at = -1e9  # monotonic time of the last full round
        self.prefer: int | None = None  # shard the next round starts at (a completion's)

    def handoff_ok(self) -> bool:
        """Whether a claim queued behind completions may stand in for a full round: always
        on a board with one claimable campaign (nothing in another shard goes before its
        work), else within ROUND_S of the last full round."""
        if len(policy.claimable(self.view.get())) < 2:
            return True
        return time.monotonic() - self._round_at < ROUND_S

    # -- charges ---------------------------------------------------------------------------

    def _queue_charges(self, pipe: Any) -> None:
        if not self._charges and not self._idle:
            return
        args: list[Any] = []
        for name, amount in self._charges.items():
            args += [name, repr(amount)]
        for name in self._idle - set(self._charges):
            args += [name, "0"]
        k = self.board.keys
        self.board.scripts["ctl_charge"](keys=[k.ctl_key("vtime"), k.ctl_key("served")],
                                         args=args, client=pipe)
        self._charges, self._idle = {}, set()

    def _charge(self, claims: Sequence[Claim], ranked: Sequence[policy.Ranked]) -> None:
        weights = {r.name: r.weight for r in ranked}
        for c in claims:
            w = weights.get(c.campaign, 1.0)
            self._charges[c.campaign] = self._charges.get(c.campaign, 0.0) + 1.0 / w

    # -- claim -----------------------------------------------------------------------------

    def claim(self, who: str, template: str, stages: Sequence[str], lease: float,
              limit: int) -> list[Claim]:
        if limit <= 0 or not stages:
            return []
        view = self.view.get()
        # stage and template pauses are checked by the claim script itself (the shard's copy),
        # so a resume counts at once, not when this agent's cached view is read again
        names = policy.claimable(view)
        if not stages or not names:
            return []
        b = self.board
        fields = [f"{n}|{template}|{st}|{state}" for n in names for st in stages
                  for state in ("ready", "retry")]
        pipe = b.scripts.batch()
        unseen = dict(self._charges)  # flushed now, not yet in the cached view
        self._queue_charges(pipe)
        for s in range(b.shards):
            pipe.command("HMGET", b.keys.campaign_counts(s), *fields)
        replies = b.scripts.execute(pipe, b.redis)[-b.shards:]
        self._round_at = time.monotonic()
        work: dict[int, set[tuple[str, str]]] = {}
        busy: set[str] = set()
        for s, vals in enumerate(replies):
            for j, v in enumerate(vals):
                if int(v or 0) > 0:
                    name, stage = names[j // (2 * len(stages))], stages[(j // 2) % len(stages)]
                    work.setdefault(s, set()).add((name, stage))
                    busy.add(name)
        self._idle |= set(names) - busy
        self._live = busy
        if unseen:
            self.view.invalidate()
        if not work:
            return []
        ranked = policy.rank(view, sorted(busy), unseen)
        groups = self._groups(view, template, ranked, stages,
                              {g for w in work.values() for g in w})
        groups, reservation = self._take_permits(groups, limit)
        # a round that stands in for a hand-off starts at the completed dataset's shard,
        # where its successors just became ready; otherwise the start rotates
        start = self._offset if self.prefer is None else self.prefer
        if self.prefer is None:
            self._offset = (start + 1) % b.shards
        self.prefer = None
        claims: list[Claim] = []
        # band by band across all shards, so a band strictly precedes lower ones board-wide
        for tier in sorted({r.band for r in ranked}):
            names_in = {r.name for r in ranked if r.band == tier}
            # the higher bands' work was taken from every shard that had it, above: it no
            # longer holds this band back
            live = self._live - {r.name for r in ranked if r.band < tier}
            shards = sorted((s for s in work if any(n in names_in for n, _ in work[s])),
                            key=lambda s: (s - start) % b.shards)
            for s in shards:
                if len(claims) >= limit:
                    break
                tiered = [g if ranked[g.campaign].name in names_in else replace(g, cap=0)
                          for g in groups]
                got = self.call(s, who, template, lease, limit - len(claims), ranked, tiered,
                                client=b.redis, live=live)
                claims += got
                groups = _spend(groups, ranked, got)
        if reservation:
            self._settle(reservation, groups, ranked, claims, lease)
        claims = self._with_limits(claims, ranked, groups)
        self._charge(claims, ranked)
        return claims

    def _groups(self, view: Any, template: str, ranked: Sequence[policy.Ranked],
                stages: Sequence[str], present: set[tuple[str, str]]) -> list[Group]:
        out = []
        for i, r in enumerate(ranked):
            for st in stages:
                if (r.name, st) in present:
                    lim = policy.limits_for(view, template, st,
                                            self.pools.get((template, st), ()), r.name)
                    out.append(Group(i, st, -1, lim))
        return out

    def _take_permits(self, groups: list[Group],
                      want: int) -> tuple[list[Group], dict[int, tuple[str, int]]]:
        """Reserve permits for every limited group (one round trip); caps the groups."""
        limited = [i for i, g in enumerate(groups) if g.limits]
        if not limited:
            return groups, {}
        b = self.board
        k = b.keys
        pipe = b.scripts.batch()
        rids = {}
        for i in limited:
            rid = f"r{uuid.uuid4().hex[:12]}"
            rids[i] = rid
            b.scripts["permit_take"](
                keys=[k.ctl_key("limits"), k.ctl_key("tlimits"), k.ctl_key("powners")],
                args=[k.ctl, want, rid, RESERVATION_MS, *groups[i].limits], client=pipe)
        got = b.scripts.execute(pipe, b.redis)
        out = list(groups)
        reservation = {}
        for i, n in zip(limited, got, strict=True):
            out[i] = replace(groups[i], cap=int(n))
            reservation[i] = (rids[i], int(n))
        return out, reservation

    def _settle(self, reservation: dict[int, tuple[str, int]], groups: Sequence[Group],
                ranked: Sequence[policy.Ranked], claims: Sequence[Claim], lease: float) -> None:
        b = self.board
        pipe = b.scripts.batch()
        for i, (rid, held) in reservation.items():
            g = groups[i]
            mine = [f"{c.dataset}|{c.stage}|{c.token}" for c in claims
                    if c.stage == g.stage and c.campaign == ranked[g.campaign].name]
            b.scripts["permit_settle"](
                keys=[b.keys.ctl_key("powners")],
                args=[b.keys.ctl, rid, held, int(PERMIT_LEASES * lease * 1000), len(g.limits),
                      *g.limits,
                      *mine], client=pipe)
        b.scripts.execute(pipe, b.redis)

    @staticmethod
    def _with_limits(claims: list[Claim], ranked: Sequence[policy.Ranked],
                     groups: Sequence[Group]) -> list[Claim]:
        lim = {(ranked[g.campaign].name, g.stage): g.limits for g in groups if g.limits}
        if not lim:
            return claims
        return [replace(c, limits=lim.get((c.campaign, c.stage), ())) for c in claims]

    # -- the script call -------------------------------------------------------------------

    def call(self, shard: int, who: str, template: str, lease: float, want: int,
             ranked: Sequence[policy.Ranked], groups: Sequence[Group], *, client: Any,
             live: set[str] | None = None) -> list[Claim]:
        """Run (or, on a pipeline, queue) ``sched_claim.lua`` on one shard; ``live``: the
        campaigns known to have ready work elsewhere (default: those of the last round)."""
        res = self.board.scripts["sched_claim"](
            keys=self.claim_keys(shard),
            args=self.claim_args(shard, who, template, lease, want, ranked, groups,
                                 self._live if live is None else live),
            client=client)
        return [] if res is None or not isinstance(res, list) else parse(res, template)

    def claim_keys(self, shard: int) -> list[str]:
        k = self.board.keys
        return [k.counts(shard), k.events(shard), k.leases(shard), k.delayed(shard),
                k.tokens(shard), k.shard_ctl(shard), k.pvenv(shard)]

    def claim_args(self, shard: int, who: str, template: str, lease: float, want: int,
                   ranked: Sequence[policy.Ranked], groups: Sequence[Group],
                   live: set[str]) -> list[Any]:
        b = self.board
        args: list[Any] = [b.keys.prefix(shard), who, int(lease * 1000), want, b.event_cap,
                           template, len(ranked)]
        for r in ranked:
            args += [r.name, r.band, repr(r.vtime), repr(r.weight),
                     1 if r.name in live else 0]
        for g in groups:
            args += [g.campaign + 1, g.stage, g.cap]
        return args

    def stages_with_work(self, template: str, stages: Sequence[str]) -> set[str]:
        """The stages with ready or retrying items a claim could take now: not paused (by
        stage or template) and in a campaign that is neither paused, drained nor cancelled."""
        view = self.view.get()
        if view.paused("template", template):
            return set()
        open_ = [st for st in stages if not view.paused("stage", f"{template}:{st}")]
        names = policy.claimable(view)
        if not open_ or not names:
            return set()
        b = self.board
        fields = [(st, f"{n}|{template}|{st}|{state}") for n in names for st in open_
                  for state in ("ready", "retry")]
        pipe = b.scripts.batch()
        for s in range(b.shards):
            pipe.command("HMGET", b.keys.campaign_counts(s), *(f for _, f in fields))
        found: set[str] = set()
        for vals in b.scripts.execute(pipe, b.redis):
            found |= {st for (st, _), v in zip(fields, vals, strict=True) if int(v or 0) > 0}
        return found

    def handoff(self, template: str, stages: Sequence[str]) -> tuple[
            list[policy.Ranked], list[Group]]:
        """Campaigns and unlimited groups for a claim queued behind completions (no
        permits can be taken inside that round trip, so limited groups wait for a round)."""
        view = self.view.get()
        ranked = policy.rank(view, policy.claimable(view), self._charges)
        groups = [g for g in self._groups(view, template, ranked, stages,
                                          {(r.name, s) for r in ranked for s in stages})
                  if not g.limits]
        return ranked, groups

    def charged(self, claims: Sequence[Claim], ranked: Sequence[policy.Ranked]) -> None:
        self._charge(claims, ranked)


def _spend(groups: list[Group], ranked: Sequence[policy.Ranked],
           got: Sequence[Claim]) -> list[Group]:
    """Lower the caps of limited groups by what a shard claimed."""
    if not got:
        return groups
    out = []
    for g in groups:
        if g.cap > 0:
            n = sum(1 for c in got if c.stage == g.stage and c.campaign == ranked[g.campaign].name)
            g = replace(g, cap=max(0, g.cap - n))
        out.append(g)
    return out


def parse(res: Sequence[Any], template: str) -> list[Claim]:
    """Claims from the flat reply of ``sched_claim.lua`` (16 values per item)."""
    return [Claim(dataset=res[j], stage=res[j + 1], template=template, version=res[j + 4],
                  token=int(res[j + 2]), attempt=int(res[j + 3]), path=res[j + 5],
                  inputs=json.loads(res[j + 6]),
                  memory_mb=int(res[j + 7]) if res[j + 7] else None,
                  campaign=str(res[j + 8]), generation=int(res[j + 9]),
                  **prior_of(res[j + 10:j + 16]))
            for j in range(0, len(res), 16)]


def now_ms() -> int:
    return int(time.time() * 1000)
