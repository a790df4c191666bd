"""The database away: requests answered 503 with Retry-After at once, one log line per outage,
nothing accepted lost, everything back when it returns."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from core import db as database
from core import services
from core.db import DatabaseUnavailable, within_deadline
from core.enums import DeliveryStatus
from core.models import Delivery, Launch
from core.page_links import PageLinks
from integrations.api import launches
from tests.cli import migrated
from tests.conftest import JUNIT
from tests.github import SECRET, fixture, running_app, settings_for, signature
from tests.outage import DatabaseProxy
from tests.test_github_cli import serving, wait_until_finished

# Generous, for a busy machine: the answers come within a second; a hanging one would take ten or more.
QUICK = 4.0
PAGE = f"/milestones/Codertocat/Hello-World/v1.0?key={PageLinks(None, SECRET).key('Codertocat/Hello-World', 'v1.0')}"


def issue(number: int) -> dict:
    payload = fixture("issues", "opened")
    payload["issue"]["number"] = number
    return payload


def outage_lines(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records if record.name == "milestones.database"]


async def test_an_outage_is_logged_when_it_begins_and_ends_and_callers_are_refused_meanwhile(db, caplog):
    caplog.set_level(logging.INFO, logger="milestones.database")
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    for _ in range(5):
        with pytest.raises(DatabaseUnavailable):
            await within_deadline(refused)
    # The first call found the database away; the others were refused without trying it.
    assert calls == 1
    assert outage_lines(caplog.records) == [
        "database unreachable (ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5432)): "
        "answering 503 until it is back"
    ]
    database.reachability._next_probe = 0  # a second later: one caller gets through to try
    assert await within_deadline(lambda: asyncio.sleep(0, "answered")) == "answered"
    [_, recovered] = outage_lines(caplog.records)
    assert recovered.startswith("database reachable again after ") and recovered.endswith(
        "4 requests were refused meanwhile"
    )


async def test_a_database_that_does_not_answer_is_given_up_on_at_the_deadline(db, is_postgres, caplog):
    caplog.set_level(logging.INFO, logger="milestones.database")
    never = asyncio.Event()
    with pytest.raises(DatabaseUnavailable, match="no answer within 0.2 s"):
        await within_deadline(never.wait, deadline=0.2)
    # PostgreSQL answers at once or is away; SQLite may be busy with another process's write.
    assert database.reachability.down is is_postgres
    assert len(outage_lines(caplog.records)) == int(is_postgres)


async def test_errors_that_are_not_an_outage_pass_through(db):
    async def bad_query() -> None:
        raise ValueError("not an outage")

    with pytest.raises(ValueError):
        await within_deadline(bad_query)
    assert not database.reachability.down


async def test_any_page_the_database_absence_stops_is_answered_503(db, monkeypatch, caplog):
    async def away(repository: str, name: str) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(services, "milestone_dashboard", away)
    async with running_app(settings_for(db)) as hooks:
        for _ in range(3):
            page = await hooks.client.get(PAGE)
            assert page.status_code == 503 and page.headers["Retry-After"] == "5"
            assert page.json() == {
                "error": "try again later",
                "database": "unavailable: ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 5432)",
            }
    assert len(outage_lines(caplog.records)) == 1


UPLOAD_HEADERS = {"Authorization": "Bearer mgt_" + "0" * 49, "Content-Type": "application/xml"}


async def test_an_upload_the_database_absence_stops_is_answered_503_with_nothing_stored(db, monkeypatch, caplog):
    async def away(token: str) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(services, "authenticate_token", away)
    report = (JUNIT / "jest-junit.xml").read_bytes()
    async with running_app(settings_for(db)) as hooks:
        for _ in range(2):
            response = await hooks.client.post(
                "/api/v1/launches", params={"plan": "smoke"}, content=report, headers=UPLOAD_HEADERS
            )
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
            # The upload API's own shape of refusal, which `milestones upload` shows and retries.
            assert response.json() == {
                "error": "database_unavailable",
                "message": "the database is unavailable (ConnectionRefusedError: [Errno 111] Connect call failed "
                "('127.0.0.1', 5432)); nothing was stored: send the upload again in 5 s",
            }
    assert len(outage_lines(caplog.records)) == 1
    assert await Launch.all().count() == 0


async def test_an_upload_is_answered_503_at_the_deadline_when_the_database_does_not_answer(db, monkeypatch):
    monkeypatch.setattr(launches, "UPLOAD_DEADLINE", 0.3)

    async def black_holed(token: str) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(services, "authenticate_token", black_holed)
    report = (JUNIT / "jest-junit.xml").read_bytes()
    async with running_app(settings_for(db)) as hooks:
        started = time.monotonic()
        response = await asyncio.wait_for(
            hooks.client.post("/api/v1/launches", params={"plan": "smoke"}, content=report, headers=UPLOAD_HEADERS),
            QUICK * 3,
        )
        took = time.monotonic() - started
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": "database_unavailable",
        "message": "the database is unavailable (no answer within 0.3 s); nothing was stored: "
        "send the upload again in 5 s",
    }
    assert took < QUICK
    assert await Launch.all().count() == 0


async def test_an_upload_a_busy_database_refuses_is_answered_503_with_nothing_stored(db, monkeypatch, caplog):
    await services.apply_policy_file("acme/shop", "plans:\n  smoke: {workflow: ci.yml}\n")
    token, _ = await services.create_token("acme/shop", "gitlab", [], "alice")

    async def deadlocked(report, source) -> None:
        raise asyncpg.DeadlockDetectedError("deadlock detected")

    monkeypatch.setattr(services, "record_launch", deadlocked)
    report = (JUNIT / "jest-junit.xml").read_bytes()
    headers = {**UPLOAD_HEADERS, "Authorization": f"Bearer {token}"}
    async with running_app(settings_for(db)) as hooks:
        response = await hooks.client.post(
            "/api/v1/launches", params={"plan": "smoke"}, content=report, headers=headers
        )
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json() == {
        "error": "database_busy",
        "message": "the database was busy (DeadlockDetectedError: deadlock detected); nothing was stored: "
        "send the upload again in 5 s",
    }
    # Busy is not away: no outage is logged, and the next request goes straight to the database.
    assert outage_lines(caplog.records) == [] and not database.reachability.down
    assert await Launch.all().count() == 0


async def test_a_locked_sqlite_file_is_answered_503_and_the_delivery_is_not_lost(db, is_postgres, monkeypatch):
    if is_postgres:
        pytest.skip("SQLite's file lock")
    monkeypatch.setitem(database.REQUEST_DEADLINE, "sqlite", 0.5)
    holder = sqlite3.connect(db.removeprefix("sqlite://"))
    holder.execute("BEGIN EXCLUSIVE")  # another process writing for a long time
    try:
        async with running_app(settings_for(db)) as hooks:
            response = await hooks.send("issues", issue(7), "guid-locked")
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
            assert response.json()["error"] == "database unavailable (no answer within 0.5 s); nothing was stored"
            ready = await hooks.client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
            holder.rollback()
            # The write given up on goes through once the lock is released: GitHub's redelivery
            # of it finds it waiting, and it is processed once.
            for _ in range(100):
                if await Delivery.filter(guid="guid-locked").exists():
                    break
                await asyncio.sleep(0.05)
            again = await hooks.send("issues", issue(7), "guid-locked")
            assert again.status_code == 202 and again.json()["status"] == "queued"
            assert await hooks.worker.drain() == 1
        assert (await Delivery.get(guid="guid-locked")).status is DeliveryStatus.DONE
    finally:
        holder.close()


# A real `milestones serve` in front of a proxy to PostgreSQL -------------------------------


def send(url: str, number: int, guid: str) -> httpx.Response:
    body = httpx.Request("POST", url, json=issue(number)).content
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": guid,
        "X-Hub-Signature-256": signature(body),
    }
    return httpx.post(f"{url}/github/webhooks", content=body, headers=headers, timeout=QUICK)


@pytest.mark.parametrize("cut", ["refuse", "black_hole"])
def test_while_postgresql_is_away_the_server_answers_503_at_once_and_recovers(
    scratch_database_url: str, tmp_path: Path, cut: str
) -> None:
    if not scratch_database_url.startswith("postgres"):
        pytest.skip("a network between the server and PostgreSQL")
    database_url = migrated(scratch_database_url, tmp_path)
    address = urlsplit(database_url)
    with DatabaseProxy(address.hostname or "127.0.0.1", address.port or 5432) as proxy:
        through_proxy = database_url.replace(address.netloc, f"{address.username}@127.0.0.1:{proxy.port}")
        with serving(through_proxy, tmp_path) as [server]:
            assert send(server.url, 1, "guid-before").status_code == 202
            wait_until_finished(database_url, tmp_path, 1)
            getattr(proxy, cut)()
            for number in range(2, 6):
                response = send(server.url, number, f"guid-during-{number}")
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "5"
                ready = httpx.get(f"{server.url}/readyz", timeout=QUICK)
                assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
                page = httpx.get(f"{server.url}{PAGE}", timeout=QUICK)
                assert page.status_code == 503 and page.headers["Retry-After"] == "5"
                time.sleep(0.3)
            proxy.restore()
            deadline = time.monotonic() + 15
            while (response := send(server.url, 8, "guid-after")).status_code != 202:
                assert response.status_code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
            found = wait_until_finished(database_url, tmp_path, 2)
            log = server.log.read_text()
    assert {item["guid"]: item["status"] for item in found} == {"guid-before": "done", "guid-after": "done"}
    assert log.count("database unreachable (") == 1, log
    assert log.count("database reachable again after") == 1, log
    assert "Traceback" not in log, log
