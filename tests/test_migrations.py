"""Upgrading a database that holds data: every migration applies to populated tables and keeps
their rows, on both engines."""

from __future__ import annotations

from datetime import date

from tortoise.migrations.api import migrate as run_migrations

from core.db import APP, connection, database, tortoise_config
from core.enums import Lifecycle

# Rows as a team would have them at the first schema: a repository with a plan, a launch and its
# results, a milestone with its tests, a defect, a sign-off and a snapshot.
AT_FIRST_SCHEMA = [
    "INSERT INTO repository (id, full_name, created_at) VALUES (1, 'acme/shop', '2026-10-01 09:00:00+00:00')",
    "INSERT INTO test_plan (id, repository_id, name, artifacts) VALUES (1, 1, 'unit', '*')",
    "INSERT INTO launch (id, repository_id, plan_id, source_id, attempt, superseded, finished_at, files, tests,"
    " passed, failed, errors, skipped, flaky, declared, created_at) VALUES (1, 1, 1, 'run-1', 1, FALSE,"
    " '2026-10-02 10:00:00+00:00', 1, 2, 1, 1, 0, 0, 0, '{}', '2026-10-02 10:00:00+00:00')",
    "INSERT INTO test_case (id, repository_id, identity_key, classname, name, suite, created_at)"
    " VALUES (1, 1, 'k1', 'cart', 'adds', 'unit', '2026-10-02 10:00:00+00:00'),"
    " (2, 1, 'k2', 'cart', 'removes', 'unit', '2026-10-02 10:00:00+00:00')",
    "INSERT INTO test_result (id, launch_id, test_case_id, status, duration, flaky, retried)"
    " VALUES (1, 1, 1, 'passed', 0.5, FALSE, FALSE), (2, 1, 2, 'failed', 0.1, FALSE, FALSE)",
    "INSERT INTO milestone (id, repository_id, name, description, target_date, state, policy, matched_selectors,"
    " completed_at, created_at, updated_at) VALUES (1, 1, 'v2.0', 'The release', '2026-12-01', 'open', '{}',"
    " '[]', NULL, '2026-10-01 09:00:00+00:00', '2026-10-01 09:00:00+00:00'), (2, 1, 'v1.9', '', NULL, 'closed',"
    " '{}', '[]', '2026-09-01 09:00:00+00:00', '2026-08-01 09:00:00+00:00', '2026-09-01 09:00:00+00:00'),"
    " (3, 1, 'v1.8', '', NULL, 'closed', '{}', '[]', NULL, '2026-07-01 09:00:00+00:00', '2026-07-01 09:00:00+00:00')",
    "INSERT INTO milestone_plan (milestone_id, testplan_id) VALUES (1, 1)",
    "INSERT INTO milestone_test (id, milestone_id, test_case_id, plan_bits, latest_status, latest_launch_id,"
    " flaky, recent) VALUES (1, 1, 1, 1, 'passed', 1, FALSE, 'P')",
    "INSERT INTO defect (id, repository_id, number, title, labels, severity, state, issue_state, deleted, counts,"
    " milestone_id, created_at, updated_at) VALUES (1, 1, 7, 'Cart crash', '[\"bug\"]', 'high', 'open', 'open',"
    " FALSE, TRUE, 1, '2026-10-03 09:00:00+00:00', '2026-10-03 09:00:00+00:00')",
    "INSERT INTO signoff (id, milestone_id, user_id, decision, comment, valid, given_while_green, created_at,"
    " active_user) VALUES (1, 1, 'U1', 'approve', 'ok', TRUE, FALSE, '2026-10-04 09:00:00+00:00', 'U1')",
    "INSERT INTO snapshot (id, milestone_id, taken_at, status, metrics)"
    " VALUES (1, 1, '2026-10-04 09:00:00+00:00', 'at_risk', '{\"pass_rate\": 0.5}')",
]

# A channel linked to the repository, once Slack's tables exist.
AT_SLACK_SCHEMA = [
    "INSERT INTO channel_link (id, team_id, channel_id, repository_id, linked_by, created_at, updated_at)"
    " VALUES (1, 'T1', 'C1', 1, 'U1', '2026-10-05 09:00:00+00:00', '2026-10-05 09:00:00+00:00')",
]


async def _migrate_to(url: str, target: str | None) -> None:
    async with database(url):
        await run_migrations(config=tortoise_config(url), target=f"{APP}.{target}" if target else None)


async def _insert(url: str, statements: list[str]) -> None:
    async with database(url):
        for statement in statements:
            await connection().execute_script(statement)


async def test_a_populated_database_upgrades_to_the_latest_schema_with_its_rows(scratch_database_url: str) -> None:
    url = scratch_database_url
    await _migrate_to(url, "0001_initial")
    await _insert(url, AT_FIRST_SCHEMA)
    await _migrate_to(url, "0004_slack")
    await _insert(url, AT_SLACK_SCHEMA)

    await _migrate_to(url, None)

    from core.models import ChannelLink, Defect, Launch, Milestone, Repository, Signoff, Snapshot, TestResult

    async with database(url):
        repository = await Repository.get(full_name="acme/shop")
        assert repository.label_aliases == {}
        launch = await Launch.get(id=1)
        assert (launch.tests, launch.passed, launch.failed, launch.warnings) == (2, 1, 1, [])
        assert await TestResult.filter(launch_id=1).count() == 2
        release = await Milestone.get(name="v2.0").prefetch_related("plans")
        assert release.target_date == date(2026, 12, 1)
        assert release.description == "The release"
        assert [plan.name for plan in release.plans] == ["unit"]
        assert (release.closed_on_complete, release.completed_with, release.announced_complete) == (False, [], None)
        assert release.alerted is None
        assert (release.lifecycle, release.tags, release.start_date) == (Lifecycle.ACTIVE, [], None)
        previous = await Milestone.get(name="v1.9")
        assert previous.completed_at is not None
        assert previous.lifecycle is Lifecycle.COMPLETED
        assert (await Milestone.get(name="v1.8")).lifecycle is Lifecycle.CLOSED
        defect = await Defect.get(number=7)
        assert (defect.title, defect.labels, defect.milestone_id) == ("Cart crash", ["bug"], release.id)  # type: ignore[attr-defined]
        signoff = await Signoff.get(id=1)
        assert (signoff.comment, signoff.via) == ("ok", "slack")
        assert (await Snapshot.get(id=1)).metrics == {"pass_rate": 0.5}
        link = await ChannelLink.get(channel_id="C1")
        assert link.alerts is True
        if connection().capabilities.dialect == "postgres":
            # Room on each page for the next launch's version of a row (0016).
            options = await connection().execute_query_dict(
                "SELECT reloptions FROM pg_class WHERE relname = 'milestone_test'"
            )
            assert options == [{"reloptions": ["fillfactor=60"]}]


REFERENCES = (
    "SELECT conrelid::regclass::text AS owner, pg_get_constraintdef(oid) AS reference FROM pg_constraint "
    "WHERE contype = 'f' AND conrelid::regclass::text IN ('test_result', 'milestone_test', 'test_case') ORDER BY 1, 2"
)


async def _references(url: str) -> list[tuple[str, str]]:
    """(table, reference) of what the database checks for results, milestone tests and test cases."""
    async with database(url):
        if connection().capabilities.dialect == "postgres":
            return [(row["owner"], row["reference"]) for row in await connection().execute_query_dict(REFERENCES)]
        found = []
        for table in ("milestone_test", "test_case", "test_result"):
            rows = await connection().execute_query_dict(f"PRAGMA foreign_key_list({table})")
            found += [(table, f"{row['from']} -> {row['table']} {row['on_delete']}") for row in rows]
        return sorted(found)


async def test_stored_tests_and_results_reference_unchecked_on_postgresql_only(scratch_database_url: str) -> None:
    # PostgreSQL's check of each row's references cost more than storing the rows (0017-0019);
    # a downgrade restores them, and SQLite, whose checks are cheap, keeps them throughout.
    url = scratch_database_url
    await _migrate_to(url, "0016_milestone_test_room")
    before = await _references(url)
    await _migrate_to(url, None)
    after = await _references(url)
    async with database(url):
        postgres = connection().capabilities.dialect == "postgres"
    if postgres:
        assert after == []
        assert sorted(before) == [
            ("milestone_test", "FOREIGN KEY (failing_since_id) REFERENCES launch(id) ON DELETE SET NULL"),
            ("milestone_test", "FOREIGN KEY (latest_launch_id) REFERENCES launch(id) ON DELETE SET NULL"),
            ("milestone_test", "FOREIGN KEY (milestone_id) REFERENCES milestone(id) ON DELETE CASCADE"),
            ("milestone_test", "FOREIGN KEY (test_case_id) REFERENCES test_case(id) ON DELETE CASCADE"),
            ("test_case", "FOREIGN KEY (repository_id) REFERENCES repository(id) ON DELETE CASCADE"),
            ("test_result", "FOREIGN KEY (launch_id) REFERENCES launch(id) ON DELETE CASCADE"),
            ("test_result", "FOREIGN KEY (test_case_id) REFERENCES test_case(id) ON DELETE CASCADE"),
        ]
    else:
        assert after == before
        assert ("test_result", "launch_id -> launch CASCADE") in after
        assert ("test_case", "repository_id -> repository CASCADE") in after
        assert ("milestone_test", "milestone_id -> milestone CASCADE") in after
    await _migrate_to(url, "0016_milestone_test_room")
    assert await _references(url) == before
