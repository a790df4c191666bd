"""What the engine stores (PRODUCT.md section 2).

A foreign key `x` also gives each row an `x_id` attribute; it is declared beside the field
(`x_id: int`) so that a type checker knows it.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model as TortoiseModel
from tortoise.models import ModelMeta

from core.enums import (
    CheckKind,
    Decision,
    DefectState,
    DeliveryStatus,
    GateStatus,
    InstallationStatus,
    Lifecycle,
    MilestoneState,
    Severity,
    TestStatus,
)


class _WithoutFieldComments(ModelMeta):
    # Tortoise turns `#:` comments above fields into descriptions by parsing this
    # module's source again for every model: a tenth of a second at every process start.
    # We write no such comments.
    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        return super().__new__(mcs, name, bases, {**attrs, "_no_comments": True})


class Model(TortoiseModel, metaclass=_WithoutFieldComments):
    class Meta:
        abstract = True


# Never deleted: its test cases point at it, and stored results at its launches and test cases,
# without a database check on PostgreSQL (see the note above TestResult), so a delete would leave
# them pointing nowhere.
class Repository(Model):
    id = fields.IntField(primary_key=True)
    full_name = fields.CharField(max_length=200, unique=True)
    installation_id = fields.BigIntField(null=True)
    # The last valid `.github/milestones.yml` as written (its key order decides which
    # glob entry wins, and jsonb would not keep it), and the errors of a newer invalid one.
    policy_text = fields.TextField(null=True)
    policy_errors: list[dict[str, Any]] | None = fields.JSONField(null=True)
    policy_updated_at = fields.DatetimeField(null=True)
    # Renamed labels: current name -> former names, so a severity mapping written with
    # an old name keeps matching issues that now carry the new one.
    label_aliases: dict[str, list[str]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "repository"


# A GitHub App installation; work stops for the repositories of one suspended or deleted.
class Installation(Model):
    id = fields.BigIntField(primary_key=True, generated=False)
    account = fields.CharField(max_length=200)
    status = fields.CharEnumField(InstallationStatus, max_length=10, default=InstallationStatus.ACTIVE)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "installation"


class TestPlan(Model):
    __test__ = False

    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="plans", on_delete=fields.CASCADE
    )
    repository_id: int
    name = fields.CharField(max_length=100)
    workflow = fields.CharField(max_length=200, null=True)
    artifacts = fields.CharField(max_length=200, default="*")
    milestones: fields.ManyToManyRelation[Milestone]

    class Meta:
        table = "test_plan"
        unique_together = (("repository", "name"),)


class Milestone(Model):
    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="milestones", on_delete=fields.CASCADE
    )
    repository_id: int
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    target_date = fields.DateField(null=True)
    state = fields.CharEnumField(MilestoneState, default=MilestoneState.OPEN)
    # GitHub's numbers and ids are 64-bit.
    github_number = fields.BigIntField(null=True)
    # The resolved core.policy.MilestonePolicy, so a verdict needs no policy file.
    policy: dict[str, Any] = fields.JSONField(default=dict)
    plans: fields.ManyToManyRelation[TestPlan] = fields.ManyToManyField(
        "milestones.TestPlan", related_name="milestones", through="milestone_plan"
    )
    # The policy's name and glob selectors that matched at least one test.
    matched_selectors: list[str] = fields.JSONField(default=list)
    completed_at = fields.DatetimeField(null=True)
    # The approvals standing when it completed: [{"user": ..., "at": ...}].
    completed_with: list[dict[str, str]] = fields.JSONField(default=list)
    # Whether the channels were last told it is complete (True) or reopened (False):
    # a completion that flips back before it is announced is announced once, or not at all.
    announced_complete = fields.BooleanField(null=True)
    # Closed on GitHub because it completed (close_on_complete): only such a one is reopened there.
    closed_on_complete = fields.BooleanField(default=False)
    # What the live alerts last said of it (core.alerts): the next alert says only what is new.
    alerted: dict[str, Any] | None = fields.JSONField(null=True)
    # Set in the CLI or Slack; the policy's `start` wins over it.
    start_date = fields.DateField(null=True)
    # Set in the CLI or Slack, beside the policy's `tags`.
    tags: list[str] = fields.JSONField(default=list)
    # A clone's gate, copied from the milestone it was cloned from: its policy unless the file
    # has an entry of its own (or a glob) for it.
    copied_policy: dict[str, Any] | None = fields.JSONField(null=True)
    # As the last evaluation found it (core/lifecycle.py), for queries; reads compute it afresh.
    lifecycle = fields.CharEnumField(Lifecycle, max_length=10, default=Lifecycle.ACTIVE)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "milestone"
        unique_together = (("repository", "name"), ("repository", "github_number"))


# Never deleted: stored results point at launches without a database check on PostgreSQL
# (see the note above TestResult), so a delete would leave them pointing nowhere.
class Launch(Model):
    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="launches", on_delete=fields.CASCADE
    )
    repository_id: int
    plan: fields.ForeignKeyRelation[TestPlan] = fields.ForeignKeyField(
        "milestones.TestPlan", related_name="launches", on_delete=fields.CASCADE
    )
    plan_id: int
    # A workflow run id, or an upload's own id; with `attempt` it makes ingestion idempotent.
    source_id = fields.CharField(max_length=200)
    attempt = fields.IntField(default=1)
    superseded = fields.BooleanField(default=False)
    commit_sha = fields.CharField(max_length=64, null=True)
    branch = fields.CharField(max_length=255, null=True)
    url = fields.CharField(max_length=500, null=True)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField()
    files = fields.IntField(default=0)
    tests = fields.IntField(default=0)
    passed = fields.IntField(default=0)
    failed = fields.IntField(default=0)
    errors = fields.IntField(default=0)
    skipped = fields.IntField(default=0)
    flaky = fields.IntField(default=0)
    # What the reports' own attributes claim: all a report with suites but no cases has.
    declared: dict[str, Any] = fields.JSONField(default=dict)
    # What a reader should know about how the launch was gathered (no matching
    # artifact, a skipped non-JUnit file).
    warnings: list[str] = fields.JSONField(default=list)
    # SHA-256 of the reports' content, when known: the same source and attempt sent again
    # with other reports is a mistake to refuse, not a repeat to ignore.
    content_digest = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "launch"
        unique_together = (("plan", "source_id", "attempt"),)
        indexes = (("plan_id", "branch", "finished_at"),)


# Never deleted: stored results and milestone tests point at test cases without a database check
# on PostgreSQL (see the note above TestResult), so a delete would leave them pointing nowhere.
class TestCase(Model):
    __test__ = False

    id = fields.IntField(primary_key=True)
    # Unchecked (see the note above TestResult).
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="test_cases", on_delete=fields.CASCADE, db_constraint=False
    )
    repository_id: int
    # Digest of the normalised classname + name: names are unbounded, keys must not be.
    identity_key = fields.CharField(max_length=32)
    classname = fields.TextField()
    name = fields.TextField()
    file = fields.TextField(null=True)
    suite = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "test_case"
        unique_together = (("repository", "identity_key"),)


# References that the database does not check (db_constraint=False), on PostgreSQL: it checks
# each row's reference with a trigger of its own, which for a launch of 50,000 tests took more
# time than storing the rows. Only ingestion writes these (test cases' repository, results'
# launch and test case, milestone tests' milestone, test case and launches), in the transaction
# that creates the launch and reads or creates its repository and test cases and locks its
# milestones (core.ingest, core.state); repositories, launches and test cases are never
# deleted, and deleting a milestone deletes its tests' rows itself (services.delete_milestone),
# so no row is left pointing nowhere. SQLite, whose checks cost little, keeps its constraints
# (migrations 0017-0019).


class TestResult(Model):
    __test__ = False

    id = fields.BigIntField(primary_key=True)
    launch: fields.ForeignKeyRelation[Launch] = fields.ForeignKeyField(
        "milestones.Launch", related_name="results", on_delete=fields.CASCADE, db_constraint=False
    )
    launch_id: int
    test_case: fields.ForeignKeyRelation[TestCase] = fields.ForeignKeyField(
        "milestones.TestCase", related_name="results", on_delete=fields.CASCADE, db_constraint=False
    )
    test_case_id: int
    status = fields.CharEnumField(TestStatus, max_length=8)
    duration = fields.FloatField(default=0.0)
    message = fields.TextField(null=True)
    flaky = fields.BooleanField(default=False)
    retried = fields.BooleanField(default=False)
    # Why it failed, for clusters (core.causes): the exception and its normalised message, and
    # the first stack line outside test frameworks.
    cause = fields.TextField(null=True)
    cause_frame = fields.TextField(null=True)

    class Meta:
        table = "test_result"
        unique_together = (("launch", "test_case"),)
        indexes = (("test_case_id", "launch_id"),)


# Per milestone and test, the latest and previous result, so that a status query never
# scans the result history. (Comments, not docstrings: Tortoise would put docstrings
# into the schema as table comments.)
class MilestoneTest(Model):
    id = fields.BigIntField(primary_key=True)
    # Unchecked, as the test case is (see the note above TestResult).
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="tests", on_delete=fields.CASCADE, db_constraint=False
    )
    milestone_id: int
    test_case: fields.ForeignKeyRelation[TestCase] = fields.ForeignKeyField(
        "milestones.TestCase", related_name="milestone_states", on_delete=fields.CASCADE, db_constraint=False
    )
    test_case_id: int
    # Matched by a name or glob selector (NULL until matched); `plan:` selectors are
    # answered from plan_bits instead, one bit per plan of the milestone (core.state).
    required_by_name = fields.BooleanField(null=True)
    plan_bits = fields.BigIntField(default=0)
    latest_status = fields.CharEnumField(TestStatus, max_length=8, null=True)
    # Unchecked references to launches, as TestResult's are (see above it).
    latest_launch: fields.ForeignKeyNullableRelation[Launch] = fields.ForeignKeyField(
        "milestones.Launch", related_name="latest_in", null=True, on_delete=fields.SET_NULL, db_constraint=False
    )
    latest_launch_id: int | None
    latest_commit = fields.CharField(max_length=64, null=True)
    last_run_at = fields.DatetimeField(null=True)
    previous_status = fields.CharEnumField(TestStatus, max_length=8, null=True)
    previous_commit = fields.CharField(max_length=64, null=True)
    failing_since: fields.ForeignKeyNullableRelation[Launch] = fields.ForeignKeyField(
        "milestones.Launch", related_name="failing_since_in", null=True, on_delete=fields.SET_NULL, db_constraint=False
    )
    failing_since_id: int | None
    flaky = fields.BooleanField(default=False)
    # Outcomes of the last runs, newest first, one letter each (P, F, E, S; core.state).
    recent = fields.CharField(max_length=10, default="")
    # Beside `recent`, per run: Y when it was flaky (pass and fail in the run, across its
    # attempts, or a flip from the run before), N when not (core.quarantine reads it).
    flaky_recent = fields.CharField(max_length=10, default="")

    class Meta:
        table = "milestone_test"
        unique_together = (("milestone", "test_case"),)


class Defect(Model):
    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="defects", on_delete=fields.CASCADE
    )
    repository_id: int
    number = fields.BigIntField()
    title = fields.TextField(default="")
    url = fields.CharField(max_length=500, null=True)
    labels: list[str] = fields.JSONField(default=list)
    severity = fields.CharEnumField(Severity, default=Severity.NONE)
    state = fields.CharEnumField(DefectState, default=DefectState.OPEN)
    # The issue's own facts, kept so that a new policy (labels, severities) can
    # classify it again: GitHub state, close reason, and whether it was deleted.
    issue_state = fields.CharField(max_length=10, default="open")
    state_reason = fields.CharField(max_length=20, null=True)
    deleted = fields.BooleanField(default=False)
    # An issue that lost its defect label, or was closed as not planned, stays on
    # record (its events may still arrive) but no longer counts against a milestone.
    counts = fields.BooleanField(default=True)
    milestone: fields.ForeignKeyNullableRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="defects", null=True, on_delete=fields.SET_NULL
    )
    milestone_id: int | None
    # The tests its body says it breaks (core.links): `Affects:` selectors and required ids.
    affects: list[str] | None = fields.JSONField(null=True)
    # The issue's body as last seen, read again when the required tests change: a required id
    # it names links only while it is required.
    body: str | None = fields.TextField(null=True)
    # GitHub's updated_at of the newest event applied: older events never overwrite.
    source_updated_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "defect"
        unique_together = (("repository", "number"),)
        indexes = (("milestone_id", "counts", "state"),)


# A defect and a test it breaks: its `affects` selectors matched against the repository's tests.
class DefectLink(Model):
    id = fields.BigIntField(primary_key=True)
    defect: fields.ForeignKeyRelation[Defect] = fields.ForeignKeyField(
        "milestones.Defect", related_name="links", on_delete=fields.CASCADE
    )
    defect_id: int
    test_case: fields.ForeignKeyRelation[TestCase] = fields.ForeignKeyField(
        "milestones.TestCase", related_name="defect_links", on_delete=fields.CASCADE
    )
    test_case_id: int

    class Meta:
        table = "defect_link"
        unique_together = (("defect", "test_case"),)
        indexes = (("test_case_id",),)


# A test of a milestone that runs and is reported but counts neither for the pass rate nor as
# a required failure. Rows are never deleted: a release fills in who, when and why, so the
# table is also the history of every quarantine.
class Quarantine(Model):
    id = fields.BigIntField(primary_key=True)
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="quarantine", on_delete=fields.CASCADE
    )
    milestone_id: int
    test_case: fields.ForeignKeyRelation[TestCase] = fields.ForeignKeyField(
        "milestones.TestCase", related_name="quarantines", on_delete=fields.CASCADE
    )
    test_case_id: int
    # policy (the policy file's list), auto (the flaky rule) or slack (a person).
    source = fields.CharField(max_length=10)
    reason = fields.TextField(default="")
    expires_on = fields.DateField(null=True)
    added_by = fields.CharField(max_length=100)
    added_at = fields.DatetimeField()
    released_at = fields.DatetimeField(null=True)
    released_by = fields.CharField(max_length=100, null=True)
    release_reason = fields.TextField(null=True)
    # Equals test_case_id while in quarantine, NULL once released: one live entry per test.
    active_test = fields.IntField(null=True)

    class Meta:
        table = "quarantine"
        unique_together = (("milestone", "active_test"),)


# The sign-off trail: approvals and rejections, and the withdrawals and dismissals
# that end them. Never deleted or rewritten, except that an ended decision stops
# being valid.
class Signoff(Model):
    id = fields.IntField(primary_key=True)
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="signoffs", on_delete=fields.CASCADE
    )
    milestone_id: int
    user_id = fields.CharField(max_length=64)
    user_name = fields.CharField(max_length=200, null=True)
    decision = fields.CharEnumField(Decision, max_length=8)
    comment = fields.TextField(default="")
    # For a withdrawal or dismissal: the decision it ends.
    ends: fields.ForeignKeyNullableRelation[Signoff] = fields.ForeignKeyField(
        "milestones.Signoff", related_name="ended_by", null=True, on_delete=fields.SET_NULL
    )
    ends_id: int | None
    valid = fields.BooleanField(default=True)
    # Whether criteria 1-3 held when it was given: only such approvals go stale.
    given_while_green = fields.BooleanField(default=False)
    requested_by = fields.CharField(max_length=64, null=True)
    # Where the decision was made: "slack" (buttons, commands), "web" (the milestone page) or
    # "system" (a stale approval dismissed by the rules).
    via = fields.CharField(max_length=8, default="slack")
    created_at = fields.DatetimeField(auto_now_add=True)
    # Equals user_id while an approval or rejection stands, NULL otherwise: the unique
    # constraint lets each person hold one standing decision, even under concurrent clicks.
    active_user = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "signoff"
        unique_together = (("milestone", "active_user"),)


# Approvers kept in Slack (`/milestone approvers`), for milestones whose policy file lists
# none: a user id or a user-group handle. Removed ones stay, with who removed them.
class Approver(Model):
    id = fields.IntField(primary_key=True)
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="approvers", on_delete=fields.CASCADE
    )
    milestone_id: int
    member = fields.CharField(max_length=100)
    added_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    removed_by = fields.CharField(max_length=64, null=True)
    removed_at = fields.DatetimeField(null=True)
    # Equals member until removed, then NULL: each member is listed once, even under concurrent edits.
    active_member = fields.CharField(max_length=100, null=True)

    class Meta:
        table = "approver"
        unique_together = (("milestone", "active_member"),)


# A Slack user group's members as last read from Slack, so that the gate can count a
# group's approvals without calling Slack.
class UserGroup(Model):
    id = fields.IntField(primary_key=True)
    handle = fields.CharField(max_length=100, unique=True)
    group_id = fields.CharField(max_length=32, null=True)
    members: list[str] = fields.JSONField(default=list)
    refreshed_at = fields.DatetimeField()

    class Meta:
        table = "user_group"


# A sign-off request posted in Slack; the message is kept up to date with chat.update.
class SignoffRequest(Model):
    id = fields.IntField(primary_key=True)
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="signoff_requests", on_delete=fields.CASCADE
    )
    milestone_id: int
    team_id = fields.CharField(max_length=32)
    channel_id = fields.CharField(max_length=32)
    message_ts = fields.CharField(max_length=32)
    requested_by = fields.CharField(max_length=64)
    # The milestone's id while this is its live request, NULL once replaced: at most one live request.
    live_for = fields.IntField(null=True, unique=True)
    replaced_by: fields.ForeignKeyNullableRelation[SignoffRequest] = fields.ForeignKeyField(
        "milestones.SignoffRequest", related_name="replaced", null=True, on_delete=fields.SET_NULL
    )
    replaced_by_id: int | None
    # A hash of what the message last showed: an identical rendering is not sent again.
    shown_digest = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "signoff_request"
        unique_together = (("channel_id", "message_ts"),)


# The milestone's metrics at a moment; trends read these, never recompute history.
class Snapshot(Model):
    id = fields.BigIntField(primary_key=True)
    milestone: fields.ForeignKeyRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="snapshots", on_delete=fields.CASCADE
    )
    milestone_id: int
    taken_at = fields.DatetimeField()
    status = fields.CharEnumField(GateStatus, max_length=20)
    metrics: dict[str, Any] = fields.JSONField()

    class Meta:
        table = "snapshot"
        indexes = (("milestone_id", "taken_at"),)


# A pull request and the GitHub milestone it carries, for the gate check on it.
class PullRequest(Model):
    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="pull_requests", on_delete=fields.CASCADE
    )
    repository_id: int
    number = fields.BigIntField()
    title = fields.TextField(default="")
    url = fields.CharField(max_length=500, null=True)
    state = fields.CharField(max_length=10, default="open")
    draft = fields.BooleanField(default=False)
    head_sha = fields.CharField(max_length=64)
    base_ref = fields.CharField(max_length=255)
    milestone: fields.ForeignKeyNullableRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="pull_requests", null=True, on_delete=fields.SET_NULL
    )
    milestone_id: int | None
    # GitHub's updated_at of the newest event applied: older events never overwrite.
    source_updated_at = fields.DatetimeField(null=True)
    # The head commit whose changed files were last looked through for the policy file.
    files_checked_sha = fields.CharField(max_length=64, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "pull_request"
        unique_together = (("repository", "number"),)


# What was last published on a pull request: a check run (as a GitHub App) or a commit
# status (with a token), kept so that later verdicts edit it instead of adding another.
class GateCheck(Model):
    id = fields.IntField(primary_key=True)
    pull_request: fields.ForeignKeyRelation[PullRequest] = fields.ForeignKeyField(
        "milestones.PullRequest", related_name="gate_checks", on_delete=fields.CASCADE
    )
    pull_request_id: int
    # "milestone:<id>" for a milestone's gate, "config" for the policy file's validation.
    slot = fields.CharField(max_length=40)
    milestone: fields.ForeignKeyNullableRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="gate_checks", null=True, on_delete=fields.CASCADE
    )
    milestone_id: int | None
    name = fields.CharField(max_length=255)
    kind = fields.CharEnumField(CheckKind, max_length=10)
    head_sha = fields.CharField(max_length=64)
    # GitHub's check run id; None for a commit status, which is addressed by its name.
    github_id = fields.BigIntField(null=True)
    # A hash of what was written: an identical result is not written again.
    digest = fields.CharField(max_length=64)
    conclusion = fields.CharField(max_length=20)
    # False once the pull request left the milestone and the check said so.
    active = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "gate_check"
        unique_together = (("pull_request", "slot"),)


# Work owed to the outside world (a pull request's checks to refresh), one row per
# (topic, subject): any number of changes while it waits are one piece of work, and
# it survives a restart because it is written in the transaction that made the change.
class Outbox(Model):
    id = fields.BigIntField(primary_key=True)
    topic = fields.CharField(max_length=40)
    subject = fields.BigIntField()
    first_marked_at = fields.DatetimeField()
    last_marked_at = fields.DatetimeField()
    # Bumped by every mark: work marked again while it was being done is done again.
    generation = fields.IntField(default=1)
    # Somebody asked for it (Re-evaluate): written even when the result is unchanged.
    forced = fields.BooleanField(default=False)
    attempts = fields.IntField(default=0)
    # After a failure or a rate limit: not before then.
    not_before = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)

    class Meta:
        table = "outbox"
        unique_together = (("topic", "subject"),)


# An accepted webhook delivery: stored before it is answered, processed after, so
# that nothing accepted is lost when the process dies in between.
class Delivery(Model):
    id = fields.BigIntField(primary_key=True)
    guid = fields.CharField(max_length=64, unique=True)
    event = fields.CharField(max_length=64)
    action = fields.CharField(max_length=64, null=True)
    repository = fields.CharField(max_length=200, null=True)
    installation_id = fields.BigIntField(null=True)
    payload = fields.TextField()
    status = fields.CharEnumField(DeliveryStatus, max_length=10, default=DeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    # While processing: the claim runs out then, and another worker may take it over.
    locked_until = fields.DatetimeField(null=True)
    received_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    # The last failure, or why the delivery was ignored.
    error = fields.TextField(null=True)
    note = fields.TextField(null=True)

    class Meta:
        table = "delivery"
        indexes = (("status", "next_attempt_at", "id"), ("status", "locked_until"))


# A Slack channel's default repository: commands typed there need not name it.
class ChannelLink(Model):
    id = fields.IntField(primary_key=True)
    team_id = fields.CharField(max_length=32)
    channel_id = fields.CharField(max_length=32)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="channel_links", on_delete=fields.CASCADE
    )
    repository_id: int
    linked_by = fields.CharField(max_length=64)
    # Live alerts of the repository's milestones (`/milestone alerts on|off`).
    alerts = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "channel_link"
        unique_together = (("team_id", "channel_id"),)


# A channel's scheduled digest: of one milestone, of a repository, or (both NULL) of every
# repository linked to the channel.
class Subscription(Model):
    id = fields.IntField(primary_key=True)
    team_id = fields.CharField(max_length=32)
    channel_id = fields.CharField(max_length=32)
    repository: fields.ForeignKeyNullableRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="subscriptions", null=True, on_delete=fields.CASCADE
    )
    repository_id: int | None
    milestone: fields.ForeignKeyNullableRelation[Milestone] = fields.ForeignKeyField(
        "milestones.Milestone", related_name="subscriptions", null=True, on_delete=fields.CASCADE
    )
    milestone_id: int | None
    # Only the milestones with this tag, of the repository (or of the channel's).
    tag = fields.CharField(max_length=40, null=True)
    # "milestone:<id>", "repository:<id>", "channel" or "tag:<repository id or channel>:<hash of
    # the tag>": one subscription per channel and scope.
    scope_key = fields.CharField(max_length=40)
    kind = fields.CharField(max_length=10)
    weekday = fields.IntField(null=True)
    at = fields.CharField(max_length=5)
    zone = fields.CharField(max_length=64)
    created_by = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "subscription"
        unique_together = (("team_id", "channel_id", "scope_key"),)


# One scheduled fire of a subscription, claimed before it is posted: the unique
# (subscription, scheduled_for) lets one clock process post it, whatever else runs.
class DigestRun(Model):
    id = fields.BigIntField(primary_key=True)
    subscription: fields.ForeignKeyRelation[Subscription] = fields.ForeignKeyField(
        "milestones.Subscription", related_name="runs", on_delete=fields.CASCADE
    )
    subscription_id: int
    scheduled_for = fields.DatetimeField()
    status = fields.CharField(max_length=10, default="claimed")  # claimed, sent, failed, missed
    attempts = fields.IntField(default=0)
    claimed_at = fields.DatetimeField()
    # The claim holds until then, renewed while the digest is being posted: a clock that died
    # while posting stops renewing, and another takes the fire over.
    lease_until = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    error: str | None = fields.TextField(null=True)
    # What the digest reported, per milestone id: the next digest says what changed since.
    reported: dict[str, Any] = fields.JSONField(default=dict)

    class Meta:
        table = "digest_run"
        unique_together = (("subscription", "scheduled_for"),)


# An answer shared to a channel, claimed before it is posted: a double click on Share sends two
# requests, possibly to two web processes, and the unique key lets one of them post.
class SharedAnswer(Model):
    id = fields.BigIntField(primary_key=True)
    # SHA-256 of the channel, the answer's message and what it shows: bounded, whatever the names.
    key = fields.CharField(max_length=64, unique=True)
    shared_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "shared_answer"


# A token that lets a CI job upload launches of one repository (`milestones token create`).
# Only its SHA-256 is kept; the token itself is shown once.
class UploadToken(Model):
    id = fields.IntField(primary_key=True)
    repository: fields.ForeignKeyRelation[Repository] = fields.ForeignKeyField(
        "milestones.Repository", related_name="upload_tokens", on_delete=fields.CASCADE
    )
    repository_id: int
    name = fields.CharField(max_length=100)
    # Plans it may upload to; empty: any plan of the repository.
    plans: list[str] = fields.JSONField(default=list)
    token_hash = fields.CharField(max_length=64, unique=True)
    # The token's first characters, to tell tokens apart in a list (never enough to use one).
    prefix = fields.CharField(max_length=16)
    created_by = fields.CharField(max_length=100)
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    revoked_by = fields.CharField(max_length=100, null=True)
    # Equals name until revoked, then NULL: one live token per name and repository.
    active_name = fields.CharField(max_length=100, null=True)
    # The rate limit's current window, shared by every web process through the database.
    window_started_at = fields.DatetimeField(null=True)
    window_count = fields.IntField(default=0)

    class Meta:
        table = "upload_token"
        unique_together = (("repository", "active_name"),)
