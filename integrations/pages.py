"""The milestone page: where a check run's `details_url` (and, later, Slack) points.

It needs no login, so every link carries a key (core/page_links.py). Only those shown the link (the check, the
Slack message) can open the page; a wrong key and an unknown milestone get the same
404, so the page never tells whether a milestone exists.

The page lists everything GitHub's check output had to cut: every failing required
test, blocking defect, untested test and missing approver.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from core.catalog import NotFound
from core.db import within_deadline
from core.enums import CriterionResult, Lifecycle
from core.gate import DefectFact, FailingTest, LaunchRef, Verdict
from core.lifecycle import LIFECYCLE_TITLE
from core.page_links import PageLinks
from core.report import STATUS_TITLE, criterion_text, verdict_json
from core.services import get_verdict
from core.wording import days, days_left, first_line, percent, short_sha

# On every answer, 404 included. The key is in the URL: no caching, no indexing, and no
# Referer carrying it to GitHub when someone follows a link.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}

RESULT_TITLE = {CriterionResult.MET: "met", CriterionResult.NOT_MET: "not met", CriterionResult.NO_DATA: "no data"}


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)


# A verdict takes tens of milliseconds; one that takes this long will not come.
PAGE_DEADLINE = 10.0


async def milestone_page(request: Request) -> Response:
    """GET /milestones/{owner}/{repo}/{name:path}?key=…[&format=json]"""
    links: PageLinks | None = getattr(request.app.state, "page_links", None)
    owner = request.path_params["owner"]
    repo = request.path_params["repo"]
    name = request.path_params["name"]
    repository = f"{owner}/{repo}"
    if links is None or not links.valid(repository, name, request.query_params.get("key")):
        return _not_found()
    try:
        # While the database is away: 503 at once (the app's handler), not a page that hangs.
        verdict = await within_deadline(lambda: get_verdict(repository, name), PAGE_DEADLINE)
    except NotFound:
        return _not_found()
    if request.query_params.get("format") == "json":
        return JSONResponse(verdict_json(verdict), headers=SECURITY_HEADERS)
    return HTMLResponse(render_milestone_page(verdict, repository), headers=SECURITY_HEADERS)


# Rendering ------------------------------------------------------------------

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1f2328}
h1{font-size:1.5rem;margin-bottom:.25rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%}th,td{text-align:left;vertical-align:top;padding:.3rem .6rem;border-bottom:1px solid #eaeef2}
th{background:#f6f8fa}code{font-size:.9em}.muted{color:#656d76}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;font-weight:600;background:#eaeef2}
.status-complete,.result-met{color:#1a7f37}.status-blocked,.result-not_met,.overdue{color:#cf222e}
.status-at_risk,.status-ready_for_signoff{color:#9a6700}.overdue{font-weight:600}
ul.names{columns:2;padding-left:1.2rem}
""".strip()


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _safe_url(url: str | None) -> str | None:
    """Only absolute http(s) URLs become links: never `javascript:` or the like."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url.strip()


def _link(url: str | None, text: str) -> str:
    """`text` is already escaped."""
    safe = _safe_url(url)
    if safe is None:
        return text
    return f'<a href="{_e(safe)}" rel="noopener noreferrer">{text}</a>'


def _since(since: LaunchRef | None) -> str:
    if since is None:
        return '<span class="muted">—</span>'
    text = _link(since.url, f"run {since.id}")
    if since.commit_sha:
        text += f" <code>{_e(short_sha(since.commit_sha))}</code>"
    return text


def _section(title: str, count: int | None, body: str) -> str:
    counted = f" ({count})" if count is not None else ""
    return f"<h2>{_e(title)}{counted}</h2>\n{body}"


def _table(headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(header)}</th>" for header in headers)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _failing_row(test: FailingTest) -> str:
    return (
        f"<tr><td><code>{_e(test.name)}</code></td><td>{_e(test.status.value)}</td>"
        f"<td>{_since(test.since)}</td><td>{_e(first_line(test.message))}</td></tr>"
    )


def _defect_row(defect: DefectFact) -> str:
    text = _link(defect.url, f"#{_e(defect.number)} {_e(defect.title)}")
    return f"<tr><td>{text}</td><td>{_e(defect.severity.value)}</td><td>{_e(defect.state.value)}</td></tr>"


def _headline(verdict: Verdict) -> str:
    status = verdict.status
    parts = [
        f'<span class="status status-{_e(status.value)}">{_e(STATUS_TITLE[status])}</span>',
        f'<span class="lifecycle lifecycle-{_e(verdict.lifecycle.value)}">{_e(LIFECYCLE_TITLE[verdict.lifecycle])}</span>',
        _completion(verdict.completion),
    ]
    if verdict.lifecycle is Lifecycle.PLANNED and verdict.start_date is not None:
        parts.append(f"starts {_e(verdict.start_date.isoformat())}")
    left = verdict.days_left
    if verdict.overdue and left is not None:
        parts.append(f'<span class="overdue">overdue by {days(-left)}</span>')
    if verdict.target_date is None:
        parts.append('<span class="muted">no target date</span>')
    elif verdict.overdue or left is None:
        parts.append(f"target {_e(verdict.target_date.isoformat())}")
    else:
        parts.append(f"target {_e(verdict.target_date.isoformat())}, {days_left(left)}")
    return "<p>" + " · ".join(parts) + "</p>"


def _completion(completion: int | None) -> str:
    if completion is None:
        return '<span class="muted">completion n/a</span>'
    return f'<progress max="100" value="{completion}">{completion}%</progress> {completion}%'


def _included_rows(verdict: Verdict) -> list[str]:
    includes = verdict.criteria.includes
    if includes is None:
        return []
    return [
        f"<tr><td>{_e(child.name)}</td><td>{_e(LIFECYCLE_TITLE[child.lifecycle])}</td>"
        f'<td class="status-{_e(child.status.value)}">{_e(STATUS_TITLE[child.status])}</td>'
        f"<td>{_completion(child.completion)}</td></tr>"
        for child in includes.numbers.milestones
    ]


def render_milestone_page(verdict: Verdict, repository: str) -> str:
    """The whole page: a small HTML5 document, inline CSS, no scripts, nothing fetched."""
    title = f"{repository} · {verdict.milestone}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="robots" content="noindex">',
        f"<title>{_e(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f'<p class="muted">{_e(repository)}</p>',
        f"<h1>{_e(verdict.milestone)}</h1>",
        _headline(verdict),
    ]

    criteria_rows = (
        f"<tr><td>{_e(criterion_text(c).title)}</td>"
        f'<td class="result-{_e(c.result.value)}">{_e(RESULT_TITLE[c.result])}</td><td>{_e(c.summary)}</td></tr>'
        for c in verdict.criteria
    )
    out.append(_section("Criteria", None, _table(["Criterion", "Result", "Details"], criteria_rows)))
    if included := _included_rows(verdict):
        out.append(
            _section(
                "Included milestones",
                len(included),
                _table(["Milestone", "Lifecycle", "Status", "Completion"], included),
            )
        )

    metrics = verdict.metrics
    forecast = metrics.forecast
    rate = percent(metrics.pass_rate)
    when = forecast.date.isoformat() if forecast.date else "no date"
    out.append(
        _section(
            "Progress",
            None,
            "<ul>"
            f"<li>Pass rate: {_e(rate)} ({_e(metrics.direction.value)})</li>"
            f"<li>Forecast: {_e(when)} ({_e(forecast.reason)})</li>"
            "</ul>",
        )
    )

    blocking = verdict.blocking
    if blocking.failing_tests:
        rows = (_failing_row(test) for test in blocking.failing_tests)
        out.append(
            _section(
                "Failing required tests",
                len(blocking.failing_tests),
                _table(["Test", "Status", "Failing since", "Message"], rows),
            )
        )
    if blocking.defects:
        rows = (_defect_row(defect) for defect in blocking.defects)
        out.append(_section("Blocking defects", len(blocking.defects), _table(["Defect", "Severity", "State"], rows)))
    if blocking.untested:
        met = verdict.criteria.coverage.met
        note = '<p class="muted">Coverage is met; these tests have not run yet.</p>\n' if met else ""
        areas = []
        for area in blocking.untested:
            names = "".join(f"<li><code>{_e(name)}</code></li>" for name in area.tests)
            areas.append(
                f'<h3>{_e(area.suite or "(no suite)")} ({len(area.tests)})</h3>\n<ul class="names">{names}</ul>'
            )
        total = sum(len(area.tests) for area in blocking.untested)
        out.append(_section("Untested areas", total, note + "\n".join(areas)))
    if blocking.rejections:
        items = "".join(
            f"<li><strong>{_e(r.user_id)}</strong>" + (f": {_e(r.comment)}" if r.comment else "") + "</li>"
            for r in blocking.rejections
        )
        out.append(_section("Rejections", len(blocking.rejections), f"<ul>{items}</ul>"))
    if blocking.missing_approvers:
        items = "".join(f"<li>{_e(user)}</li>" for user in blocking.missing_approvers)
        out.append(_section("Awaiting sign-off from", len(blocking.missing_approvers), f"<ul>{items}</ul>"))
    if verdict.warnings:
        items = "".join(f"<li>{_e(warning)}</li>" for warning in verdict.warnings)
        out.append(_section("Warnings", len(verdict.warnings), f"<ul>{items}</ul>"))

    out += ["</body>", "</html>", ""]
    return "\n".join(out)
