"""The blackboard: every state transition of a work item, each one Lua script.

This module is the only place that writes item state. It never reads-then-writes from
Python: each method below is one script call (or one pipeline of independent script calls),
so any number of agents and operators may act on the same board at once.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from owl import pins
from owl.control.actions import wake_shard
from owl.control.claimer import PERMIT_LEASES, Claimer, parse
from owl.errors import BoardError
from owl.keys import Keys, shard_of, valid_name
from owl.model import Claim, FailureClass, Provenance, State
from owl.scripts import Client, is_cluster, load_scripts
from owl.tasklog import MAX_ERROR_CHARS, MAX_TRACEBACK_CHARS, TAIL_BYTES, bounded
from owl.template import Template, stage_graph

#: Format version of the key layout and scripts, stored in the board's meta hash.
BOARD_FORMAT = "2"


@dataclass(frozen=True)
class Registered:
    """Result of registering one dataset."""

    dataset: str
    new: bool  # False: it was already on the board (a no-op)
    template: str
    version: str
    ready: int  # items made ready
    path: str = ""  # an existing dataset's registered input path


@dataclass(frozen=True)
class Result:
    """Result of a fenced transition (complete / fail).

    ``ok`` False means the caller's token is no longer current ("fenced"): its work must be
    discarded. ``state`` is the item's state afterwards (or the state that fenced it).
    """

    ok: bool
    state: str
    promoted: int = 0  # successors made ready by a completion
    due_ms: int = 0  # when a retry becomes ready again
    current_token: str = ""


@dataclass(frozen=True)
class OpResult:
    """Result of an operator action on one item."""

    dataset: str
    stage: str
    changed: bool
    before: str
    after: str


class Board:
    """A blackboard on one Redis, under one board name (key prefix).

    Parameters
    ----------
    client
        A redis client created with ``decode_responses=True``.
    name
        The board name; several boards may share one Redis.
    shards
        Shards of a *new* board. An existing board keeps the number it was created with.
    event_cap
        Approximate number of events kept per shard.
    wait_replicas
        Replicas each batch of transitions waits for (``WAIT``); 0 does not wait.
    create
        Create the board when it does not exist (its meta hash). False opens it read-only:
        nothing is written, so read commands work on a server that refuses writes (disk
        full), and a board that does not exist reads as empty.
    """

    def __init__(self, client: Client, name: str = "owl", *, shards: int = 8,
                 event_cap: int = 20000, wait_replicas: int = 0, create: bool = True) -> None:
        if not valid_name(name):
            raise BoardError(f"board name {name!r}: use letters, digits, '.', '_', '-'")
        self.redis = client
        self.name = name
        self.keys = Keys(name)
        self.event_cap = event_cap
        self.scripts = load_scripts(client, wait_replicas)
        self.shards = self._open(shards) if create else self._read_meta(shards)
        self._claimer: Claimer | None = None
        self._envs_sent: set[tuple[int, str]] = set()  # provenance environments stored
        self.sharded_pubsub = _sharded_pubsub(client)

    def _open(self, shards: int) -> int:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hsetnx(self.keys.meta, "shards", shards)
        pipe.hsetnx(self.keys.meta, "format", BOARD_FORMAT)
        pipe.hsetnx(self.keys.meta, "created", int(time.time()))
        pipe.hmget(self.keys.meta, ["shards", "format"])
        got = pipe.execute()[-1]
        if got[1] != BOARD_FORMAT:
            raise BoardError(
                f"board {self.name!r} has key format {got[1]!r}; this owl reads {BOARD_FORMAT!r}"
            )
        return int(got[0])

    def _read_meta(self, shards: int) -> int:
        got = self.redis.hmget(self.keys.meta, ["shards", "format"])
        if got[0] is None:
            return shards  # no such board (yet): every query finds nothing
        if got[1] != BOARD_FORMAT:
            raise BoardError(
                f"board {self.name!r} has key format {got[1]!r}; this owl reads {BOARD_FORMAT!r}"
            )
        return int(got[0])

    # -- helpers ---------------------------------------------------------------------------

    def shard(self, dataset: str) -> int:
        return shard_of(dataset, self.shards)

    def _common(self, shard: int) -> list[str]:
        return [self.keys.counts(shard), self.keys.events(shard)]

    def wake(self, shard: int) -> str:
        """The wake-up channel prefix the scripts of ``shard`` publish on (they append the
        template name): a shard channel in the shard's slot on a Redis 7 cluster (SPUBLISH
        reaches only the node that owns it), else one plain channel per template."""
        return self.keys.wake(shard) if self.sharded_pubsub else self.keys.notify

    def wake_channels(self, template: str) -> list[str]:
        """The channels an agent serving ``template`` listens on."""
        if self.sharded_pubsub:
            return [self.keys.wake(s) + template for s in range(self.shards)]
        return [self.keys.notify + template]

    # -- registration ----------------------------------------------------------------------

    def register(self, template: Template, dataset: str, path: str = "",
                 who: str = "ingest", meta: dict[str, Any] | None = None) -> Registered:
        """Register a dataset under a template; its first stages become ready.

        Registering a dataset that is already on the board changes nothing. ``meta`` (header
        keywords) is kept with the dataset for campaign selectors.
        """
        return self.register_many(template, [(dataset, path)], who,
                                  meta=None if meta is None else [meta])[0]

    def register_many(self, template: Template, datasets: Sequence[tuple[str, str]],
                      who: str = "ingest",
                      meta: Sequence[dict[str, Any]] | None = None) -> list[Registered]:
        """Register several datasets in one round trip (one script call each)."""
        for dataset, _ in datasets:
            if not valid_name(dataset):
                raise BoardError(
                    f"dataset id {dataset!r}: use letters, digits, '.', '_', '-' "
                    "(at most 128, starting with a letter or digit)"
                )
        graph = json.dumps(stage_graph(template), sort_keys=True)
        digest = pins.pin(self.redis, self.keys, template)
        pipe = self.scripts.batch()
        for i, (dataset, path) in enumerate(datasets):
            s = self.shard(dataset)
            m = json.dumps(meta[i], sort_keys=True, default=str) if meta else ""
            self.scripts["register"](
                keys=[self.keys.dataset(s, dataset), *self._common(s), self.keys.datasets(s)],
                args=[self.keys.prefix(s), dataset, template.name, template.version, path,
                      graph, digest, who, self.event_cap, self.wake(s), m],
                client=pipe,
            )
        out = []
        replies = self.scripts.execute(pipe, self.redis)
        for (dataset, _), res in zip(datasets, replies, strict=True):
            if res[0] == -1:
                raise BoardError(pins.conflict_text(template))
            if res[0] == 1:
                out.append(Registered(dataset, True, template.name, template.version,
                                      int(res[1])))
            else:
                out.append(Registered(dataset, False, str(res[1]), str(res[2]), 0,
                                      path=str(res[3]) if len(res) > 3 else ""))
        return out

    def stored_template(self, name: str, version: str) -> Template:
        """The template a dataset was registered with (its pinned version)."""
        return pins.stored(self.redis, self.keys, self.name, name, version)[0]

    # -- agent transitions -----------------------------------------------------------------

    def claim(self, who: str, template: str, stages: Sequence[str], lease: float,
              limit: int) -> list[Claim]:
        """Claim up to ``limit`` ready items of the given stages, in the board's scheduling
        order (bands, fair share between campaigns, limits, pauses: docs/control.md)."""
        return self.claimer.claim(who, template, stages, lease, limit)

    @property
    def claimer(self) -> Claimer:
        if self._claimer is None:
            self._claimer = Claimer(self)
        return self._claimer

    def renew(self, claims: Iterable[Claim], lease: float) -> dict[tuple[str, str, int], int]:
        """Extend leases. The answer per (dataset, stage, token): 1 still ours (renewed),
        2 still ours but paused by an operator hold, 0 fenced (no longer ours).

        Answers are keyed by token: two claims of one item (a stale adopted one and a
        newer one) each get their own answer, so the newer never masks the stale."""
        claims = list(claims)
        by_shard: dict[int, list[Claim]] = {}
        for c in claims:
            by_shard.setdefault(self.shard(c.dataset), []).append(c)
        if not by_shard:
            return {}
        pipe = self.scripts.batch()
        for s, group in by_shard.items():
            args: list[Any] = [self.keys.prefix(s), int(lease * 1000)]
            for c in group:
                args += [c.dataset, c.stage, c.token]
            self.scripts["renew"](keys=[self.keys.leases(s)], args=args, client=pipe)
        limited = [f"{c.dataset}|{c.stage}|{c.token}" for c in claims if c.limits]
        if limited:
            self._permits(pipe, limited, life=int(PERMIT_LEASES * lease * 1000))
        out: dict[tuple[str, str, int], int] = {}
        replies = self.scripts.execute(pipe, self.redis)[:len(by_shard)]
        for group, res in zip(by_shard.values(), replies, strict=True):
            for c, answer in zip(group, res, strict=True):
                out[(c.dataset, c.stage, c.token)] = int(answer)
        return out

    def complete(self, claim: Claim, outputs: dict[str, Any], who: str,
                 provenance: Provenance | None = None) -> Result:
        """Fenced completion with the attempt's provenance; ready successors in the same
        step."""
        return self.complete_many([(claim, outputs)], who, provenance=[provenance])[0][0]

    def complete_many(self, done: Sequence[tuple[Claim, dict[str, Any]]], who: str, *,
                      then_claim: tuple[str, Sequence[str], float, int] | None = None,
                      provenance: Sequence[Provenance | None] = (),
                      ) -> tuple[list[Result], list[Claim]]:
        """Several fenced completions in one round trip.

        ``provenance`` gives each completion's record (parallel to ``done``; missing or None
        stores none). ``then_claim=(template, stages, lease, limit)`` adds, in the same
        round trip, a claim on the shard of the last completed dataset, where its successors
        just became ready: a hand-off from one stage to the next costs no extra round trip.
        """
        ranked: list[Any] = []
        groups: list[Any] = []
        if then_claim is not None and not self.claimer.handoff_ok():
            then_claim = None  # time for a full round: the caller claims after this
            if done:
                self.claimer.prefer = self.shard(done[-1][0].dataset)
        if then_claim is not None and then_claim[3] > 0 and done:
            ranked, groups = self.claimer.handoff(then_claim[0], then_claim[1])
        if not groups:
            then_claim = None
        pipe = self.scripts.batch()
        records = list(provenance) + [None] * (len(done) - len(provenance))
        fresh: dict[tuple[int, str], int] = {}  # environment -> the completion sending it
        for i, ((claim, outputs), prov) in enumerate(zip(done, records, strict=True)):
            s = self.shard(claim.dataset)
            k = self.keys
            # who wakes the other agents for successors that went into an empty queue:
            # this caller when it claims behind the completions ('2', see below), else the
            # script; a completion that frees permits wakes them always ('')
            waking = "" if claim.limits else ("2" if then_claim is not None else "1")
            self.scripts["complete"](
                keys=[*self._common(s), k.leases(s), k.dataset(s, claim.dataset),
                      k.pvenv(s), k.selcfg(s), k.refuse(s)],
                args=[k.prefix(s), claim.dataset, claim.stage, claim.token,
                      json.dumps(outputs, sort_keys=True), who, self.event_cap,
                      self.wake(s), *_provenance_args(prov, self._envs_sent, s, fresh, i),
                      waking],
                client=pipe,
            )
        if then_claim is not None:
            template, _, lease, limit = then_claim
            self.claimer.call(self.shard(done[-1][0].dataset), who, template, lease, limit,
                              ranked, groups, client=pipe)
        replies = self.scripts.execute(pipe, self.redis)
        # permits go once the items are out of 'running' on every node (not in the batch: a
        # cluster runs a batch node by node)
        self._release([c for c, _ in done], self.redis)
        # An environment counts as stored once a completion that sent it succeeded.
        self._envs_sent |= {key for key, i in fresh.items() if replies[i][0] == 1}
        out = []
        for res in replies[:len(done)]:
            if res[0] == 1:
                out.append(Result(True, str(State.DONE), promoted=int(res[1])))
            else:
                out.append(Result(False, str(res[2]), current_token=str(res[3])))
        claims: list[Claim] = []
        if then_claim is not None:
            claims = parse(replies[-1], then_claim[0])
            self.claimer.charged(claims, ranked)
            # wake the other agents (one message per shard) for the successors that went
            # into an empty queue and that this claim did not take
            taken = {(c.dataset, c.stage) for c in claims}
            for shard, template in sorted({
                    (self.shard(claim.dataset), claim.template)
                    for (claim, _), res in zip(done, replies, strict=False)
                    if res[0] == 1 for st in res[2:] if (claim.dataset, str(st)) not in taken}):
                wake_shard(self, shard, template)
        return out, claims

    def release_permits(self, claims: Sequence[Claim]) -> None:
        """An agent fenced out of these items (cancelled, taken over) frees their permits."""
        self._release(claims, self.redis)

    def _release(self, claims: Sequence[Claim], client: Any) -> None:
        """Release the permits these items hold; call it after they left 'running'."""
        limited = [f"{c.dataset}|{c.stage}|{c.token}" for c in claims if c.limits]
        if limited:
            self._permits(client, limited)

    def _permits(self, client: Any, items: Sequence[str], life: int | None = None) -> Any:
        return self.scripts["permit_release"](
            keys=[self.keys.ctl_key("powners")],
            args=[self.keys.ctl, "" if life is None else life, *items], client=client)

    def fail(self, claim: Claim, failure: FailureClass, message: str, traceback: str,
             delay: float, who: str, *, memory_mb: int | None = None,
             final: bool = False, log_tail: str = "") -> Result:
        """Fenced report of a failed attempt: retry after ``delay`` seconds, or dead.

        ``memory_mb`` records an escalated memory request for the next attempt; ``final``
        makes the item dead at once (no attempt could succeed). ``log_tail`` (the end of
        what the task printed) is kept in the failure record. Whatever the executor, the
        record stays within `owl.tasklog`'s limits (the local executor already cut them and
        kept the full text in the attempt's ``.owl/error.txt``).
        """
        s = self.shard(claim.dataset)
        message = bounded(message, MAX_ERROR_CHARS + 512, "error message")
        traceback = bounded(traceback, MAX_TRACEBACK_CHARS + 512, "traceback", tail=True)
        log_tail = bounded(log_tail, TAIL_BYTES, "output", tail=True)
        record = json.dumps({"attempt": claim.attempt, "class": str(failure),
                             "message": message, "traceback": traceback,
                             "token": claim.token, "who": who,
                             "t": int(time.time() * 1000), "log_tail": log_tail})
        res = self.scripts["fail"](
            client=self.redis,
            keys=[*self._common(s), self.keys.leases(s), self.keys.dataset(s, claim.dataset),
                  self.keys.delayed(s), self.keys.dead(s)],
            args=[self.keys.prefix(s), claim.dataset, claim.stage, claim.token, str(failure),
                  message[:2000], record, int(delay * 1000), who, self.event_cap,
                  "" if memory_mb is None else memory_mb, "1" if final else "0"],
        )
        self._release([claim], self.redis)  # after the item left 'running', never before
        if res[0] == 1:
            return Result(True, str(res[1]), due_ms=int(res[2]))
        return Result(False, str(res[2]), current_token=str(res[3]))

    def giveback(self, claim: Claim, who: str) -> Result:
        """Hand a running item back unfinished (agent shutdown); the attempt does not count."""
        s = self.shard(claim.dataset)
        res = self.scripts["giveback"](
            client=self.redis,
            keys=[*self._common(s), self.keys.leases(s), self.keys.dataset(s, claim.dataset)],
            args=[self.keys.prefix(s), claim.dataset, claim.stage, claim.token, who,
                  self.event_cap, self.wake(s)],
        )
        self._release([claim], self.redis)  # after the item left 'running', never before
        if res[0] == 1:
            return Result(True, str(State.READY))
        return Result(False, str(res[2]), current_token=str(res[3]))

    def reap(self, who: str, limit: int = 100, shards: Iterable[int] | None = None,
             settle: float = 0.0) -> list[tuple[str, str, str]]:
        """Expire overdue leases on ``shards`` (default every shard): (dataset, stage,
        'retry'|'dead'|'ready') each ('ready': released after a hold, and no agent resumed
        it). The permits the expired items held are released. A server (a cluster node)
        up for less than ``settle`` seconds reaps nothing: after an outage longer than the
        lease every deadline has passed, and the owners still alive renew first."""
        pipe = self.scripts.batch()
        for s in range(self.shards) if shards is None else shards:
            self.scripts["reap"](
                keys=[*self._common(s), self.keys.leases(s), self.keys.delayed(s),
                      self.keys.dead(s)],
                args=[self.keys.prefix(s), who, self.event_cap, limit, random.random(),
                      self.wake(s), math.ceil(settle)],
                client=pipe,
            )
        out = []
        tokens = []
        for res in self.scripts.execute(pipe, self.redis):
            for j in range(0, len(res), 4):
                out.append((str(res[j]), str(res[j + 1]), str(res[j + 2])))
                tokens.append(f"{res[j]}|{res[j + 1]}|{res[j + 3]}")
        if tokens:
            self._permits(self.redis, tokens)
        return out

    # -- operator transitions --------------------------------------------------------------

    def hold(self, items: Sequence[tuple[str, str]], who: str,
             reason: str = "held by operator") -> list[OpResult]:
        return self._operate("hold", items, who, reason)

    def release(self, items: Sequence[tuple[str, str]], who: str,
                lease: float = 30.0) -> list[OpResult]:
        """Release held items; a paused running item resumes with a fresh ``lease``."""
        return self._operate("release", items, who, "", lease)

    def retry(self, items: Sequence[tuple[str, str]], who: str) -> list[OpResult]:
        return self._operate("retry", items, who, "")

    def skip(self, items: Sequence[tuple[str, str]], who: str,
             reason: str = "skipped by operator") -> list[OpResult]:
        return self._operate("skip", items, who, reason)

    def _operate(self, action: str, items: Sequence[tuple[str, str]], who: str,
                 reason: str, lease: float = 30.0) -> list[OpResult]:
        pipe = self.scripts.batch()
        for dataset, stage in items:
            s = self.shard(dataset)
            k = self.keys
            prefix, ds_key = k.prefix(s), k.dataset(s, dataset)
            common = [*self._common(s)]
            if action in ("hold", "skip"):
                keys = [*common, k.leases(s), ds_key, k.delayed(s), k.dead(s), k.held(s)]
            elif action == "release":
                keys = [*common, ds_key, k.held(s), k.dead(s), k.leases(s)]
            else:
                keys = [*common, ds_key, k.delayed(s), k.dead(s)]
            args: list[Any] = [prefix, dataset, stage, who, self.event_cap]
            if action == "hold":
                args += [reason, self.wake(s)]
            elif action == "skip":
                args += [self.wake(s), reason]
            elif action == "release":
                args += [self.wake(s), int(lease * 1000)]
            else:
                args.append(self.wake(s))
            self.scripts[action](keys=keys, args=args, client=pipe)
        out = []
        after_ok = {"hold": "held", "skip": "skipped", "retry": "ready"}
        replies = self.scripts.execute(pipe, self.redis)
        for (dataset, stage), res in zip(items, replies, strict=True):
            if res[0] == 1:
                after = str(res[1]) if action == "release" else after_ok[action]
                before = "held" if action == "release" else str(res[1])
                out.append(OpResult(dataset, stage, True, before, after))
            else:
                out.append(OpResult(dataset, stage, False, str(res[1]), str(res[1])))
        return out

    # -- maintenance -----------------------------------------------------------------------

    def destroy(self) -> int:
        """Delete every key of this board (tests, and `owl board destroy`)."""
        n = 0
        batch: list[str] = []
        for key in self.redis.scan_iter(match=self.keys.all_keys(), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                n += int(self.redis.unlink(*batch))
                batch.clear()
        if batch:
            n += int(self.redis.unlink(*batch))
        return n


def _sharded_pubsub(client: Client) -> bool:
    """Whether wake-ups go out as shard channels: a cluster whose nodes run Redis >= 7."""
    if not is_cluster(client):
        return False
    node = client.get_random_node()
    version = client.get_redis_connection(node).info("server")["redis_version"]
    return int(str(version).split(".")[0]) >= 7
def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _provenance_args(prov: Provenance | None, sent: set[tuple[int, str]], shard: int,
                     fresh: dict[tuple[int, str], int], index: int) -> list[str]:
    """ARGV[9..14] of complete.lua for one record. An environment is sent once per shard
    and process (thousands of items share it); should it be gone from the board, a later
    reuse check finds no environment and the item runs."""
    if prov is None:
        return ["", "", "", "", "", ""]
    env = ""
    if prov.env and (shard, prov.env_id) not in sent and (shard, prov.env_id) not in fresh:
        env = _compact(prov.env)
        fresh[(shard, prov.env_id)] = index
    selected, configs = "", ""
    if prov.selection:
        selected = ";".join(f"{sel[0]}|{sel[3]}" for sel in prov.selection)
        configs = _compact({sel[0]: _compact(sel[1]) for sel in prov.selection})
    return [_compact(prov.item), prov.env_id, env, "1" if prov.reused else "", selected,
            configs]
