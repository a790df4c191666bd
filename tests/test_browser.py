"""The pages in a real browser: Debian's headless Chromium, driven by Playwright, against a real
`milestones serve` with the demo data and the fake GitHub for sign-in.

Playwright never downloads a browser here: it launches the system's Chromium (`.ci/run` installs
Debian's `chromium`). Without one the tests skip, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.page_links import PageLinks
from tests.cli import MILESTONES, json_of, succeeds
from tests.fake_github import FakeGitHub
from tests.github import SECRET
from tests.test_github_cli import free_port

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
)

WEB_POLICY = """\
milestones:
  "v1.0":
    signoff: {approvers: ["github:@acme/qa-leads"], quorum: 1, allow_early_signoff: true}
"""
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        fake.oauth_client("Iv1.browser", "browser-secret")
        shop = fake.repo("acme/shop")
        shop.private, shop.readers = True, {"octocat"}
        web = fake.repo("acme/web")
        web.private, web.readers = True, {"octocat"}
        secret = fake.repo("acme/secret")
        secret.private, secret.readers = True, {"hubot"}
        fake.team("acme", "qa-leads", ["octocat"])
        fake.user_names["octocat"] = "The Octocat"
        fake.signed_in_as = "octocat"
        yield fake


@pytest.fixture
def server(migrated_database_url: str, tmp_path: Path, github: FakeGitHub) -> Iterator[str]:
    """`milestones demo`, two more repositories, then `milestones serve` with sign-in through the fake GitHub."""
    database_url = migrated_database_url
    succeeds("demo", database_url=database_url, cwd=tmp_path)
    (tmp_path / "web.yml").write_text(WEB_POLICY)
    succeeds(
        "milestone", "add", "v1.0", "--repo", "acme/web", "--policy", "web.yml", database_url=database_url, cwd=tmp_path
    )
    succeeds("milestone", "add", "Hidden", "--repo", "acme/secret", database_url=database_url, cwd=tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "LOG_LEVEL", "SLACK_BOT_TOKEN")
    }
    environment.update(
        DATABASE_URL=database_url,
        GITHUB_WEBHOOK_SECRET=SECRET,
        PUBLIC_URL=url,
        GITHUB_CLIENT_ID="Iv1.browser",
        GITHUB_CLIENT_SECRET="browser-secret",
        GITHUB_WEB_URL=github.url,
        GITHUB_API_URL=github.url,
    )
    log = tmp_path / "server.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(MILESTONES), "serve", "--port", str(port)],
            cwd=tmp_path,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield url
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def test_signs_in_sees_permitted_repositories_reads_the_chart_and_approves(
    server, browser, github, tmp_path, migrated_database_url
):
    page = browser.new_context(viewport=DESKTOP).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)

    # Signing in: the overview sends the person to GitHub and back.
    page.goto(f"{server}/")
    assert page.url.rstrip("/") == server.rstrip("/") or page.url == f"{server}/"
    assert page.locator("header.site").inner_text().startswith("Milestones")
    assert "Signed in as octocat" in page.locator("form.signout").inner_text()
    repositories = page.locator("section.repository h2").all_inner_texts()
    assert repositories == ["acme/shop", "acme/web"]
    assert "acme/secret" not in page.content()
    shop_rows = page.locator("section.repository").first.locator("tbody tr th a").all_inner_texts()
    assert shop_rows == ["v2.0", "Sprint 24"]  # worst first
    page.screenshot(path=tmp_path / "overview.png", full_page=True)

    # Filters are kept in the URL.
    page.select_option("select[name=repository]", "acme/web")
    page.click("form.filters button[type=submit]")
    assert "repository=acme%2Fweb" in page.url
    assert page.locator("section.repository h2").all_inner_texts() == ["acme/web"]

    # A guessed URL of a repository the person cannot read is not found.
    response = page.goto(f"{server}/milestones/acme/secret/Hidden")
    assert response.status == 404 and page.locator("body").inner_text() == "not found"

    # Opening a milestone from the overview.
    page.goto(f"{server}/milestones")
    page.click("text=v2.0")
    assert page.locator("h1").inner_text() == "v2.0"
    assert page.locator("#criteria tbody tr").count() == 4
    # The chart's values, read from the SVG, are the milestone's.
    days = page.locator("svg.trend g.day")
    assert days.count() >= 2
    latest = days.last
    status = json_of("status", "v2.0", "--json", database_url=migrated_database_url, cwd=tmp_path)
    assert float(latest.get_attribute("data-pass-rate")) == pytest.approx(status["metrics"]["pass_rate"], abs=1e-4)
    assert int(latest.get_attribute("data-failing-required")) == len(status["blocking"]["failing_tests"])
    assert latest.locator("title").text_content().startswith(latest.get_attribute("data-day") + ": pass rate ")
    assert page.locator("svg.trend g.change").count() >= 1
    assert page.locator("svg.trend").get_attribute("role") == "img"
    page.screenshot(path=tmp_path / "milestone.png", full_page=True)
    phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state()).new_page()
    phone.goto(page.url)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    phone.screenshot(path=tmp_path / "milestone-phone.png", full_page=True)

    # Approving as a GitHub approver (a member of the acme/qa-leads team).
    page.goto(f"{server}/milestones/acme/web/v1.0")
    page.click("form.approve button")
    assert "done=approve" in page.url
    assert page.locator("#signoff .notice").inner_text() == "Your approval is recorded."
    trail_row = page.locator("table.trail tbody tr").first.locator("td, th").all_inner_texts()
    assert trail_row[1:] == ["The Octocat", "approve (standing)", "", "web"]
    page.screenshot(path=tmp_path / "signed-off.png", full_page=True)

    # Signing out ends it: the overview asks to sign in again.
    page.click("form.signout button")
    assert "You are signed out." in page.locator("main").inner_text()
    github.signed_in_as = None
    page.goto(f"{server}/milestones")
    assert "Sign in to GitHub" in page.content()

    # No CSP refusal or other error; the deliberate 404s above are the only failed loads.
    assert [error for error in errors if "status of 404" not in error] == []
    for name in ("overview.png", "milestone.png", "milestone-phone.png", "signed-off.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_a_check_link_with_its_key_opens_without_signing_in(server, browser, tmp_path):
    links = PageLinks(server, SECRET)
    url = links.milestone_url("acme/shop", "v2.0", "failing")
    page = browser.new_context(viewport=DESKTOP).new_page()
    response = page.goto(url)
    assert response.status == 200 and page.locator("h1").inner_text() == "v2.0"
    assert urlsplit(page.url).fragment == "failing"
    assert page.locator("#failing h2").inner_text().startswith("Failing tests (")
    assert "form.signout" not in page.content() and page.locator("form.signout").count() == 0
    # The style sheet came from the service, under the strict CSP.
    assert page.evaluate("getComputedStyle(document.querySelector('h2')).borderBottomStyle") == "solid"
    key = parse_qs(urlsplit(url).query)["key"][0]
    wrong = page.goto(url.split("?")[0] + "?key=" + key[::-1])
    assert wrong.status == 404
    old = PageLinks(server, "a secret of before").milestone_url("acme/shop", "v2.0")
    assert page.goto(old).status == 404
    other = page.goto(f"{server}/milestones/acme/secret/Hidden?key={key}")
    assert other.status == 404
