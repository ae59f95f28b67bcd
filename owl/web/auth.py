"""Who may act on the board from the web, and how a forged request is refused.

Without ``OWL_WEB_TOKEN`` the web board is read-only. With it, an action is accepted from:

* a browser session: the operator signs in with the token and a name; the session cookie
  (HttpOnly, SameSite=Strict) holds the name, a random nonce and an HMAC of both under the
  token; every action form carries a CSRF value derived from the nonce, and the request's
  ``Origin`` must be this server. A page of another site can neither read the CSRF value
  nor make the browser send the cookie with its request;
* a script: ``Authorization: Bearer TOKEN`` (browsers never add that header by themselves,
  so it needs no CSRF check), with the actor's name in ``X-Owl-User``.

The actor is recorded on the board as ``web:NAME``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "owl_session"
_NAME_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class Refused(Exception):
    """An action refused; the message says why and what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Session:
    """A signed-in operator."""

    name: str
    nonce: str


@dataclass(frozen=True)
class Auth:
    """The token checks of one server; ``token`` empty means read-only."""

    token: str

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def _sign(self, text: str) -> str:
        mac = hmac.new(self.token.encode(), text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid_name(self, name: str) -> bool:
        return bool(_NAME_RE.match(name))

    def new_cookie(self, name: str) -> str:
        """The session cookie value for an operator who gave the right token."""
        nonce = secrets.token_urlsafe(16)
        return f"{name}.{nonce}.{self._sign(f'session|{name}|{nonce}')}"

    def check_token(self, given: str) -> bool:
        return self.enabled and hmac.compare_digest(given.encode(), self.token.encode())

    def session(self, request: Request) -> Session | None:
        """The operator signed in on this request, if any."""
        if not self.enabled:
            return None
        raw = request.cookies.get(COOKIE, "")
        rest, _, sig = raw.rpartition(".")
        name, _, nonce = rest.rpartition(".")
        if not (name and nonce and sig):
            return None
        if not hmac.compare_digest(sig, self._sign(f"session|{name}|{nonce}")):
            return None
        return Session(name, nonce)

    def csrf(self, session: Session) -> str:
        """The value every action form of this session carries."""
        return self._sign(f"csrf|{session.nonce}")

    def same_origin(self, request: Request) -> bool:
        """The request's ``Origin`` (sent by browsers with every POST) is this server."""
        origin = request.headers.get("origin")
        if origin is None:
            return False
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        return origin == own

    def actor(self, request: Request, form_csrf: str | None) -> str:
        """The ``who`` of an action (``web:NAME``), or :class:`Refused`."""
        if not self.enabled:
            raise Refused(403, "this web board is read-only: start `owl web` with "
                          "OWL_WEB_TOKEN set to allow actions")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            if not self.check_token(bearer[7:].strip()):
                raise Refused(401, "the bearer token is not this server's OWL_WEB_TOKEN")
            user = request.headers.get("x-owl-user", "api")
            if not self.valid_name(user):
                raise Refused(400, f"X-Owl-User {user[:64]!r}: use letters, digits, "
                              "'.', '_', '@', '-' (at most 64)")
            return f"web:{user}"
        session = self.session(request)
        if session is None:
            raise Refused(401, "sign in with the server's token first (or send "
                          "Authorization: Bearer TOKEN)")
        if not self.same_origin(request):
            raise Refused(403, "the request did not come from a page of this server "
                          "(Origin header missing or different)")
        if form_csrf is None or not hmac.compare_digest(form_csrf, self.csrf(session)):
            raise Refused(403, "the form's CSRF value is missing or stale: reload the page "
                          "and try again")
        return f"web:{session.name}"
