"""The web pages: the overview of milestones, each milestone's page, sign-off on it, and signing in.

Who sees what: a milestone page opens for whoever has its signed link (the key); any other page
needs signing in with GitHub, and shows only repositories the person can read there. A wrong key,
a milestone that does not exist and one the person may not see all get the same 404.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from math import ceil
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from core import services
from core.catalog import NotFound
from core.clock import utcnow
from core.db import within_deadline
from core.enums import CriterionResult, Decision, GateStatus
from core.lifecycle import LIFECYCLE_TITLE
from core.page_links import PageLinks, milestone_path
from core.page_readings import MilestoneDashboard
from core.report import STATUS_TITLE, criterion_text, quarantine_text, verdict_json
from core.wording import days, days_left, first_line, percent, plural, short_sha
from integrations.pages.chart import sparkline, trend_chart
from integrations.pages.github import GitHubSignIn, SignInFailed
from integrations.pages.names import DisplayNames
from integrations.pages.sessions import Session, Sessions

STATIC = Path(__file__).parent / "static"

# On every answer, 404 included. The key may be in the URL: no caching, no indexing, and no
# Referer carrying it to GitHub when someone follows a link. Styles come from this service only;
# no script runs; forms post only here.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}

# A verdict takes tens of milliseconds; one that takes this long will not come.
PAGE_DEADLINE = 10.0
PAGE_SIZE = 50

RESULT_TITLE = {CriterionResult.MET: "met", CriterionResult.NOT_MET: "not met", CriterionResult.NO_DATA: "no data"}
DONE = {
    "approve": "Your approval is recorded.",
    "reject": "Your rejection is recorded.",
    "withdraw": "Your decision is withdrawn.",
    "unchanged": "Nothing changed: that is already your decision.",
}
SIGNIN_OFF = (
    "The overview needs sign-in with GitHub, which is not set up on this service: set GITHUB_CLIENT_ID "
    "and GITHUB_CLIENT_SECRET (a GitHub App's or an OAuth app's) and PUBLIC_URL. "
    "Milestone pages still open from the links in checks and Slack."
)

T = TypeVar("T")


@dataclass(frozen=True)
class Paged(Generic[T]):
    items: list[T]
    number: int
    pages: int
    total: int
    param: str

    @property
    def first(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.number * PAGE_SIZE, self.total)


def paged(items: list[T], query: Mapping[str, str], param: str) -> Paged[T]:
    pages = max(ceil(len(items) / PAGE_SIZE), 1)
    try:
        number = min(max(int(query.get(param, "1")), 1), pages)
    except ValueError:
        number = 1
    start = (number - 1) * PAGE_SIZE
    return Paged(items[start : start + PAGE_SIZE], number, pages, len(items), param)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("integrations.pages", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        percent=percent,
        days=days,
        days_left=days_left,
        short_sha=short_sha,
        first_line=first_line,
        plural=plural,
        safe_url=safe_url,
    )
    env.globals.update(
        LIFECYCLE_TITLE=LIFECYCLE_TITLE,
        STATUS_TITLE=STATUS_TITLE,
        RESULT_TITLE=RESULT_TITLE,
        criterion_text=criterion_text,
        quarantine_text=quarantine_text,
    )
    return env


def safe_url(url: str | None) -> str | None:
    """Only absolute http(s) URLs become links: never `javascript:` or the like."""
    from urllib.parse import urlsplit

    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


ENVIRONMENT = _environment()


def render_milestone_page(
    board: MilestoneDashboard,
    *,
    query: Mapping[str, str] | None = None,
    path: str | None = None,
    names: Mapping[str, str] | None = None,
    session: Session | None = None,
    signin_here: bool = False,
    error: str | None = None,
    today: date | None = None,
) -> str:
    """The milestone page as HTML: a pure function of what it shows and who looks."""
    query = query or {}
    reading = board.reading
    verdict = reading.verdict
    path = path or milestone_path(reading.repository, reading.name)
    known = dict(names or {})
    everyone = [*board.approvers.users, *(entry.user_id for entry in board.trail)]
    names = {user: known.get(user) or user.removeprefix("github:") for user in everyone}
    untested = [(area.suite, test) for area in verdict.blocking.untested for test in area.tests]
    key = query.get("key")
    me = session.user_id if session else None
    return ENVIRONMENT.get_template("milestone.html").render(
        repository=reading.repository,
        reading=reading,
        verdict=verdict,
        board=board,
        chart=trend_chart(board.history, today or utcnow().date()),
        failing=paged(board.failing, query, "failing_page"),
        untested=paged(untested, query, "untested_page"),
        flaky=paged(sorted(verdict.metrics.flaky), query, "flaky_page"),
        defects=paged(list(reading.facts.defects), query, "defects_page"),
        trail=paged(list(reversed(board.trail)), query, "trail_page"),
        names=names,
        page_url=lambda param, number: _page_url(path, query, param, number),
        key=key,
        session=session,
        me=me,
        my_decision=board.standing.get(me) if me else None,
        may_decide=me is not None and me in board.approvers,
        github_approvers=any(entry.startswith("github:") for entry in board.approvers.entries),
        signin_here=signin_here,
        here=path + (f"?{urlencode(query)}" if query else ""),
        signoff_action="/signoff" + milestone_path(reading.repository, reading.name).removeprefix("/milestones"),
        done=DONE.get(query.get("done", "")),
        error=error,
    )


class Pages:
    def __init__(
        self,
        links: PageLinks,
        sessions: Sessions | None,
        signin: GitHubSignIn | None,
        names: DisplayNames,
        *,
        after_decision: Callable[[], None] = lambda: None,
    ):
        self.links = links
        self.sessions = sessions
        self.signin = signin
        self.names = names
        self.env = ENVIRONMENT
        # Called after a decision on the page: Slack's messages and GitHub's checks are owed an update.
        self.after_decision = after_decision

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.overview),
            Route("/milestones", self.overview),
            Route("/milestones/{owner}/{repo}/{name:path}", self.milestone),
            Route("/signoff/{owner}/{repo}/{name:path}", self.signoff, methods=["POST"]),
            Route("/signin", self.start_signin),
            Route("/auth/github/callback", self.finish_signin),
            Route("/signout", self.signout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    # Answers -------------------------------------------------------------------------

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    def not_found(self) -> Response:
        return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)

    def to_signin(self, request: Request) -> Response:
        next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?{urlencode({'next': next_path})}", 303, headers=SECURITY_HEADERS)

    def session(self, request: Request) -> Session | None:
        return self.sessions.read(request) if self.sessions else None

    async def readable(self, session: Session) -> frozenset[str]:
        assert self.signin is not None
        return await self.signin.readable(session.login, session.token)

    # The overview ----------------------------------------------------------------------

    async def overview(self, request: Request) -> Response:
        if self.signin is None:
            return self.render("message.html", 503, title="Overview off", message=SIGNIN_OFF, session=None)
        session = self.session(request)
        if session is None:
            return self.to_signin(request)
        readable = await self.readable(session)
        query = request.query_params
        repository = query.get("repository") or None
        status = _status(query.get("status"))
        tag = query.get("tag") or None
        result = await within_deadline(
            lambda: services.overview(sorted(readable), repository=repository, status=status, tag=tag), PAGE_DEADLINE
        )
        rows = [
            (
                row,
                sparkline(row.pass_rates),
                milestone_path(group.repository, row.summary.name),
            )
            for group in result.groups
            for row in group.milestones
        ]
        by_repository: dict[str, list[Any]] = {}
        for row, line, path in rows:
            by_repository.setdefault(row.summary.repository, []).append((row, line, path))
        return self.render(
            "overview.html",
            overview=result,
            groups=by_repository,
            filters={"repository": repository or "", "status": status.value if status else "", "tag": tag or ""},
            statuses=list(STATUS_TITLE.items()),
            session=session,
        )

    # The milestone page --------------------------------------------------------------

    async def allowed(self, request: Request, repository: str, name: str) -> tuple[bool, Response | None]:
        """Whether this request may see the milestone: its key, or a signed-in reader of the repository.

        A key given and wrong is a 404 whoever asks."""
        key = request.query_params.get("key")
        if key is not None:
            return (True, None) if self.links.valid(repository, name, key) else (False, self.not_found())
        session = self.session(request)
        if session is None:
            return False, (self.to_signin(request) if self.signin else self.not_found())
        readable = {name.lower() for name in await self.readable(session)}
        return (True, None) if repository.lower() in readable else (False, self.not_found())

    async def milestone(self, request: Request) -> Response:
        """GET /milestones/{owner}/{repo}/{name:path}[?key=…][&format=json]"""
        repository = f"{request.path_params['owner']}/{request.path_params['repo']}"
        name = request.path_params["name"]
        ok, refusal = await self.allowed(request, repository, name)
        if not ok:
            assert refusal is not None
            return refusal
        return await self._milestone_page(request, repository, name)

    async def _milestone_page(
        self, request: Request, repository: str, name: str, *, error: str | None = None, status_code: int = 200
    ) -> Response:
        try:
            # While the database is away: 503 at once (the app's handler), not a page that hangs.
            if request.query_params.get("format") == "json":
                verdict = await within_deadline(lambda: services.get_verdict(repository, name), PAGE_DEADLINE)
                return JSONResponse(verdict_json(verdict), headers=SECURITY_HEADERS)
            board = await within_deadline(lambda: services.milestone_dashboard(repository, name), PAGE_DEADLINE)
        except NotFound:
            return self.not_found()
        session = self.session(request)
        if session is not None and board.approvers.teams and self.signin is not None:
            await self.signin.refresh_teams(board.approvers.teams, session.token)
            board = await services.milestone_dashboard(repository, name)
        people = [*board.approvers.users, *(entry.user_id for entry in board.trail)]
        html = render_milestone_page(
            board,
            query=dict(request.query_params),
            path=request.url.path,
            names=await self.names.of(people),
            session=session,
            signin_here=self.signin is not None,
            error=error,
        )
        return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)

    # Sign-off --------------------------------------------------------------------------

    async def signoff(self, request: Request) -> Response:
        """POST /signoff/{owner}/{repo}/{name:path}: approve, reject (with a reason) or withdraw."""
        repository = f"{request.path_params['owner']}/{request.path_params['repo']}"
        name = request.path_params["name"]
        form = await request.form()
        session = self.session(request)
        if session is None or not _same_origin(request) or not _csrf_ok(session, form.get("csrf")):
            return PlainTextResponse(
                "This form is out of date or came from elsewhere: reload the page and try again.",
                status_code=403,
                headers=SECURITY_HEADERS,
            )
        key = str(form.get("key") or "") or None
        if key is not None:
            if not self.links.valid(repository, name, key):
                return self.not_found()
        elif repository.lower() not in {name.lower() for name in await self.readable(session)}:
            return self.not_found()
        action = str(form.get("action") or "")
        reason = str(form.get("reason") or "").strip()
        back = milestone_path(repository, name)
        try:
            outcome: Any
            if action in ("approve", "reject"):
                if action == "reject" and not reason:
                    raise services.SignoffRefused("A rejection needs a reason: say what must change.")
                outcome = await services.record_decision(
                    repository,
                    name,
                    session.user_id,
                    Decision.APPROVE if action == "approve" else Decision.REJECT,
                    comment=reason,
                    user_name=session.name or session.login,
                    via="web",
                )
                done = action if outcome.recorded else "unchanged"
            elif action == "withdraw":
                outcome = await services.withdraw_decision(repository, name, session.user_id, via="web")
                done = "withdraw" if outcome is not None else "unchanged"
            else:
                return PlainTextResponse("unknown action", status_code=400, headers=SECURITY_HEADERS)
        except NotFound:
            return self.not_found()
        except services.SignoffRefused as refusal:
            request.scope["query_string"] = urlencode({"key": key} if key else {}).encode()
            code = 403 if isinstance(refusal, services.NotAnApprover) else 409
            return await self._milestone_page(request, repository, name, error=str(refusal), status_code=code)
        self.after_decision()
        query = urlencode({**({"key": key} if key else {}), "done": done})
        return RedirectResponse(f"{back}?{query}#signoff", 303, headers=SECURITY_HEADERS)

    # Signing in and out ----------------------------------------------------------------

    async def start_signin(self, request: Request) -> Response:
        if self.signin is None or self.sessions is None:
            return self.render("message.html", 503, title="Sign-in off", message=SIGNIN_OFF, session=None)
        state = secrets.token_urlsafe(24)
        response = RedirectResponse(self.signin.authorize_url(state), 303, headers=SECURITY_HEADERS)
        self.sessions.remember_signin(response, state, _local_path(request.query_params.get("next")))
        return response

    async def finish_signin(self, request: Request) -> Response:
        if self.signin is None or self.sessions is None:
            return self.not_found()
        remembered = self.sessions.signin_state(request)
        state = request.query_params.get("state", "")
        code = request.query_params.get("code")
        if remembered is None or not code or not hmac.compare_digest(remembered["state"].encode(), state.encode()):
            return self.render(
                "message.html",
                400,
                title="Sign-in failed",
                message="This sign-in is out of date or did not start here. Please sign in again.",
                session=None,
            )
        try:
            user = await self.signin.sign_in(code)
        except SignInFailed as failure:
            return self.render("message.html", 502, title="Sign-in failed", message=str(failure), session=None)
        response = RedirectResponse(_local_path(remembered.get("next")), 303, headers=SECURITY_HEADERS)
        self.sessions.forget_signin(response)
        self.sessions.start(response, user.login, user.name, user.token)
        return response

    async def signout(self, request: Request) -> Response:
        form = await request.form()
        session = self.session(request)
        if session is not None and (not _same_origin(request) or not _csrf_ok(session, form.get("csrf"))):
            return PlainTextResponse("reload the page and try again", status_code=403, headers=SECURITY_HEADERS)
        response = self.render("message.html", title="Signed out", message="You are signed out.", session=None)
        if self.sessions is not None:
            self.sessions.end(response)
        return response


def _status(value: str | None) -> GateStatus | None:
    try:
        return GateStatus(value) if value else None
    except ValueError:
        return None


def _page_url(path: str, query: Mapping[str, str], param: str, number: int) -> str:
    kept = {name: value for name, value in query.items() if name != "done"}
    kept[param] = str(number)
    return f"{path}?{urlencode(kept)}"


def _local_path(path: str | None) -> str:
    """Only a path on this service: never another site (`//evil.example`, `https://…`)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def _same_origin(request: Request) -> bool:
    """A browser's POST says where it came from; one from another site is refused. Under the pages'
    no-referrer policy a browser's Origin is "null", so Sec-Fetch-Site speaks for it."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


def _csrf_ok(session: Session, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "replace"))
