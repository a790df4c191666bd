"""A clock process killed (SIGKILL) at several moments around a fire: the digest is posted
exactly once, by the clock started after it, whether the dead one had only claimed the fire,
had its post in flight, or had Slack store it without hearing back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import digests
from core.models import DigestRun
from core.schedule import Schedule
from tests.cli import MILESTONES
from tests.fake_slack import FakeSlack
from tests.slack import CHANNEL_ID, TEAM_ID, USER_ID
from tests.test_digests import release

LEASE_SECONDS = 2


@pytest.fixture
def fake():
    with FakeSlack() as running:
        yield running


@contextmanager
def clock_process(db: str, fake: FakeSlack, log: Path) -> Iterator[subprocess.Popen]:
    env = {
        **os.environ,
        "DATABASE_URL": db,
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": fake.api_url,
        "DIGEST_GRACE_MINUTES": "30",
        "DIGEST_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    with log.open("a") as output:
        process = subprocess.Popen(
            [str(MILESTONES), "clock"], env=env, cwd=log.parent, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def until(check, timeout: float = 90.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def a_fire_due_a_minute_ago():
    """A subscription whose latest fire passed a minute ago: a clock starting now catches it up."""
    due = datetime.now(UTC) - timedelta(minutes=1)
    schedule = Schedule("daily", due.time().replace(second=0, microsecond=0), "UTC", None)
    view, _ = await digests.subscribe(
        TEAM_ID, CHANNEL_ID, schedule, by=USER_ID, repository="acme/shop", milestone="v2.0"
    )
    return view


@pytest.mark.parametrize(
    "moment",
    [
        "once the fire is claimed",
        "while Slack holds the post",
        "after Slack stored the post, before the answer",
        "once the digest is in the channel",
    ],
)
async def test_a_clock_killed_around_a_fire_leaves_the_digest_posted_exactly_once(
    db: str, fake: FakeSlack, tmp_path: Path, moment: str
) -> None:
    await release()
    view = await a_fire_due_a_minute_ago()
    hold = None
    if moment == "while Slack holds the post":
        hold = fake.hold("chat.postMessage")
    elif moment == "after Slack stored the post, before the answer":
        hold = fake.hold("chat.postMessage", processed=True)
    with clock_process(db, fake, tmp_path / "first.log") as first:
        if hold is not None:
            assert await asyncio.to_thread(hold.wait_arrival, 90), (tmp_path / "first.log").read_text()
        elif moment == "once the fire is claimed":
            await until(lambda: DigestRun.exists(subscription_id=view.id), what="the claim")
        else:
            await until(lambda: _async(bool(fake.messages(CHANNEL_ID))), what="the post")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    if hold is not None:
        hold.release()  # the post the dead clock sent: stored or lost, as the moment says
        await until(lambda: _async(any(call.method == "chat.postMessage" for call in fake.calls())), what="release")
    with clock_process(db, fake, tmp_path / "second.log") as second:
        await until(
            lambda: DigestRun.exists(subscription_id=view.id, status="sent"),
            what="the second clock to finish the fire",
        )
        log = tmp_path / "second.log"
        await until(lambda: _async("digests scheduled" in log.read_text()), what="the second clock to start")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    posted = [message for message in fake.messages(CHANNEL_ID) if message.get("metadata")]
    assert len(posted) == 1, [message["text"] for message in posted]
    assert posted[0]["metadata"]["event_payload"]["fire"].startswith(f"{view.id}@")
    runs = await DigestRun.filter(subscription_id=view.id)
    assert [run.status for run in runs] == ["sent"]


async def _async(value: bool) -> bool:
    return value
