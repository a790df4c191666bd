"""Whole-process figures, each next to its reference measured in the same run.

A person or a CI job meets `milestones ingest` as a fresh process. Each figure here is
the median wall time of fresh processes, interleaved round by round with its reference
so that a busy machine slows both alike; the ratio of the medians is the figure to read.

1. **Ingest** of a generated 50,000-case report (500 suites x 100 cases, ~3% failures,
   5.9 MB) with `milestones ingest`, next to the stdlib floor: a `python` process that
   reads the same file with `xml.etree.ElementTree.iterparse` and inserts the same rows
   (class name, name, status, duration, message) into SQLite with `executemany`.
   Beside it, the same floor after importing the two libraries every command that stores
   must load, Tortoise (its SQLite client) and pydantic-settings: the least such a command
   can take, before doing any of its own work.
   Targets: SQLite within 2.0x the floor, 2.5x with a milestone tracking the plan, peak
   RSS under 100 MB; PostgreSQL (`--postgres`) within 1.5x of SQLite. "First" ingests
   into a database where the plan has no launch yet (every test case is created; a copy
   of a migrated database, made before the clock starts); "next" into one holding earlier
   launches of the same tests.
2. **Late launches**: after 60 launches of 10,000 tests with a milestone tracking the
   plan, a launch that finished before all of them, next to one that finished after them
   (`services.record_launch` in one process per engine, alternating). Target: within 1.5x.

    python -m bench.process                                                  # SQLite; about 2 minutes
    python -m bench.process --postgres postgres://postgres@127.0.0.1:5432/postgres
    python -m bench.process --rounds 9 --skip-late
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import POLICY  # noqa: E402  (the milestone the engine benchmark measures)
from bench.reports import write_report  # noqa: E402

MILESTONES = str(Path(sys.executable).parent / "milestones")
FLOOR = """
import sqlite3, sys
import xml.etree.ElementTree as ET
database = sqlite3.connect(sys.argv[2])
database.execute("CREATE TABLE IF NOT EXISTS result (classname TEXT, name TEXT, status TEXT, duration REAL, message TEXT)")
rows = []
for _, element in ET.iterparse(sys.argv[1]):
    if element.tag == "testcase":
        status, message = "passed", None
        for child in element:
            if child.tag in ("failure", "error"):
                status, message = child.tag, child.get("message")
            elif child.tag == "skipped":
                status = "skipped"
        rows.append((element.get("classname"), element.get("name"), status, float(element.get("time") or 0), message))
        element.clear()
with database:
    database.executemany("INSERT INTO result VALUES (?, ?, ?, ?, ?)", rows)
"""
# The libraries are imported first, as a command that stores through them must.
FLOOR_WITH_IMPORTS = "import pydantic_settings, tortoise.backends.sqlite.client\n" + FLOOR
TARGETS = {"sqlite": 2.0, "sqlite, milestone": 2.5}
PEAK_TARGET_MB = 100
LATE_TARGET = 1.5


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one fresh process, which must succeed."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        error = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(command)}: failed ({status}): {error}")
    return elapsed, usage.ru_maxrss / 1024


def environment(database_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("LOG_LEVEL", "PYTHONPROFILEIMPORTTIME")}
    env["DATABASE_URL"] = database_url
    return env


class Postgres:
    """Throw-away databases on a server, dropped at the end."""

    def __init__(self, server: str):
        self.server = server
        self.names: list[str] = []

    def create(self, template: str | None = None) -> str:
        """A new database, empty or a copy of `template` (the URL of one made here)."""
        import asyncpg

        name = f"milestones_bench_{uuid.uuid4().hex[:8]}"
        base, _, maintenance = self.server.rpartition("/")
        copied = f' TEMPLATE "{template.rpartition("/")[2]}"' if template else ""

        async def create() -> None:
            admin = await asyncpg.connect(f"{base.replace('postgres://', 'postgresql://', 1)}/{maintenance}")
            await admin.execute(f'CREATE DATABASE "{name}"{copied}')
            await admin.close()

        asyncio.run(create())
        self.names.append(name)
        return f"{base}/{name}"

    def drop(self) -> None:
        import asyncpg

        base, _, maintenance = self.server.rpartition("/")

        async def drop() -> None:
            admin = await asyncpg.connect(f"{base.replace('postgres://', 'postgresql://', 1)}/{maintenance}")
            for name in self.names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()

        asyncio.run(drop())


def prepare(database_url: str, folder: Path, with_milestone: bool) -> None:
    env = environment(database_url)
    subprocess.run([MILESTONES, "migrate"], env=env, stdout=subprocess.DEVNULL, check=True)
    if with_milestone:
        policy = folder / "milestones.yml"
        policy.write_text(POLICY)
        command = [MILESTONES, "milestone", "add", "v2.0", "--repo", "acme/bench", "--policy", str(policy)]
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)


def ingest_command(report: Path, source: str) -> list[str]:
    return [MILESTONES, "ingest", str(report), "--repo", "acme/bench", "--plan", "smoke"] + [
        "--source",
        source,
        "--branch",
        "main",
        "--commit",
        uuid.uuid4().hex,
    ]


def bench_ingest(folder: Path, rounds: int, postgres: Postgres | None) -> None:
    reports = [write_report(folder / f"r50k-{seed}.xml", seed=seed) for seed in range(1, 4)]
    engines = {"sqlite": lambda name: f"sqlite://{folder / name}.db"}
    if postgres is not None:
        engines["postgres"] = lambda name: postgres.create()
    variants: dict[str, Callable[[int, Path], tuple[list[str], dict[str, str]]]] = {}
    variants["floor"] = lambda number, report: (
        [sys.executable, "-c", FLOOR, str(report), str(folder / "floor.db")],
        dict(os.environ),
    )
    variants["floor with imports"] = lambda number, report: (
        [sys.executable, "-c", FLOOR_WITH_IMPORTS, str(report), str(folder / "floor-with-imports.db")],
        dict(os.environ),
    )
    for engine, make_url in engines.items():
        for with_milestone in (False, True):
            label = f"{engine}{', milestone' if with_milestone else ''}"
            url = make_url(label.replace(", ", "-"))
            prepare(url, folder, with_milestone)
            run(ingest_command(reports[0], "warm-up"), environment(url))
            variants[f"{label}: next"] = lambda number, report, url=url: (
                ingest_command(report, f"run-{number}"),
                environment(url),
            )
        # Templates for the first launch (migrated, and with the milestone), copied before each run.
        for with_milestone in (False, True):
            label = f"{engine}{', milestone' if with_milestone else ''}"
            if engine == "sqlite":
                template = folder / f"template-{with_milestone}.db"
                prepare(f"sqlite://{template}", folder, with_milestone)
                fresh = folder / f"fresh-{with_milestone}.db"

                def first(number: int, report: Path, template: Path = template, fresh: Path = fresh) -> tuple:
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{fresh}{suffix}").unlink(missing_ok=True)
                    shutil.copy(template, fresh)
                    return ingest_command(report, f"first-{number}"), environment(f"sqlite://{fresh}")

            else:
                assert postgres is not None
                server_template = postgres.create()
                prepare(server_template, folder, with_milestone)

                def first(number: int, report: Path, template: str = server_template) -> tuple:
                    return ingest_command(report, f"first-{number}"), environment(postgres.create(template))

            variants[f"{label}: first"] = first

    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, list[float]] = {name: [] for name in variants}
    for number in range(rounds):
        report = reports[number % len(reports)]
        for name, make in variants.items():
            command, env = make(number, report)
            seconds, peak = run(command, env)
            times[name].append(seconds)
            peaks[name].append(peak)

    load = os.getloadavg()
    print(
        f"ingest of 50,000 cases, whole process: {rounds} interleaved rounds, medians; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    floor = statistics.median(times["floor"])
    print(
        f"  {'stdlib floor (iterparse + sqlite3 executemany)':52} {floor * 1000:7.0f} ms  peak {max(peaks['floor']):4.0f} MB"
    )
    with_imports = statistics.median(times["floor with imports"])
    print(
        f"  {'the floor after importing Tortoise, pydantic-settings':52} {with_imports * 1000:7.0f} ms  "
        f"peak {max(peaks['floor with imports']):4.0f} MB  {with_imports / floor:4.2f}x the floor: "
        "the least a command storing through them can take"
    )
    sqlite_figures: dict[str, float] = {}
    for name in variants:
        if name.startswith("floor"):
            continue
        median = statistics.median(times[name])
        engine_label, _, launch = name.partition(": ")
        line = f"  {'milestones ingest, ' + name:52} {median * 1000:7.0f} ms  peak {max(peaks[name]):4.0f} MB"
        line += f"  {median / floor:4.2f}x the floor"
        target = TARGETS.get(engine_label)
        if target is not None:
            line += f" (target {target}x: {'met' if median / floor <= target else 'missed'})"
            sqlite_figures[f"{engine_label.replace('sqlite', 'postgres')}: {launch}"] = median
        elif name in sqlite_figures:
            reference = sqlite_figures[name]
            ratio = median / reference
            line += f"; {ratio:4.2f}x SQLite (target 1.5x: {'met' if ratio <= 1.5 else 'missed'})"
        peak_note = "met" if max(peaks[name]) < PEAK_TARGET_MB else "missed"
        print(line + f"; peak target {PEAK_TARGET_MB} MB: {peak_note}")


LATE = """
import asyncio, statistics, sys, time
from datetime import UTC, datetime, timedelta
sys.path.insert(0, {root!r})
from bench.process import late_launches
asyncio.run(late_launches({url!r}, {folder!r}, {rounds}))
"""


async def late_launches(url: str, folder: str, rounds: int) -> None:
    """60 launches of 10,000 tests, then late and in-order launches alternately; prints the medians."""
    from core import services
    from core.db import close_database, migrate, open_database
    from core.ingest import LaunchSource
    from core.junit import parse_reports

    await migrate(url)
    await open_database(url)
    try:
        await services.apply_policy_file("acme/bench", POLICY)
        await services.save_milestone("acme/bench", "v2.0")
        reports = [write_report(Path(folder) / f"late-{seed}.xml", suites=100, seed=seed) for seed in range(4)]
        parsed = [parse_reports([report]) for report in reports]
        # Out of the cyclic collector's sight, as `milestones ingest` puts its report: kept for
        # every launch here, these 40,000 results made each full collection cost tens of ms,
        # and where those fell (in-order or late launches) moved with any change of allocations.
        gc.freeze()
        start = datetime(2026, 11, 1, tzinfo=UTC)

        async def launch(source: str, at: datetime, number: int) -> float:
            began = time.perf_counter()
            await services.record_launch(
                parsed[number % len(parsed)],
                LaunchSource("acme/bench", "smoke", source, commit_sha=f"{number:040x}", branch="main", finished_at=at),
            )
            return time.perf_counter() - began

        for number in range(60):
            await launch(f"history-{number}", start + timedelta(hours=number), number)
        in_order, late = [], []
        for number in range(rounds):
            in_order.append(await launch(f"next-{number}", start + timedelta(hours=100 + number), number))
            late.append(await launch(f"late-{number}", start - timedelta(hours=1 + number), number + 1))
        dialect = url.split(":", 1)[0]
        ratio = statistics.median(late) / statistics.median(in_order)
        print(
            f"  {dialect}: in-order launch {statistics.median(in_order) * 1000:.0f} ms, "
            f"late launch {statistics.median(late) * 1000:.0f} ms: {ratio:.2f}x "
            f"(target {LATE_TARGET}x: {'met' if ratio <= LATE_TARGET else 'missed'})"
        )
    finally:
        await close_database()


def bench_late(folder: Path, rounds: int, postgres: Postgres | None) -> None:
    print(f"late launches after 60 launches of 10,000 tests, a milestone tracking the plan: medians of {rounds}")
    urls = [f"sqlite://{folder / 'late.db'}"] + ([postgres.create()] if postgres else [])
    for url in urls:
        code = LATE.format(root=str(ROOT), url=url, folder=str(folder), rounds=rounds)
        subprocess.run([sys.executable, "-c", code], env=environment(url), check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--postgres", help="a PostgreSQL server URL, for the PostgreSQL figures")
    parser.add_argument("--skip-late", action="store_true", help="only the ingest figures")
    parser.add_argument("--skip-ingest", action="store_true", help="only the late launch figures")
    args = parser.parse_args()
    postgres = Postgres(args.postgres) if args.postgres else None
    try:
        with tempfile.TemporaryDirectory() as folder:
            if not args.skip_ingest:
                bench_ingest(Path(folder), args.rounds, postgres)
            if not args.skip_late:
                bench_late(Path(folder), args.rounds, postgres)
    finally:
        if postgres is not None:
            postgres.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
