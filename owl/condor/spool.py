"""The on-disk layout of the condor executor's spool directory.

::

    SPOOL/events/AGENT.log            the job event log of one agent (HTCondor writes it)
    SPOOL/events/AGENT.log.offset     where the agent stopped reading it (JSON)
    SPOOL/items/STAGE/DATASET.TOKEN.spec.json    the TaskSpec a job runs
    SPOOL/items/STAGE/DATASET.TOKEN.result.json  what the job wrote back
    SPOOL/items/STAGE/DATASET.TOKEN.out / .err   the job's stdout / stderr

Names are made filesystem- and submit-language-safe (:func:`safe_name`); the token makes
every attempt's files distinct, so a zombie never overwrites a newer attempt's spec.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from owl.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
# These characters would need quoting in submit-language paths and arguments.
_BAD_ROOT = re.compile(r"[\s'\"$\x1f]")

SPEC_SUFFIX = ".spec.json"
RESULT_SUFFIX = ".result.json"
STDOUT_SUFFIX = ".out"
STDERR_SUFFIX = ".err"


def safe_name(name: str) -> str:
    """A file-name-safe form of ``name``, distinct for distinct names.

    Names made only of ``[A-Za-z0-9._-]`` (not starting with a dot) are kept as they are;
    others get their unsafe characters replaced and a short hash appended.
    """
    cleaned = _UNSAFE.sub("_", name)
    if cleaned == name and name and not name.startswith("."):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{cleaned.lstrip('.')}-{digest}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old file or the new one."""
    # One writer per path (paths carry the token), so a pid-named temporary is unique;
    # mkstemp's random names and json.dump's many small writes cost more than the rest.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Spool:
    """Paths inside one spool directory.

    Parameters
    ----------
    root : Path
        The spool directory; created on first use. It must not contain whitespace, quotes
        or ``$`` because its paths are written into submit descriptions.
    """

    root: Path

    def __post_init__(self) -> None:
        if _BAD_ROOT.search(str(self.root)):
            raise ConfigError(
                f"condor spool directory {str(self.root)!r} contains whitespace, a quote or "
                "'$'; choose a plain path (it is written into submit descriptions)"
            )

    def event_log(self, agent_id: str) -> Path:
        """The job event log shared by every job of ``agent_id``."""
        return self.root / "events" / f"{safe_name(agent_id)}.log"

    @staticmethod
    def offset_file(log: Path) -> Path:
        """Where the reading position of ``log`` is kept."""
        return log.with_name(log.name + ".offset")

    def item_base(self, stage: str, dataset: str, token: int) -> Path:
        """Path of one attempt's files, without suffix."""
        return self.root / "items" / safe_name(stage) / f"{safe_name(dataset)}.{token}"


def item_files(base: Path) -> tuple[Path, Path, Path, Path]:
    """The spec, result, stdout and stderr paths of the item at ``base``."""
    return (
        base.with_name(base.name + SPEC_SUFFIX),
        base.with_name(base.name + RESULT_SUFFIX),
        base.with_name(base.name + STDOUT_SUFFIX),
        base.with_name(base.name + STDERR_SUFFIX),
    )


def read_result(path: Path) -> dict[str, Any] | None:
    """The result a job wrote, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` characters of a text file ("" when it is absent)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
