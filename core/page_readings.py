"""What the web pages read: the overview of milestones and a milestone's page.

Kept apart from core.readings, which `milestones status` and `list` import: a dataclass costs
its definition at every start, so these are defined only where the pages are read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.approvers import Approvers
from core.enums import GateStatus
from core.gate import FailingTest
from core.history import History
from core.readings import LaunchSummary, MilestoneReading, MilestoneSummary


@dataclass(frozen=True)
class OverviewRow:
    """A milestone's line on the overview: its summary, and its pass rate over the last days."""

    summary: MilestoneSummary
    pass_rates: list[float | None]  # one a day, oldest first
    approvals: int
    required_approvals: int

    @property
    def awaiting_signoff(self) -> bool:
        return self.summary.status is GateStatus.READY_FOR_SIGNOFF


@dataclass(frozen=True)
class RepositoryGroup:
    repository: str
    milestones: list[OverviewRow]


@dataclass(frozen=True)
class Overview:
    """What the overview shows: the milestones that pass the filters, by repository (worst first),
    and the choices the filters offer."""

    groups: list[RepositoryGroup]
    repositories: list[str]
    tags: list[str]


@dataclass(frozen=True)
class TrailEntry:
    """One line of the sign-off trail, as a person reads it."""

    id: int
    at: datetime
    user_id: str
    user_name: str | None
    decision: str
    comment: str
    via: str
    standing: bool


@dataclass(frozen=True)
class FailingRow:
    required: bool
    test: FailingTest


@dataclass(frozen=True)
class MilestoneDashboard:
    """Everything the milestone page shows."""

    reading: MilestoneReading
    # Every failing test, the required ones first.
    failing: list[FailingRow]
    history: History
    launches: list[LaunchSummary]
    approvers: Approvers
    trail: list[TrailEntry]
    # Standing decisions, by person: "approve" or "reject".
    standing: dict[str, str]
