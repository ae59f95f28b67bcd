"""``owl explain``: why an item would run, rerun or was reused, and why it is not running.

For each stage it compares what the item would run with now (the stored template's task,
code version and params, the board's reference overrides, its inputs' contents) with the
provenance of its last completion (:func:`owl.reuse.differences`, the worker's own
skip-if-done test), and reads the board for what keeps it from running now: a hold or pause,
a predecessor not done, a retry backoff, a dead end, or no agent serving the stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from owl import queries
from owl.attempt import current
from owl.board import Board
from owl.errors import BoardError
from owl.model import State, TaskSpec
from owl.provenance import known_files, outputs_of
from owl.reuse import differences
from owl.template_checks import did_you_mean


@dataclass(frozen=True)
class Explanation:
    """What ``owl explain`` says about one item."""

    stage: str
    state: str
    verdict: str  # one line: done / reused / would run / would be reused
    differences: tuple[str, ...] = ()  # what differs from the last completion
    blocked: tuple[str, ...] = ()  # why it is not running now
    last: dict[str, Any] = field(default_factory=dict)  # the last completion, summarised


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def explain(board: Board, dataset: str, stage: str | None = None, *,
            rehash: bool = False) -> list[Explanation]:
    """Explanations for every stage of a dataset (or one).

    Raises
    ------
    BoardError
        When the dataset is not on the board or has no such stage.
    """
    s = board.shard(dataset)
    raw = board.redis.hgetall(board.keys.dataset(s, dataset))
    if not raw:
        raise BoardError(f"dataset {dataset!r} is not on board {board.name!r}")
    template = board.stored_template(raw["t"], raw["v"])
    names = template.stage_names
    if stage is not None and stage not in names:
        raise BoardError(f"template {template.name!r} has no stage {stage!r}"
                         f"{did_you_mean(stage, names)}; its stages are {', '.join(names)}")
    envs = {pe: board.redis.hget(board.keys.pvenv(s), pe)
            for pe in {raw.get(f"{n}.pe") for n in names} if pe}
    agents = queries.agents(board)
    out = []
    for st in [stage] if stage else names:
        out.append(_one(board, dataset, raw, template, st, envs, agents, rehash))
    return out


def _last(raw: dict[str, str], stage: str, envs: dict[str, str | None]) -> dict[str, Any] | None:
    pv = raw.get(f"{stage}.pv")
    if not pv:
        return None
    pe = raw.get(f"{stage}.pe", "")
    env = envs.get(pe)
    out = raw.get(f"{stage}.out")
    return {"pv": json.loads(pv), "pe": pe, "env": json.loads(env) if env else None,
            "out": json.loads(out) if out else {}}


def _one(board: Board, dataset: str, raw: dict[str, str], template: Any, stage: str,
         envs: dict[str, str | None], agents: list[dict[str, Any]],
         rehash: bool) -> Explanation:
    st = template.stage(stage)
    state = raw.get(f"{stage}.s", "")
    last = _last(raw, stage, envs)
    preds = [_last(raw, p, envs) for p in st.after]
    inputs = {p: json.loads(raw.get(f"{p}.out") or "{}") for p in st.after}
    spec = TaskSpec(dataset=dataset, stage=stage, template=template.name, token=0,
                    attempt=0, task=st.task, argv=st.argv, input_path=raw.get("p", ""),
                    inputs=inputs, output_dir="", params=st.params,
                    refs=json.loads(raw.get("rf") or "{}"), reuse=st.reuse, last=last)
    known = known_files([p["pv"] for p in [last, *preds] if p])
    diffs = tuple(differences(current(spec, known), last, rehash=rehash))
    summary: dict[str, Any] = {}
    if last:
        pv, env = last["pv"], last.get("env") or {}
        summary = {"at": _when(int(pv.get("t0", 0))), "reused": bool(pv.get("r")),
                   "host": env.get("h", ""), "executor": env.get("x", ""),
                   "job": pv.get("j", ""), "seconds": pv.get("du"), "cpu": pv.get("cpu"),
                   "peak_kb": pv.get("mem"), "outputs": [r[0] for r in outputs_of(pv)]}
    if state == State.DONE and last:
        how = "reused (its provenance matched the completion before)" if last["pv"].get("r") \
            else "ran"
        again = ("a rerun now would be reused" if not diffs and st.reuse
                 else "a rerun now would run" + ("" if st.reuse else " (reuse: false)"))
        verdict = f"done at {summary['at']}: {how}; {again}"
    elif state == State.RUNNING:
        verdict = f"running (attempt {raw.get(f'{stage}.a', '?')}, owner "\
                  f"{raw.get(f'{stage}.o', '?')})"
    elif not st.reuse:
        verdict = "would run: reuse: false in the template"
    elif not diffs:
        verdict = "would be reused: nothing differs from its last completion"
    else:
        verdict = "would run"
    return Explanation(stage=stage, state=state, verdict=verdict, differences=diffs,
                       blocked=tuple(_blocked(board, raw, template, stage, state, agents)),
                       last=summary)


def _blocked(board: Board, raw: dict[str, str], template: Any, stage: str, state: str,
             agents: list[dict[str, Any]]) -> list[str]:
    """Why an item that is not done is not running now."""
    if state in (State.DONE, State.RUNNING, State.SKIPPED):
        return []
    out = []
    if state == State.HELD:
        out.append(f"held by an operator (it was {raw.get(f'{stage}.hp', '?')})")
    if state == State.DEAD:
        out.append(f"dead after {raw.get(f'{stage}.a', '?')} attempt(s): "
                   f"{raw.get(f'{stage}.e', '')}; `owl retry` makes it ready")
    if state == State.RETRY:
        out.append(f"in backoff after a failed attempt until "
                   f"{_when(int(raw.get(f'{stage}.d', 0)))}: {raw.get(f'{stage}.e', '')}")
    if state == State.WAITING:
        for pred in template.stage(stage).after:
            ps = raw.get(f"{pred}.s", "missing")
            if ps not in (State.DONE, State.SKIPPED):
                out.append(f"waiting for predecessor {pred} ({ps})")
    if raw.get("P"):
        out.append("the dataset is paused")
    out += _paused(board, raw["t"], stage, raw.get("cp", "production"))
    serving = [a for a in agents if a.get("template") == raw["t"]
               and stage in (a.get("stages") or [])]
    if not serving:
        out.append(f"no agent serves {raw['t']}:{stage} ({len(agents)} agent(s) running)")
    return out


def _paused(board: Board, template: str, stage: str, campaign: str) -> list[str]:
    from owl.control.view import read_view

    view = read_view(board)
    out = []
    for kind, name in (("stage", f"{template}:{stage}"), ("template", template),
                       ("campaign", campaign)):
        if view.paused(kind, name):
            why = view.pauses.get(f"{kind}:{name}", {})
            out.append(f"{kind} {name} is paused"
                       + (f": {why.get('reason')}" if isinstance(why, dict)
                          and why.get("reason") else ""))
    if view.state(campaign) not in ("active", "draining"):
        out.append(f"campaign {campaign} is {view.state(campaign)}")
    return out
