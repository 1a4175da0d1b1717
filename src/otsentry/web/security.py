"""HTTP hardening: security headers on every response, the session gate, CSRF and origin checks.

* :class:`SecurityHeaders` — a CSP without ``unsafe-inline`` (scripts and styles only from the console's
  own files), no framing, no referrer to other sites, ``nosniff``, HSTS under TLS, and ``no-store`` on pages.
* :class:`SessionGate` — every path except the login page and static files needs a live session:
  a browser asking for a page is sent to the login page, anything else gets 401.
* :func:`same_origin` and :func:`csrf_ok` — every state change must come from a page of this console
  (Origin / Sec-Fetch-Site) and carry the session's CSRF token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otsentry.web.sessions import Session

SESSION_COOKIE = "__Host-otsentry-session"
LOGIN_COOKIE = "__Host-otsentry-login"
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = frozenset({"/login"})

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
    " font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
BASE_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # "no-referrer" would make browsers send Origin: null
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), usb=(), serial=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """Adds the security headers to every response (pages, static files, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"
        static = scope.get("path", "").startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                extra = [h for h in BASE_HEADERS if h[0] not in present]
                if tls:
                    extra.append(HSTS)
                if not static and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SessionGate:
    """Looks the session up (``scope['state']['session']``) and turns away requests without one."""

    def __init__(self, app: ASGIApp, lookup: Callable[[str | None], Session | None]) -> None:
        self.app = app
        self.lookup = lookup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        request = Request(scope)
        token = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(self.lookup, token) if token else None
        scope.setdefault("state", {})["session"] = session
        if session is None and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES):
            if scope.get("method") in ("GET", "HEAD") and _wants_html(Headers(scope=scope)):
                target = path + (
                    f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
                )
                response: Any = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
            else:
                response = PlainTextResponse("login required", status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _wants_html(headers: Headers) -> bool:
    accept = headers.get("accept", "")
    return not accept or "text/html" in accept or "*/*" in accept


def same_origin(request: Request) -> bool:
    """A state change must come from this console's own pages (not another site in the same browser)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:  # clients that send none still need the CSRF token
        return True
    expected = f"{request.url.scheme}://{request.url.netloc}"
    return origin == expected


def csrf_ok(expected: str | None, submitted: Any) -> bool:
    if not expected or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another host: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/alerts"
    if any(ord(ch) < 0x20 for ch in target):
        return "/alerts"
    return target
