"""Build :class:`owl.template.Template` values from checked template data, and the size
and duration forms templates use (sizes are MB, 1 GB = 1024 MB as HTCondor counts;
durations are seconds)."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from owl.executor import Resources
from owl.template import RetryPolicy, Stage, Template
from owl.template_checks import line_of

_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT])I?B?")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}
_SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
def parse_size_mb(value: int | str) -> int:
    """Turn a size (``512``, ``"512MB"``, ``"2GB"``, ``"1.5G"``) into whole MB, rounding up.

    An integer is already MB; 1 GB = 1024 MB, as HTCondor counts.
    """
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value.strip().upper())
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    return math.ceil(float(match[1]) * _MB_PER_UNIT[match[2]])


def parse_duration(value: float | str) -> float:
    """Turn a duration (``90``, ``"45s"``, ``"30m"``, ``"2h"``, ``"1h30m"``) into seconds."""
    if not isinstance(value, str):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _SECONDS_PER_UNIT[u] for n, u in parts)


def build(source: str, raw: bytes, tree: Any, data: dict[str, Any],
          stages: dict[str, dict[str, Any]]) -> Template:
    """The template of a checked document (``data`` with ``stages`` merged with defaults;
    ``tree`` for line numbers; ``raw`` for the content version when none is given)."""
    version = data.get("version") or "sha256:" + hashlib.sha256(raw).hexdigest()[:12]
    match = {k: tuple(v) if isinstance(v, list) else (v,) for k, v in data.get("match", {}).items()}
    return Template(
        name=data["name"],
        version=version,
        description=data.get("description", ""),
        match=match,
        ingest=tuple(data.get("ingest", ())),
        stages=tuple(_build_stage(tree, n, s) for n, s in stages.items()),
        source=source,
        limits=dict(data.get("limits", {})),
        scan_schedule=data.get("scan", {}).get("schedule"),
        scan_dirs=tuple(_scan_dirs(source, data.get("scan", {}).get("dirs", ()))),
    )


def _scan_dirs(source: str, dirs: Sequence[str]) -> list[str]:
    """Scan directories, relative ones taken from the template file's directory."""
    base = Path(source).parent if source else Path.cwd()
    return [str(Path(d) if Path(d).is_absolute() else (base / d).resolve()) for d in dirs]


def _build_stage(tree: Any, name: str, s: dict[str, Any]) -> Stage:
    after = s.get("after", [])
    res = s.get("resources", {})
    default = Resources()
    resources = Resources(
        cpus=res.get("cpus", default.cpus),
        memory_mb=parse_size_mb(res.get("memory", default.memory_mb)),
        disk_mb=parse_size_mb(res.get("disk", default.disk_mb)),
    )
    return Stage(
        name=name,
        after=(after,) if isinstance(after, str) else tuple(after),
        task=s.get("task"),
        argv=tuple(s["argv"]) if "argv" in s else None,
        executor=s.get("executor", "local"),
        resources=resources,
        timeout=parse_duration(s.get("timeout", Stage.timeout)),
        retry=_build_retry(s.get("retry", {})),
        priority=s.get("priority", 0),
        params=s.get("params", {}),
        condor=s.get("condor", {}),
        reuse=bool(s.get("reuse", True)),
        line=line_of(tree, ("stages", name)),
        pools=tuple(s.get("pools", ())),
        max_running=s.get("max_running"),
    )


def _build_retry(r: dict[str, Any]) -> RetryPolicy:
    backoff = r.get("backoff", {})
    renamed = {"base": "base", "factor": "factor", "max": "max_delay", "jitter": "jitter"}
    kwargs: dict[str, Any] = {renamed[k]: float(v) for k, v in backoff.items()}
    if "max_attempts" in r:
        kwargs["max_attempts"] = r["max_attempts"]
    if "no_retry" in r:
        kwargs["no_retry"] = tuple(r["no_retry"])
    if "memory_multiplier" in r:
        kwargs["memory_multiplier"] = float(r["memory_multiplier"])
    if "memory_cap" in r:
        kwargs["memory_cap_mb"] = parse_size_mb(r["memory_cap"])
    return RetryPolicy(**kwargs)
