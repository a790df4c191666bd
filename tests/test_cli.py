"""The `milestones` command as a user runs it, each test with a database of its own.

Most commands run in this process (tests/cli.py); the tests marked "as a process" run
the installed program, for what only a real process shows: its start-up, what it
imports, its exit status and output from the real entry point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from core import services
from tests.cli import assert_refused_quietly, json_of, run, run_process, succeeds
from tests.conftest import JUNIT

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


def known_tests(name: str, repo: str, database_url: str, cwd: Path) -> dict[str, int]:
    return json_of("status", name, "--repo", repo, database_url=database_url, cwd=cwd)["metrics"]["tests"]


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

    assert re.match(r"v2\.0: blocked · active · [█░]{10} \d+% · target ", release[0]), release[0]
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

    assert re.match(r"Sprint 24: at risk · active · [█░]{10} \d+% · target ", sprint[0]), sprint[0]
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
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
    ingest = ("ingest", UNITTEST_REPORT, "--repo", "acme/api", "--plan", "unit")

    first = json_of(*ingest, database_url=url, cwd=tmp_path)
    again = json_of(*ingest, database_url=url, cwd=tmp_path)

    counts = {"files": 1, "suites": 1, "tests": 8, "passed": 4, "failed": 1, "errors": 1, "skipped": 2, "flaky": 0}
    assert first == {
        **counts,
        "warnings": [],
        "launch_id": first["launch_id"],
        "created": True,
        "superseded": False,
        "milestones": {},
    }
    assert again == {**first, "created": False}


def test_ingest_several_reports_as_one_launch_once_per_source_and_attempt(
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
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


def test_ingest_dry_run_counts_and_stores_nothing(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
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
        "warnings": [],
    }
    assert as_text == "3 tests in 1 file: 2 passed, 1 failed, 0 errors, 0 skipped, 0 flaky (dry run: nothing stored)\n"
    assert known_tests("r1", "acme/api", url, tmp_path) == NO_TESTS


def test_ingest_of_a_report_listing_no_cases_counts_what_it_declares_and_says_so(
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
    succeeds("milestone", "add", "r1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    (tmp_path / "summary.xml").write_text('<testsuite name="api" tests="6" failures="1" skipped="2"/>')

    result = run("ingest", "summary.xml", "--repo", "acme/api", "--plan", "unit", database_url=url, cwd=tmp_path)

    assert result.returncode == 0
    assert result.stderr.startswith("warning: summary.xml: report lists no cases for 1 suite declaring 6 tests")
    assert result.stdout.startswith("6 tests in 1 file: 3 passed, 1 failed, 0 errors, 2 skipped, 0 flaky -> launch")
    assert result.stdout.endswith("  r1: blocked\n")
    assert known_tests("r1", "acme/api", url, tmp_path)["failed"] == 1


def test_ingest_refuses_malformed_and_entity_bomb_reports_and_stores_nothing(
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
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


def test_milestone_add_with_a_due_date_and_with_a_policy(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
    (tmp_path / "milestones.yml").write_text(VALID_POLICY, encoding="utf-8")

    plain = succeeds(
        "milestone", "add", "Q1", "--repo", "acme/api", "--due", "2030-01-31", database_url=url, cwd=tmp_path
    )
    governed = succeeds(
        "milestone", "add", "v3.0", "--repo", "acme/api", "--policy", "milestones.yml", database_url=url, cwd=tmp_path
    )
    plain_verdict = json_of("status", "Q1", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    governed_verdict = json_of("status", "v3.0", "--repo", "acme/api", database_url=url, cwd=tmp_path)

    assert plain == "milestone Q1 in acme/api: active, no data\n"
    assert governed == "milestone v3.0 in acme/api: active, no data\n"
    assert (plain_verdict["target_date"], plain_verdict["status"]) == ("2030-01-31", "no_data")
    assert plain_verdict["criteria"][0]["pass_rate_threshold"] == 0.95
    assert plain_verdict["metrics"]["tests"] == NO_TESTS
    required, _, _, signoff = governed_verdict["criteria"]
    assert (governed_verdict["target_date"], governed_verdict["status"]) == (None, "no_data")
    assert required["pass_rate_threshold"] == 0.8
    assert (signoff["quorum"], signoff["approvers"], signoff["summary"]) == (1, ["U0RELEASE"], "0 of 1 approvals")


def test_milestone_add_with_an_invalid_policy_stores_nothing(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
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


def test_status_of_an_unknown_milestone_is_one_line(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url

    result = run("status", "nosuch", database_url=url, cwd=tmp_path)

    assert assert_refused_quietly(result, 1) == ["error: No milestone nosuch"]


def test_as_a_process_an_unknown_database_scheme_stops_with_one_line(tmp_path: Path) -> None:
    result = run_process("list", database_url="mysql://x", cwd=tmp_path)

    assert assert_refused_quietly(result, 2) == [
        "configuration error: DATABASE_URL: expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE"
    ]


def test_a_database_that_cannot_be_opened_is_one_line_naming_the_cause(tmp_path: Path) -> None:
    missing_folder = run("list", database_url=f"sqlite://{tmp_path / 'no-such-folder' / 'm.db'}", cwd=tmp_path)
    unreachable = run("list", database_url="postgres://postgres@127.0.0.1:1/milestones", cwd=tmp_path)

    assert assert_refused_quietly(missing_folder, 2) == [
        f"error: cannot open the database: the folder {tmp_path / 'no-such-folder'} does not exist; check DATABASE_URL"
    ]
    [line] = assert_refused_quietly(unreachable, 1)
    assert line.startswith("error: cannot reach the database (") and line.endswith("); check DATABASE_URL")


def test_a_postgresql_role_or_database_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        pytest.skip("needs a PostgreSQL server (TEST_DATABASE_URL)")
    url = urlsplit(server.replace("postgresql://", "postgres://", 1))
    no_role = urlunsplit(url._replace(netloc=f"nosuchrole@{url.hostname}:{url.port or 5432}"))
    no_database = urlunsplit(url._replace(path="/no_such_database"))

    assert assert_refused_quietly(run("list", database_url=no_role, cwd=tmp_path), 2) == [
        'error: the database refused the connection: role "nosuchrole" does not exist; check DATABASE_URL'
    ]
    assert assert_refused_quietly(run("list", database_url=no_database, cwd=tmp_path), 2) == [
        'error: the database refused the connection: database "no_such_database" does not exist; check DATABASE_URL'
    ]


def test_an_unexpected_failure_is_one_line_not_a_traceback(
    demo_database: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url, cwd = demo_database

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the summaries are broken")

    monkeypatch.setattr(services, "list_milestones", broken)
    result = run("list", database_url=database_url, cwd=cwd)

    assert assert_refused_quietly(result, 1) == [
        "error: unexpected RuntimeError: the summaries are broken (LOG_LEVEL=DEBUG shows where)"
    ]


def test_bad_arguments_are_usage_errors_before_anything_is_read_or_stored(
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
    dry_run = ("ingest", SWIFT_REPORT, "--plan", "unit", "--dry-run")

    bad_repo = run(*dry_run, "--repo", "acme", database_url=url, cwd=tmp_path)
    empty_name = run("milestone", "add", " ", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    empty_plan = run(*dry_run[:-3], "--plan", "", "--repo", "acme/api", database_url=url, cwd=tmp_path)
    zero_attempt = run(*dry_run, "--repo", "acme/api", "--attempt", "0", database_url=url, cwd=tmp_path)

    assert assert_refused_quietly(bad_repo, 2)[-1] == (
        "milestones ingest: error: argument --repo: 'acme' is not a repository: "
        "write OWNER/NAME or its GitHub URL (https://github.com/OWNER/NAME)"
    )
    assert (
        assert_refused_quietly(empty_name, 2)[-1] == "milestones milestone add: error: argument name: must not be empty"
    )
    assert assert_refused_quietly(empty_plan, 2)[-1] == "milestones ingest: error: argument --plan: must not be empty"
    assert (
        assert_refused_quietly(zero_attempt, 2)[-1]
        == "milestones ingest: error: argument --attempt: '0' is not a whole number of 1 or more"
    )
    assert json_of("list", database_url=url, cwd=tmp_path) == []


def test_a_policy_file_that_is_not_utf8_is_refused_with_its_name_and_line(
    migrated_database_url: str, tmp_path: Path
) -> None:
    url = migrated_database_url
    (tmp_path / "latin1.yml").write_bytes(VALID_POLICY.encode() + "# caf\u00e9\n".encode("latin-1"))

    added = run(
        "milestone", "add", "v3.0", "--repo", "acme/api", "--policy", "latin1.yml", database_url=url, cwd=tmp_path
    )

    assert assert_refused_quietly(added, 1) == ["latin1.yml:8: the file is not UTF-8 text"]
    assert json_of("list", database_url=url, cwd=tmp_path) == []


# ingest of a directory, repository names ------------------------------------------


def test_ingest_of_a_directory_reads_the_xml_files_in_it(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
    reports = tmp_path / "reports"
    (reports / "older").mkdir(parents=True)
    shutil.copy(UNITTEST_REPORT, reports / "TEST-unittest.xml")
    shutil.copy(PYTEST_REPORT, reports / "TEST-pytest.XML")
    shutil.copy(JEST_REPORT, reports / "older" / "TEST-jest.xml")  # in a directory below: not read
    (reports / "summary.txt").write_text("not a report", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    plan = ("--repo", "acme/api", "--plan", "unit")

    # A file named itself and through its directory is read once.
    recorded = json_of("ingest", "reports", reports / "TEST-unittest.xml", *plan, database_url=url, cwd=tmp_path)
    empty = run("ingest", "empty", *plan, database_url=url, cwd=tmp_path)

    assert (recorded["files"], recorded["tests"], recorded["created"]) == (2, 18, True)
    assert assert_refused_quietly(empty, 2) == ["error: empty: no XML reports (*.xml) in this directory"]


def test_repository_names_ignore_case_as_on_github(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
    succeeds("milestone", "add", "v1", "--repo", "acme/shop", database_url=url, cwd=tmp_path)

    recorded = json_of("ingest", SWIFT_REPORT, "--repo", "ACME/Shop", "--plan", "unit", database_url=url, cwd=tmp_path)
    updated = succeeds(
        "milestone", "add", "v1", "--repo", "Acme/SHOP", "--due", "2030-01-31", database_url=url, cwd=tmp_path
    )
    status = json_of("status", "v1", "--repo", "ACME/SHOP", database_url=url, cwd=tmp_path)
    listed = json_of("list", "--repo", "Acme/Shop", database_url=url, cwd=tmp_path)

    assert recorded["milestones"] == {"v1": "blocked"}
    assert updated == "milestone v1 in acme/shop: active, blocked\n"
    assert (status["target_date"], status["metrics"]["tests"]["total"]) == ("2030-01-31", 3)
    assert [(item["repo"], item["name"]) for item in listed] == [("acme/shop", "v1")]
    assert [item["repo"] for item in json_of("list", database_url=url, cwd=tmp_path)] == ["acme/shop"]


# as a process: start-up -----------------------------------------------------------

# The libraries only some commands use: the web server, Slack, GitHub, the scheduler, charts.
HEAVY = ["matplotlib", "numpy", "slack_sdk", "slack_bolt", "github", "gidgethub", "apscheduler", "uvicorn", "starlette"]
HEAVY += ["httpx", "aiohttp", "bot.clock", "bot.app", "integrations.commands", "integrations.web"]

# `milestones ARGS` as the program runs it, then the names of the modules it imported.
IMPORTS_OF = """import json, sys
from core.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def imports_of(*args: str, database_url: str, cwd: Path) -> tuple[list[str], str]:
    env = {key: value for key, value in os.environ.items() if key != "LOG_LEVEL"}
    env["DATABASE_URL"] = database_url
    listing = cwd / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF, listing, *args], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert result.stderr == ""
    return json.loads(listing.read_text()), result.stdout


def loaded(modules: list[str], names: list[str]) -> list[str]:
    return [module for module in modules if any(module == name or module.startswith(name + ".") for name in names)]


def test_as_a_process_help_and_status_import_only_what_they_use(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database

    help_modules, help_text = imports_of("--help", database_url=database_url, cwd=cwd)
    status_modules, status_text = imports_of("status", "v2.0", database_url=database_url, cwd=cwd)

    # The commands of other packages are listed; none of their implementation, nor the ORM, is loaded.
    assert {"serve", "sync", "deliveries", "clock"} <= set(re.findall(r"^    (\w+)", help_text, re.MULTILINE))
    assert loaded(help_modules, [*HEAVY, "tortoise", "core.models", "pydantic_settings"]) == []
    assert re.match(r"v2\.0: blocked · active · [█░]{10} \d+% · target ", status_text), status_text
    assert "core.models" in status_modules
    assert loaded(status_modules, HEAVY) == []


def test_as_a_process_migrate_demo_and_status(scratch_database_url: str, tmp_path: Path) -> None:
    migrate = run_process("migrate", database_url=scratch_database_url, cwd=tmp_path)
    demo = run_process("demo", database_url=scratch_database_url, cwd=tmp_path)
    status = run_process("status", "v2.0", database_url=scratch_database_url, cwd=tmp_path)

    assert (migrate.returncode, migrate.stdout, migrate.stderr) == (0, "database is up to date\n", "")
    assert (demo.returncode, demo.stderr) == (0, "")
    assert (status.returncode, status.stderr) == (0, "")
    assert status.stdout.splitlines()[2] == (
        "  ✘ Required tests pass  1 of 16 required tests failing; pass rate 92.3% below 95%"
    )
