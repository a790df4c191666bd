"""Share to channel, once: the claim is the database's, whichever web process takes the click."""

from datetime import UTC, datetime, timedelta

from core.models import SharedAnswer
from core.shares import SHARE_WINDOW, claim_share, release_share, share_key

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def test_the_first_click_claims_and_a_second_within_the_window_does_not(db: str) -> None:
    key = share_key("C1", "1700000000.000100", '{"subcommand":"status"}')
    assert await claim_share(key, now=T0) is True
    assert await claim_share(key, now=T0 + timedelta(seconds=1)) is False
    # Another answer, or the same one in another channel, is another share.
    assert await claim_share(share_key("C2", "1700000000.000100", '{"subcommand":"status"}'), now=T0) is True
    assert await claim_share(share_key("C1", "1700000000.000100", '{"subcommand":"list"}'), now=T0) is True


async def test_a_claim_lapses_after_the_window_and_old_claims_are_cleared(db: str) -> None:
    key = share_key("C1", "1.0", "q")
    assert await claim_share(key, now=T0)
    assert await claim_share(key, now=T0 + SHARE_WINDOW + timedelta(seconds=1)) is True
    assert await SharedAnswer.all().count() == 1


async def test_a_failed_share_is_released_for_another_try(db: str) -> None:
    key = share_key("C1", "1.0", "q")
    assert await claim_share(key, now=T0)
    await release_share(key)
    assert await claim_share(key, now=T0 + timedelta(seconds=1)) is True
