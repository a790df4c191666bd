"""The delivery inbox on a real database: intake, claims, retries, replays, racing workers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core import inbox
from core.backoff import Backoff
from core.enums import DeliveryStatus
from core.models import Delivery

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
RETRY = Backoff(first_delay=timedelta(seconds=10), factor=3, max_attempts=3, jitter=0)


async def stored(guid: str) -> Delivery:
    return await Delivery.get(guid=guid)


async def test_a_new_delivery_is_stored_pending_with_what_identifies_it(db):
    intake = await inbox.accept(
        "g-1", "issues", '{"action": "opened"}', action="opened", repository="acme/shop", installation_id=7, now=T0
    )
    assert intake.result == "accepted"
    delivery = await stored("g-1")
    assert (delivery.event, delivery.action, delivery.repository, delivery.installation_id) == (
        "issues",
        "opened",
        "acme/shop",
        7,
    )
    assert delivery.status is DeliveryStatus.PENDING
    assert delivery.payload == '{"action": "opened"}'
    assert delivery.received_at == T0 and delivery.attempts == 0


async def test_a_redelivery_of_a_finished_delivery_is_a_duplicate(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    [claimed] = await inbox.claim(now=T0)
    assert await inbox.finish(claimed, DeliveryStatus.DONE, now=T0)
    again = await inbox.accept("g-1", "issues", "{}", now=T0 + timedelta(minutes=5))
    assert again.result == "duplicate" and again.duplicate
    assert await inbox.claim(now=T0 + timedelta(minutes=5)) == []
    assert await Delivery.filter(guid="g-1").count() == 1


async def test_a_redelivery_of_a_failed_delivery_runs_it_again_from_the_start(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    [claimed] = await inbox.claim(now=T0)
    assert await inbox.fail(claimed, "boom", backoff=RETRY, permanent=True, now=T0) is DeliveryStatus.FAILED
    again = await inbox.accept("g-1", "issues", "{}", now=T0 + timedelta(hours=1))
    assert again.result == "requeued"
    [reclaimed] = await inbox.claim(now=T0 + timedelta(hours=1))
    assert reclaimed.guid == "g-1" and reclaimed.attempts == 1


async def test_a_redelivery_of_a_delivery_still_waiting_is_left_queued(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    assert (await inbox.accept("g-1", "issues", "{}", now=T0)).result == "queued"
    await inbox.claim(now=T0)
    assert (await inbox.accept("g-1", "issues", "{}", now=T0)).result == "queued"
    assert (await stored("g-1")).attempts == 1


async def test_claims_go_oldest_first_and_skip_what_is_claimed(db):
    for number in range(3):
        await inbox.accept(f"g-{number}", "issues", "{}", now=T0)
    first = await inbox.claim(2, now=T0)
    second = await inbox.claim(2, now=T0)
    assert [d.guid for d in first] == ["g-0", "g-1"]
    assert [d.guid for d in second] == ["g-2"]
    assert await inbox.claim(2, now=T0) == []


async def test_a_failure_is_retried_with_growing_delays_then_marked_failed(db):
    await inbox.accept("g-1", "workflow_run", "{}", now=T0)
    now = T0
    delays = []
    for attempt in (1, 2):
        [claimed] = await inbox.claim(now=now)
        assert claimed.attempts == attempt
        assert await inbox.fail(claimed, f"error {attempt}", backoff=RETRY, now=now) is DeliveryStatus.PENDING
        delivery = await stored("g-1")
        delays.append(delivery.next_attempt_at - now)
        assert await inbox.claim(now=delivery.next_attempt_at - timedelta(seconds=1)) == []
        now = delivery.next_attempt_at
    assert delays == [timedelta(seconds=10), timedelta(seconds=30)]
    [claimed] = await inbox.claim(now=now)
    assert await inbox.fail(claimed, "error 3", backoff=RETRY, now=now) is DeliveryStatus.FAILED
    delivery = await stored("g-1")
    assert (delivery.status, delivery.error, delivery.attempts) == (DeliveryStatus.FAILED, "error 3", 3)
    assert [d.guid for d in await inbox.recent(DeliveryStatus.FAILED)] == ["g-1"]


async def test_a_claim_whose_worker_died_is_taken_over_after_its_lease(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    [lost] = await inbox.claim(lease=timedelta(seconds=30), now=T0)
    assert await inbox.claim(now=T0 + timedelta(seconds=29)) == []
    [taken] = await inbox.claim(now=T0 + timedelta(seconds=31))
    assert taken.attempts == 2
    # The first worker's late finish no longer counts: the claim is not its own.
    assert not await inbox.finish(lost, DeliveryStatus.DONE)
    assert await inbox.finish(taken, DeliveryStatus.DONE)
    assert (await stored("g-1")).status is DeliveryStatus.DONE


async def test_extending_a_claim_keeps_other_workers_off(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    [claimed] = await inbox.claim(lease=timedelta(seconds=30), now=T0)
    assert await inbox.extend(claimed, timedelta(seconds=30), now=T0 + timedelta(seconds=25))
    assert await inbox.claim(now=T0 + timedelta(seconds=40)) == []


async def test_replay_queues_any_stored_delivery_again(db):
    await inbox.accept("g-1", "issues", "{}", now=T0)
    [claimed] = await inbox.claim(now=T0)
    await inbox.finish(claimed, DeliveryStatus.IGNORED, note="nothing to do", now=T0)
    replayed = await inbox.replay("g-1", now=T0)
    assert (replayed.status, replayed.attempts) == (DeliveryStatus.PENDING, 0)
    assert [d.guid for d in await inbox.claim(guid="g-1", now=T0)] == ["g-1"]
    with pytest.raises(inbox.ReplayRefused, match="being processed"):
        await inbox.replay("g-1", now=T0)
    with pytest.raises(inbox.ReplayRefused, match="no delivery nope"):
        await inbox.replay("nope")


async def test_racing_workers_each_take_a_delivery_once(db):
    # Every worker claims in its own transaction on its own connection (PostgreSQL's
    # pool), so the row locks, not the event loop, keep them apart.
    for number in range(120):
        await inbox.accept(f"g-{number:03}", "issues", "{}", now=T0)
    taken: list[str] = []

    async def worker() -> None:
        while batch := await inbox.claim(5, now=T0):
            taken.extend(delivery.guid for delivery in batch)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(6)))
    assert sorted(taken) == [f"g-{number:03}" for number in range(120)]
    assert set(await Delivery.all().values_list("attempts", flat=True)) == {1}


async def test_counts_by_status(db):
    for number in range(3):
        await inbox.accept(f"g-{number}", "issues", "{}", now=T0)
    [claimed] = await inbox.claim(now=T0)
    await inbox.finish(claimed, DeliveryStatus.DONE, now=T0)
    counts = await inbox.counts()
    assert (
        counts[DeliveryStatus.PENDING] == 2 and counts[DeliveryStatus.DONE] == 1 and counts[DeliveryStatus.FAILED] == 0
    )


async def test_a_delivery_whose_worker_dies_every_time_is_marked_failed(db):
    # Say the delivery itself brings the process down: taking it over forever would
    # bring down every process in turn.
    backoff = Backoff(max_attempts=2)
    await inbox.accept("g-1", "workflow_run", "{}", now=T0)
    now = T0
    for attempt in (1, 2):
        [claimed] = await inbox.claim(lease=timedelta(seconds=30), backoff=backoff, now=now)
        assert claimed.attempts == attempt
        now += timedelta(seconds=31)
    assert await inbox.claim(lease=timedelta(seconds=30), backoff=backoff, now=now) == []
    delivery = await stored("g-1")
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error == "abandoned: its worker stopped every attempt"


async def test_an_abandoned_delivery_does_not_keep_the_next_one_waiting(db):
    backoff = Backoff(max_attempts=1)
    await inbox.accept("g-1", "workflow_run", "{}", now=T0)
    [claimed] = await inbox.claim(lease=timedelta(seconds=30), backoff=backoff, now=T0)
    await inbox.accept("g-2", "issues", "{}", now=T0 + timedelta(seconds=1))
    [taken] = await inbox.claim(lease=timedelta(seconds=30), backoff=backoff, now=T0 + timedelta(seconds=31))
    assert taken.guid == "g-2"
    assert (await stored("g-1")).status is DeliveryStatus.FAILED


async def test_a_small_payload_comes_with_its_claim_and_a_large_one_when_asked_for(db):
    large = '{"padding": "' + "x" * inbox.SMALL_PAYLOAD + '"}'
    await inbox.accept("small", "ping", '{"zen": "Keep it logically awesome."}', now=T0)
    await inbox.accept("large", "ping", large, now=T0)
    small_claim, large_claim = await inbox.claim(2, now=T0)
    # Changed behind the claims' backs: the small payload was read with its claim, the large one is read now.
    await Delivery.filter(guid__in=["small", "large"]).update(payload='{"changed": true}')
    assert await inbox.payload(small_claim) == '{"zen": "Keep it logically awesome."}'
    assert large_claim.payload_size == len(large)
    assert await inbox.payload(large_claim) == '{"changed": true}'
