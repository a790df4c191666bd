"""Sign-in with GitHub on the web pages, who sees what, and sign-off on the page: the real app in
process, against the loopback fake GitHub."""

from __future__ import annotations

import io
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core import services
from core.enums import Decision
from core.ingest import LaunchSource
from core.junit import parse_stream
from core.models import Signoff
from core.page_links import PageLinks
from integrations.pages.sessions import SESSION_COOKIE, Sessions
from tests.fake_github import FakeGitHub
from tests.github import SECRET, Hooks, running_app, settings_for

PUBLIC = "http://milestones.test"
LINKS = PageLinks(PUBLIC, SECRET)
POLICY = """\
milestones:
  "v1.0":
    signoff: {approvers: ["github:@acme/qa-leads", "U0SLACK1"], quorum: 1, allow_early_signoff: true}
"""


@pytest.fixture
def github():
    with FakeGitHub() as fake:
        fake.oauth_client("Iv1.client", "client-secret")
        fake.repo("acme/shop").private = False
        web = fake.repo("acme/web")
        web.private, web.readers = True, {"octocat"}
        secret = fake.repo("acme/secret")
        secret.private, secret.readers = True, {"hubot"}
        fake.team("acme", "qa-leads", ["Octocat", "hubot"])
        fake.user_names["octocat"] = "The Octocat"
        fake.signed_in_as = "octocat"
        yield fake


@pytest.fixture
async def site(db, github) -> AsyncIterator[Hooks]:
    settings = settings_for(
        db,
        public_url=PUBLIC,
        github_client_id="Iv1.client",
        github_client_secret="client-secret",
        github_web_url=github.url,
        github_api_url=github.url,
    )
    await services.save_milestone("acme/shop", "v2.0")
    await services.apply_policy_file("acme/web", POLICY)
    await services.save_milestone("acme/web", "v1.0")
    await services.save_milestone("acme/secret", "Hidden")
    async with running_app(settings) as running:
        yield running


async def sign_in(site: Hooks, github: FakeGitHub, next_path: str = "/") -> httpx.Response:
    """Through GitHub's authorize page and back, as a browser follows the redirects."""
    start = await site.client.get(next_path)
    assert start.status_code == 303 and start.headers["location"].startswith("/signin?next=")
    to_github = await site.client.get(start.headers["location"])
    assert to_github.status_code == 303
    authorize = to_github.headers["location"]
    assert authorize.startswith(f"{github.url}/login/oauth/authorize?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == ["Iv1.client"] and query["redirect_uri"] == [f"{PUBLIC}/auth/github/callback"]
    async with httpx.AsyncClient() as browser:
        back = await browser.get(authorize)
    assert back.status_code == 302
    callback = urlsplit(back.headers["location"])
    done = await site.client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 303
    return done


async def test_sign_in_sets_a_session_cookie_and_shows_only_readable_repositories(site, github):
    done = await sign_in(site, github, "/milestones?status=no_data")
    assert done.headers["location"] == "/milestones?status=no_data"
    cookie = next(value for value in done.headers.get_list("set-cookie") if value.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=28800" in cookie and "Path=/" in cookie
    # Nothing readable in it: the token is encrypted.
    assert not any(token in cookie for token in github.user_tokens)

    overview = await site.client.get("/milestones")
    assert overview.status_code == 200
    assert "Signed in as <strong>octocat</strong>" in overview.text
    assert "<h2" in overview.text and "acme/shop" in overview.text and "acme/web" in overview.text
    assert "acme/secret" not in overview.text and "Hidden" not in overview.text
    # A page of a readable repository opens without a key; a guessed one of another is not found.
    assert (await site.client.get("/milestones/acme/web/v1.0")).status_code == 200
    for guessed in ("/milestones/acme/secret/Hidden", "/milestones/acme/secret/Other", "/milestones/acme/nope/x"):
        response = await site.client.get(guessed)
        assert response.status_code == 404 and response.text == "not found"
    # A wrong key is a 404 even for a reader.
    assert (await site.client.get("/milestones/acme/web/v1.0?key=" + "0" * 32)).status_code == 404


async def test_filters_are_kept_in_the_url(site, github):
    await sign_in(site, github)
    only_web = await site.client.get("/milestones?repository=acme/web")
    assert "acme/web" in only_web.text and ">v2.0<" not in only_web.text
    assert '<option value="acme/web" selected>' in only_web.text
    none = await site.client.get("/milestones?status=blocked")
    assert "No open milestone matches these filters." in none.text
    assert '<option value="blocked" selected>' in none.text


async def test_the_overview_shows_each_milestones_triage(site, github):
    await services.apply_policy_file(
        "acme/shop",
        'milestones:\n  "v2.0":\n    required: ["com.acme.*"]\n'
        "    quarantine:\n      - {test: com.acme.Cart.flaky, reason: times out on CI}\n",
    )
    failing = '<failure message="boom"/>'
    cases = {"new": failing, "known": failing, "flaky": failing, "fine": ""}
    report = "".join(
        f'<testcase classname="com.acme.Cart" name="{name}">{body}</testcase>' for name, body in cases.items()
    )
    await services.record_launch(
        parse_stream(io.BytesIO(f"<testsuite>{report}</testsuite>".encode()), "report.xml"),
        LaunchSource("acme/shop", "smoke", "run-1"),
    )
    known = services.IssueFacts(7, "Cart breaks", ["bug"], "open", body="Affects: com.acme.Cart.known")
    await services.upsert_defect("acme/shop", known)
    await sign_in(site, github)
    overview = await site.client.get("/milestones?repository=acme/shop")
    assert re.search(r'<span class="muted triage">\s*1 new failing · 1 known · 1 quarantined</span>', overview.text)
    # Milestones without failures say nothing of triage.
    assert overview.text.count('class="muted triage"') == 1


async def test_what_github_said_is_kept_for_minutes(site, github):
    await sign_in(site, github)
    github.clear_requests()
    for _ in range(3):
        await site.client.get("/milestones")
    asked = sorted(call.path for call in github.requests if call.path.startswith("/repos/"))
    # Once for each repository the service knows, whatever the number of pages.
    assert asked == ["/repos/acme/secret", "/repos/acme/shop", "/repos/acme/web"]
    site.app.state.pages.signin.cache_seconds = 0
    await site.client.get("/milestones")
    assert len([call for call in github.requests if call.path.startswith("/repos/")]) == 6


async def test_without_a_session_pages_ask_to_sign_in_and_keys_still_work(site):
    response = await site.client.get("/milestones/acme/web/v1.0")
    assert (
        response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fmilestones%2Facme%2Fweb%2Fv1.0"
    )
    keyed = await site.client.get(LINKS.milestone_url("acme/secret", "Hidden"))
    assert keyed.status_code == 200 and "<h1>Hidden</h1>" in keyed.text


async def test_a_forged_expired_or_foreign_session_is_no_session(site, github):
    await sign_in(site, github)
    sessions: Sessions = site.app.state.pages.sessions
    good = site.client.cookies[SESSION_COOKIE]
    site.client.cookies.set(SESSION_COOKIE, good[:-6] + "AAAAAA")
    assert (await site.client.get("/milestones")).status_code == 303
    old = sessions.fernet.encrypt_at_time(
        b'{"login": "octocat", "name": null, "token": "t", "csrf": "c"}', int(time.time()) - 9 * 3600
    )
    site.client.cookies.set(SESSION_COOKIE, old.decode())
    assert (await site.client.get("/milestones")).status_code == 303
    other = Sessions("another secret", hours=8, secure=False).fernet.encrypt(b'{"login": "octocat"}')
    site.client.cookies.set(SESSION_COOKIE, other.decode())
    assert (await site.client.get("/milestones")).status_code == 303


async def test_a_callback_that_did_not_start_here_is_refused(site, github):
    response = await site.client.get("/auth/github/callback?code=abc&state=xyz")
    assert response.status_code == 400 and "did not start here" in response.text
    assert SESSION_COOKIE not in site.client.cookies


async def test_sign_in_goes_back_only_to_this_site(site, github):
    for next_path in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        site.client.cookies.clear()
        to_github = await site.client.get("/signin", params={"next": next_path})
        async with httpx.AsyncClient() as browser:
            back = await browser.get(to_github.headers["location"])
        callback = urlsplit(back.headers["location"])
        done = await site.client.get(f"{callback.path}?{callback.query}")
        assert done.headers["location"] == "/"


async def test_sign_out_needs_the_form_token_and_ends_the_session(site, github):
    await sign_in(site, github)
    page = await site.client.get("/milestones")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    refused = await site.client.post("/signout", data={"csrf": "wrong"})
    assert refused.status_code == 403
    done = await site.client.post("/signout", data={"csrf": csrf})
    assert done.status_code == 200 and "You are signed out." in done.text
    assert SESSION_COOKIE not in site.client.cookies
    assert (await site.client.get("/milestones")).status_code == 303


# Sign-off on the page ----------------------------------------------------------------


async def form_token(site: Hooks, path: str) -> str:
    page = await site.client.get(path)
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


async def test_a_github_team_member_approves_rejects_and_withdraws_on_the_page(site, github):
    await sign_in(site, github)
    page = await site.client.get("/milestones/acme/web/v1.0")
    # The team's members were read from GitHub with the person's token.
    assert "octocat" in page.text and 'value="approve"' in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    approved = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "approve"})
    assert approved.status_code == 303
    assert approved.headers["location"] == "/milestones/acme/web/v1.0?done=approve#signoff"
    again = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "approve"})
    assert again.headers["location"].endswith("done=unchanged#signoff")
    shown = await site.client.get("/milestones/acme/web/v1.0?done=approve")
    assert "Your approval is recorded." in shown.text and "approved" in shown.text
    assert re.search(
        r'<th scope="row">The Octocat</th><td>approve <span class="muted">\(standing\)</span></td><td></td><td class="via">web</td>',
        shown.text,
    )

    no_reason = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "reject", "reason": " "})
    assert no_reason.status_code == 409 and "A rejection needs a reason" in no_reason.text
    rejected = await site.client.post(
        "/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "reject", "reason": "checkout breaks on <Safari>"}
    )
    assert rejected.status_code == 303
    withdrawn = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "withdraw"})
    assert withdrawn.headers["location"].endswith("done=withdraw#signoff")

    trail = await Signoff.filter(milestone__name="v1.0").order_by("id")
    assert [(row.user_id, row.decision, row.via, row.valid) for row in trail] == [
        ("github:octocat", Decision.APPROVE, "web", False),
        ("github:octocat", Decision.WITHDRAW, "web", False),
        ("github:octocat", Decision.REJECT, "web", False),
        ("github:octocat", Decision.WITHDRAW, "web", False),
    ]
    assert trail[2].comment == "checkout breaks on <Safari>" and trail[0].user_name == "The Octocat"


async def test_sign_off_posts_need_the_form_token_the_origin_and_an_approver(site, github):
    await sign_in(site, github)
    csrf = await form_token(site, "/milestones/acme/shop/v2.0")
    # acme/shop's v2.0 has no GitHub approvers: the page offers no buttons, and a POST is refused.
    refused = await site.client.post("/signoff/acme/shop/v2.0", data={"csrf": csrf, "action": "approve"})
    assert refused.status_code == 403 and "not an approver" in refused.text
    for data, headers in (
        ({"action": "approve"}, {}),
        ({"csrf": "forged", "action": "approve"}, {}),
        ({"csrf": csrf, "action": "approve"}, {"Origin": "https://evil.example"}),
        ({"csrf": csrf, "action": "approve"}, {"Sec-Fetch-Site": "cross-site", "Origin": "null"}),
    ):
        response = await site.client.post("/signoff/acme/web/v1.0", data=data, headers=headers)
        assert response.status_code == 403
    # Someone who cannot read the repository cannot post to it, even with the form token.
    hidden = await site.client.post("/signoff/acme/secret/Hidden", data={"csrf": csrf, "action": "approve"})
    assert hidden.status_code == 404
    assert await Signoff.all().count() == 0
    # Signed out, no POST counts.
    site.client.cookies.clear()
    anonymous = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "approve"})
    assert anonymous.status_code == 403


async def test_with_a_key_a_signed_in_approver_decides_and_slack_decisions_say_slack(site, github):
    await services.record_decision("acme/web", "v1.0", "U0SLACK1", Decision.APPROVE)
    await sign_in(site, github)
    github.signed_in_as = None
    url = LINKS.milestone_url("acme/web", "v1.0")
    key = parse_qs(urlsplit(url).query)["key"][0]
    csrf = await form_token(site, urlsplit(url).path + "?key=" + key)
    done = await site.client.post("/signoff/acme/web/v1.0", data={"csrf": csrf, "action": "approve", "key": key})
    assert done.headers["location"] == f"/milestones/acme/web/v1.0?key={key}&done=approve#signoff"
    assert [(row.user_id, row.via) for row in await Signoff.all().order_by("id")] == [
        ("U0SLACK1", "slack"),
        ("github:octocat", "web"),
    ]


# Names -------------------------------------------------------------------------------


async def test_approvers_are_named_by_slack_once_an_hour_and_by_id_when_slack_cannot():
    from slack_sdk.web.async_client import AsyncWebClient

    from integrations.pages.names import DisplayNames
    from tests.fake_slack import FakeSlack

    with FakeSlack() as fake:
        fake.add_user("U0DANA", "dana", real_name="Dana Scully")
        names = DisplayNames(AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))
        wanted = ["U0DANA", "U0GONE", "github:octocat", "@qa-leads"]
        assert await names.of(wanted) == {
            "U0DANA": "dana",  # the display name, before the real name
            "U0GONE": "U0GONE",
            "github:octocat": "octocat",
            "@qa-leads": "@qa-leads",
        }
        await names.of(wanted)
        assert sorted(call.body["user"] for call in fake.calls("users.info")) == ["U0DANA", "U0GONE"]
    assert await DisplayNames(None).of(["U0DANA"]) == {"U0DANA": "U0DANA"}
