"""Open the board the settings point at: a Redis URL, or the embedded server."""

from __future__ import annotations

import redis
from redis import Redis

from owl.board import Board
from owl.config import Settings
from owl.errors import ConfigError
from owl.redact import redact
from owl.scripts import Client
from owl.server import ensure_server


def redis_url(settings: Settings) -> str:
    """The URL to use: ``OWL_REDIS_URL``/``--redis``, else the embedded server (started
    on demand under ``OWL_HOME``)."""
    return settings.redis_url or ensure_server(settings.home)


def client(settings: Settings) -> Client:
    url = redis_url(settings)
    try:
        conn = Redis.from_url(url, decode_responses=True)
        conn.ping()
    except (redis.ConnectionError, redis.TimeoutError, ValueError) as exc:
        raise ConfigError(redact(f"cannot reach Redis at {url}: {exc}")) from exc
    return conn


def open_board(settings: Settings) -> Board:
    return Board(client(settings), settings.board, shards=settings.shards,
                 event_cap=settings.event_cap)
