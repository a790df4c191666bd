"""Scheduled digests: subscriptions from Slack, the clock with a controllable "now", each fire
posted once to a fake Slack, and what changed since the previous digest."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, time, timedelta

import pytest
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.digests import Digests, fire_marker
from bot.slack_api import retry_handlers
from bot.views.digests import change_text
from core import digests, services
from core.backoff import Backoff
from core.digests import Changes, changes
from core.ingest import LaunchSource
from core.models import DigestRun, Snapshot
from core.schedule import Schedule
from tests.block_kit import block_text
from tests.fake_slack import FakeSlack
from tests.slack import CHANNEL_ID, TEAM_ID, USER_ID
from tests.test_slack_app import REPO, Slack, report, section_texts, slack_app

UTC = UTC
# Retried at once: the retries are counted, not waited for.
AT_ONCE = Backoff(first_delay=timedelta(0))
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["plan:smoke"]
"""
runs = iter(range(1, 1_000_000))


async def launch(failing: int = 0) -> None:
    cases = {f"test_{n}": "failed" if n < failing else "passed" for n in range(5)}
    await services.record_launch(
        report(cases), LaunchSource(REPO, "smoke", f"run-{next(runs)}", commit_sha="abc1234", branch="main")
    )


async def release() -> None:
    await services.apply_policy_file(REPO, POLICY)
    await services.save_milestone(REPO, "v2.0", target_date=datetime.now(UTC).date() + timedelta(days=20))
    await launch(failing=2)


async def release_with_history() -> None:
    """The release, with two days of history: enough for a trend chart."""
    await release()
    milestone = await services.find_milestone(REPO, "v2.0")
    await Snapshot.filter(milestone_id=milestone.id).update(taken_at=datetime.now(UTC) - timedelta(days=2))
    await launch(failing=1)


class Now:
    """A clock the test moves."""

    def __init__(self, moment: datetime):
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def fake():
    with FakeSlack() as running:
        yield running


def clock_for(fake: FakeSlack, now: Now, *, grace: timedelta = timedelta(hours=1)) -> Clock:
    handlers = retry_handlers()
    for handler in handlers:
        # As many retries as in production, without the back-off sleeps in between.
        handler.interval_calculator = FixedValueRetryIntervalCalculator(0.0)
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=handlers)
    return Clock(Digests(client, "/milestone", "UTC"), grace=grace, now=now, backoff=AT_ONCE)


async def subscription(
    zone: str = "Europe/Berlin", at: time = time(9, 0), kind: str = "daily", weekday: int | None = None
):
    view, _ = await digests.subscribe(
        TEAM_ID, CHANNEL_ID, Schedule(kind, at, zone, weekday), by=USER_ID, repository=REPO, milestone="v2.0"
    )  # type: ignore[arg-type]
    return view


# The clock -----------------------------------------------------------------------------


async def test_a_missed_fire_within_the_grace_is_sent_once_and_older_ones_never(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    # Down from Monday 06:00 to 08:30 UTC: Monday's 09:00 Berlin (08:00 UTC) was missed by 30 minutes.
    now = Now(datetime(2026, 11, 30, 8, 30, tzinfo=UTC))
    clock = clock_for(fake, now)
    assert await clock.catch_up() == 1
    assert await clock.catch_up() == 0, "sent once"
    [run] = await DigestRun.all()
    assert (run.scheduled_for, run.status, run.attempts) == (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "sent", 1)
    assert len(fake.messages(CHANNEL_ID)) == 1
    # Down for two days: the fires of Tuesday and Wednesday are older than the grace: none is sent.
    now.moment = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert await clock.catch_up() == 0
    assert len(fake.messages(CHANNEL_ID)) == 1 and view.id


async def test_two_clocks_racing_post_each_fire_once(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    fire = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    clocks = [clock_for(fake, Now(fire)) for _ in range(4)]
    posted = await asyncio.gather(*(clock.fire(view.id, fire) for clock in clocks))
    assert sum(posted) == 1
    assert len(fake.messages(CHANNEL_ID)) == 1 and await DigestRun.all().count() == 1


async def dead_clock_claim(view, scheduled_for: datetime) -> DigestRun:
    """A claim as a clock leaves it when it dies while posting: its lease ran out."""
    claim = await digests.claim_fire(view.id, scheduled_for, lease=timedelta(seconds=60))
    assert claim is not None
    await DigestRun.filter(id=claim.run.id).update(lease_until=datetime.now(UTC) - timedelta(seconds=1))
    return claim.run


async def test_a_fire_left_claimed_by_a_dead_clock_is_taken_over_and_posted_once(
    db: str, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await release()
    view = await subscription()
    fire = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    await dead_clock_claim(view, fire)
    clock = clock_for(fake, Now(datetime.now(UTC)))
    # Nothing else posts it: the catch-up of a restarted clock takes it over.
    assert await clock.recover() == 1
    assert await clock.recover() == 0 and await clock.fire(view.id, fire) is False
    [message] = fake.messages(CHANNEL_ID)
    assert message["metadata"] == fire_marker(view.id, fire)
    assert [(run.status, run.scheduled_for) for run in await DigestRun.all()] == [("sent", fire)]
    assert "taken over from a clock that stopped while posting it" in caplog.text


async def test_a_fire_whose_clock_died_after_slack_took_the_post_is_not_posted_again(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    fire = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    run = await dead_clock_claim(view, fire)
    # The dead clock's post reached the channel; its answer never came back.
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    await client.chat_postMessage(channel=CHANNEL_ID, text="digest", metadata=fire_marker(view.id, fire))
    await client.chat_postMessage(channel=CHANNEL_ID, text="someone else", metadata=fire_marker(view.id + 1, fire))
    clock = clock_for(fake, Now(datetime.now(UTC)))
    assert await clock.recover() == 1
    assert [m["text"] for m in fake.messages(CHANNEL_ID)] == ["digest", "someone else"]
    assert (await DigestRun.get(id=run.id)).status == "sent"
    assert [call.body.get("include_all_metadata") for call in fake.calls("conversations.history")] == ["1"]


async def test_a_live_claim_is_left_alone_and_one_past_the_grace_is_missed_with_one_log_line(
    db: str, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    await release()
    view = await subscription()
    clock = clock_for(fake, Now(datetime.now(UTC)), grace=timedelta(hours=1))
    live = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    assert await digests.claim_fire(view.id, live, lease=timedelta(seconds=60)) is not None
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    await dead_clock_claim(view, old)
    assert await clock.recover() == 0 and await clock.recover() == 0
    assert fake.messages(CHANNEL_ID) == []
    statuses = {run.scheduled_for: run.status for run in await DigestRun.all()}
    assert statuses == {live: "claimed", old: "missed"}
    missed = [r.getMessage() for r in caplog.records if "missed" in r.getMessage()]
    assert missed == [
        f"digest {view.id} for {old} missed: its clock stopped while posting it; found after the 60-minute grace"
    ]


async def test_a_claim_is_renewed_while_the_digest_is_posted(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    clock = clock_for(fake, Now(datetime.now(UTC)))
    clock.lease = timedelta(seconds=0.6)
    hold = fake.hold("chat.postMessage", answer=True)
    fire = datetime.now(UTC).replace(microsecond=0)
    posting = asyncio.ensure_future(clock.fire(view.id, fire))
    assert await asyncio.to_thread(hold.wait_arrival, 10)
    first = (await DigestRun.get()).lease_until
    await asyncio.sleep(1.0)  # over a lease: renewed meanwhile, so nobody takes it over
    assert await digests.claim_fire(view.id, fire, lease=timedelta(seconds=60)) is None
    assert (await DigestRun.get()).lease_until > first
    hold.release()
    assert await posting is True
    assert len(fake.messages(CHANNEL_ID)) == 1


async def test_a_failed_post_is_retried_then_recorded_as_failed(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    fake.missing_channel(CHANNEL_ID)
    clock = clock_for(fake, Now(datetime(2026, 11, 30, 8, 0, tzinfo=UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) is False
    [run] = await DigestRun.all()
    assert (run.status, run.attempts, run.error) == ("failed", AT_ONCE.max_attempts, "Slack: channel_not_found")
    assert len(fake.calls("chat.postMessage")) == AT_ONCE.max_attempts


async def test_the_scheduler_follows_the_database(db: str, fake: FakeSlack) -> None:
    await release()
    clock = clock_for(fake, Now(datetime(2026, 11, 24, 12, tzinfo=UTC)))
    clock.scheduler.start(paused=True)
    try:
        berlin = await subscription("Europe/Berlin", time(9, 0))
        await clock.sync()
        [job] = [job for job in clock.scheduler.get_jobs() if job.id.startswith("digest:")]
        assert job.id == f"digest:{berlin.id}" and str(job.trigger) == "daily at 09:00 Europe/Berlin"
        # Changed in Slack: rescheduled; removed: never fires again.
        await subscription("America/New_York", time(7, 30), "weekdays")
        await clock.sync()
        [job] = [job for job in clock.scheduler.get_jobs() if job.id.startswith("digest:")]
        assert str(job.trigger) == "on weekdays at 07:30 America/New_York"
        assert job.trigger.get_next_fire_time(None, datetime(2026, 11, 27, 13, tzinfo=UTC)) == datetime(
            2026, 11, 30, 12, 30, tzinfo=UTC
        )
        await digests.unsubscribe(TEAM_ID, CHANNEL_ID)
        await clock.sync()
        assert [job.id for job in clock.scheduler.get_jobs() if job.id.startswith("digest:")] == []
        assert await clock.fire(berlin.id) is False, "a removed subscription posts nothing"
    finally:
        clock.stop()


async def test_the_scheduler_runs_the_job_and_it_claims_the_fire_of_its_own_schedule(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    clock = clock_for(fake, Now(datetime(2026, 11, 30, 8, 0, 5, tzinfo=UTC)))
    await clock.sync()
    clock.scheduler.start()
    try:
        # Let APScheduler run the job now, as it would at 09:00 Berlin.
        clock.scheduler.modify_job(f"digest:{view.id}", next_run_time=datetime.now(UTC))
        run = None
        for _ in range(200):
            run = await DigestRun.first()
            if run is not None and run.status == "sent":
                break
            await asyncio.sleep(0.02)
        assert run is not None and (run.scheduled_for, run.status) == (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), "sent")
        # Rescheduled in Slack before the next sync: the old job's fire is not posted on the old schedule.
        await subscription(at=time(17, 0))
        assert await clock.fire(view.id, None, Schedule("daily", time(9, 0), "Europe/Berlin")) is False
    finally:
        clock.stop()
    assert len(fake.messages(CHANNEL_ID)) == 1


async def test_a_chart_that_fails_never_posts_the_digest_again(db: str, fake: FakeSlack) -> None:
    await release_with_history()
    view = await subscription()
    fake.drop_connection("files.getUploadURLExternal", times=10)
    clock = clock_for(fake, Now(datetime.now(UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC)) is True
    assert len(fake.messages(CHANNEL_ID)) == 1
    assert (await DigestRun.first()).status == "sent"


async def test_since_last_time_is_per_channel_across_its_subscriptions(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    clock = clock_for(fake, Now(datetime(2026, 11, 30, 8, 0, tzinfo=UTC)))
    await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    # A second subscription of the same channel (the repository) compares with what the channel was told.
    repository, _ = await digests.subscribe(
        TEAM_ID, CHANNEL_ID, Schedule("daily", time(18, 0), "UTC"), by=USER_ID, repository=REPO
    )
    await clock.fire(repository.id, datetime(2026, 11, 30, 18, 0, tzinfo=UTC))
    assert fake.messages(CHANNEL_ID)[-1]["text"] == "Nothing new since the last digest for acme/shop: v2.0 blocked."


# What a digest says --------------------------------------------------------------------


async def test_a_digest_says_what_changed_since_the_previous_one(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    clock = clock_for(fake, Now(datetime(2026, 11, 30, 8, 0, tzinfo=UTC)))
    await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    first = section_texts(fake.messages(CHANNEL_ID)[-1])
    assert "*v2.0* (acme/shop)" in first and "*Since the last digest* this is the first digest here." in first
    # Nothing happens until the next morning: one line.
    await clock.fire(view.id, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert (
        fake.messages(CHANNEL_ID)[-1]["text"] == "Nothing new since the last digest for v2.0 (acme/shop): v2.0 blocked."
    )
    # A test is fixed and a critical defect is filed.
    await launch(failing=1)
    await services.upsert_defect(
        REPO, services.IssueFacts(9, "Data loss", ["bug", "P0"], "open", milestone_title="v2.0")
    )
    await clock.fire(view.id, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    third = section_texts(fake.messages(CHANNEL_ID)[-1])
    # The open critical defect weighs more on completion (0 of 1 resolved) than the fixed test.
    assert (
        "*Since the last digest* completion -20 pts · pass rate +20.0 pts · new defects: 1 critical"
        " · 1 test fixed: com.acme.Checkout.test_1" in third
    )


def test_changes_between_two_baselines() -> None:
    before = {
        "status": "blocked",
        "pass_rate": 0.5,
        "defects": {"1": "high", "2": "low"},
        "failing": ["a", "b"],
        "approvals": [],
        "known": ["b"],
        "quarantined": ["q1", "q2"],
    }
    now = {
        "status": "ready_for_signoff",
        "pass_rate": 0.75,
        "defects": {"2": "low", "3": "critical", "4": "critical"},
        "failing": ["c"],
        "approvals": ["U1"],
        "known": ["b", "c"],
        "quarantined": ["q2", "q3"],
    }
    assert changes(before, now) == Changes(
        first=False,
        pass_rate_delta=0.25,
        status_before="blocked",
        new_defects={"critical": 2},
        closed_defects={"high": 1},
        new_failing=["c"],
        fixed=["a", "b"],
        new_approvals=["U1"],
        newly_known=["c"],
        quarantined=["q3"],
        released=["q1"],
    )
    assert changes(now, now).nothing and changes(None, now).first
    # Against a baseline kept before triage, nothing of it counts as new.
    older = {key: value for key, value in now.items() if key not in ("known", "quarantined")}
    assert changes(older, now).nothing
    only_quarantine = changes({**now, "quarantined": []}, now)
    assert not only_quarantine.nothing and only_quarantine.quarantined == ["q2", "q3"]
    assert change_text(changes(before, now)) == (
        "was blocked · pass rate +25.0 pts · new defects: 2 critical · closed: 1 high · 1 new failing test: c · "
        "2 tests fixed: a, b · 1 failure now known: c · quarantined: q3 · out of quarantine: q1 · approved by U1"
    )


# Slack commands --------------------------------------------------------------------------


@pytest.fixture
async def slack(db: str):
    async with slack_app(db) as running:
        running.fake.add_user(USER_ID, "ada", tz="America/New_York")
        yield running


async def test_subscribe_in_slack_with_a_schedule_zone_and_clear_errors(slack: Slack) -> None:
    await release()
    answer = await slack.answer("subscribe v2.0 weekdays 08:15")
    assert answer["text"] == "Subscribed: a digest of v2.0 (acme/shop) here, on weekdays at 08:15 America/New_York."
    again = await slack.answer("subscribe v2.0 weekly mon 09:00 Europe/Berlin")
    assert again["text"] == "Changed: a digest of v2.0 (acme/shop) here, every Mon at 09:00 Europe/Berlin."
    await slack.answer("subscribe acme/shop daily 7:00 asia/tokyo")
    listed = section_texts(await slack.answer("subscriptions"))
    assert "*v2.0 (acme/shop)* every Mon at 09:00 Europe/Berlin · next <!date^" in listed
    assert "*acme/shop* daily at 07:00 Asia/Tokyo" in listed
    bad_time = await slack.answer("subscribe v2.0 daily 25:61")
    assert bad_time["text"] == "“25:61” is not a time; write it as 09:00, 9am, 9:30pm or 21h"
    # About the schedule, not about a milestone named "v2.0 weekdays 25:99 Mars/Olympus".
    both = await slack.answer("subscribe v2.0 weekdays 25:99 Mars/Olympus")
    assert both["text"] == (
        "“25:99” is not a time; write it as 09:00, 9am, 9:30pm or 21h; “Mars/Olympus” is not a time zone; "
        "the nearest are Asia/Omsk, Asia/Thimphu, Asia/Kuala_Lumpur"
    )
    evening = await slack.answer("subscribe v2.0 weekdays 9:30pm Europe/Berlin")
    assert evening["text"] == "Changed: a digest of v2.0 (acme/shop) here, on weekdays at 21:30 Europe/Berlin."
    bad_zone = await slack.answer("subscribe v2.0 daily 09:00 Europe/Atlantis")
    assert bad_zone["text"].startswith("“Europe/Atlantis” is not a time zone")
    no_link = await slack.answer("subscribe")
    assert "This channel has no repository linked" in no_link["text"]
    gone = await slack.answer("unsubscribe v2.0")
    assert gone["text"] == "No more digests here of v2.0 (acme/shop)."
    rest = await slack.answer("unsubscribe")
    assert rest["text"] == "No more digests here of acme/shop."
    assert (await slack.answer("subscriptions"))[
        "text"
    ] == "No digests in this channel. `/milestone subscribe` starts one."


# The chart -------------------------------------------------------------------------------


def test_the_trend_chart_is_a_png_of_800_by_300() -> None:
    import struct
    from datetime import date

    from bot.views.chart import trend_png
    from core.enums import GateStatus
    from core.history import DayPoint

    days = [DayPoint(date(2026, 11, 1) + timedelta(days=n), GateStatus.BLOCKED, n / 30, 30 - n, 1) for n in range(28)]
    png = trend_png("v2.0", days)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (800, 300)
    assert trend_png("v2.0", days[:1]) is None, "one day is no trend: the text sparkline stands"


async def test_a_digest_uploads_the_trend_chart_with_files_upload_v2(db: str, fake: FakeSlack) -> None:
    await release_with_history()
    view = await subscription()
    clock = clock_for(fake, Now(datetime.now(UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    [upload_url] = [call.body for call in fake.calls("files.getUploadURLExternal")]
    [chart] = fake.files.values()
    assert chart["content"][:8] == b"\x89PNG\r\n\x1a\n" and chart["shared"] == [CHANNEL_ID]
    assert (
        chart["title"] == "v2.0 (acme/shop): pass rate and blocking defects"
        and upload_url["filename"] == "v2.0-trend.png"
    )


def test_milestones_clock_starts_schedules_and_stops_on_sigterm(db: str, fake: FakeSlack, tmp_path) -> None:
    import os
    import signal
    import subprocess
    import time as clock_time

    env = {
        **os.environ,
        "DATABASE_URL": db,
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": fake.api_url,
        "DIGEST_GRACE_MINUTES": "30",
    }
    process = subprocess.Popen(
        ["milestones", "clock"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = clock_time.monotonic() + 20
        lines = []
        while clock_time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "clock:" in line:
                break
        assert any("clock: 0 digests scheduled; a missed one is sent up to 30 min late" in line for line in lines), (
            lines
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


async def test_charts_and_the_digest_are_laid_out_off_the_event_loop(
    db: str, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.digests

    threads: dict[str, str] = {}

    def recorded(name: str, work):
        def run(*args, **kwargs):
            threads[name] = threading.current_thread().name
            return work(*args, **kwargs)

        return run

    monkeypatch.setattr(bot.digests, "trend_png", recorded("chart", bot.digests.trend_png))
    monkeypatch.setattr(bot.digests, "digest_message", recorded("digest", bot.digests.digest_message))
    await release_with_history()
    view = await subscription()
    clock = clock_for(fake, Now(datetime.now(UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    loop_thread = threading.current_thread().name
    assert set(threads) == {"chart", "digest"} and loop_thread not in threads.values()
    assert len(fake.files) == 1


async def test_a_digest_too_long_for_one_message_is_cut_with_how_many_more(db: str, fake: FakeSlack) -> None:
    names = [f"v2.{n}" for n in range(6)]
    entries = "".join(f'  "{name}": {{plans: [smoke], required: ["plan:smoke"]}}\n' for name in names)
    await services.apply_policy_file(REPO, "plans:\n  smoke: {workflow: ci.yml}\nmilestones:\n" + entries)
    for name in names:
        await services.save_milestone(REPO, name, target_date=datetime.now(UTC).date() + timedelta(days=20))
    long_names = [f"test_{n}_" + "x" * 1200 for n in range(6)]

    async def launch_long(failing: int) -> None:
        cases = {name: "failed" if n < failing else "passed" for n, name in enumerate(long_names)}
        source = LaunchSource(REPO, "smoke", f"run-{next(runs)}", commit_sha="abc1234", branch="main")
        await services.record_launch(report(cases), source)

    await launch_long(0)
    view, _ = await digests.subscribe(
        TEAM_ID, CHANNEL_ID, Schedule("daily", time(9, 0), "UTC", None), by=USER_ID, repository=REPO
    )
    clock = clock_for(fake, Now(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    await launch_long(6)
    assert await clock.fire(view.id, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    posted = fake.messages(CHANNEL_ID)[-1]
    assert block_text(posted["blocks"]) <= 11_000 and len(posted["text"]) <= 1_000
    shown = section_texts(posted) + " ".join(
        element["text"] for block in posted["blocks"] if block["type"] == "context" for element in block["elements"]
    )
    assert re.search(r"…and \d+ more lines: `/milestone list` shows every milestone", shown)
    assert [run.status for run in await DigestRun.all().order_by("id")] == ["sent", "sent"]


async def test_a_digest_scoped_to_a_tag_reports_only_the_tagged_milestones(slack: Slack) -> None:
    await release()
    await services.save_milestone(REPO, "v2.1", target_date=datetime.now(UTC).date() + timedelta(days=30))
    await services.save_milestone(REPO, "v2.0", tags=["release"])
    answer = await slack.answer("subscribe tag:release acme/shop daily 08:00")
    assert answer["text"] == (
        "Subscribed: a digest of milestones tagged release in acme/shop here, daily at 08:00 America/New_York."
    )
    [view] = await digests.channel_subscriptions(TEAM_ID, CHANNEL_ID)
    assert view.tag == "release"
    assert [reading.name for reading in await digests.digest_readings(view)] == ["v2.0"]
    # A repository's own digest stays beside the tag's.
    await slack.answer("subscribe acme/shop daily 09:00")
    untagged = [view for view in await digests.channel_subscriptions(TEAM_ID, CHANNEL_ID) if view.tag is None]
    assert sorted(reading.name for reading in await digests.digest_readings(untagged[0])) == ["v2.0", "v2.1"]
    gone = await slack.answer("unsubscribe tag:release acme/shop")
    assert gone["text"] == "No more digests here of milestones tagged release in acme/shop."
    assert [view.tag for view in await digests.channel_subscriptions(TEAM_ID, CHANNEL_ID)] == [None]
    card = await slack.answer("subscribe tag:release v2.0")
    assert card["text"] == "“v2.0” is not a repository; a tag's digest is of a repository, as owner/repo"


async def test_a_digest_whose_answer_was_lost_is_not_posted_twice(db: str, fake: FakeSlack) -> None:
    await release()
    view = await subscription()
    fake.drop_connection("chat.postMessage", processed=True)
    clock = clock_for(fake, Now(datetime.now(UTC)))
    assert await clock.fire(view.id, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))
    assert len(fake.messages(CHANNEL_ID)) == 1
    assert [run.status for run in await DigestRun.all()] == ["sent"]
