"""The outbox on a real database: marks coalesce, settle, survive work in progress; changes mark the pull requests they touch."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from core import outbox, services
from core.models import Outbox, PullRequest
from tests.test_services import POLICY, REPO, issue, setup_policy

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
TOPIC = outbox.PULL_REQUEST_CHECKS
SETTLING = outbox.Settling(quiet=timedelta(seconds=5), longest=timedelta(seconds=60))
LEASE = timedelta(minutes=2)


async def mark(*subjects: int, at: datetime = T0, forced: bool = False) -> None:
    async with in_transaction() as client:
        await outbox.mark(client, TOPIC, subjects, forced=forced, now=at)


async def claim(at: datetime, limit: int = 20) -> list[Outbox]:
    return await outbox.claim(TOPIC, settling=SETTLING, lease=LEASE, limit=limit, now=at)


async def test_many_marks_of_one_subject_are_one_item(db) -> None:
    for second in range(10):
        await mark(7, 8, at=T0 + timedelta(seconds=second))
    items = await outbox.pending(TOPIC)
    assert [(item.subject, item.generation) for item in items] == [(7, 10), (8, 10)]
    assert items[0].first_marked_at == T0 and items[0].last_marked_at == T0 + timedelta(seconds=9)


async def test_an_item_is_due_once_marks_stop_for_the_quiet_period(db) -> None:
    await mark(7, at=T0)
    await mark(7, at=T0 + timedelta(seconds=3))
    assert await claim(T0 + timedelta(seconds=7)) == []
    assert [item.subject for item in await claim(T0 + timedelta(seconds=8))] == [7]
    # Claimed: nobody else takes it while the lease lasts.
    assert await claim(T0 + timedelta(seconds=9)) == []


async def test_a_steady_stream_of_marks_is_still_due_after_the_longest_wait(db) -> None:
    for second in range(0, 70, 2):
        at = T0 + timedelta(seconds=second)
        await mark(7, at=at)
        if second < 60:
            assert await claim(at) == []
    assert [item.subject for item in await claim(T0 + timedelta(seconds=60))] == [7]


async def test_done_work_is_gone_unless_it_was_marked_again_meanwhile(db) -> None:
    await mark(7, 8, at=T0)
    first, second = await claim(T0 + timedelta(seconds=5))
    await mark(8, at=T0 + timedelta(seconds=6))  # a change while 8 was being published
    assert await outbox.done(first, now=T0 + timedelta(seconds=7)) is True
    assert await outbox.done(second, now=T0 + timedelta(seconds=7)) is False
    [again] = await outbox.pending(TOPIC)
    assert (again.subject, again.locked_until) == (8, None)
    assert [item.subject for item in await claim(T0 + timedelta(seconds=11))] == [8]


async def test_a_failed_item_waits_and_a_lost_claim_can_be_taken_over(db) -> None:
    await mark(7, at=T0)
    [item] = await claim(T0 + timedelta(seconds=5))
    await outbox.retry_later(item, "GitHub 502", T0 + timedelta(minutes=1))
    assert await claim(T0 + timedelta(seconds=59)) == []
    [again] = await claim(T0 + timedelta(minutes=1))
    assert (again.attempts, again.last_error) == (1, "GitHub 502")
    # The publisher died: once its lease ran out, another takes the work.
    [taken] = await claim(T0 + timedelta(minutes=1) + LEASE + timedelta(seconds=1))
    assert taken.subject == 7
    # The first publisher's late finish no longer counts.
    assert await outbox.done(again, now=T0 + timedelta(minutes=4)) is False
    assert await outbox.done(taken, now=T0 + timedelta(minutes=4)) is True
    assert await outbox.pending(TOPIC) == []


async def test_a_forced_mark_does_not_wait_out_earlier_failures(db) -> None:
    await mark(7, at=T0)
    [item] = await claim(T0 + timedelta(seconds=5))
    await outbox.retry_later(item, "GitHub 502", T0 + timedelta(minutes=20))
    await mark(7, at=T0 + timedelta(minutes=1), forced=True)  # Re-evaluate
    assert [item.subject for item in await claim(T0 + timedelta(minutes=1, seconds=5))] == [7]


async def test_a_forced_mark_stays_forced_when_marked_again(db) -> None:
    await mark(7, at=T0, forced=True)
    await mark(7, at=T0 + timedelta(seconds=1))
    [item] = await outbox.pending(TOPIC)
    assert item.forced


async def test_racing_publishers_never_take_the_same_item(db) -> None:
    await mark(*range(1, 41), at=T0)
    batches = await asyncio.gather(*(claim(T0 + timedelta(seconds=5), limit=7) for _ in range(8)))
    taken = [item.subject for batch in batches for item in batch]
    assert sorted(taken) == list(range(1, 41))


async def test_when_the_next_item_is_due(db) -> None:
    assert await outbox.next_due(TOPIC, SETTLING) is None
    await mark(7, at=T0)
    await mark(8, at=T0 + timedelta(seconds=2))
    assert await outbox.next_due(TOPIC, SETTLING) == T0 + timedelta(seconds=5)


# What marks ------------------------------------------------------------------


def pull(number: int, base: str = "main", *, milestone: str | None = None, sha: str = "a1", state: str = "open"):
    return services.PullRequestFacts(
        number=number, head_sha=sha, base_ref=base, milestone_title=milestone, milestone_number=None, state=state
    )


async def marked() -> set[int]:
    ids = {item.subject for item in await outbox.pending(TOPIC)}
    return set(await PullRequest.filter(id__in=ids).values_list("number", flat=True))


async def clear() -> None:
    await Outbox.all().delete()


async def test_a_pull_request_is_marked_when_its_head_base_or_milestone_moves(db) -> None:
    await setup_policy()
    await services.record_pull_request(REPO, pull(1, "release/2.0"))
    assert await marked() == {1}
    await clear()
    await services.record_pull_request(REPO, pull(1, "release/2.0"))
    assert await marked() == set(), "nothing moved: an edited title does not refresh the checks"
    await services.record_pull_request(REPO, pull(1, "release/2.0"), refresh=True)
    assert await marked() == {1}
    await clear()
    await services.record_pull_request(REPO, pull(1, "release/2.0", sha="b2"))
    assert await marked() == {1}
    await clear()
    await services.record_pull_request(REPO, pull(1, "main", sha="b2"))
    assert await marked() == {1}
    await clear()
    await services.record_pull_request(REPO, pull(1, "main", sha="b2", milestone="v2.0"))
    assert await marked() == {1}
    await clear()
    await services.record_pull_request(REPO, pull(1, "main", sha="c3", milestone="v2.0", state="closed"))
    assert await marked() == set(), "a closed pull request shows nothing new"


async def test_a_milestone_change_marks_the_open_pull_requests_that_show_it(db) -> None:
    await setup_policy()
    await services.save_milestone(REPO, "v3.0", policy_text=POLICY + '  "v3.0":\n    branches: [main]\n')
    await services.record_pull_request(REPO, pull(1, "release/2.0"))  # by base branch
    await services.record_pull_request(REPO, pull(2, "main", milestone="v2.0"))  # by GitHub milestone
    await services.record_pull_request(REPO, pull(3, "main"))  # v3.0's
    await services.record_pull_request(REPO, pull(4, "release/2.0", state="closed"))
    await clear()
    await services.upsert_defect(REPO, issue(1, ["bug", "P0"]))  # a v2.0 defect
    assert await marked() == {1, 2}


async def test_work_marked_elsewhere_wakes_the_web_processs_runner(db: str) -> None:
    """A mark from another connection (a CLI ingest, another web process) is done without waiting
    for the runner's 30-second poll: PostgreSQL notifies, SQLite is polled every second."""
    from integrations.web import create_app
    from tests.fake_slack import FakeSlack
    from tests.test_slack_app import slack_settings

    done: list[int] = []

    async def probe(item: Outbox) -> None:
        done.append(item.subject)

    with FakeSlack() as fake:
        app = create_app(slack_settings(db, fake, webhook_workers=1), manage_database=False)
        notices: outbox.Runner = app.state.notices
        notices.handlers["probe"] = probe
        notices.settling = outbox.Settling(quiet=timedelta(0), longest=timedelta(0))
        assert notices.poll_seconds == 30
        # outbox.mark wakes nobody itself (the services that mark do, in their own process).
        async with app.router.lifespan_context(app):
            await asyncio.sleep(0.5)  # the runner's first look finds nothing
            async with in_transaction() as client:
                await outbox.mark(client, "probe", [7])
            deadline = asyncio.get_running_loop().time() + 15
            while not done and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
    assert done == [7]


async def test_listening_while_the_database_is_away_logs_the_outage_once(monkeypatch, caplog) -> None:
    import socket
    from types import SimpleNamespace

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens here once the socket is closed
    away = SimpleNamespace(host="127.0.0.1", port=port, user="postgres", password=None, database="postgres")
    monkeypatch.setattr(outbox, "connection", lambda: away)
    monkeypatch.setattr(outbox, "LISTEN_RETRY_SECONDS", 0.05)
    caplog.set_level("INFO")
    woken: list[bool] = []
    listening = asyncio.ensure_future(outbox.listen_for_marks(lambda: woken.append(True)))
    await asyncio.sleep(1.0)  # some twenty tries
    listening.cancel()
    await asyncio.gather(listening, return_exceptions=True)
    assert woken == []
    assert [record.getMessage().split(" (")[0] for record in caplog.records] == ["database unreachable"]
    assert not any(record.exc_info for record in caplog.records)
