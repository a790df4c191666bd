"""The milestone page: the pure renderer, the signed links, and the endpoint through the real app."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.approvers import Approvers
from core.enums import Decision, DefectState, GateStatus, Severity, TestStatus
from core.gate import DefectFact, LaunchRef, evaluate
from core.history import DayPoint, History, StatusChange
from core.page_links import PageLinks
from core.page_readings import MilestoneDashboard, TrailEntry
from core.readings import MilestoneReading
from core.services import save_milestone
from core.services.dashboard import failing_rows
from integrations.pages import SECURITY_HEADERS
from integrations.pages.views import render_milestone_page
from tests.github import SECRET, running_app, settings_for
from tests.test_gate import NOW, TODAY, decision, defect, fact, facts, policy

P, F, E, S = TestStatus.PASSED, TestStatus.FAILED, TestStatus.ERROR, TestStatus.SKIPPED
SCRIPT = "<script>alert(1)</script>"


def board(history: History | None = None, query: dict[str, str] | None = None, **fields) -> MilestoneDashboard:
    milestone = facts(**fields)
    verdict = evaluate(milestone, NOW)
    users = tuple(milestone.approvers)
    trail = [
        TrailEntry(n, d.at, d.user_id, None, d.decision.value, d.comment, "slack", True)
        for n, d in enumerate(milestone.decisions, 1)
    ]
    return MilestoneDashboard(
        reading=MilestoneReading("acme/shop", milestone.name, "", milestone, verdict, 1),
        failing=failing_rows(milestone.tests),
        history=history or History([], []),
        launches=[],
        approvers=Approvers(users, "policy" if users else None, users, ()),
        trail=trail,
        standing={d.user_id: d.decision.value for d in milestone.decisions},
    )


def page(query: dict[str, str] | None = None, history: History | None = None, **fields) -> str:
    return render_milestone_page(board(history, **fields), query=query, today=TODAY)


# The renderer ---------------------------------------------------------------


def test_a_complete_milestone_is_a_small_self_contained_document():
    html = page(tests=[fact("a", P), fact("b", P)], target_date=TODAY + timedelta(days=7))
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<title>acme/shop · v2.0</title>" in html and "<h1>v2.0</h1>" in html
    assert "complete" in html and "target 2026-12-01, 7 days left" in html
    assert "overdue by" not in html
    for title in ("Required tests pass", "Defects resolved", "Coverage met", "Sign-off obtained"):
        assert title in html
    assert "pass rate 100%" in html and "criteria met today" in html
    # One style sheet from the service itself; no script, no inline style (the CSP allows neither).
    assert '<link rel="stylesheet" href="/static/style.css">' in html
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "Failing tests (0)" in html and "No test is failing." in html
    for anchor in ("criteria", "trend", "failing", "untested", "flaky", "defects", "launches", "signoff"):
        assert f'<section id="{anchor}"' in html and f'href="#{anchor}"' in html


def test_headings_are_in_order_and_tables_have_headers():
    html = page(
        tests=[fact("a", F, required=True)], defects=[defect(1, Severity.HIGH)], policy=policy(required=["suite.*"])
    )
    levels = [int(level) for level in re.findall(r"<h([1-6])", html)]
    assert levels[0] == 1 and all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
    assert html.count("<table") == html.count("<thead>")
    assert 'role="img"' in html and '<desc id="trend-desc">' in html


def test_user_controlled_text_is_escaped():
    since = LaunchRef(7, "0123456789abcdef", "https://github.com/acme/shop/actions/runs/7?a=1&b=2", NOW)
    evil = defect(3, Severity.CRITICAL)._replace(title=SCRIPT)
    html = page(
        policy=policy(required=["suite.A.*"]),
        tests=[fact(SCRIPT, F, required=True, failing_since=since, message=f"{SCRIPT}\nsecond line")],
        defects=[evil],
        approvers=["al<i>ce"],
        decisions=[decision("al<i>ce", Decision.REJECT)._replace(comment='"><img src=x>')],
    )
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "suite.A.&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "#3 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "al&lt;i&gt;ce" in html and "&#34;&gt;&lt;img src=x&gt;" in html
    assert "second line" not in html  # only the message's first line
    assert 'href="https://github.com/acme/shop/actions/runs/7?a=1&amp;b=2"' in html
    assert re.search(r"run 7</a>\s*<code>0123456</code>", html)


def test_only_http_links_become_links():
    html = page(
        tests=[fact("a", P)],
        defects=[
            DefectFact(1, "bad link", Severity.CRITICAL, DefectState.OPEN, "javascript:alert(1)"),
            DefectFact(2, "odd case", Severity.CRITICAL, DefectState.OPEN, " JavaScript:alert(1)"),
            DefectFact(3, "no link", Severity.CRITICAL, DefectState.OPEN, None),
            DefectFact(4, "good", Severity.HIGH, DefectState.OPEN, "https://github.com/acme/shop/issues/4"),
        ],
    )
    assert "javascript" not in html.lower()
    assert "#1 bad link" in html and "#3 no link" in html
    assert '<a href="https://github.com/acme/shop/issues/4" rel="noopener noreferrer">#4 good</a>' in html


def test_failing_tests_required_first_and_long_lists_paginate():
    failing = [fact(f"opt_{i:03}", F) for i in range(60)]
    failing += [fact(f"req_{i:03}", E, required=True, message=f"boom {i}") for i in range(60)]
    untested = [fact(f"later_{i:04}", None, required=True, suite="suite.B") for i in range(120)]
    fields = dict(policy=policy(required=["suite.A.req_*", "suite.B.*"]), tests=failing + untested)
    first = page(**fields)
    assert "Failing tests (120)" in first and "1–50 of 120" in first
    # The failing tests' table, before the failures grouped by cause.
    shown = re.findall(r"<code>suite\.A\.(\w+)</code>", first.split('id="causes"')[0])
    assert shown == [f"req_{i:03}" for i in range(50)]
    assert '<td class="number">60</td><th scope="row"><code>boom &lt;n&gt;</code></th>' in first
    assert 'href="/milestones/acme/shop/v2.0?failing_page=2#failing" rel="next"' in first
    assert "Untested (120)" in first and "suite.B.later_0049" in first and "suite.B.later_0050" not in first
    third = page({"failing_page": "3", "key": "k"}, **fields)
    assert re.findall(r"<code>suite\.A\.(\w+)</code>", third.split('id="causes"')[0]) == [
        f"opt_{i:03}" for i in range(40, 60)
    ]
    assert "101–120 of 120" in third and 'href="/milestones/acme/shop/v2.0?failing_page=2&amp;key=k#failing"' in third
    # A page past the end shows the last one.
    assert "101–120 of 120" in page({"failing_page": "99"}, **fields)
    assert "1–50 of 120" in page({"failing_page": "x"}, **fields)


def test_the_trend_chart_carries_its_values_and_status_changes():
    days = [
        DayPoint(TODAY - timedelta(days=2), GateStatus.BLOCKED, 0.8, 3, 2),
        DayPoint(TODAY - timedelta(days=1), GateStatus.AT_RISK, 0.9, 1, 0),
        DayPoint(TODAY, GateStatus.AT_RISK, None, 1, 0),
    ]
    at = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    changes = [StatusChange(at, GateStatus.AT_RISK, GateStatus.BLOCKED)]
    html = page(history=History(days, changes), tests=[fact("a", P)])
    found = re.findall(
        r'<g class="day" data-day="([\d-]+)" data-pass-rate="([\d.]*)" data-blocking-defects="(\d+)" '
        r'data-failing-required="(\d+)" data-status="([a-z ]+)">',
        html,
    )
    assert found == [
        ("2026-11-22", "0.8000", "3", "2", "blocked"),
        ("2026-11-23", "0.9000", "1", "0", "at risk"),
        ("2026-11-24", "", "1", "0", "at risk"),
    ]
    assert "<title>2026-11-22: pass rate 80%, 3 blocking defects, 2 failing required tests, blocked</title>" in html
    assert '<g class="change" data-day="2026-11-23" data-status="at risk">' in html
    assert "<title>2026-11-23: became at risk (was blocked)</title>" in html
    assert "Latest: 2026-11-24: pass rate n/a, 1 blocking defect, 0 failing required tests, at risk" in html
    # Two days with a pass rate: the line has two points.
    line = re.search(r'class="line-pass-rate" points="([^"]*)"', html).group(1)
    assert len(line.split()) == 2


def test_overdue_wording():
    html = page(tests=[fact("a", F)], target_date=TODAY - timedelta(days=3))
    assert "blocked" in html and "overdue by 3 days" in html and "target 2026-11-21" in html
    assert "overdue by 1 day<" in page(tests=[fact("a", F)], target_date=TODAY - timedelta(days=1))
    done = page(tests=[fact("a", P)], target_date=TODAY - timedelta(days=3))
    assert "overdue by" not in done and "3 days ago" in done
    assert "no target date" in page(tests=[fact("a", P)])


def test_warnings_and_the_trail_are_listed():
    html = page(
        policy=policy(required=["nothing.*"]),
        tests=[fact("a", P)],
        unmatched_selectors=["nothing.*"],
        approvers=["U0CAROL"],
        decisions=[decision("U0CAROL", Decision.REJECT)],
    )
    assert "Warnings (1)" in html and "required selector &#39;nothing.*&#39; matches no test" in html
    assert "Trail (1)" in html
    assert re.search(
        r"<th scope=\"row\">U0CAROL</th><td>reject <span class=\"muted\">\(standing\)</span></td><td>reason</td><td class=\"via\">slack</td>",
        html,
    )
    assert "rejected" in html


# Links ----------------------------------------------------------------------


def expected_key(secret: str, repository: str, name: str) -> str:
    message = f"milestone-page\n{repository}\n{name}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def test_milestone_url_shape():
    links = PageLinks("https://ms.example.com/", "s3cret")
    url = links.milestone_url("acme/shop", "v2.0 rc/1")
    key = expected_key("s3cret", "acme/shop", "v2.0 rc/1")
    assert url == f"https://ms.example.com/milestones/acme/shop/v2.0%20rc%2F1?key={key}"
    assert len(key) == 32
    assert links.valid("acme/shop", "v2.0 rc/1", key)


def test_keys_are_per_milestone_and_per_secret():
    links = PageLinks("https://ms.example.com", "s3cret")
    key = parse_qs(urlsplit(links.milestone_url("acme/shop", "v2.0")).query)["key"][0]
    assert links.valid("acme/shop", "v2.0", key)
    assert not links.valid("acme/shop", "v2.1", key)
    assert not links.valid("acme/other", "v2.0", key)
    assert not links.valid("acme/shop", "v2.0", key.upper())
    assert not links.valid("acme/shop", "v2.0", key[:-1])
    assert not links.valid("acme/shop", "v2.0", "")
    assert not links.valid("acme/shop", "v2.0", None)
    assert not links.valid("acme/shop", "v2.0", "é" * 32)
    assert not PageLinks("https://ms.example.com", "other").valid("acme/shop", "v2.0", key)


@pytest.mark.parametrize(
    "public_url, secret", [(None, "s3cret"), ("https://ms.example.com", None), ("", ""), (None, None)]
)
def test_no_links_without_a_public_url_and_a_secret(public_url, secret):
    links = PageLinks(public_url, secret)
    assert links.milestone_url("acme/shop", "v2.0") is None
    if not secret:
        assert not links.valid("acme/shop", "v2.0", expected_key("", "acme/shop", "v2.0"))


# The endpoint ---------------------------------------------------------------

# The app signs its links with the webhook secret.
LINKS = PageLinks("https://ms.example.com", SECRET)


@pytest.fixture
async def site(db):
    async with running_app(settings_for(db, public_url="https://ms.example.com")) as running:
        yield running


@pytest.fixture
def client(site):
    return site.client


def assert_secured(response: httpx.Response) -> None:
    for header, value in SECURITY_HEADERS.items():
        assert response.headers[header] == value


async def test_the_page_shows_the_milestone(client):
    await save_milestone("acme/shop", "v2.0")
    response = await client.get(LINKS.milestone_url("acme/shop", "v2.0"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>v2.0</h1>" in response.text and "acme/shop" in response.text
    assert "no data" in response.text
    assert_secured(response)


async def test_a_name_with_a_slash_and_a_space(client):
    await save_milestone("acme/shop", "v2.0 rc/1")
    response = await client.get(LINKS.milestone_url("acme/shop", "v2.0 rc/1"))
    assert response.status_code == 200
    assert "<h1>v2.0 rc/1</h1>" in response.text


async def test_the_page_as_json(client):
    await save_milestone("acme/shop", "v2.0")
    response = await client.get(LINKS.milestone_url("acme/shop", "v2.0") + "&format=json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    data = response.json()
    assert data["milestone"] == "v2.0"
    assert data["status"] == GateStatus.NO_DATA.value
    assert [criterion["name"] for criterion in data["criteria"]] == ["required_tests", "defects", "coverage", "signoff"]
    assert_secured(response)


async def test_a_wrong_key_no_key_and_an_unknown_milestone_look_alike(client):
    await save_milestone("acme/shop", "v2.0")
    good = LINKS.milestone_url("acme/shop", "v2.0")
    wrong = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    answers = [
        await client.get(wrong),
        await client.get(good.split("?")[0]),
        await client.get(good.split("?")[0] + "?key="),
        await client.get(LINKS.milestone_url("acme/shop", "v9.9")),  # signed, but no such milestone
        await client.get(LINKS.milestone_url("acme/elsewhere", "v2.0")),
        await client.get(wrong + "&format=json"),
    ]
    for response in answers:
        assert response.status_code == 404
        assert response.text == "not found"
        assert response.headers["content-type"].startswith("text/plain")
        assert_secured(response)


async def test_without_links_configured_every_page_is_not_found(site):
    await save_milestone("acme/shop", "v2.0")
    site.app.state.pages.links = PageLinks(None, None)
    response = await site.client.get(f"/milestones/acme/shop/v2.0?key={expected_key('', 'acme/shop', 'v2.0')}")
    assert response.status_code == 404 and response.text == "not found"
    response = await site.client.get(LINKS.milestone_url("acme/shop", "v2.0"))
    assert response.status_code == 404 and response.text == "not found"


async def test_the_style_sheet_is_served_and_the_overview_is_off_without_github(client):
    css = await client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@media print" in css.text and "@media (max-width" in css.text
    for path in ("/", "/milestones", "/signin"):
        response = await client.get(path)
        assert response.status_code == 503
        assert "GITHUB_CLIENT_ID" in response.text and "GITHUB_CLIENT_SECRET" in response.text
        assert_secured(response)


async def test_a_section_link_and_a_page_of_a_list(client):
    await save_milestone("acme/shop", "v2.0")
    url = LINKS.milestone_url("acme/shop", "v2.0", "failing")
    assert url.endswith("#failing")
    response = await client.get(url.split("#")[0] + "&failing_page=2")
    assert response.status_code == 200 and '<section id="failing"' in response.text
    with pytest.raises(ValueError):
        LINKS.milestone_url("acme/shop", "v2.0", "nowhere")


def test_the_page_shows_the_lifecycle_completion_and_included_milestones():
    from core.enums import Lifecycle
    from core.gate import IncludedFact

    children = [IncludedFact("Sprint <24>", GateStatus.COMPLETE, Lifecycle.COMPLETED, 100)]
    html = page(tests=[fact("a", P), fact("b", F)], policy=policy(includes=["Sprint *"]), included=children)
    assert '<span class="lifecycle lifecycle-active">active</span>' in html
    assert re.search(r'<progress max="100" value="\d+" aria-label="completion">\d+%</progress> \d+%', html)
    assert '<h3 id="included-h">Included milestones (1)</h3>' in html
    assert '<th scope="row">Sprint &lt;24&gt;</th><td>completed</td>' in html
    planned = page(tests=[fact("a", F)], start_date=TODAY + timedelta(days=3))
    assert '<span class="lifecycle lifecycle-planned">planned</span>' in planned
    assert f"starts {(TODAY + timedelta(days=3)).isoformat()}" in planned
