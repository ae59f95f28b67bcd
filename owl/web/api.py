"""The JSON API: the CLI's ``--json`` outputs over HTTP, described by
``schemas/web-api.json`` (OpenAPI 3.1, served at ``/api/openapi.json``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from owl import queries
from owl.resources import data_path
from owl.web import actions, data, grid
from owl.web.context import state_of


def _json(payload: Any) -> JSONResponse:
    return JSONResponse(payload, headers={"Cache-Control": "no-store"})


def status(request: Request) -> Response:
    """As ``owl status --json``."""
    return _json(data.status(state_of(request).board))


def grid_page(request: Request) -> Response:
    """As ``owl status --grid --json`` (``rows``), one page at a time (``next``)."""
    web = state_of(request)
    p = request.query_params
    try:
        limit = int(p.get("limit", "50"))
    except ValueError:
        raise HTTPException(400, "limit must be a whole number") from None
    q = grid.GridQuery(template=p.get("template", ""), stage=p.get("stage", ""),
                       state=p.get("state", ""), name=p.get("name", ""),
                       campaign=p.get("campaign", ""), limit=limit,
                       cursor=p.get("cursor", ""))
    return _json(grid.page(web.board, q, orders=web.orders).to_json())


def dataset(request: Request) -> Response:
    """As ``owl show DATASET --json``."""
    return _json(data.show(state_of(request).board, request.path_params["dataset"]))


def agents(request: Request) -> Response:
    """As ``owl agents --json`` (plus ``heartbeat_age``)."""
    return _json(data.agents(state_of(request).board))


def dead(request: Request) -> Response:
    """As ``owl dead --json``, optionally ``?template=`` and ``?stage=``."""
    p = request.query_params
    stage = p.get("stage", "")
    return _json(data.dead(state_of(request).board, p.get("template") or None,
                           (stage,) if stage else ()))


def events(request: Request) -> Response:
    """As ``owl events --json``: the newest ``count`` events, oldest first."""
    p = request.query_params
    try:
        count = int(p.get("count", "50"))
    except ValueError:
        raise HTTPException(400, "count must be a whole number") from None
    if not 1 <= count <= 5000:
        raise HTTPException(400, "count must be between 1 and 5000")
    return _json(queries.events(state_of(request).board, dataset_id=p.get("dataset") or None,
                                count=count))


def throughput(request: Request) -> Response:
    """Completions and failed attempts per minute over the last hour."""
    web = state_of(request)
    series = web.throughput.series() if web.throughput else []
    return _json([{"start": m.start, "done": m.done, "failed": m.failed} for m in series])


async def act(request: Request) -> Response:
    """``POST /api/ACTION`` with a JSON filter, as ``owl ACTION [--dry-run] --json``.

    Body: ``{"datasets": [...], "template": "...", "stages": [...], "states": [...],
    "dry_run": true}``; or ``{"items": [["DATASET", "STAGE"], ...]}`` to act on exactly
    the items a dry run returned. A dry run needs no token.
    """
    web = state_of(request)
    action = request.path_params["action"]
    if action not in actions.ACTS_ON:
        raise HTTPException(404, f"no action {action!r}: use {', '.join(actions.ACTS_ON)}")
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise HTTPException(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    dry_run = bool(body.get("dry_run", False))
    who = "" if dry_run else web.auth.actor(request, request.headers.get("x-owl-csrf"))
    if "items" in body:
        items = [(str(d), str(s)) for d, s in body["items"]]
        if dry_run:
            raise HTTPException(400, "a dry run takes a filter, not items")
    else:
        planned = actions.plan(web.board, action, datasets=_strs(body, "datasets"),
                               template=str(body.get("template") or ""),
                               stages=_strs(body, "stages"), states=_strs(body, "states"))
        if dry_run:
            return _json([p.to_json() for p in planned])
        items = [(p.dataset, p.stage) for p in planned]
    return _json(actions.results_json(actions.apply(web.board, action, items, who, web.lease)))


def _strs(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HTTPException(400, f"{key!r} must be a list of strings")
    return value


def openapi(request: Request) -> Response:
    return FileResponse(data_path("schemas", "web-api.json"), media_type="application/json")


def routes() -> list[Route]:
    return [
        Route("/api/status", status),
        Route("/api/grid", grid_page),
        Route("/api/datasets/{dataset}", dataset),
        Route("/api/agents", agents),
        Route("/api/dead", dead),
        Route("/api/events", events),
        Route("/api/throughput", throughput),
        Route("/api/openapi.json", openapi),
        Route("/api/{action}", act, methods=["POST"]),
    ]
