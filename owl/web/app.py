"""The ``owl web`` ASGI application: pages, JSON API, live events and ``/metrics``.

Handlers are plain functions (Starlette runs them in its thread pool, where the board's
synchronous Redis client belongs); only the server-sent event stream is async. One
:class:`~owl.web.tail.EventTail` per process follows the board's streams and feeds the
live pages, the throughput chart and the metrics.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from owl.board import Board
from owl.web import api, pages
from owl.web.auth import Auth
from owl.web.context import WebState, state_of
from owl.web.data import StageOrders
from owl.web.metrics import BoardCollector, EventMetrics
from owl.web.tail import EventTail, Throughput

HERE = Path(__file__).parent


async def stream(request: Request) -> StreamingResponse:
    """Server-sent events: every transition as it is written (``event: transition``, the
    event's fields as JSON, ``id: SHARD/ENTRY``); a comment line every 15 s keeps
    proxies from closing an idle stream. A client too slow to keep up is told ``resync``
    and should reload what it shows."""
    web = state_of(request)
    assert web.tail is not None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=2000)
    lost = {"n": 0}

    def push(text: str) -> None:
        if queue.full():
            lost["n"] += 1
        else:
            queue.put_nowait(text)

    def listener(shard: int, entry_id: str, fields: dict[str, str]) -> None:
        text = (f"id: {shard}/{entry_id}\nevent: transition\n"
                f"data: {json.dumps({'shard': shard, 'id': entry_id, **fields})}\n\n")
        loop.call_soon_threadsafe(push, text)

    web.tail.add(listener)

    async def events() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    text = await asyncio.wait_for(queue.get(), timeout=15.0)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": idle\n\n"
                    continue
                if lost["n"]:
                    lost["n"] = 0
                    yield "event: resync\ndata: {}\n\n"
                yield text
        finally:
            assert web.tail is not None
            web.tail.remove(listener)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def metrics(request: Request) -> Response:
    """Prometheus text format (see :mod:`owl.web.metrics`)."""
    return Response(generate_latest(state_of(request).registry),
                    media_type=CONTENT_TYPE_LATEST)


def _timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def create_app(board: Board, *, token: str = "", lease: float = 30.0,
               follow: bool = True) -> Starlette:
    """The web board of ``board``.

    Parameters
    ----------
    board
        The board shown and acted on.
    token
        ``OWL_WEB_TOKEN``: actions need it (see :mod:`owl.web.auth`); empty: read-only.
    lease
        Lease given to a held running item when it is released.
    follow
        Follow the event streams (live pages, throughput, event metrics).
    """
    web = WebState(board=board, auth=Auth(token), lease=lease)
    web.registry.register(BoardCollector(board))
    web.orders = StageOrders(board)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if follow:
            web.throughput = await asyncio.to_thread(Throughput, board)
            web.tail = EventTail(board)
            web.tail.add(web.throughput)
            web.tail.add(EventMetrics(board, web.registry))
            await asyncio.to_thread(web.tail.start)
        try:
            yield
        finally:
            if web.tail is not None:
                await asyncio.to_thread(web.tail.stop)

    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["state_order"] = pages.STATE_ORDER
    templates.env.filters["timestamp"] = _timestamp
    routes = [
        *pages.routes(),
        *api.routes(),
        Route("/events/stream", stream),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=pages.handlers())
    app.state.web = web
    app.state.templates = templates
    return app
