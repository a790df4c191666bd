"""The vocabulary shared by the engine, the store and every adapter."""

from enum import StrEnum


class TestStatus(StrEnum):
    __test__ = False  # not a pytest test class

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def is_failing(self) -> bool:
        return self in (TestStatus.FAILED, TestStatus.ERROR)


# The worst state wins when one test reports several outcomes in a launch.
STATUS_RANK = {
    TestStatus.SKIPPED: 0,
    TestStatus.PASSED: 1,
    TestStatus.FAILED: 2,
    TestStatus.ERROR: 3,
}


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.NONE]


class DefectState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    VERIFIED = "verified"


class MilestoneState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Lifecycle(StrEnum):
    """Where a milestone is in its life, beside its gate status (core/lifecycle.py)."""

    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"
    OVERDUE = "overdue"
    CLOSED = "closed"


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    # Entries that end an earlier approval or rejection; nothing is ever deleted.
    WITHDRAW = "withdraw"
    DISMISS = "dismiss"


class CriterionResult(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


class GateStatus(StrEnum):
    COMPLETE = "complete"
    READY_FOR_SIGNOFF = "ready_for_signoff"
    AT_RISK = "at_risk"
    BLOCKED = "blocked"
    NO_DATA = "no_data"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    IGNORED = "ignored"
    FAILED = "failed"


# Done and ignored deliveries are finished: a redelivery of one is a duplicate.
FINISHED_DELIVERY = {DeliveryStatus.DONE, DeliveryStatus.IGNORED}


class InstallationStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


# Nothing is read from or written to GitHub for the repositories of these.
STOPPED_INSTALLATION = {InstallationStatus.SUSPENDED, InstallationStatus.DELETED}


class CheckKind(StrEnum):
    """How the gate shows on a pull request: check runs need a GitHub App, a token writes statuses."""

    CHECK_RUN = "check_run"
    STATUS = "status"


# What `tests` lists, in Slack and on the command line.
TEST_KINDS = ("failing", "untested", "flaky")
