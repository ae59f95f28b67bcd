"""One settings object, read from the environment and overridden by command-line options."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from owl.errors import ConfigError

#: The ``OWL_PIPELINES`` entry that stands for the templates shipped with owl.
SHIPPED_PIPELINES = "@shipped"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    """Where the board is and how the engine behaves.

    Environment: ``OWL_HOME`` (default ``./.owl``: embedded board data, work outputs),
    ``OWL_REDIS_URL`` (a Redis server instead of the embedded one), ``OWL_BOARD`` (key
    prefix, default ``owl``; several boards can share one Redis), ``OWL_SHARDS`` (shards of
    a new board, default 8), ``OWL_LEASE`` (seconds, default 30), ``OWL_RESCAN`` (seconds
    between level-triggered rescans, default 2), ``OWL_EVENT_CAP`` (events kept per shard,
    default 20000), ``OWL_PIPELINES`` (template directories, ``:``-separated, replacing the
    default ``./pipelines`` then the templates shipped with owl; ``@shipped`` names those),
    ``OWL_WORK`` (task outputs,
    default ``$OWL_HOME/work``), ``OWL_WAIT_REPLICAS`` (replicas each transition waits
    for with ``WAIT``, default 0: see "What a failover can lose" in the README),
    ``OWL_REDIS_TIMEOUT`` (seconds a Redis reply may take before the server counts as not
    answering, default 10), ``OWL_REDIS_CA`` / ``OWL_REDIS_CERT`` / ``OWL_REDIS_KEY`` (TLS
    with a ``rediss://`` URL: the CA bundle that signed the server's certificate, and this
    client's certificate and key when the server asks for one; see owl.tls).
    """

    home: Path = field(default_factory=lambda: Path(".owl"))
    redis_url: str | None = None
    board: str = "owl"
    shards: int = 8
    lease: float = 30.0
    rescan: float = 2.0
    event_cap: int = 20000
    pipelines: tuple[Path, ...] = ()
    work: Path | None = None
    wait_replicas: int = 0
    redis_timeout: float = 10.0
    redis_ca: Path | None = None
    redis_cert: Path | None = None
    redis_key: Path | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        home = Path(env.get("OWL_HOME") or ".owl")
        pipelines = tuple(Path(p) for p in env.get("OWL_PIPELINES", "").split(os.pathsep) if p)
        base = cls(
            home=home,
            redis_url=env.get("OWL_REDIS_URL") or None,
            board=env.get("OWL_BOARD") or "owl",
            shards=int(_env_float("OWL_SHARDS", 8)),
            lease=_env_float("OWL_LEASE", 30.0),
            rescan=_env_float("OWL_RESCAN", 2.0),
            event_cap=int(_env_float("OWL_EVENT_CAP", 20000)),
            pipelines=pipelines,
            work=Path(env["OWL_WORK"]) if env.get("OWL_WORK") else None,
            wait_replicas=int(_env_float("OWL_WAIT_REPLICAS", 0)),
            redis_timeout=_env_float("OWL_REDIS_TIMEOUT", 10.0),
            redis_ca=Path(env["OWL_REDIS_CA"]) if env.get("OWL_REDIS_CA") else None,
            redis_cert=Path(env["OWL_REDIS_CERT"]) if env.get("OWL_REDIS_CERT") else None,
            redis_key=Path(env["OWL_REDIS_KEY"]) if env.get("OWL_REDIS_KEY") else None,
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given).checked()

    def checked(self) -> Settings:
        from owl.keys import valid_name

        if not valid_name(self.board):
            raise ConfigError(f"board name {self.board!r}: use letters, digits, '.', '_', '-'")
        if not 1 <= self.shards <= 1024:
            raise ConfigError(f"shards must be between 1 and 1024, got {self.shards}")
        if self.lease < 1.0:
            raise ConfigError(f"lease must be at least 1 second, got {self.lease}")
        if self.wait_replicas < 0:
            raise ConfigError(f"OWL_WAIT_REPLICAS must be 0 or more, got {self.wait_replicas}")
        if self.redis_timeout <= 0:
            raise ConfigError(f"OWL_REDIS_TIMEOUT must be positive, got {self.redis_timeout}")
        if self.rescan <= 0:
            raise ConfigError(f"rescan interval must be positive, got {self.rescan}")
        return self

    @property
    def work_dir(self) -> Path:
        return (self.work or self.home / "work").resolve()

    def template_dirs(self) -> tuple[Path, ...]:
        """The template directories, in order: an earlier one's template shadows a later
        one's of the same name.

        ``OWL_PIPELINES`` replaces the default (``./pipelines`` when it exists, then the
        templates shipped with owl): only the directories it names are read, the shipped
        ones only when it names them with the entry ``@shipped``.

        Raises
        ------
        ConfigError
            An ``OWL_PIPELINES`` entry is not a directory.
        """
        from owl.resources import pipelines_dir

        shipped = pipelines_dir()
        if not self.pipelines:
            dirs = [d for d in (Path("pipelines"), shipped) if d.is_dir()]
        else:
            dirs = [shipped if str(d) == SHIPPED_PIPELINES else d for d in self.pipelines]
            missing = [str(d) for d in dirs if not d.is_dir()]
            if missing:
                raise ConfigError(
                    f"OWL_PIPELINES names {', '.join(missing)}, which is not a directory; it "
                    f"lists template directories separated by {os.pathsep!r} (the entry "
                    f"{SHIPPED_PIPELINES!r} stands for the templates shipped with owl)"
                )
        unique = {d.resolve(): d for d in reversed(dirs)}  # a directory named twice: first
        return tuple(d for d in dirs if unique[d.resolve()] is d)
