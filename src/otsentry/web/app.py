"""The console application: routes, page handlers and templates (Starlette + Jinja2, autoescaped).

Page handlers are plain functions run in Starlette's thread pool (SQLite and argon2 block); each gets
the request and the session the :class:`~otsentry.web.security.SessionGate` found. State changes go
through :meth:`Console.action`, which checks origin, CSRF token and role before the handler runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from otsentry.web import audit
from otsentry.web.alerts import (
    LEVELS,
    PAGE_SIZES,
    SORTS,
    STATUS_FILTERS,
    TRIAGE,
    AlertQueries,
    QueueFilter,
    attack_url,
    techniques,
    triage,
)
from otsentry.web.assets import AssetQueries
from otsentry.web.database import ConsoleDB, init_database
from otsentry.web.health import SensorHealth
from otsentry.web.netmap import DEFAULT_MAX_ASSETS, NetworkMap
from otsentry.web.review import STATUSES as DEVIATION_STATUSES
from otsentry.web.review import BaselineReview, ReviewError
from otsentry.web.security import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SecurityHeaders,
    SessionGate,
    csrf_ok,
    safe_next,
    same_origin,
)
from otsentry.web.sessions import LoginThrottle, Session, SessionStore
from otsentry.web.users import UserStore

MAX_BODY = 1 << 20
MAX_NOTE = 2000
MAP_SIZES = (50, 100, 300, 1000)
DONE_MESSAGES = {
    "ack": "Acknowledged {n} alert(s).",
    "close": "Closed {n} alert(s).",
    "reopen": "Reopened {n} alert(s).",
    "none": "No alert selected.",
    "accept": "Deviation accepted: the baseline now includes it.",
    "reject": "Deviation rejected.",
}
NAV = (
    ("alerts", "Alerts"),
    ("assets", "Assets"),
    ("map", "Map"),
    ("baseline", "Baseline"),
    ("health", "Health"),
)


@dataclass
class Settings:
    db_path: Path
    evidence_dirs: list[Path] = field(default_factory=list)
    map_max_assets: int = DEFAULT_MAX_ASSETS

    def __post_init__(self) -> None:
        if not self.evidence_dirs:
            self.evidence_dirs = [self.db_path.parent / "evidence"]


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


def _note(form: FormData) -> str | None:
    note = form.get("note")
    if not isinstance(note, str):
        return None
    note = note.strip()
    return note[:MAX_NOTE] or None


def _ts(value: Any) -> str:
    text = str(value or "")
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def _pretty(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return "" if value is None else str(value)
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def _field_value(value: Any) -> str:
    """An event field as JSON writes it (true, null, 3.5), strings as they are, structures indented."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
    return orjson.dumps(value, default=str).decode()


def _listing(value: Any) -> str:
    if isinstance(value, list | tuple | set):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _template_env() -> Environment:
    env = Environment(
        loader=PackageLoader("otsentry.web", "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ts=_ts, pretty=_pretty, listing=_listing, fieldvalue=_field_value)
    env.globals.update(attack_url=attack_url)
    return env


class Console:
    """The application and the shared objects its handlers use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = ConsoleDB(settings.db_path)
        self.alerts = AlertQueries(self.db)
        self.assets = AssetQueries(self.db)
        self.netmap = NetworkMap(self.assets)
        self.review = BaselineReview(self.db)
        self.health = SensorHealth(self.db)
        self.templates = _template_env()

    # -- plumbing --------------------------------------------------------------------------------------

    def sessions(self) -> SessionStore:
        return SessionStore(self.db.conn())

    def lookup_session(self, token: str | None) -> Session | None:
        return self.sessions().get(token)

    def render(
        self, request: Request, template: str, session: Session | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        done = request.query_params.get("done", "")
        count = request.query_params.get("n", "")
        flash = DONE_MESSAGES.get(done, "").format(n=int(count) if count.isdigit() else 0) if done else ""
        html = self.templates.get_template(template).render(
            session=session,
            user=session.user if session else None,
            csrf_token=session.csrf_token if session else "",
            nav=NAV,
            flash=flash,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def error(self, request: Request, session: Session | None, status: int, message: str) -> HTMLResponse:
        return self.render(
            request, "error.html", session, status_code=status, message=message, title=str(status)
        )

    def page(self, handler: Callable[[Request, Session], Response]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await run_in_threadpool(handler, request, request.state.session)

        return endpoint

    def action(
        self, role: str, handler: Callable[[Request, Session, FormData], Response]
    ) -> Callable[[Request], Any]:
        """A state change: same origin, the session's CSRF token, and at least ``role``."""

        async def endpoint(request: Request) -> Response:
            session: Session = request.state.session
            form = await request.form(max_files=0, max_fields=1000, max_part_size=64 * 1024)
            if not same_origin(request) or not csrf_ok(session.csrf_token, form.get("csrf_token")):
                return self.error(
                    request, session, 403, "This form has expired or did not come from the console."
                )
            if not session.user.can(role):
                return self.error(request, session, 403, f"This needs the {role} role.")
            return await run_in_threadpool(handler, request, session, form)

        return endpoint

    # -- login -------------------------------------------------------------------------------------------

    def login_form(self, request: Request, session: Session | None) -> Response:
        if session is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        return self._login_page(request, "", 200)

    def _login_page(
        self, request: Request, message: str, status: int, retry_after: int = 0, next_url: str | None = None
    ) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html",
            None,
            status_code=status,
            login_token=token,
            next=safe_next(next_url if next_url is not None else request.query_params.get("next")),
            message=message,
            title="Sign in",
        )
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, secure=True, samesite="strict", path="/")
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    async def login_submit(self, request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=20, max_part_size=8 * 1024)
        if not same_origin(request) or not csrf_ok(
            request.cookies.get(LOGIN_COOKIE), form.get("login_token")
        ):
            return self._login_page(
                request,
                "The sign-in form expired; please try again.",
                403,
                next_url=str(form.get("next") or ""),
            )
        username = str(form.get("username") or "").strip()[:64]
        password = str(form.get("password") or "")[:1024]
        return await run_in_threadpool(self._login, request, username, password, str(form.get("next") or ""))

    def _login(self, request: Request, username: str, password: str, next_url: str) -> Response:
        conn = self.db.conn()
        throttle = LoginThrottle(conn)
        client = _client(request)
        keys = throttle.keys(username, client)
        wait = throttle.locked_for(keys)
        if wait > 0:
            audit.record(conn, username or "-", "login_throttled", client=client)
            message = f"Too many failed sign-ins. Try again in {int(wait) + 1} s."
            return self._login_page(request, message, 429, int(wait) + 1, next_url)
        user = UserStore(conn).verify(username, password) if username and password else None
        if user is None:
            throttle.failed(keys)
            audit.record(conn, username or "-", "login_failed", client=client)
            return self._login_page(request, "Wrong user name or password.", 401, next_url=next_url)
        throttle.succeeded(keys)
        token, _csrf = self.sessions().create(user.username, client)
        audit.record(conn, user.username, "login", role=user.role, client=client)
        response = RedirectResponse(safe_next(next_url), status_code=303)
        response.set_cookie(SESSION_COOKIE, token, httponly=True, secure=True, samesite="strict", path="/")
        response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    def logout(self, request: Request, session: Session, form: FormData) -> Response:
        self.sessions().end(session.token_hash)
        audit.record(
            self.db.conn(), session.user.username, "logout", role=session.user.role, client=_client(request)
        )
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return response

    # -- alerts ------------------------------------------------------------------------------------------

    def alerts_page(self, request: Request, session: Session) -> Response:
        f = QueueFilter.from_query(request.query_params)
        page = self.alerts.queue(f)
        return self.render(
            request,
            "alerts.html",
            session,
            title="Alerts",
            active="alerts",
            f=f,
            page=page,
            levels=LEVELS,
            statuses=list(STATUS_FILTERS),
            sorts=list(SORTS),
            sizes=PAGE_SIZES,
            return_query=f.query_string(after=f.after, before=f.before),
            asset_ids=self.assets.ids_for_ips(
                sorted(
                    {r["source_ip"] for r in page.rows if r["source_ip"]}
                    | {r["destination_ip"] for r in page.rows if r["destination_ip"]}
                )
            ),
        )

    def alerts_bulk(self, request: Request, session: Session, form: FormData) -> Response:
        action = str(form.get("action") or "")
        if action not in TRIAGE:
            return self.error(request, session, 400, "Unknown action.")
        ids = self.alerts.existing_ids([str(i) for i in form.getlist("ids")])
        back = QueueFilter.from_query(_query_dict(str(form.get("return") or "")))
        if not ids:
            return RedirectResponse(
                f"/alerts?{_join(back.query_string(after=back.after, before=back.before), 'done=none')}", 303
            )
        self._triage(request, session, ids, action, _note(form))
        done = urlencode({"done": action, "n": len(ids)})
        return RedirectResponse(
            f"/alerts?{_join(back.query_string(after=back.after, before=back.before), done)}", 303
        )

    def _triage(
        self, request: Request, session: Session, ids: list[str], action: str, note: str | None
    ) -> None:
        changed = triage(self.settings.db_path, ids, action, note, session.user.username)
        conn = self.db.conn()
        for alert in changed:
            audit.record(
                conn,
                session.user.username,
                f"alert_{action}",
                target=f"alert:{alert['id']}",
                note=note,
                role=session.user.role,
                client=_client(request),
                detail={"seq": alert["seq"], "status": alert["status"]},
            )

    def alert_page(self, request: Request, session: Session) -> Response:
        alert = self.alerts.get(request.path_params["alert_id"])
        if alert is None:
            return self.error(request, session, 404, "No such alert.")
        events, from_store = self.alerts.triggering_events(alert)
        related = self.alerts.related(alert)
        ips = self.alerts.assets_of(alert)
        ids = self.assets.ids_for_ips(
            sorted(
                set(ips)
                | {r["source_ip"] for r in related if r["source_ip"]}
                | {r["destination_ip"] for r in related if r["destination_ip"]}
            )
        )
        evidence = self.alerts.evidence_path(alert, self.settings.evidence_dirs)
        return self.render(
            request,
            "alert.html",
            session,
            title=f"Alert {alert['seq']}",
            active="alerts",
            alert=alert,
            doc=alert["doc"],
            techniques=techniques(alert["doc"]),
            events=events,
            events_from_store=from_store,
            related=related,
            asset_ids=ids,
            alert_ips=ips,
            evidence=evidence,
            audit_rows=audit.for_target(self.db.conn(), f"alert:{alert['id']}"),
        )

    def alert_triage(self, request: Request, session: Session, form: FormData) -> Response:
        alert = self.alerts.get(request.path_params["alert_id"])
        action = str(form.get("action") or "")
        if alert is None:
            return self.error(request, session, 404, "No such alert.")
        if action not in TRIAGE:
            return self.error(request, session, 400, "Unknown action.")
        self._triage(request, session, [alert["id"]], action, _note(form))
        return RedirectResponse(f"/alerts/{quote(alert['id'])}?done={action}&n=1", status_code=303)

    def alert_evidence(self, request: Request, session: Session) -> Response:
        alert = self.alerts.get(request.path_params["alert_id"])
        path = self.alerts.evidence_path(alert, self.settings.evidence_dirs) if alert else None
        if alert is None or path is None:
            return self.error(request, session, 404, "No evidence capture for this alert.")
        audit.record(
            self.db.conn(),
            session.user.username,
            "evidence_download",
            target=f"alert:{alert['id']}",
            role=session.user.role,
            client=_client(request),
        )
        return FileResponse(
            path,
            media_type="application/vnd.tcpdump.pcap",
            filename=f"otsentry-alert-{alert['seq']}.pcap",
        )

    # -- assets ----------------------------------------------------------------------------------------

    def assets_page(self, request: Request, session: Session) -> Response:
        q = request.query_params.get("q", "")[:100]
        protocol = request.query_params.get("protocol", "")[:32]
        after_text = request.query_params.get("after", "")
        after = int(after_text) if after_text.isdigit() else 0
        page = self.assets.search(q, protocol, after)
        return self.render(
            request,
            "assets.html",
            session,
            title="Assets",
            active="assets",
            page=page,
            q=q,
            protocol=protocol,
            after=after,
            first_query=urlencode({k: v for k, v in (("q", q), ("protocol", protocol)) if v}),
            next_query=urlencode(
                {k: v for k, v in (("q", q), ("protocol", protocol), ("after", page.next_after)) if v}
            ),
        )

    def asset_by_ip(self, request: Request, session: Session) -> Response:
        asset_id = self.assets.id_for_ip(request.path_params["ip"])
        if asset_id is None:
            return self.error(request, session, 404, "That address is not in the inventory.")
        return RedirectResponse(f"/assets/{asset_id}", status_code=303)

    def asset_page(self, request: Request, session: Session) -> Response:
        asset = self.assets.detail(request.path_params["asset_id"])
        if asset is None:
            return self.error(request, session, 404, "No such asset.")
        alerts = self.alerts.for_asset(asset["ip"])
        return self.render(
            request,
            "asset.html",
            session,
            title=f"Asset {asset['ip']}",
            active="assets",
            asset=asset,
            alerts=alerts,
            asset_ids=self.assets.ids_for_ips(
                sorted(
                    {r["source_ip"] for r in alerts if r["source_ip"]}
                    | {r["destination_ip"] for r in alerts if r["destination_ip"]}
                )
            ),
        )

    # -- map ---------------------------------------------------------------------------------------------

    def map_page(self, request: Request, session: Session) -> Response:
        size_text = request.query_params.get("max", "")
        size = (
            int(size_text)
            if size_text.isdigit() and int(size_text) in MAP_SIZES
            else self.settings.map_max_assets
        )
        drawing = self.netmap.drawing(size)
        return self.render(
            request,
            "map.html",
            session,
            title="Network map",
            active="map",
            drawing=drawing,
            svg=Markup(drawing.svg) if drawing and drawing.svg else None,  # sanitised in netmap.sanitise_svg
            size=size,
            sizes=MAP_SIZES,
        )

    # -- baseline ----------------------------------------------------------------------------------------

    def baseline_page(self, request: Request, session: Session) -> Response:
        status = request.query_params.get("status", "new")
        if status not in DEVIATION_STATUSES:
            status = "new"
        page = self.review.page(status, request.query_params.get("after", "")[:200])
        return self.render(
            request,
            "baseline.html",
            session,
            title="Baseline review",
            active="baseline",
            page=page,
            status=status,
            statuses=DEVIATION_STATUSES,
        )

    def baseline_decide(self, request: Request, session: Session, form: FormData) -> Response:
        decision = str(form.get("decision") or "")
        dev_id = request.path_params["deviation_id"]
        note = _note(form)
        try:
            self.review.decide(dev_id, decision)
        except ReviewError as exc:
            return self.error(request, session, 409, str(exc))
        audit.record(
            self.db.conn(),
            session.user.username,
            f"deviation_{decision}",
            target=f"deviation:{dev_id}",
            note=note,
            role=session.user.role,
            client=_client(request),
        )
        return RedirectResponse(f"/baseline?done={decision}", status_code=303)

    # -- health and audit ------------------------------------------------------------------------------

    def health_page(self, request: Request, session: Session) -> Response:
        return self.render(
            request,
            "health.html",
            session,
            title="Sensor health",
            active="health",
            live=self.health.live(),
            health_alerts=self.health.health_alerts(),
            replayed=self.health.replayed(),
            outbox=self.health.outbox(),
        )

    def audit_page(self, request: Request, session: Session) -> Response:
        if not session.user.can("admin"):
            return self.error(request, session, 403, "The audit log needs the admin role.")
        who = request.query_params.get("user", "")[:64]
        action = request.query_params.get("action", "")
        action = action if action in audit.ACTIONS else ""
        before_text = request.query_params.get("before", "")
        rows = audit.page(
            self.db.conn(), who or None, action or None, int(before_text) if before_text.isdigit() else None
        )
        more = {k: v for k, v in (("user", who), ("action", action)) if v}
        if len(rows) == 100:
            more["before"] = str(rows[-1]["id"])
        return self.render(
            request,
            "audit.html",
            session,
            title="Audit log",
            active="audit",
            rows=rows,
            who=who,
            action=action,
            actions=audit.ACTIONS,
            next_query=urlencode(more) if "before" in more else "",
        )

    def home(self, request: Request, session: Session) -> Response:
        return RedirectResponse("/alerts", status_code=303)

    # -- the application -----------------------------------------------------------------------------

    def app(self) -> Starlette:
        page, action = self.page, self.action
        routes = [
            Route("/login", page(self.login_form), methods=["GET"]),
            Route("/login", self.login_submit, methods=["POST"]),
            Route("/logout", action("viewer", self.logout), methods=["POST"]),
            Route("/", page(self.home), methods=["GET"]),
            Route("/alerts", page(self.alerts_page), methods=["GET"]),
            Route("/alerts/bulk", action("analyst", self.alerts_bulk), methods=["POST"]),
            Route("/alerts/{alert_id}", page(self.alert_page), methods=["GET"]),
            Route("/alerts/{alert_id}/triage", action("analyst", self.alert_triage), methods=["POST"]),
            Route("/alerts/{alert_id}/evidence", page(self.alert_evidence), methods=["GET"]),
            Route("/assets", page(self.assets_page), methods=["GET"]),
            Route("/assets/ip/{ip}", page(self.asset_by_ip), methods=["GET"]),
            Route("/assets/{asset_id:int}", page(self.asset_page), methods=["GET"]),
            Route("/map", page(self.map_page), methods=["GET"]),
            Route("/baseline", page(self.baseline_page), methods=["GET"]),
            Route(
                "/baseline/{deviation_id}/decide", action("analyst", self.baseline_decide), methods=["POST"]
            ),
            Route("/health", page(self.health_page), methods=["GET"]),
            Route("/audit", page(self.audit_page), methods=["GET"]),
            Mount("/static", StaticFiles(packages=[("otsentry.web", "static")]), name="static"),
        ]
        middleware = [Middleware(SecurityHeaders), Middleware(SessionGate, lookup=self.lookup_session)]
        self.db.tables()  # add the page indexes now rather than on the first request
        return Starlette(routes=routes, middleware=middleware, max_body_size=MAX_BODY)


def _query_dict(text: str) -> dict[str, str]:
    return dict(parse_qsl(text.lstrip("?"), keep_blank_values=False)[:20])


def _join(*parts: str) -> str:
    return "&".join(p for p in parts if p)


def create_app(db_path: str | Path, evidence_dirs: list[Path] | None = None) -> Starlette:
    """The console for the sensor database at ``db_path`` (its own tables are added when missing)."""
    init_database(db_path)
    return Console(Settings(Path(db_path), list(evidence_dirs or []))).app()
