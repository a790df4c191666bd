"""The one clock of the engine: aware UTC, so that every stored time compares with every other."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
