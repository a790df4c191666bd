"""`milestones milestone show|close|reopen|rename|delete`, `tests`, `defects`, `trend` and
`export`: a milestone named as people type it, answered as Slack answers it (core.lists)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from core import services
from core.cli import with_database
from core.clock import utcnow
from core.enums import TEST_KINDS, MilestoneState, Severity
from core.history import milestone_history
from core.lists import defects_list, tests_list, trend_title
from core.lookup import MilestoneRef, find_milestone_ref, option_read_as_milestone_word
from core.output import Printer, print_json, status_text, styled
from core.readings import MilestoneReading
from core.report import STATUS_TITLE, jsonable, quarantine_text
from core.wording import first_line, percent, plural, short_sha

SPARK = "▁▂▃▄▅▆▇█"


async def _reading(args: argparse.Namespace) -> MilestoneReading:
    ref = await find_milestone_ref(args.name, args.repo)
    return await services.read_milestone(ref.repository, ref.name)


async def _reading_with_option(args: argparse.Namespace, option: str, options: Sequence[str]) -> MilestoneReading:
    """`milestones defects high`, as Slack reads `/milestone defects high`: the option, about
    the one open milestone (or a question which)."""
    if getattr(args, option) is None:
        as_option = await option_read_as_milestone_word(args.name, options, [args.repo] if args.repo else None)
        if as_option is not None:
            sole, open_refs = as_option
            setattr(args, option, args.name.lower())
            if sole is None:
                names = ", ".join(ref.name for ref in open_refs[:20]) or "none yet"
                raise LookupError(
                    f"Which milestone? `milestones {args.command} NAME {args.name.lower()}`; open milestones: {names}"
                )
            return await services.read_milestone(sole.repository, sole.name)
    return await _reading(args)


# milestone show|close|reopen|rename|delete -----------------------------------------


@with_database
async def show(args: argparse.Namespace) -> int:
    ref = await find_milestone_ref(args.name, args.repo)
    milestone = await services.find_milestone(ref.repository, ref.name)
    record = await services.milestone_record(milestone)
    plans = sorted(plan.name for plan in await milestone.plans.all())
    summary = next(
        summary
        for summary in await services.list_milestones([ref.repository], include_all=True)
        if summary.name == ref.name
    )
    data = {
        "repo": ref.repository,
        "name": milestone.name,
        "state": milestone.state,
        "status": summary.status,
        "due": milestone.target_date,
        "description": milestone.description,
        "github_number": milestone.github_number,
        "plans": plans,
        "completed_at": milestone.completed_at,
        "created_at": milestone.created_at,
        "record": jsonable(record),
    }
    if args.json:
        print_json(data)
        return 0
    out = Printer(args)
    title = styled(f"{ref.repository} {milestone.name}: ")
    title.append_text(status_text(summary.status, summary.overdue))
    out.print(title)
    lines = [
        ("state", milestone.state.value),
        ("due", milestone.target_date.isoformat() if milestone.target_date else "no date"),
        ("GitHub", f"milestone #{milestone.github_number}" if milestone.github_number else "not linked"),
        ("plans", ", ".join(plans) or "none yet"),
        ("kept", record.described()),
    ]
    if milestone.description:
        lines.insert(2, ("description", first_line(milestone.description)))
    out.table(["", ""], [(f"  {key}", value) for key, value in lines], show_header=False)
    return 0


@with_database
async def close(args: argparse.Namespace) -> int:
    return await _edit(args, MilestoneState.CLOSED, None, "closed")


@with_database
async def reopen(args: argparse.Namespace) -> int:
    return await _edit(args, MilestoneState.OPEN, None, "open again")


@with_database
async def rename(args: argparse.Namespace) -> int:
    return await _edit(args, None, args.new_name, f"renamed to {args.new_name}")


async def _edit(args: argparse.Namespace, state: MilestoneState | None, new_name: str | None, done: str) -> int:
    ref = await find_milestone_ref(args.name, args.repo)
    milestone, change = await services.edit_milestone(ref.repository, ref.name, state=state, new_name=new_name)
    github = " (its GitHub milestone follows)" if milestone.github_number is not None else ""
    print(f"{ref.repository} {ref.name}: {done}{github}; {STATUS_TITLE[change.verdict.status]}")
    return 0


@with_database
async def delete(args: argparse.Namespace) -> int:
    ref = await find_milestone_ref(args.name, args.repo)
    record = await services.delete_milestone(ref.repository, ref.name, force=args.force)
    print(f"{ref.repository} {ref.name}: deleted, with {record.described()}")
    return 0


# tests, defects, trend ---------------------------------------------------------------


@with_database
async def tests(args: argparse.Namespace) -> int:
    reading = await _reading_with_option(args, "kind", TEST_KINDS)
    listed = tests_list(reading, args.kind)
    if args.json:
        body: list[Any]
        if listed.kind == "untested":
            body = [{"suite": area.suite, "tests": area.tests} for area in listed.untested]
        else:
            body = [
                {
                    "name": test.display_name,
                    "required": test.required,
                    "status": test.latest,
                    "recent": test.recent,
                    "failing_since": test.failing_since,
                    "message": test.message,
                }
                for test in listed.tests
            ]
        print_json({"repo": reading.repository, "milestone": reading.name, "kind": listed.kind, listed.kind: body})
        return 0
    out = Printer(args)
    out.line(listed.title, "bold")
    if listed.kind == "untested":
        rows = [
            (area.suite or "no suite", plural(len(area.tests), "test"), ", ".join(area.tests))
            for area in listed.untested
        ]
        if rows:
            out.table(["SUITE", "TESTS", "NAMES"], rows)
        return 0
    if not listed.tests:
        return 0
    if listed.kind == "quarantined":
        why = {entry.name: quarantine_text(entry) for entry in reading.verdict.triage.quarantined}
        out.table(
            ["TEST", "LATEST", "QUARANTINED"],
            [
                (test.display_name, test.latest.value if test.latest else "not run", why.get(test.display_name, ""))
                for test in listed.tests
            ],
        )
        return 0
    if listed.kind == "flaky":
        out.table(
            ["TEST", "REQUIRED", "RECENT RUNS"],
            [(test.display_name, "required" if test.required else "", test.recent or "-") for test in listed.tests],
        )
        return 0
    out.table(
        ["TEST", "REQUIRED", "STATUS", "SINCE", "MESSAGE"],
        [
            (
                test.display_name,
                "required" if test.required else "",
                styled(test.latest.value if test.latest else "not run", "red"),
                _since(test.failing_since),
                first_line(test.message or "")[:120],
            )
            for test in listed.tests
        ],
    )
    return 0


def _since(launch: Any) -> str:
    if launch is None:
        return ""
    commit = f" {short_sha(launch.commit_sha)}" if launch.commit_sha else ""
    when = f"{launch.finished_at:%Y-%m-%d %H:%M}" if launch.finished_at else ""
    return f"{when}{commit}".strip()


@with_database
async def defects(args: argparse.Namespace) -> int:
    reading = await _reading_with_option(args, "severity", [severity.value for severity in Severity])
    listed = defects_list(reading, args.severity)
    if args.json:
        body = [{**jsonable(defect), "blocking": defect.number in listed.blocking} for defect in listed.defects]
        print_json({"repo": reading.repository, "milestone": reading.name, "severity": args.severity, "defects": body})
        return 0
    out = Printer(args)
    if not listed.defects:
        out.line(listed.empty)
        return 0
    out.line(listed.title, "bold")
    out.table(
        ["#", "SEVERITY", "STATE", "BLOCKING", "TITLE"],
        [
            (
                str(defect.number),
                defect.severity.value,
                defect.state.value,
                styled("blocking", "bold red") if defect.number in listed.blocking else "",
                defect.title,
            )
            for defect in listed.defects
        ],
        right=["#"],
    )
    return 0


@with_database
async def trend(args: argparse.Namespace) -> int:
    reading = await _reading(args)
    history = await milestone_history(reading.milestone_id, utcnow().date())
    if args.json:
        print_json(
            {
                "repo": reading.repository,
                "milestone": reading.name,
                "days": history.days,
                "changes": history.changes,
                "regressions": reading.verdict.metrics.regressions,
            }
        )
        return 0
    out = Printer(args)
    out.line(trend_title(reading, history), "bold")
    if not history.days:
        out.line("no history yet: it starts with the first launch or change")
        return 0
    out.line(_chart_line("pass rate", [day.pass_rate for day in history.days], 1.0))
    out.line(_chart_line("blocking", [day.open_blocking for day in history.days], None))
    out.table(
        ["DAY", "STATUS", "PASS RATE", "BLOCKING", "REQUIRED FAILING"],
        [
            (
                f"{day.day:%Y-%m-%d}",
                status_text(day.status),
                percent(day.pass_rate),
                str(day.open_blocking),
                str(day.required_failing),
            )
            for day in history.days
        ],
        right=["PASS RATE", "BLOCKING", "REQUIRED FAILING"],
    )
    return 0


def _chart_line(label: str, values: list[Any], top: float | None) -> str:
    known = [value for value in values if value is not None]
    high = top if top is not None else max(known, default=0) or 1
    marks = "".join(
        " " if value is None else SPARK[min(len(SPARK) - 1, int(value / high * (len(SPARK) - 1)))] for value in values
    )
    return f"{label:<10} {marks}"


# export --------------------------------------------------------------------------------

EXPORT_FIELDS = ("id", "plan", "state", "since", "message", "linked_defect")


@with_database
async def export(args: argparse.Namespace) -> int:
    ref = await find_milestone_ref(args.name, args.repo)
    states = await services.test_states(ref.repository, ref.name)
    text = {"csv": _csv, "json": _json, "junit": _junit}[args.format](ref, states)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    Path(args.output).write_text(text, encoding="utf-8")
    print(f"{plural(len(states), 'test')} of {ref.name} written to {args.output}", file=sys.stderr)
    return 0


def _csv(ref: MilestoneRef, states: list[services.TestState]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_FIELDS)
    for state in states:
        row = jsonable(state)
        writer.writerow(["" if row[field] is None else row[field] for field in EXPORT_FIELDS])
    return buffer.getvalue()


def _json(ref: MilestoneRef, states: list[services.TestState]) -> str:
    data = {"repo": ref.repository, "milestone": ref.name, "tests": [jsonable(state) for state in states]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _junit(ref: MilestoneRef, states: list[services.TestState]) -> str:
    """One suite per plan; each test as its latest result left it."""
    root = ElementTree.Element("testsuites", name=f"{ref.repository} {ref.name}")
    by_plan: dict[str, list[services.TestState]] = {}
    for state in states:
        by_plan.setdefault(state.plan or "not run", []).append(state)
    for plan, members in sorted(by_plan.items()):
        failures = sum(1 for state in members if state.state == "failed")
        errors = sum(1 for state in members if state.state == "error")
        skipped = sum(1 for state in members if state.state in ("skipped", "not run"))
        suite = ElementTree.SubElement(
            root,
            "testsuite",
            name=plan,
            tests=str(len(members)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(skipped),
        )
        for state in members:
            classname, _, name = state.id.rpartition(".")
            case = ElementTree.SubElement(suite, "testcase", classname=classname, name=name or state.id)
            if state.state in ("failed", "error"):
                tag = "failure" if state.state == "failed" else "error"
                element = ElementTree.SubElement(case, tag, message=first_line(state.message or ""))
                element.text = state.message or ""
            elif state.state in ("skipped", "not run"):
                ElementTree.SubElement(case, "skipped", message=state.state)
            if state.linked_defect is not None:
                properties = ElementTree.SubElement(case, "properties")
                ElementTree.SubElement(properties, "property", name="linked_defect", value=str(state.linked_defect))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"
