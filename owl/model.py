"""Value types shared by the board, agents and executors."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """States of a work item (dataset, stage)."""

    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    RETRY = "retry"
    DONE = "done"
    DEAD = "dead"
    HELD = "held"
    SKIPPED = "skipped"


#: OPUS-style one-letter codes, used by ``owl status --grid``.
LETTERS: dict[State, str] = {
    State.WAITING: "w",
    State.READY: "r",
    State.RUNNING: "p",
    State.RETRY: "b",
    State.DONE: "c",
    State.DEAD: "x",
    State.HELD: "h",
    State.SKIPPED: "s",
}


class FailureClass(StrEnum):
    """Why an attempt failed; a template's retry policy may treat classes differently."""

    ERROR = "error"  # the task raised or exited non-zero
    TIMEOUT = "timeout"  # the stage's timeout elapsed
    CRASH = "crash"  # the worker process died (signal, segfault, OOM kill)
    LEASE = "lease"  # the lease expired: the agent vanished
    HELD = "held"  # condor: job held
    MEMORY = "memory"  # condor: held for exceeding request_memory
    REMOVED = "removed"  # condor: job removed outside owl
    EVICTED = "evicted"  # condor: job evicted and not rescheduled
    PERMANENT = "permanent"  # the task raised PermanentError (bad input): never retried


@dataclass(frozen=True)
class Claim:
    """A work item an agent holds, with the fencing token that proves it."""

    dataset: str
    stage: str
    template: str
    version: str
    token: int
    attempt: int
    path: str  # the dataset's registered input file ("" when it has none)
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)  # predecessor outputs
    memory_mb: int | None = None  # memory request escalated after a memory hold
    campaign: str = "production"  # the campaign of the dataset's current generation
    generation: int = 1
    limits: tuple[str, ...] = field(default=(), compare=False)  # limits it holds permits of
    # The last completion ({"pv", "pe", "env", "out"}, see TaskSpec.last) or None; file
    # records of the predecessors' provenance; the dataset's reference overrides.
    last: dict[str, Any] | None = field(default=None, compare=False)
    known: list[list[Any]] = field(default_factory=list, compare=False)
    refs: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker (local child or condor job) needs to run one task.

    It is JSON-serialisable (`to_json`/`from_json`) so it crosses process and machine
    boundaries without pickle.
    """

    dataset: str
    stage: str
    template: str
    token: int
    attempt: int
    task: str | None  # "module:function"
    argv: tuple[str, ...] | None  # run without a shell, placeholders expanded
    input_path: str
    inputs: dict[str, Any]  # predecessor stage -> its recorded outputs
    output_dir: str  # token-specific: a zombie never writes where the winner did
    params: dict[str, Any] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # reference overrides: name -> file
    timeout: float = 3600.0
    template_hash: str = ""
    executor: str = "local"
    reuse: bool = True  # a completion with the same provenance may be reused (skip-if-done)
    # The item's last completion, for skip-if-done: {"pv": item provenance, "pe": its
    # environment id, "env": the environment, "out": its outputs}; None when never done.
    last: dict[str, Any] | None = None
    known: list[list[Any]] = field(default_factory=list)  # file records of predecessors

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "stage": self.stage,
            "template": self.template,
            "token": self.token,
            "attempt": self.attempt,
            "task": self.task,
            "argv": list(self.argv) if self.argv is not None else None,
            "input_path": self.input_path,
            "inputs": self.inputs,
            "output_dir": self.output_dir,
            "params": self.params,
            "refs": self.refs,
            "timeout": self.timeout,
            "template_hash": self.template_hash,
            "executor": self.executor,
            "reuse": self.reuse,
            "last": self.last,
            "known": self.known,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskSpec:
        argv = data.get("argv")
        return cls(
            dataset=str(data["dataset"]),
            stage=str(data["stage"]),
            template=str(data["template"]),
            token=int(data["token"]),
            attempt=int(data["attempt"]),
            task=data.get("task"),
            argv=tuple(str(a) for a in argv) if argv is not None else None,
            input_path=str(data["input_path"]),
            inputs=dict(data.get("inputs") or {}),
            output_dir=str(data["output_dir"]),
            params=dict(data.get("params") or {}),
            refs={str(k): str(v) for k, v in (data.get("refs") or {}).items()},
            timeout=float(data.get("timeout", 3600.0)),
            template_hash=str(data.get("template_hash", "")),
            executor=str(data.get("executor", "local")),
            reuse=bool(data.get("reuse", True)),
            last=data.get("last"),
            known=list(data.get("known") or []),
        )


@dataclass(frozen=True)
class Provenance:
    """What a worker reports of a completed attempt, for the fenced completion to store
    (see :mod:`owl.provenance`)."""

    item: dict[str, Any]  # stored in the item's S.pv
    env_id: str  # digest of the environment, S.pe
    env: dict[str, Any] | None  # None when it is already on the board (a reused item)
    reused: bool = False
    # Header keywords reference rules select on, per member: [[config digest, config,
    # exposure start, its epoch seconds], ...]; indexed per shard for `owl refs diff`.
    selection: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"item": self.item, "env_id": self.env_id, "env": self.env,
                "reused": self.reused, "selection": self.selection}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        return cls(item=dict(data["item"]), env_id=str(data["env_id"]), env=data.get("env"),
                   reused=bool(data.get("reused", False)),
                   selection=list(data.get("selection") or []))


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt, as an executor reports it back to the agent."""

    dataset: str
    stage: str
    token: int
    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    traceback: str = ""
    failure: FailureClass | None = None
    seconds: float = 0.0
    log_tail: str = ""  # the end of what the task printed (kept with a failure)
    provenance: Provenance | None = None
