"""The milestone page: the pure renderer, the signed links, and the endpoint through the real app."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.enums import Decision, DefectState, GateStatus, Severity, TestStatus
from core.gate import DefectFact, LaunchRef, evaluate
from core.page_links import PageLinks
from core.services import save_milestone
from integrations.pages import SECURITY_HEADERS, render_milestone_page
from tests.github import SECRET, running_app, settings_for
from tests.test_gate import NOW, TODAY, decision, defect, fact, facts, policy

P, F, E, S = TestStatus.PASSED, TestStatus.FAILED, TestStatus.ERROR, TestStatus.SKIPPED
SCRIPT = "<script>alert(1)</script>"


def page(**fields) -> str:
    return render_milestone_page(evaluate(facts(**fields), NOW), "acme/shop")


# The renderer ---------------------------------------------------------------


def test_a_complete_milestone_is_a_small_self_contained_document():
    html = page(tests=[fact("a", P), fact("b", P)], target_date=TODAY + timedelta(days=7))
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<title>acme/shop · v2.0</title>" in html and "<h1>v2.0</h1>" in html
    assert "complete" in html and "target 2026-12-01, 7 days left" in html
    assert "overdue by" not in html
    for title in ("Required tests pass", "Defects resolved", "Coverage met", "Sign-off obtained"):
        assert title in html
    assert "Pass rate: 100%" in html and "criteria met today" in html
    assert "<script" not in html and "src=" not in html and "<link" not in html
    assert "Failing required tests" not in html and "Blocking defects" not in html


def test_user_controlled_text_is_escaped():
    since = LaunchRef(7, "0123456789abcdef", "https://github.com/acme/shop/actions/runs/7?a=1&b=2", NOW)
    evil = replace(defect(3, Severity.CRITICAL), title=SCRIPT)
    html = page(
        policy=policy(required=["suite.A.*"]),
        tests=[fact(SCRIPT, F, required=True, failing_since=since, message=f"{SCRIPT}\nsecond line")],
        defects=[evil],
        approvers=["al<i>ce"],
        decisions=[replace(decision("al<i>ce", Decision.REJECT), comment='"><img src=x>')],
    )
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "suite.A.&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "#3 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "al&lt;i&gt;ce" in html and "&quot;&gt;&lt;img src=x&gt;" in html
    assert "second line" not in html  # only the message's first line
    assert 'href="https://github.com/acme/shop/actions/runs/7?a=1&amp;b=2"' in html
    assert "run 7</a> <code>0123456</code>" in html


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
    assert html.count("<a ") == 1


def test_the_blocking_lists_are_complete():
    failing = [fact(f"test_{i:05}", F, required=True) for i in range(5000)]
    untested = [fact(f"later_{i:04}", None, required=True, suite="suite.B") for i in range(1200)]
    html = page(
        policy=policy(required=["suite.*"], signoff={"quorum": "all"}),
        tests=failing + untested,
        defects=[defect(n, Severity.HIGH) for n in range(1, 31)],
        approvers=["alice", "bob"],
    )
    assert "Failing required tests (5000)" in html
    assert all(f"suite.A.test_{i:05}</code>" in html for i in range(5000))
    assert "Blocking defects (30)" in html
    assert all(f"#{n} defect {n}</a>" in html for n in range(1, 31))
    assert "Untested areas (1200)" in html and "<h3>suite.B (1200)</h3>" in html
    assert all(f"suite.B.later_{i:04}</code>" in html for i in range(1200))
    assert "Awaiting sign-off from (2)" in html and "<li>alice</li><li>bob</li>" in html
    assert "… and" not in html


def test_overdue_wording():
    html = page(tests=[fact("a", F)], target_date=TODAY - timedelta(days=3))
    assert "blocked" in html and "overdue by 3 days" in html and "target 2026-11-21" in html
    assert "overdue by 1 day<" in page(tests=[fact("a", F)], target_date=TODAY - timedelta(days=1))
    done = page(tests=[fact("a", P)], target_date=TODAY - timedelta(days=3))
    assert "overdue by" not in done and "3 days ago" in done
    assert "no target date" in page(tests=[fact("a", P)])


def test_warnings_and_rejections_are_listed():
    html = page(
        policy=policy(required=["nothing.*"]),
        tests=[fact("a", P)],
        unmatched_selectors=["nothing.*"],
        approvers=["carol"],
        decisions=[decision("carol", Decision.REJECT)],
    )
    assert "Warnings (1)" in html and "required selector &#x27;nothing.*&#x27; matches no test" in html
    assert "Rejections (1)" in html and "<strong>carol</strong>: reason" in html


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
    site.app.state.page_links = PageLinks(None, None)
    response = await site.client.get(f"/milestones/acme/shop/v2.0?key={expected_key('', 'acme/shop', 'v2.0')}")
    assert response.status_code == 404 and response.text == "not found"
    del site.app.state.page_links
    response = await site.client.get(LINKS.milestone_url("acme/shop", "v2.0"))
    assert response.status_code == 404 and response.text == "not found"


def test_the_page_shows_the_lifecycle_completion_and_included_milestones():
    from core.enums import Lifecycle
    from core.gate import IncludedFact

    children = [IncludedFact("Sprint <24>", GateStatus.COMPLETE, Lifecycle.COMPLETED, 100)]
    html = page(tests=[fact("a", P), fact("b", F)], policy=policy(includes=["Sprint *"]), included=children)
    assert '<span class="lifecycle lifecycle-active">active</span>' in html
    assert '<progress max="100" value="' in html
    assert "<h2>Included milestones (1)</h2>" in html
    assert "<td>Sprint &lt;24&gt;</td><td>completed</td>" in html
    planned = page(tests=[fact("a", F)], start_date=TODAY + timedelta(days=3))
    assert '<span class="lifecycle lifecycle-planned">planned</span>' in planned
    assert f"starts {(TODAY + timedelta(days=3)).isoformat()}" in planned
