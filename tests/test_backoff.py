"""One back-off for all failed work: deliveries, owed checks and notices, digests."""

from datetime import timedelta

from core.backoff import BACKOFF, Backoff


def test_delays_grow_by_the_factor_after_each_failure() -> None:
    backoff = Backoff(first_delay=timedelta(seconds=10), factor=3, max_attempts=5, jitter=0)
    assert [backoff.delay(failures).total_seconds() for failures in (1, 2, 3, 4)] == [10, 30, 90, 270]


def test_jitter_keeps_each_delay_within_its_share_and_spreads_them() -> None:
    backoff = Backoff(first_delay=timedelta(seconds=100), factor=2, jitter=0.1)
    delays = [backoff.delay(2).total_seconds() for _ in range(200)]
    assert all(180 <= delay <= 220 for delay in delays)
    assert len(set(delays)) > 1  # work that failed together is not all retried at once


def test_attempts_run_out_at_the_maximum() -> None:
    backoff = Backoff(max_attempts=3)
    assert [backoff.exhausted(attempts) for attempts in (1, 2, 3, 4)] == [False, False, True, True]


def test_the_shared_policy_matches_the_documented_defaults() -> None:
    # README: WEBHOOK_RETRY_SECONDS (10) and WEBHOOK_MAX_ATTEMPTS (5) start from these.
    assert (BACKOFF.first_delay, BACKOFF.factor, BACKOFF.max_attempts) == (timedelta(seconds=10), 3, 5)
