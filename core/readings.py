"""What a milestone reads as: the data the Slack views, digests and alerts render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from core.approvers import Approvers
from core.enums import GateStatus, Lifecycle, MilestoneState
from core.gate import MilestoneFacts, Verdict
from core.models import Signoff


@dataclass(frozen=True)
class MilestoneSummary:
    repository: str
    name: str
    status: GateStatus
    overdue: bool
    target_date: date | None
    days_left: int | None
    state: MilestoneState
    pass_rate: float | None
    open_blocking: int
    approvers: list[str] = field(default_factory=list)
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    start_date: date | None = None
    completion: int | None = None
    tags: list[str] = field(default_factory=list)
    # Triage as of the latest snapshot (core.services.changes.snapshot_metrics).
    failing_new: int = 0
    failing_known: int = 0
    quarantined: int = 0


class LaunchSummary(NamedTuple):
    """A plan's latest launch, as a person follows it back to its CI job (`url`)."""

    plan: str
    id: int
    source: str
    attempt: int
    finished_at: datetime
    commit_sha: str | None
    branch: str | None
    url: str | None
    tests: int
    failing: int


@dataclass(frozen=True)
class MilestoneReading:
    """A milestone's verdict with the facts behind it: every list a person may ask for."""

    repository: str
    name: str
    description: str
    facts: MilestoneFacts
    verdict: Verdict
    milestone_id: int
    tags: list[str] = field(default_factory=list)


class SignoffState(NamedTuple):
    """Everything a sign-off message shows: the gate, who signs off, and the trail."""

    reading: MilestoneReading
    approvers: Approvers
    trail: list[Signoff]
    completed_at: datetime | None
    completed_with: list[dict[str, str]]
