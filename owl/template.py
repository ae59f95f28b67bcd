"""Templates: the pipeline description as frozen values.

Parsing and validation live in :mod:`owl.template_loader`; this module holds the values the
engine uses and the small graph queries on them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from owl.executor import Resources


@dataclass(frozen=True)
class RetryPolicy:
    """How failed attempts are retried.

    The delay before attempt n+1 is ``min(max_delay, base * factor**(n-1))`` stretched by a
    random factor in ``[1 - jitter, 1 + jitter]``. After ``max_attempts`` attempts the item is
    dead. ``no_retry`` lists failure classes that go straight to dead.
    """

    max_attempts: int = 3
    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2
    no_retry: tuple[str, ...] = ()
    memory_multiplier: float = 2.0  # condor: request_memory grows by this after a memory hold
    memory_cap_mb: int = 32768

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (1-based)."""
        raw = min(self.max_delay, self.base * self.factor ** max(0, attempt - 1))
        r = (rng or random).uniform(1.0 - self.jitter, 1.0 + self.jitter)
        return max(0.0, raw * r)


@dataclass(frozen=True)
class Stage:
    """One stage of a template."""

    name: str
    after: tuple[str, ...] = ()
    task: str | None = None  # "module:function"
    argv: tuple[str, ...] | None = None
    executor: str = "local"  # "local" | "condor"
    resources: Resources = field(default_factory=Resources)
    timeout: float = 3600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    priority: int = 0  # higher runs first
    params: dict[str, Any] = field(default_factory=dict)
    condor: dict[str, str] = field(default_factory=dict)  # extra submit attributes
    reuse: bool = True  # skip-if-done allowed (owl.reuse)
    line: int = 0  # line of the stage in its file, for messages
    pools: tuple[str, ...] = ()  # named resource pools a running item holds a permit of
    max_running: int | None = None  # board-wide limit of running items of this stage


@dataclass(frozen=True)
class Template:
    """A pipeline: which datasets it takes and the DAG of stages they go through."""

    name: str
    version: str  # explicit, or "sha256:<12 hex>" of the file's content
    description: str = ""
    match: dict[str, tuple[str, ...]] = field(default_factory=dict)  # header keyword -> values
    ingest: tuple[str, ...] = ()  # file name glob patterns
    stages: tuple[Stage, ...] = ()
    source: str = ""  # the file it was loaded from
    limits: dict[str, int] = field(default_factory=dict)  # pool -> board-wide limit
    scan_schedule: str | None = None  # cron: agents ingest scan_dirs at every tick
    scan_dirs: tuple[str, ...] = ()

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"template {self.name!r} has no stage {name!r}")

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def first_stages(self) -> tuple[str, ...]:
        """Stages with no predecessors: ready as soon as a dataset is registered."""
        return tuple(s.name for s in self.stages if not s.after)

    def successors(self, name: str) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages if name in s.after)

    def matches(self, header: dict[str, Any]) -> bool:
        """True when every ``match`` keyword of the header has one of the allowed values."""
        for key, allowed in self.match.items():
            value = header.get(key)
            if value is None or str(value).strip().upper() not in {a.upper() for a in allowed}:
                return False
        return True


def template_to_json(template: Template) -> dict[str, Any]:
    """The template as plain JSON (stored on the board when a dataset pins it)."""
    return {
        "name": template.name,
        "version": template.version,
        "description": template.description,
        "match": {k: list(v) for k, v in template.match.items()},
        "ingest": list(template.ingest),
        "source": template.source,
        "stages": [
            {
                "name": s.name,
                "after": list(s.after),
                "task": s.task,
                "argv": list(s.argv) if s.argv is not None else None,
                "executor": s.executor,
                "resources": {"cpus": s.resources.cpus, "memory_mb": s.resources.memory_mb,
                              "disk_mb": s.resources.disk_mb},
                "timeout": s.timeout,
                "retry": {"max_attempts": s.retry.max_attempts, "base": s.retry.base,
                          "factor": s.retry.factor, "max_delay": s.retry.max_delay,
                          "jitter": s.retry.jitter, "no_retry": list(s.retry.no_retry),
                          "memory_multiplier": s.retry.memory_multiplier,
                          "memory_cap_mb": s.retry.memory_cap_mb},
                "priority": s.priority,
                "params": s.params,
                "condor": s.condor,
                "reuse": s.reuse,
                "line": s.line,
                "pools": list(s.pools),
                "max_running": s.max_running,
            }
            for s in template.stages
        ],
        "limits": template.limits,
        "scan": ({"schedule": template.scan_schedule, "dirs": list(template.scan_dirs)}
                 if template.scan_schedule else None),
    }


def template_from_json(data: dict[str, Any]) -> Template:
    """Inverse of :func:`template_to_json`."""
    stages = []
    for s in data["stages"]:
        r = s["retry"]
        stages.append(
            Stage(
                name=s["name"],
                after=tuple(s["after"]),
                task=s["task"],
                argv=tuple(s["argv"]) if s["argv"] is not None else None,
                executor=s["executor"],
                resources=Resources(**s["resources"]),
                timeout=float(s["timeout"]),
                retry=RetryPolicy(
                    max_attempts=int(r["max_attempts"]), base=float(r["base"]),
                    factor=float(r["factor"]), max_delay=float(r["max_delay"]),
                    jitter=float(r["jitter"]), no_retry=tuple(r["no_retry"]),
                    memory_multiplier=float(r["memory_multiplier"]),
                    memory_cap_mb=int(r["memory_cap_mb"]),
                ),
                priority=int(s["priority"]),
                params=dict(s["params"]),
                condor=dict(s["condor"]),
                reuse=bool(s.get("reuse", True)),
                line=int(s.get("line", 0)),
                pools=tuple(s.get("pools", ())),
                max_running=s.get("max_running"),
            )
        )
    return Template(
        name=data["name"],
        version=data["version"],
        description=data.get("description", ""),
        match={k: tuple(v) for k, v in data.get("match", {}).items()},
        ingest=tuple(data.get("ingest", ())),
        stages=tuple(stages),
        source=data.get("source", ""),
        limits={str(k): int(v) for k, v in data.get("limits", {}).items()},
        scan_schedule=(data.get("scan") or {}).get("schedule"),
        scan_dirs=tuple((data.get("scan") or {}).get("dirs", ())),
    )


def template_hash(template: Template) -> str:
    """Digest of a template's content (where it was read from and line numbers aside)."""
    from owl.provenance import digest

    data = template_to_json(template)
    data.pop("source", None)
    for stage in data["stages"]:
        stage.pop("line", None)
    return digest(data)


def stage_graph(template: Template) -> dict[str, Any]:
    """What the Lua scripts need of a template: order, edges, priority and retry policy."""
    return {
        "order": list(template.stage_names),
        "stages": {
            s.name: {
                "a": list(s.after),
                "n": list(template.successors(s.name)),
                "p": s.priority,
                "m": s.retry.max_attempts,
                "b": s.retry.base,
                "f": s.retry.factor,
                "x": s.retry.max_delay,
                "j": s.retry.jitter,
                "nr": list(s.retry.no_retry),
            }
            for s in template.stages
        },
    }
