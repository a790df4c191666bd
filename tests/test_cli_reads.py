"""The command line as people use it: names typed loosely, tables, colour only on a terminal,
the milestone verbs, the reads Slack also answers, export and shell completion."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree

import pytest

from core.page_links import PageLinks
from tests.cli import MILESTONES, assert_refused_quietly, json_of, run, succeeds
from tests.test_upload_cli import read_all

# names and repositories ----------------------------------------------------------------


@pytest.mark.parametrize("typed", ["v2.0", "2.0", "V2.0", "v2", "V2"])
def test_names_are_found_the_ways_people_type_them(demo_database: tuple[str, Path], typed: str) -> None:
    database_url, cwd = demo_database
    assert succeeds("status", typed, database_url=database_url, cwd=cwd).startswith("v2.0: blocked")


def test_an_unknown_name_suggests_the_close_ones(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    close = run("status", "v2.1", database_url=database_url, cwd=cwd)
    far = run("defects", "zebra", database_url=database_url, cwd=cwd)
    assert assert_refused_quietly(close, 1) == ["error: No milestone v2.1; did you mean v2.0?"]
    assert assert_refused_quietly(far, 1) == ["error: No milestone zebra"]


@pytest.mark.parametrize(
    "repository",
    [
        "acme/shop",
        "ACME/Shop",
        "https://github.com/Acme/shop",
        "https://github.com/acme/shop.git",
        "git@github.com:acme/shop.git",
    ],
)
def test_repo_takes_any_case_and_github_urls(demo_database: tuple[str, Path], repository: str) -> None:
    database_url, cwd = demo_database
    found = json_of("status", "v2", "--repo", repository, database_url=database_url, cwd=cwd)
    assert (found["repo"], found["milestone"]) == ("acme/shop", "v2.0")


def test_repo_that_is_not_a_repository_says_how_to_write_one(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    for bad in ("shop", "https://gitlab.com/acme/shop", "acme/shop/extra"):
        result = run("list", "--repo", bad, database_url=database_url, cwd=cwd)
        assert assert_refused_quietly(result, 2)[-1] == (
            f"milestones list: error: argument --repo: {bad!r} is not a repository: "
            "write OWNER/NAME or its GitHub URL (https://github.com/OWNER/NAME)"
        )
    elsewhere = run("status", "v2.0", "--repo", "acme/web", database_url=database_url, cwd=cwd)
    assert assert_refused_quietly(elsewhere, 1) == ["error: No milestone v2.0 in acme/web"]


def test_a_name_in_several_repositories_names_them(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
    for repository in ("acme/shop", "acme/api"):
        succeeds("milestone", "add", "v3.0", "--repo", repository, database_url=url, cwd=tmp_path)
    ambiguous = run("status", "v3", database_url=url, cwd=tmp_path)
    assert assert_refused_quietly(ambiguous, 1) == [
        "error: v3 is a milestone in several repositories: acme/api, acme/shop; name one with --repo"
    ]
    assert json_of("status", "v3", "--repo", "acme/api", database_url=url, cwd=tmp_path)["repo"] == "acme/api"


# version, tables, colour ---------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = run("--version", database_url="sqlite://:memory:", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "milestones 0.1.0\n")


def test_list_is_an_aligned_table_without_colour_in_a_pipe(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    lines = succeeds("list", database_url=database_url, cwd=cwd).splitlines()
    rows = [re.split(r"\s{2,}", line) for line in lines]
    assert rows[0] == ["REPOSITORY", "MILESTONE", "LIFECYCLE", "STATUS", "COMPLETION", "DUE", "PASS RATE", "BLOCKING"]
    assert [row[:4] + row[6:] for row in rows[1:]] == [
        ["acme/shop", "v2.0", "active", "blocked", "92.3%", "2"],
        ["acme/shop", "Sprint 24", "active", "at risk", "92.9%", "0"],
    ]
    # Aligned: each column starts where its header does; numbers end where theirs does.
    assert {line.index("2026") for line in lines[1:]} == {lines[0].index("DUE")}
    assert {len(line) for line in lines} == {len(lines[0])}
    assert "\x1b[" not in "".join(lines)
    same = succeeds("milestone", "list", database_url=database_url, cwd=cwd).splitlines()
    assert same == lines


def on_terminal(*args: str | Path, database_url: str, cwd: Path, stdout_piped: bool = False, **env: str) -> bytes:
    """`milestones ARGS` with standard error (and output, unless `stdout_piped`) on a
    pseudo-terminal: what a person sees."""
    leader, follower = pty.openpty()
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "LOG_LEVEL")}
    process = subprocess.Popen(
        [str(MILESTONES), *map(str, args)],
        env={**environment, "DATABASE_URL": database_url, "TERM": "xterm-256color", **env},
        cwd=cwd,
        stdout=subprocess.DEVNULL if stdout_piped else follower,
        stderr=follower,
    )
    os.close(follower)
    output = read_all(leader)
    os.close(leader)
    assert process.wait(timeout=120) == 0, output
    return output


def test_a_long_ingest_shows_progress_on_a_terminal_only(migrated_database_url: str, tmp_path: Path) -> None:
    from bench.reports import write_report

    report = write_report(tmp_path / "big.xml", suites=100, cases_per_suite=100)
    assert report.stat().st_size > 1024 * 1024
    ingest = ("ingest", report, "--repo", "acme/shop", "--plan", "nightly")
    on_screen = on_terminal(*ingest, database_url=migrated_database_url, cwd=tmp_path, stdout_piped=True)
    piped = run(*ingest, "--attempt", "2", database_url=migrated_database_url, cwd=tmp_path)

    assert b"reading reports" in on_screen and b"recording 10,000 tests" in on_screen
    assert b"\x1b[" in on_screen
    assert (piped.returncode, piped.stderr) == (0, "")
    assert piped.stdout.startswith("10000 tests in 1 file: ")


def test_colour_on_a_terminal_unless_no_color_or_the_option(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    coloured = on_terminal("list", database_url=database_url, cwd=cwd)
    with_variable = on_terminal("list", database_url=database_url, cwd=cwd, NO_COLOR="1")
    with_option = on_terminal("list", "--no-color", database_url=database_url, cwd=cwd)
    status = on_terminal("status", "v2.0", database_url=database_url, cwd=cwd)

    assert b"\x1b[1;31mblocked" in coloured and b"\x1b[33mat risk" in coloured
    assert b"\x1b[" not in with_variable and b"\x1b[" not in with_option
    assert b"blocked" in with_variable and with_variable == with_option
    assert "\x1b[31m✘".encode() in status


def test_rich_is_loaded_only_to_draw_tables_or_colour(demo_database: tuple[str, Path]) -> None:
    from tests.test_cli import imports_of, loaded

    database_url, cwd = demo_database
    help_modules, _ = imports_of("--help", database_url=database_url, cwd=cwd)
    piped_status, _ = imports_of("status", "v2.0", database_url=database_url, cwd=cwd)
    exported, _ = imports_of("export", "v2.0", "--format", "csv", database_url=database_url, cwd=cwd)
    list_modules, _ = imports_of("list", database_url=database_url, cwd=cwd)
    assert loaded(help_modules, ["rich"]) == loaded(piped_status, ["rich"]) == loaded(exported, ["rich"]) == []
    assert "rich.table" in list_modules


# the reads Slack answers -----------------------------------------------------------------


def test_tests_defects_and_trend_as_text(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    failing = succeeds("tests", "v2", database_url=database_url, cwd=cwd).splitlines()
    untested = succeeds("tests", "v2", "untested", database_url=database_url, cwd=cwd).splitlines()
    flaky = succeeds("tests", "v2", "FLAKY", database_url=database_url, cwd=cwd).splitlines()
    defects = succeeds("defects", "v2", database_url=database_url, cwd=cwd).splitlines()
    high = succeeds("defects", "v2", "high", database_url=database_url, cwd=cwd).splitlines()
    trend = succeeds("trend", "v2", database_url=database_url, cwd=cwd).splitlines()

    assert failing[0] == "v2.0 · 2 failing tests, 1 of them required"
    assert failing[1].split() == ["TEST", "REQUIRED", "STATUS", "SINCE", "MESSAGE"]
    assert failing[2].startswith("com.acme.shop.checkout.PaymentTest.testRefund      required  failed  ")
    assert failing[2].endswith("expected refund of 19.99 but was 39.98")
    assert untested[0] == "v2.0 · 1 test not run yet"
    assert untested[2].split() == [
        "com.acme.shop.checkout.InvoiceTest",
        "1",
        "test",
        "com.acme.shop.checkout.InvoiceTest.testVatNumber",
    ]
    assert flaky[0] == "v2.0 · 1 flaky test"
    assert flaky[2].split() == ["com.acme.shop.auth.LoginTest.testSso", "required", "PPP"]
    assert defects[0] == "v2.0 · 5 defects not yet verified, 2 blocking"
    assert defects[2].split() == ["101", "critical", "open", "blocking", "Refund", "charges", "the", "card", "twice"]
    assert high[0] == "v2.0 · 1 high defect not yet verified, 2 blocking" and len(high) == 3
    assert trend[0] == "v2.0 (acme/shop) trend: pass rate from 92.3% to 92.3%, 0 regressions"
    assert trend[1].startswith("pass rate  ") and trend[2].startswith("blocking   ")
    assert trend[3].split() == ["DAY", "STATUS", "PASS", "RATE", "BLOCKING", "REQUIRED", "FAILING"]
    assert trend[-1].split()[1:] == ["blocked", "92.3%", "2", "1"]


def test_every_read_has_json(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    tests = json_of("tests", "v2", database_url=database_url, cwd=cwd)
    untested = json_of("tests", "v2", "untested", database_url=database_url, cwd=cwd)
    defects = json_of("defects", "v2", "critical", database_url=database_url, cwd=cwd)
    trend = json_of("trend", "v2", database_url=database_url, cwd=cwd)
    shown = json_of("milestone", "show", "v2", database_url=database_url, cwd=cwd)

    assert (tests["repo"], tests["milestone"], tests["kind"]) == ("acme/shop", "v2.0", "failing")
    assert [test["name"] for test in tests["failing"]] == [
        "com.acme.shop.checkout.PaymentTest.testRefund",
        "com.acme.shop.search.SearchTest.testTypoTolerance",
    ]
    assert tests["failing"][0]["required"] is True and tests["failing"][0]["status"] == "failed"
    assert untested["untested"] == [
        {"suite": "com.acme.shop.checkout.InvoiceTest", "tests": ["com.acme.shop.checkout.InvoiceTest.testVatNumber"]}
    ]
    assert [(defect["number"], defect["blocking"]) for defect in defects["defects"]] == [(101, True)]
    assert trend["days"][-1]["status"] == "blocked" and trend["days"][-1]["open_blocking"] == 2
    assert shown["name"] == "v2.0" and shown["plans"] == ["regression", "smoke"]
    assert shown["record"]["signoffs"] == 1 and shown["github_number"] == 7


def test_status_shows_the_signed_page_url_when_public_url_is_set(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    env = {"PUBLIC_URL": "https://ms.example.com", "GITHUB_WEBHOOK_SECRET": "s3cret"}
    expected = PageLinks("https://ms.example.com", "s3cret").milestone_url("acme/shop", "v2.0")

    text = succeeds("status", "v2", database_url=database_url, cwd=cwd, **env)
    data = json_of("status", "v2", database_url=database_url, cwd=cwd, **env)
    without = json_of("status", "v2", database_url=database_url, cwd=cwd)

    assert expected and expected.startswith("https://ms.example.com/milestones/acme/shop/v2.0?key=")
    assert f"\nMilestone page: {expected}\n" in text
    assert data["page_url"] == expected and without["page_url"] is None


# the milestone verbs -------------------------------------------------------------------------


def test_close_reopen_rename_and_delete(migrated_database_url: str, tmp_path: Path) -> None:
    url = migrated_database_url
    succeeds("milestone", "add", "Sprint 24", "--repo", "acme/shop", database_url=url, cwd=tmp_path)

    closed = succeeds("milestone", "close", "sprint 24", database_url=url, cwd=tmp_path)
    listed_open = succeeds("list", database_url=url, cwd=tmp_path)
    listed_all = json_of("list", "--all", database_url=url, cwd=tmp_path)
    reopened = succeeds("milestone", "reopen", "Sprint 24", database_url=url, cwd=tmp_path)
    renamed = succeeds("milestone", "rename", "sprint 24", "Sprint 25", database_url=url, cwd=tmp_path)
    taken = run("milestone", "rename", "sprint 25", "Sprint 25", database_url=url, cwd=tmp_path)
    succeeds("milestone", "add", "v1", "--repo", "acme/shop", database_url=url, cwd=tmp_path)
    clash = run("milestone", "rename", "v1", "Sprint 25", database_url=url, cwd=tmp_path)

    assert closed == "acme/shop Sprint 24: closed; no data\n"
    assert listed_open.startswith("no milestones yet")
    assert [(item["name"], item["state"]) for item in listed_all] == [("Sprint 24", "closed")]
    assert reopened == "acme/shop Sprint 24: open again; no data\n"
    assert renamed == "acme/shop Sprint 24: renamed to Sprint 25; no data\n"
    assert taken.returncode == 0
    assert assert_refused_quietly(clash, 1) == ["error: acme/shop already has a milestone Sprint 25"]
    assert [item["name"] for item in json_of("list", database_url=url, cwd=tmp_path)] == ["Sprint 25", "v1"]

    deleted = succeeds("milestone", "delete", "v1", database_url=url, cwd=tmp_path)
    assert deleted.startswith("acme/shop v1: deleted, with ")
    assert [item["name"] for item in json_of("list", database_url=url, cwd=tmp_path)] == ["Sprint 25"]


def test_delete_refuses_history_unless_forced_and_says_what_would_go(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database
    refused = run("milestone", "delete", "sprint 24", database_url=database_url, cwd=cwd)
    [line] = assert_refused_quietly(refused, 1)
    assert line.startswith("error: Sprint 24 has history (15 test results, ")
    assert line.endswith(
        "the link to 2 defects); `--force` deletes it with all of that (its GitHub milestone, defects and pull requests stay)"
    )
    assert "Sprint 24" in succeeds("list", database_url=database_url, cwd=cwd)


async def test_close_and_rename_of_a_github_milestone_are_owed_to_github(
    migrated_database_url: str, tmp_path: Path
) -> None:
    from core import outbox, services
    from core.db import database
    from core.models import Outbox

    url = migrated_database_url
    async with database(url):
        await services.save_milestone("acme/shop", "v4.0", github_number=12)
        await services.save_milestone("acme/shop", "local", github_number=None)
    output = succeeds("milestone", "rename", "v4", "v4.0.0", database_url=url, cwd=tmp_path)
    succeeds("milestone", "close", "local", database_url=url, cwd=tmp_path)
    async with database(url):
        owed = await Outbox.filter(topic=outbox.GITHUB_MILESTONE_EDIT).values_list("subject", flat=True)
        renamed = await services.milestone_by_id(owed[0])
    assert output == "acme/shop v4.0: renamed to v4.0.0 (its GitHub milestone follows); no data\n"
    assert len(owed) == 1 and renamed is not None and (renamed.name, renamed.github_number) == ("v4.0.0", 12)


# export ------------------------------------------------------------------------------------


def test_export_as_csv_json_and_junit(demo_database: tuple[str, Path], tmp_path: Path) -> None:
    database_url, cwd = demo_database
    rows = list(
        csv.DictReader(io.StringIO(succeeds("export", "v2", "--format", "csv", database_url=database_url, cwd=cwd)))
    )
    data = json.loads(succeeds("export", "v2", "--format", "json", database_url=database_url, cwd=cwd))
    written = tmp_path / "v2.xml"
    note = run("export", "v2", "--format", "junit", "-o", written, database_url=database_url, cwd=cwd)

    assert list(rows[0]) == ["id", "plan", "state", "since", "message", "linked_defect"]
    refund = next(row for row in rows if row["id"] == "com.acme.shop.checkout.PaymentTest.testRefund")
    assert (refund["state"], refund["message"].splitlines()[0]) == ("failed", "expected refund of 19.99 but was 39.98")
    assert refund["since"].startswith("20") and refund["linked_defect"] == ""
    assert [test["id"] for test in data["tests"]] == [row["id"] for row in rows]
    assert (data["repo"], data["milestone"]) == ("acme/shop", "v2.0")
    assert (note.returncode, note.stdout) == (
        0,
        "",
    ) and note.stderr == f"{len(rows)} tests of v2.0 written to {written}\n"
    suites = ElementTree.parse(written).getroot()
    cases = [case for suite in suites for case in suite]
    assert len(cases) == len(rows)
    assert sum(int(suite.get("failures", "0")) for suite in suites) == sum(row["state"] == "failed" for row in rows)
    assert suites.find(".//testcase[@name='testRefund']/failure") is not None


# completion ---------------------------------------------------------------------------------


def test_completion_candidates(demo_database: tuple[str, Path]) -> None:
    database_url, cwd = demo_database

    def complete(*words: str) -> list[str]:
        return succeeds("__complete", *words, database_url=database_url, cwd=cwd).splitlines()

    assert {"status", "list", "milestone", "tests", "defects", "trend", "export", "completion"} <= set(complete(""))
    assert "__complete" not in complete("")
    assert complete("st") == ["status"]
    assert complete("milestone", "") == ["add", "list", "show", "close", "reopen", "rename", "delete", "clone"]
    assert complete("status", "") == ["Sprint 24", "v2.0"]
    assert complete("status", "v") == ["v2.0"]
    assert complete("tests", "v2.0", "") == ["failing", "untested", "flaky"]
    assert complete("status", "--") == ["--help", "--json", "--repo"]
    assert complete("status", "--repo", "") == ["acme/shop"]
    assert complete("export", "v2.0", "--format", "j") == ["json", "junit"]
    assert complete("status", "--repo", "acme/web", "") == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_completion_in_bash(demo_database: tuple[str, Path], tmp_path: Path) -> None:
    database_url, cwd = demo_database
    script = succeeds("completion", "bash", database_url=database_url, cwd=cwd)
    (tmp_path / "completion.bash").write_text(script)
    # What bash offers on Tab, as its completion machinery calls the function.
    probe = f"""
source {tmp_path / "completion.bash"}
offer() {{ COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${{#COMP_LINE}};
  _milestones_complete; printf '%s|' "${{COMPREPLY[@]}}"; echo; }}
offer milestones sta
offer milestones milestone re
offer milestones status ''
offer milestones defects v2.0 h
complete -p milestones
"""
    environment = {**os.environ, "DATABASE_URL": database_url, "PATH": f"{MILESTONES.parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "--norc", "-c", probe], env=environment, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "status|",
        "reopen|rename|",
        "Sprint 24|v2.0|",
        "high|",
        "complete -o default -o nosort -F _milestones_complete milestones",
    ]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_completion_scripts_for_zsh_and_fish_load(demo_database: tuple[str, Path], tmp_path: Path, shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed here")
    database_url, cwd = demo_database
    script = tmp_path / f"completion.{shell}"
    script.write_text(succeeds("completion", shell, database_url=database_url, cwd=cwd))
    load = f"autoload -U compinit && compinit -u && source {script}" if shell == "zsh" else f"source {script}"
    result = subprocess.run([shell, "-c", load], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")
