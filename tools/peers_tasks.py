"""The 5-stage no-op chain of tools/bench_peers.py for each peer queue library.

Imported by the peers' own worker processes (``PYTHONPATH=tools``); the Redis URL comes from
``PEERS_REDIS`` and the chain length from ``PEERS_STAGES``. Stage k of a chain does nothing
but count itself (INCR on ``peers:done``) and enqueue stage k + 1 of the same chain, the way
an owl completion makes the next stage ready.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any, ClassVar

import redis

URL = os.environ.get("PEERS_REDIS", "redis://127.0.0.1:6379/15")
STAGES = int(os.environ.get("PEERS_STAGES", "5"))
DONE_KEY = "peers:done"
_counter = redis.Redis.from_url(URL)


def _last(k: int) -> bool:
    _counter.incr(DONE_KEY)
    return k + 1 >= STAGES


# -- RQ ----------------------------------------------------------------------------------

def rq_stage(chain: int, k: int) -> None:
    if _last(k):
        return
    from rq import Queue

    Queue("peers", connection=_counter).enqueue(rq_stage, chain, k + 1)


# -- Dramatiq ----------------------------------------------------------------------------

@cache
def _dramatiq_actor() -> Any:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    dramatiq.set_broker(RedisBroker(url=URL))  # type: ignore[no-untyped-call]  # untyped lib

    @dramatiq.actor(queue_name="peers", max_retries=0)
    def dramatiq_stage(chain: int, k: int) -> None:
        if not _last(k):
            dramatiq_stage.send(chain, k + 1)

    return dramatiq_stage


# -- Celery ------------------------------------------------------------------------------

@cache
def _celery_app() -> Any:
    from celery import Celery

    app = Celery("peers", broker=URL)
    app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=4,
                    broker_connection_retry_on_startup=True, worker_hijack_root_logger=False)

    @app.task(name="peers.celery_stage")  # type: ignore[untyped-decorator]  # celery: no types
    def celery_stage(chain: int, k: int) -> None:
        if not _last(k):
            celery_stage.delay(chain, k + 1)

    return app


# -- arq ---------------------------------------------------------------------------------

async def arq_stage(ctx: dict[str, Any], chain: int, k: int) -> None:
    if not _last(k):
        await ctx["redis"].enqueue_job("arq_stage", chain, k + 1)


@cache
def _arq_settings() -> Any:
    from arq.connections import RedisSettings

    class WorkerSettings:
        functions: ClassVar[list[Any]] = [arq_stage]
        redis_settings = RedisSettings.from_dsn(URL)
        max_jobs = int(os.environ.get("PEERS_CONCURRENCY", "4"))
        burst = False  # the benchmark stops the workers
        poll_delay = 0.01
        keep_result = 0

    return WorkerSettings


if os.environ.get("PEERS_PEER") == "dramatiq":
    dramatiq_stage = _dramatiq_actor()
if os.environ.get("PEERS_PEER") == "celery":
    app = _celery_app()
if os.environ.get("PEERS_PEER") == "arq":
    WorkerSettings = _arq_settings()
