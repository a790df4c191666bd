"""The `milestones` command as a user runs it: a real process per command, a database of its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import JUNIT, throwaway_database

MILESTONES = Path(sys.executable).parent / "milestones"

UNITTEST_REPORT = JUNIT / "python-xunit-unittest.xml"  # 8 tests: 4 passed, 1 failed, 1 error, 2 skipped
PYTEST_REPORT = JUNIT / "python-xunit-pytest.xml"  # 10 tests: 6 passed, 2 failed, 2 skipped
JEST_REPORT = JUNIT / "jest-junit.xml"  # 6 tests: 1 passed, 4 failed, 1 skipped
SWIFT_REPORT = JUNIT / "swift-xunit.xml"  # 3 tests: 2 passed, 1 failed

NO_TESTS = {"passed": 0, "failed": 0, "error": 0, "skipped": 0, "not_run": 0, "total": 0}

VALID_POLICY = """\
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v3.0":
    plans: [smoke]
    pass_rate: 0.8
    signoff: {approvers: [U0RELEASE], quorum: 1}
"""

# Line 6: a misspelt key; line 7: a ratio above 1.
INVALID_POLICY = """\
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v3.0":
    plans: [smoke]
    pass_rat: 0.8
    coverage: 1.5
"""

MALFORMED_REPORT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="broken">
  <testcase classname="a.B" name="test_one">
  </testsuit>
"""

BILLION_LAUGHS = """\
<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<testsuite name="lolz"><testcase classname="a.B" name="&lol4;"/></testsuite>
"""

# Surefire's rerun record: failed once, then passed.
FLAKY_REPORT = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.acme.RetryTest" tests="2">
  <testcase classname="com.acme.RetryTest" name="testSteady"/>
  <testcase classname="com.acme.RetryTest" name="testWobbly">
    <flakyFailure message="timeout" type="java.util.concurrent.TimeoutException"/>
  </testcase>
</testsuite>
"""


def run(*args: str | Path, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`milestones ARGS...` in `cwd` (where no `.env` lies) against `database_url`."""
    env = dict(os.environ, DATABASE_URL=database_url)
    env.pop("LOG_LEVEL", None)
    return subprocess.run(
        [str(MILESTONES), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def succeeds(*args: str | Path, database_url: str, cwd: Path) -> str:
    """Run a command that must work quietly; its standard output."""
    result = run(*args, database_url=database_url, cwd=cwd)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def json_of(*args: str | Path, database_url: str, cwd: Path) -> Any:
    return json.loads(succeeds(*args, "--json", database_url=database_url, cwd=cwd))


def migrated(database_url: str, cwd: Path) -> str:
    assert succeeds("migrate", database_url=database_url, cwd=cwd) == "database is up to date\n"
    return database_url


def known_tests(name: str, repo: str, database_url: str, cwd: Path) -> dict[str, int]:
    return json_of("status", name, "--repo", repo, database_url=database_url, cwd=cwd)["metrics"]["tests"]


def assert_refused_quietly(result: subprocess.CompletedProcess[str], exit_code: int) -> list[str]:
    """A refusal: the exit code, nothing on stdout, no traceback; the stderr lines."""
    assert result.returncode == exit_code
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()


@pytest.fixture(scope="module")
async def demo_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Path]]:
    """A migrated database with the demo loaded once, shared by the read-only demo tests."""
    async with throwaway_database(tmp_path_factory.mktemp("demo-db")) as database_url:
        cwd = tmp_path_factory.mktemp("demo-cwd")
        migrated(database_url, cwd)
        assert succeeds("demo", database_url=database_url, cwd=cwd) == (
            "demo loaded: v2.0, Sprint 24. Try `milestones status v2.0` and `milestones list`.\n"
        )
        yield database_url, cwd


# migrate ----------------------------------------------------------------------


def test_migrate_twice_is_a_no_op_the_second_time(scratch_database_url: str, tmp_path: Path) -> None:
    first = run("migrate", database_url=scratch_database_url, cwd=tmp_path)
    second = run("migrate", database_url=scratch_database_url, cwd=tmp_path)

    assert (first.returncode, first.stdout, first.stderr) == (0, "database is up to date\n", "")
    assert (second.returncode, second.stdout, second.stderr) == (0, "database is up to date\n", "")


# demo, status, list -----------------------------------------------------------


def test_demo_release_status_as_json(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database

    verdict = json_of("status", "v2.0", database_url=database_url, cwd=cwd)

    assert {"status", "criteria", "metrics", "blocking", "signoffs"} <= verdict.keys()
    assert verdict["milestone"] == "v2.0"
    assert verdict["status"] == "blocked"
    assert verdict["gate_green"] is False
    assert [(c["name"], c["met"], c["result"]) for c in verdict["criteria"]] == [
        ("required_tests", False, "not_met"),
        ("defects", False, "not_met"),
        ("coverage", False, "not_met"),
        ("signoff", False, "not_met"),
    ]
    required, defects, coverage, signoff = verdict["criteria"]
    assert (required["pass_rate_threshold"], required["required_failing"]) == (0.95, 1)
    assert (required["required"], required["required_executed"], required["required_passed"]) == (17, 16, 15)
    assert (defects["blocking"], defects["limits"]) == (2, {"critical": 0, "high": 0})
    assert (coverage["run"], coverage["total"], coverage["threshold"]) == (16, 17, 1.0)
    assert (signoff["approvals"], signoff["quorum"]) == (1, 2)
    assert signoff["approvers"] == ["U012AB3CD", "U045EF6GH"]

    blocking = verdict["blocking"]
    assert [(t["name"], t["status"]) for t in blocking["failing_tests"]] == [
        ("com.acme.shop.checkout.PaymentTest.testRefund", "failed")
    ]
    assert [(d["number"], d["severity"], d["state"]) for d in blocking["defects"]] == [
        (101, "critical", "open"),
        (102, "high", "resolved"),
    ]
    assert blocking["missing_approvers"] == ["U012AB3CD"]
    assert blocking["rejections"] == []

    assert verdict["metrics"]["tests"] == {
        "passed": 24,
        "failed": 2,
        "error": 0,
        "skipped": 1,
        "not_run": 0,
        "total": 27,
    }
    assert [(s["user"], s["decision"], s["valid"]) for s in verdict["signoffs"]] == [("U045EF6GH", "approve", True)]
    assert verdict["signoffs"][0]["comment"] == "QA sign-off for the release branch"
    assert verdict["signoffs"][0]["ends"] is None and isinstance(verdict["signoffs"][0]["id"], int)
    assert (verdict["completed_at"], verdict["completed_with"]) == (None, [])


def test_demo_status_as_text(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database

    release = succeeds("status", "v2.0", database_url=database_url, cwd=cwd).splitlines()
    sprint = succeeds("status", "Sprint 24", database_url=database_url, cwd=cwd).splitlines()

    assert release[0].startswith("v2.0: blocked · target ")
    assert release[2:6] == [
        "  ✘ Required tests pass  1 of 16 required tests failing; pass rate 92.3% below 95%",
        "  ✘ Defects resolved     open defects over the limit: 1 critical (max 0), 1 high (max 0)",
        "  ✘ Coverage met         16 of 17 required tests run (94.1%)",
        "  ✘ Sign-off obtained    1 of 2 approvals",
    ]
    assert "  ✘ com.acme.shop.checkout.PaymentTest.testRefund (failed, failing since f5a6fe4)" in release
    assert "  ✘ #101 [critical] Refund charges the card twice" in release
    assert "  ✘ #102 [high] Cart total rounds half-cents down" in release
    assert "  … awaiting sign-off from U012AB3CD" in release
    trail = release[release.index("Sign-off trail:") + 1 :]
    assert len(trail) == 1 and trail[0].endswith(
        " UTC  U045EF6GH approve: QA sign-off for the release branch (standing)"
    )

    assert sprint[0].startswith("Sprint 24: at risk · target ")
    assert sprint[2:6] == [
        "  ✔ Required tests pass  pass rate 92.9% (threshold 90%)",
        "  ✔ Defects resolved     1 open, none over the limits",
        "  ✘ Coverage met         14 of 15 tests run (93.3%)",
        "  ✔ Sign-off obtained    no sign-off required",
    ]


def test_list_as_json_puts_the_blocked_milestone_first(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database

    listed = json_of("list", database_url=database_url, cwd=cwd)

    assert [(m["name"], m["repo"], m["status"]) for m in listed] == [
        ("v2.0", "acme/shop", "blocked"),
        ("Sprint 24", "acme/shop", "at_risk"),
    ]
    assert [m["open_blocking"] for m in listed] == [2, 0]
    today = datetime.now(UTC).date()
    for milestone in listed:
        assert milestone["days_left"] == (date.fromisoformat(milestone["target_date"]) - today).days
    # The demo sets its targets 10 and 3 days after the day it was loaded.
    assert listed[0]["days_left"] - listed[1]["days_left"] == 7


def test_loading_the_demo_again_changes_nothing(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    before = json_of("status", "v2.0", database_url=database_url, cwd=cwd)

    succeeds("demo", database_url=database_url, cwd=cwd)
    after = json_of("status", "v2.0", database_url=database_url, cwd=cwd)

    assert after["status"] == before["status"] == "blocked"
    assert after["criteria"] == before["criteria"]
    assert after["blocking"] == before["blocking"]
    assert after["signoffs"] == before["signoffs"]
    assert after["metrics"]["tests"] == before["metrics"]["tests"]


# ingest -----------------------------------------------------------------------


def test_ingest_one_report_counts_it_and_ignores_the_same_upload_again(
    scratch_database_url: str, tmp_path: Path
) -> None:
    url = migrated(scratch_database_url, tmp_path)
    ingest = ("ingest", UNITTEST_REPORT, "--repo", "acme/api", "--plan", "unit")

    first = json_of(*ingest, database_url=url, cwd=tmp_path)
    again = json_of(*ingest, database_url=url, cwd=tmp_path)

    counts = {"files": 1, "suites": 1, "tests": 8, "passed": 4, "failed": 1, "errors": 1, "skipped": 2, "flaky": 0}
    assert first == {**counts, "launch_id": first["launch_id"], "created": True, "superseded": False, "milestones": {}}
    assert again == {**first, "created": False}


def test_ingest_several_reports_as_one_launch_once_per_source_and_attempt(
    scratch_database_url: str, tmp_path: Path
) -> None:
    url = migrated(scratch_database_url, tmp_path)
    succeeds("milestone", "add", "r1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    ingest = (
        "ingest",
        UNITTEST_REPORT,
        PYTEST_REPORT,
        JEST_REPORT,
        "--repo",
        "acme/api",
        "--plan",
        "nightly",
        "--source",
        "run-42",
        "--attempt",
        "1",
        "--commit",
        "abc123",
        "--branch",
        "main",
    )

    first = json_of(*ingest, database_url=url, cwd=tmp_path)
    again = json_of(*ingest, database_url=url, cwd=tmp_path)

    counts = {"files": 3, "suites": 4, "tests": 24, "passed": 11, "failed": 7, "errors": 1, "skipped": 5, "flaky": 0}
    assert {key: first[key] for key in counts} == counts
    assert (first["created"], first["superseded"], first["milestones"]) == (True, False, {"r1": "blocked"})
    assert (again["created"], again["launch_id"]) == (False, first["launch_id"])
    assert known_tests("r1", "acme/api", url, tmp_path) == {
        "passed": 11,
        "failed": 7,
        "error": 1,
        "skipped": 5,
        "not_run": 0,
        "total": 24,
    }


def test_ingest_dry_run_counts_and_stores_nothing(scratch_database_url: str, tmp_path: Path) -> None:
    url = migrated(scratch_database_url, tmp_path)
    succeeds("milestone", "add", "r1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    flaky_report = tmp_path / "TEST-com.acme.RetryTest.xml"
    flaky_report.write_text(FLAKY_REPORT, encoding="utf-8")

    as_json = json_of(
        "ingest",
        SWIFT_REPORT,
        flaky_report,
        "--repo",
        "acme/api",
        "--plan",
        "unit",
        "--dry-run",
        database_url=url,
        cwd=tmp_path,
    )
    as_text = succeeds(
        "ingest", SWIFT_REPORT, "--repo", "acme/api", "--plan", "unit", "--dry-run", database_url=url, cwd=tmp_path
    )

    assert as_json == {
        "files": 2,
        "suites": 2,
        "tests": 5,
        "passed": 4,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "flaky": 1,
    }
    assert as_text == "3 tests in 1 file: 2 passed, 1 failed, 0 errors, 0 skipped, 0 flaky (dry run: nothing stored)\n"
    assert known_tests("r1", "acme/api", url, tmp_path) == NO_TESTS


def test_ingest_refuses_malformed_and_entity_bomb_reports_and_stores_nothing(
    scratch_database_url: str, tmp_path: Path
) -> None:
    url = migrated(scratch_database_url, tmp_path)
    succeeds("milestone", "add", "r1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    (tmp_path / "broken.xml").write_text(MALFORMED_REPORT, encoding="utf-8")
    (tmp_path / "lolz.xml").write_text(BILLION_LAUGHS, encoding="utf-8")
    plan = ("--repo", "acme/api", "--plan", "unit", "--json")

    # A good report next to the broken one: the launch is refused whole.
    malformed = run("ingest", SWIFT_REPORT, "broken.xml", *plan, database_url=url, cwd=tmp_path)
    bomb = run("ingest", "lolz.xml", *plan, database_url=url, cwd=tmp_path)

    assert assert_refused_quietly(malformed, 1) == [
        "error: broken.xml:4: malformed XML: Opening and ending tag mismatch: testcase line 3 and testsuit"
    ]
    [bomb_error] = assert_refused_quietly(bomb, 1)
    assert re.fullmatch(r"error: lolz\.xml:\d+: DOCTYPE declarations are not accepted in test reports", bomb_error)
    assert known_tests("r1", "acme/api", url, tmp_path) == NO_TESTS


def test_ingest_names_the_line_of_a_doctype_below_the_xml_declaration(tmp_path: Path) -> None:
    (tmp_path / "lolz.xml").write_text(BILLION_LAUGHS, encoding="utf-8")

    result = run(
        "ingest",
        "lolz.xml",
        "--repo",
        "acme/api",
        "--plan",
        "unit",
        "--dry-run",
        database_url=f"sqlite://{tmp_path / 'unused.db'}",
        cwd=tmp_path,
    )

    assert result.stderr.startswith("error: lolz.xml:2: ")


# milestone add, policy --------------------------------------------------------


def test_milestone_add_with_a_due_date_and_with_a_policy(scratch_database_url: str, tmp_path: Path) -> None:
    url = migrated(scratch_database_url, tmp_path)
    (tmp_path / "milestones.yml").write_text(VALID_POLICY, encoding="utf-8")

    plain = succeeds(
        "milestone", "add", "Q1", "--repo", "acme/api", "--due", "2030-01-31", database_url=url, cwd=tmp_path
    )
    governed = succeeds(
        "milestone", "add", "v3.0", "--repo", "acme/api", "--policy", "milestones.yml", database_url=url, cwd=tmp_path
    )
    plain_verdict = json_of("status", "Q1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    governed_verdict = json_of("status", "v3.0", "--repo", "acme/api", database_url=url, cwd=tmp_path)

    assert plain == "milestone Q1 in acme/api: no data\n"
    assert governed == "milestone v3.0 in acme/api: no data\n"
    assert (plain_verdict["target_date"], plain_verdict["status"]) == ("2030-01-31", "no_data")
    assert plain_verdict["criteria"][0]["pass_rate_threshold"] == 0.95
    assert plain_verdict["metrics"]["tests"] == NO_TESTS
    required, _, _, signoff = governed_verdict["criteria"]
    assert (governed_verdict["target_date"], governed_verdict["status"]) == (None, "no_data")
    assert required["pass_rate_threshold"] == 0.8
    assert (signoff["quorum"], signoff["approvers"], signoff["summary"]) == (1, ["U0RELEASE"], "0 of 1 approvals")


def test_milestone_add_with_an_invalid_policy_stores_nothing(scratch_database_url: str, tmp_path: Path) -> None:
    url = migrated(scratch_database_url, tmp_path)
    (tmp_path / "milestones.yml").write_text(INVALID_POLICY, encoding="utf-8")

    added = run(
        "milestone", "add", "v3.0", "--repo", "acme/api", "--policy", "milestones.yml", database_url=url, cwd=tmp_path
    )
    listed = json_of("list", database_url=url, cwd=tmp_path)

    assert assert_refused_quietly(added, 1) == [
        """milestones.yml:6: milestones."v3.0".pass_rat: unknown key 'pass_rat'; did you mean 'pass_rate'?""",
        'milestones.yml:7: milestones."v3.0".coverage: must be between 0 and 1',
    ]
    assert listed == []


def test_policy_check_accepts_a_valid_file_and_names_each_error_line(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(VALID_POLICY, encoding="utf-8")
    (tmp_path / "bad.yml").write_text(INVALID_POLICY, encoding="utf-8")
    unused = f"sqlite://{tmp_path / 'unused.db'}"

    good = run("policy", "check", "good.yml", database_url=unused, cwd=tmp_path)
    bad = run("policy", "check", "bad.yml", database_url=unused, cwd=tmp_path)

    assert (good.returncode, good.stdout, good.stderr) == (0, "good.yml: valid (1 plans; milestones: v3.0)\n", "")
    assert assert_refused_quietly(bad, 1) == [
        """bad.yml:6: milestones."v3.0".pass_rat: unknown key 'pass_rat'; did you mean 'pass_rate'?""",
        'bad.yml:7: milestones."v3.0".coverage: must be between 0 and 1',
    ]
    assert not (tmp_path / "unused.db").exists()


# errors -----------------------------------------------------------------------


def test_status_of_an_unknown_milestone_is_one_line(scratch_database_url: str, tmp_path: Path) -> None:
    url = migrated(scratch_database_url, tmp_path)

    result = run("status", "nosuch", database_url=url, cwd=tmp_path)

    assert assert_refused_quietly(result, 1) == ["error: no milestone nosuch"]


def test_an_unknown_database_scheme_stops_with_one_line(tmp_path: Path) -> None:
    result = run("list", database_url="mysql://x", cwd=tmp_path)

    assert assert_refused_quietly(result, 2) == [
        "configuration error: DATABASE_URL: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    ]
