"""The HTML pages: overview, grid, dataset, agents, dead letters (with bulk retry), sign-in."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from owl import queries
from owl.errors import BoardError, OwlError
from owl.model import LETTERS, State
from owl.web import actions, data, grid
from owl.web.auth import COOKIE, Refused
from owl.web.context import WebState, render, state_of
from owl.web.tail import Minute

STATE_ORDER = data.STATE_ORDER


def overview_context(web: WebState) -> dict[str, Any]:
    """Counts per template/stage/state, rates, oldest ready, the throughput chart."""
    assert web.orders is not None
    table = data.status(web.board)
    oldest = data.oldest_ready(web.board)
    rates = web.throughput.stage_rates() if web.throughput else {}
    templates = []
    totals = dict.fromkeys(STATE_ORDER, 0)
    for tpl, stages in table.items():
        rows = []
        for stage in web.orders(tpl, stages):
            row = stages[stage]
            for st, n in row.items():
                totals[st] = totals.get(st, 0) + n
            rows.append({"stage": stage, "counts": [row.get(s, 0) for s in STATE_ORDER],
                         "total": sum(row.values()), "oldest": oldest.get((tpl, stage)),
                         "rate": rates.get(stage, 0.0)})
        templates.append({"name": tpl, "rows": rows})
    series = web.throughput.series() if web.throughput else []
    done_rate, fail_rate = web.throughput.rate() if web.throughput else (0.0, 0.0)
    return {"templates": templates, "totals": totals, "chart": chart(series),
            "done_rate": done_rate, "fail_rate": fail_rate,
            "agents": len(queries.agents(web.board)), "now": time.time(),
            "campaigns": data.campaigns(web.board), "pauses": data.pauses(web.board)}


def chart(series: list[Minute], width: int = 720, height: int = 140) -> Markup:
    """An inline SVG bar chart: completions (green) and failed attempts (red) per minute."""
    if not series:
        return Markup("<p class=muted>no throughput yet</p>")
    top = max(1, *(m.done + m.failed for m in series))
    bar = width / len(series)
    parts = [f'<svg class=chart viewBox="0 -14 {width} {height + 30}" width="{width}" '
             f'height="{height + 30}" role="img" aria-label="completions per minute">']
    for i, m in enumerate(series):
        x = i * bar
        h_done = height * m.done / top
        h_fail = height * m.failed / top
        when = time.strftime("%H:%M", time.localtime(m.start))
        parts.append(f'<g><title>{when}: {m.done} done, {m.failed} failed</title>'
                     f'<rect class=done x="{x:.1f}" y="{height - h_done:.1f}" '
                     f'width="{bar - 1:.1f}" height="{h_done:.1f}"/>'
                     f'<rect class=failed x="{x:.1f}" y="{height - h_done - h_fail:.1f}" '
                     f'width="{bar - 1:.1f}" height="{h_fail:.1f}"/></g>')
    first = time.strftime("%H:%M", time.localtime(series[0].start))
    parts.append(f'<text x="0" y="{height + 13}">{first}</text>'
                 f'<text x="{width}" y="{height + 13}" text-anchor="end">now</text>'
                 f'<text x="0" y="-3">{top} per minute at most; green done, red failed'
                 '</text></svg>')
    return Markup("".join(parts))


def overview(request: Request) -> Response:
    web = state_of(request)
    return render(request, "overview.html", overview_context(web))


def overview_fragment(request: Request) -> Response:
    web = state_of(request)
    return render(request, "_overview.html", overview_context(web))


def grid_page(request: Request) -> Response:
    web = state_of(request)
    p = request.query_params
    q = grid.GridQuery(template=p.get("template", ""), stage=p.get("stage", ""),
                       state=p.get("state", ""), name=p.get("name", ""),
                       campaign=p.get("campaign", ""),
                       limit=_int(p.get("limit", "50"), "limit"), cursor=p.get("cursor", ""))
    result = grid.page(web.board, q, orders=web.orders)
    keep = {k: v for k, v in [("template", q.template), ("stage", q.stage),
                              ("state", q.state), ("name", q.name),
                              ("campaign", q.campaign)] if v}
    if q.limit != 50:
        keep["limit"] = str(q.limit)
    return render(request, "grid.html", {
        "q": q, "page": result, "letters": {str(s): c for s, c in LETTERS.items()},
        "next_url": f"/grid?{urlencode({**keep, 'cursor': result.next})}" if result.next else "",
        "first_url": f"/grid?{urlencode(keep)}", "states": [str(s) for s in State]})


def _int(raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number, got {raw!r}") from None


def fits_outputs(value: Any) -> Iterator[str]:
    """Paths of FITS files named anywhere in a stage's outputs, in document order."""
    if isinstance(value, str):
        if value.lower().endswith((".fits", ".fits.gz", ".fit")):
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from fits_outputs(v)
    elif isinstance(value, list):
        for v in value:
            yield from fits_outputs(v)


def dataset_page(request: Request) -> Response:
    web = state_of(request)
    ds_id = request.path_params["dataset"]
    shown = data.show(web.board, ds_id)
    previews = {}
    for item in shown["items"]:
        found = [(n, p) for n, p in enumerate(fits_outputs(item["outputs"])) if Path(p).is_file()]
        if found:
            previews[item["stage"]] = found
    return render(request, "dataset.html", {"ds": shown, "previews": previews,
                                            "acts_on": actions.ACTS_ON})


def preview(request: Request) -> Response:
    """PNG of the n-th FITS output of a stage (only files the board records as outputs)."""
    web = state_of(request)
    ds_id, stage = request.path_params["dataset"], request.path_params["stage"]
    n = request.path_params["n"]
    item = next((i for i in queries.dataset(web.board, ds_id).items if i.stage == stage), None)
    if item is None:
        raise HTTPException(404, f"dataset {ds_id!r} has no stage {stage!r}")
    paths = list(fits_outputs(item.outputs))
    if n >= len(paths) or not Path(paths[n]).is_file():
        raise HTTPException(404, f"{ds_id} {stage}: no FITS output number {n} on disk")
    src = Path(paths[n])
    stamp = f"{src.resolve()}|{src.stat().st_mtime_ns}"
    cache = Path(tempfile.gettempdir()) / "owl-web-previews"
    cache.mkdir(exist_ok=True)
    png = cache / (hashlib.sha256(stamp.encode()).hexdigest()[:24] + ".png")
    if not png.exists():
        from owl.calib.preview import render_preview

        tmp = png.with_suffix(".tmp.png")
        render_preview(src, tmp, width=768)
        tmp.replace(png)
    return FileResponse(png, media_type="image/png")


async def dataset_act(request: Request) -> Response:
    """One action on one item of the dataset page (a signed-in operator's button)."""
    web = state_of(request)
    form = await form_of(request)
    ds_id = request.path_params["dataset"]
    action, stage = str(form.get("action", "")), str(form.get("stage", ""))
    who = web.auth.actor(request, _str(form.get("csrf")))
    if action not in actions.ACTS_ON:
        raise HTTPException(400, f"unknown action {action!r}")
    results = actions.apply(web.board, action, [(ds_id, stage)], who, web.lease)
    return render(request, "result.html", {"action": action, "results": results,
                                           "back": f"/dataset/{ds_id}"})


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


async def form_of(request: Request, limit: int = 4 << 20) -> dict[str, str]:
    """The fields of a url-encoded form (every form here is one; this avoids a multipart
    parser dependency). The first value of a repeated field wins."""
    body = await request.body()
    if len(body) > limit:
        raise HTTPException(413, f"form larger than {limit} bytes")
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
            "application/x-www-form-urlencoded", ""):
        raise HTTPException(415, "send the form url-encoded")
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}


def agents_page(request: Request) -> Response:
    return render(request, "agents.html", {"agents": data.agents(state_of(request).board)})


def dead_page(request: Request) -> Response:
    web = state_of(request)
    template, stage = request.query_params.get("template", ""), request.query_params.get(
        "stage", "")
    rows = data.dead(web.board, template or None, (stage,) if stage else (), limit=500)
    return render(request, "dead.html", {"rows": rows, "template": template, "stage": stage,
                                         "total": data.dead_total(web.board)})


def dead_retry_plan(request: Request) -> Response:
    """The dry run of a bulk retry: exactly which items would change; changes nothing."""
    web = state_of(request)
    template, stage = request.query_params.get("template", ""), request.query_params.get(
        "stage", "")
    planned = actions.plan(web.board, "retry", template=template,
                           stages=(stage,) if stage else (), states=(State.DEAD,))
    return render(request, "retry_plan.html", {
        "planned": planned, "template": template, "stage": stage,
        "items": "\n".join(f"{p.dataset}|{p.stage}" for p in planned),
        "limited": len(planned) >= actions.MAX_ITEMS})


async def dead_retry_confirm(request: Request) -> Response:
    """Retry exactly the items the dry run listed (sent back by its confirmation form)."""
    web = state_of(request)
    form = await form_of(request)
    who = web.auth.actor(request, _str(form.get("csrf")))
    items = actions.parse_items(_str(form.get("items")) or "")
    results = actions.apply(web.board, "retry", items, who)
    return render(request, "result.html", {"action": "retry", "results": results,
                                           "back": "/dead"})


def login_page(request: Request) -> Response:
    return render(request, "login.html", {"error": ""})


async def login(request: Request) -> Response:
    web = state_of(request)
    form = await form_of(request)
    name, token = _str(form.get("name")) or "", _str(form.get("token")) or ""
    error = ""
    if not web.auth.enabled:
        error = "this server is read-only (started without OWL_WEB_TOKEN)"
    elif not web.auth.same_origin(request):
        error = "the sign-in form did not come from this server"
    elif not web.auth.valid_name(name):
        error = "name: use letters, digits, '.', '_', '@', '-' (at most 64)"
    elif not web.auth.check_token(token):
        error = "wrong token"
    if error:
        return render(request, "login.html", {"error": error}, status_code=403)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, web.auth.new_cookie(name), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def logout(request: Request) -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def routes() -> list[Route]:
    return [
        Route("/", overview),
        Route("/fragment/overview", overview_fragment),
        Route("/grid", grid_page),
        Route("/dataset/{dataset}", dataset_page),
        Route("/dataset/{dataset}/preview/{stage}/{n:int}.png", preview),
        Route("/dataset/{dataset}/act", dataset_act, methods=["POST"]),
        Route("/agents", agents_page),
        Route("/dead", dead_page),
        Route("/dead/retry", dead_retry_plan, methods=["GET"]),
        Route("/dead/retry", dead_retry_confirm, methods=["POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    return render(request, "error.html", {"message": str(exc)}, status_code=exc.status)


async def _owl_error(request: Request, exc: Exception) -> Response:
    status = 404 if isinstance(exc, BoardError) and "is not on board" in str(exc) else 400
    if request.url.path.startswith("/api/"):
        from starlette.responses import JSONResponse

        return JSONResponse({"error": str(exc)}, status_code=status)
    return render(request, "error.html", {"message": str(exc)}, status_code=status)


def handlers() -> dict[Any, Any]:
    return {Refused: _refused, OwlError: _owl_error}
