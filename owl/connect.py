"""Open the board the settings point at: a Redis URL, a Redis Cluster, or the embedded server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
from redis import Redis
from redis.cluster import RedisCluster

from owl.board import Board
from owl.config import Settings
from owl.errors import ConfigError, UnreachableError
from owl.redact import redact
from owl.scripts import Client
from owl.server import ensure_server

#: Seconds a command may wait for its reply before the server counts as not answering
#: (``OWL_REDIS_TIMEOUT``): a stopped or hung Redis is an error, never an endless wait.
DEFAULT_TIMEOUT_S = 10.0
#: Idle connections are checked with PING before use after this many seconds.
HEALTH_CHECK_S = 30

#: URL schemes that ask for redis-py's cluster client, and the plain scheme each stands for.
CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}


def redis_url(settings: Settings) -> str:
    """The URL to use: ``OWL_REDIS_URL``/``--redis``, else the embedded server (started
    on demand under ``OWL_HOME``)."""
    return settings.redis_url or ensure_server(settings.home)


def _check_db(url: str) -> None:
    """redis-py reads ``redis://host/notanumber`` as database 0: refuse it instead."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    if parts.scheme in ("redis", "rediss") and path and not path.isdigit():
        raise ConfigError(redact(f"Redis URL {url}: the path must be a database number "
                                 f"(e.g. /13), got {path!r}"))


def _timeouts(timeout: float) -> dict[str, Any]:
    return {"socket_timeout": timeout, "socket_connect_timeout": min(5.0, timeout),
            "health_check_interval": HEALTH_CHECK_S}


def not_answering(url: str, timeout: float) -> UnreachableError:
    """The error for a server that accepts connections but does not reply (stopped, hung)."""
    return UnreachableError(redact(
        f"Redis at {url} is not answering (no reply within {timeout:g} s): is the server "
        "stopped (SIGSTOP), overloaded or partitioned? OWL_REDIS_TIMEOUT sets the limit"))


def connect(url: str, timeout: float = DEFAULT_TIMEOUT_S,
            tls: dict[str, Any] | None = None) -> Client:
    """A client for ``url``, reachable (PING answered within `timeout` seconds).

    ``redis+cluster://host:port`` (or ``rediss+cluster://``) opens redis-py's cluster client
    from that seed node. A ``redis://`` URL whose server reports ``cluster_enabled:1`` is
    switched to the cluster client too, so a cluster node's address just works; a plain
    client would meet MOVED on the first key of another node. ``tls`` holds the TLS options
    of a ``rediss://`` URL (owl.tls).
    """
    _check_db(url)
    extra = {**_timeouts(timeout), **(tls or {})}
    try:
        for scheme, plain in CLUSTER_SCHEMES.items():
            if url.startswith(scheme):
                return _cluster(plain + url.removeprefix(scheme), extra)
        conn = Redis.from_url(url, decode_responses=True, **extra)
        _ping(conn)
        if not url.startswith("unix:") and _cluster_enabled(conn):
            conn.close()
            return _cluster(url, extra)
        return conn
    except redis.ResponseError as exc:  # e.g. "DB index is out of range", AUTH refused
        raise ConfigError(redact(f"Redis at {url} refused the connection: {exc}")) from exc
    except redis.TimeoutError as exc:
        raise not_answering(url, timeout) from exc
    except redis.ConnectionError as exc:
        raise UnreachableError(redact(f"cannot reach Redis at {url}: {exc}")) from exc
    except ValueError as exc:
        raise ConfigError(redact(f"cannot reach Redis at {url}: {exc}")) from exc
    except redis.exceptions.RedisClusterException as exc:
        raise ConfigError(redact(f"Redis Cluster at {url}: {exc}")) from exc


def _ping(conn: Redis) -> None:
    """PING; a server refusing writes (disk full: Redis answers PING with MISCONF then)
    still answers, and reading from it works."""
    from owl.faults import refuses_writes

    try:
        conn.ping()
    except redis.ResponseError as exc:
        if not refuses_writes(exc):
            raise


def _cluster_enabled(conn: Redis) -> bool:
    try:
        info = conn.info("cluster")
    except redis.ResponseError:  # a server with INFO restricted by ACL: take it as plain
        return False
    return bool(info.get("cluster_enabled"))


def _cluster(url: str, extra: dict[str, Any]) -> Client:
    base = url.split("?", 1)[0]
    if base.count("/") > 2 and base.rsplit("/", 1)[1] not in ("", "0"):
        raise ConfigError(redact(f"{url}: a Redis Cluster has database 0 only; drop the /N suffix"))
    conn = RedisCluster.from_url(url, decode_responses=True, **extra)
    conn.ping()
    return conn


def client(settings: Settings) -> Client:
    from owl.tls import tls_options

    url = redis_url(settings)
    tls = tls_options(url, settings.redis_ca, settings.redis_cert, settings.redis_key)
    return connect(url, settings.redis_timeout, tls)


def wait_for_board(settings: Settings, say: Callable[[str], object]) -> Board:
    """`open_board`, waiting while the server is unreachable or refuses writes (an agent
    started before its Redis, or during an outage, waits for it instead of exiting).
    `say` is called with the reason at once and then every 30 s."""
    from owl.faults import explain, passing

    said = -1e9
    while True:
        try:
            return open_board(settings)
        except Exception as exc:
            if not (isinstance(exc, UnreachableError) or passing(exc)):
                raise
            if time.monotonic() - said > 30.0:
                say(str(exc) if isinstance(exc, UnreachableError) else explain(exc))
                said = time.monotonic()
            time.sleep(2.0)


def open_board(settings: Settings, *, create: bool = True) -> Board:
    """The board of `settings`; ``create=False`` for commands that only read (or act on
    what exists): they write nothing to open it."""
    return Board(client(settings), settings.board, shards=settings.shards,
                 event_cap=settings.event_cap, wait_replicas=settings.wait_replicas,
                 create=create)
