"""Requests to /slack/events that are not Slack's: malformed, unsigned or oversized ones are
refused before Bolt, answered 401 or 413, and logged in one line without their body."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest

from bot.verification import MAX_BODY_BYTES, Refused, check_signature
from tests.slack import SIGNING_SECRET, command_form, post, signature
from tests.test_slack_app import Slack, release, slack_app


@pytest.fixture
async def slack(db: str) -> AsyncIterator[Slack]:
    async with slack_app(db) as running:
        yield running


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("stamp", ["", "abc", "1e9", "-1", "1700000000.5", " "])
async def test_a_timestamp_that_is_not_a_number_is_refused_with_401(
    slack: Slack, stamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = command_form("list", response_url=slack.fake.response_url())
    headers = {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature(body, stamp)}
    response = await post(slack.client, body, secret=None, headers=headers)
    assert response.status_code == 401
    assert slack.fake.calls() == []
    assert "Traceback" not in caplog.text


async def test_a_signed_body_that_is_not_utf8_is_refused_with_401(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"token=x&text=\xff\xfe\xfa&command=%2Fmilestone"
    response = await post(slack.client, body)
    assert response.status_code == 401
    assert [r.getMessage() for r in caplog.records if "refused a request" in r.getMessage()] == [
        f"refused a request to /slack/events: body is not UTF-8 ({len(body)} bytes from 127.0.0.1)"
    ]
    assert slack.fake.calls() == []


async def test_an_unsigned_body_is_logged_as_one_line_with_its_size_never_whole(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # Bolt's debug logging included: nothing of the body anywhere
    body = command_form("list " + "secret-marker" * 1000, response_url=slack.fake.response_url())
    response = await post(slack.client, body, secret="not the signing secret")
    assert response.status_code == 401
    assert "secret-marker" not in everything_logged(caplog)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith(("milestones", "slack"))]
    assert lines == [f"refused a request to /slack/events: bad signature ({len(body)} bytes from 127.0.0.1)"]


async def test_a_body_over_the_cap_is_refused_with_413_unread(slack: Slack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    body = b"payload=" + b"x" * MAX_BODY_BYTES
    response = await post(slack.client, body)
    assert response.status_code == 413
    assert "xxxxxxxx" not in everything_logged(caplog)
    assert [r.getMessage() for r in caplog.records if "refused" in r.getMessage()] == [
        f"refused a request to /slack/events: body of {len(body):,} bytes over the {MAX_BODY_BYTES:,}-byte limit"
        f" ({len(body)} bytes from 127.0.0.1)"
    ]


async def test_a_body_over_the_cap_without_a_length_is_refused_with_413(slack: Slack) -> None:
    chunk = b"x" * 65536

    async def stream():
        yield b"payload="
        for _ in range(MAX_BODY_BYTES // len(chunk) + 1):
            yield chunk

    stamp = str(int(time.time()))
    response = await slack.client.post(
        "/slack/events",
        content=stream(),
        headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=00", "Content-Type": "text/plain"},
    )
    assert response.status_code == 413


async def test_signed_requests_within_the_window_still_get_through(slack: Slack) -> None:
    await release()
    body = command_form("list", response_url=slack.fake.response_url())
    response = await post(slack.client, body, timestamp=int(time.time()) - 4 * 60)
    assert response.status_code == 200 and "v2.0" in response.text


def test_the_signature_check_on_its_own() -> None:
    body = b"token=x"
    now = 1_700_000_000
    good = signature(body, now, SIGNING_SECRET)
    assert check_signature(SIGNING_SECRET, body, str(now), good, now=now) == "token=x"
    for stamp, sig, reason in [
        (None, good, "unsigned"),
        (str(now), None, "unsigned"),
        ("12ab", good, "timestamp is not a number"),
        (str(now - 301), signature(body, now - 301), "timestamp out of the five-minute window"),
        (str(now), "v0=" + "0" * 64, "bad signature"),
        (str(now), "v0=é", "bad signature"),
    ]:
        with pytest.raises(Refused) as refused:
            check_signature(SIGNING_SECRET, body, stamp, sig, now=now)
        assert (refused.value.status, refused.value.reason) == (401, reason)
