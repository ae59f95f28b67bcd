"""What every handler of the web board shares, and how a page is rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from owl.board import Board
from owl.web.auth import Auth
from owl.web.data import StageOrders
from owl.web.tail import EventTail, Throughput


@dataclass
class WebState:
    """Everything the handlers share; one per application."""

    board: Board
    auth: Auth
    lease: float = 30.0
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    tail: EventTail | None = None
    throughput: Throughput | None = None
    orders: StageOrders | None = None


def state_of(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def render(request: Request, name: str, context: dict[str, Any],
           status_code: int = 200) -> Response:
    """A page, with the signed-in operator and the CSRF value for its forms."""
    web = state_of(request)
    session = web.auth.session(request)
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, name, {
        **context, "board": web.board.name, "session": session,
        "csrf": web.auth.csrf(session) if session else "", "actions": web.auth.enabled,
    }, status_code=status_code, headers={"Cache-Control": "no-store"})
