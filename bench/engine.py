"""Engine benchmark: prints seconds and peak memory; asserts nothing.

    python bench/engine.py [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--quick]

1. Ingest a 50,000-case report (500 suites, ~3% failures, ~2% skipped) into a fresh
   database: the first launch of the plan and the next one, with no milestone
   tracking the plan, and with one (state update, gate evaluation, snapshot).
2. A milestone verdict with 10,000 required tests after 100 launches (1,000,000 results).
3. Peak memory (RSS) of ingesting a 100 MB report, in a child process.

Each database engine runs in a process of its own (Tortoise keeps per-model SQL
for the engine it was first opened on).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from bench.reports import write_report  # noqa: E402
from core import services  # noqa: E402
from core.db import close_database, migrate, open_database  # noqa: E402
from core.ingest import LaunchSource  # noqa: E402
from core.junit import parse_reports  # noqa: E402

POLICY = """
plans:
  smoke: {}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["com.acme.*"]
"""


class ThrowawayDatabase:
    def __init__(self, server: str | None, folder: Path):
        self.server = server
        self.folder = folder
        self.name = f"milestones_bench_{uuid.uuid4().hex[:8]}"

    async def __aenter__(self) -> str:
        if self.server is None:
            return f"sqlite://{self.folder / (self.name + '.db')}"
        base, _, maintenance = self.server.rpartition("/")
        self.admin = await asyncpg.connect(f"{base.replace('postgres://', 'postgresql://', 1)}/{maintenance}")
        await self.admin.execute(f'CREATE DATABASE "{self.name}"')
        return f"{base}/{self.name}"

    async def __aexit__(self, *exc: object) -> None:
        if self.server is not None:
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await self.admin.close()


async def open_fresh(url: str, with_milestone: bool = True) -> None:
    await migrate(url)
    await open_database(url)
    if with_milestone:
        await services.apply_policy_file("acme/bench", POLICY)
        await services.save_milestone("acme/bench", "v2.0")


async def bench_ingest(url: str, report: Path, with_milestone: bool) -> tuple[float, float, dict]:
    await open_fresh(url, with_milestone)
    try:
        timings = []
        for attempt in range(2):
            started = time.perf_counter()
            parsed = parse_reports([report])
            outcome = await services.record_launch(
                parsed,
                LaunchSource("acme/bench", "smoke", f"run-{attempt}", commit_sha=f"{attempt:040x}", branch="main"),
            )
            timings.append(time.perf_counter() - started)
        return timings[0], timings[1], outcome.counts
    finally:
        await close_database()


async def bench_verdict(url: str, folder: Path, launches: int, cases: int) -> tuple[float, float, float]:
    await open_fresh(url)
    try:
        suites = cases // 100
        reports = [write_report(folder / f"v{seed}.xml", suites=suites, seed=seed) for seed in range(4)]
        started = time.perf_counter()
        for number in range(launches):
            parsed = parse_reports([reports[number % len(reports)]])
            await services.record_launch(
                parsed,
                LaunchSource("acme/bench", "smoke", f"nightly-{number}", commit_sha=f"{number:040x}", branch="main"),
            )
        loading = time.perf_counter() - started
        timings = []
        for _ in range(30):
            started = time.perf_counter()
            verdict = await services.get_verdict("acme/bench", "v2.0")
            timings.append(time.perf_counter() - started)
        assert verdict.metrics.required_total == cases
        timings.sort()
        return loading, statistics.median(timings), timings[int(len(timings) * 0.95) - 1]
    finally:
        await close_database()


def peak_memory(report: Path, folder: Path) -> tuple[float, float]:
    """Ingest in a child process and read its peak RSS, so this process's size does not count."""
    code = f"""
import asyncio, resource, sys, time
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from core import services
from core.db import migrate, open_database, close_database
from core.ingest import LaunchSource
from core.junit import parse_reports
async def main():
    url = "sqlite://{folder / "memory.db"}"
    await migrate(url); await open_database(url)
    await services.save_milestone("acme/bench", "v2.0")
    started = time.perf_counter()
    parsed = parse_reports([{str(report)!r}])
    await services.record_launch(parsed, LaunchSource("acme/bench", "smoke", "big", branch="main"))
    print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    await close_database()
asyncio.run(main())
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    seconds, megabytes = output.split()
    return float(seconds), float(megabytes)


async def bench_engine(engine: str, server: str | None, folder: Path, quick: bool) -> None:
    report = write_report(folder / "r50k.xml", suites=500, cases_per_suite=100)
    for with_milestone in (False, True):
        async with ThrowawayDatabase(server, folder) as url:
            first, second, stored = await bench_ingest(url, report, with_milestone)
        assert stored["tests"] == 50_000
        tracked = "with a milestone tracking the plan" if with_milestone else "no milestone"
        print(f"{engine}: ingest 50,000 cases ({tracked}): first launch {first:.3f} s, next launch {second:.3f} s")
    launches, cases = (10, 1_000) if quick else (100, 10_000)
    async with ThrowawayDatabase(server, folder) as url:
        loading, median, p95 = await bench_verdict(url, folder, launches, cases)
    print(
        f"{engine}: verdict with {cases:,} required tests after {launches} launches "
        f"({launches * cases:,} results, loaded in {loading:.1f} s): "
        f"median {median * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL to benchmark too")
    parser.add_argument("--quick", action="store_true", help="10 launches of 1,000 tests instead of 100 of 10,000")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        if args.engine:
            await bench_engine(args.engine, args.postgres if args.engine == "postgres" else None, folder, args.quick)
            return
        report = write_report(folder / "r50k.xml", suites=500, cases_per_suite=100)
        started = time.perf_counter()
        parse_reports([report])
        print(f"parse only, 50,000 cases ({report.stat().st_size / 1e6:.1f} MB): {time.perf_counter() - started:.3f} s")
        for engine in ["sqlite"] + (["postgres"] if args.postgres else []):
            child = [sys.executable, __file__, "--engine", engine] + (["--quick"] if args.quick else [])
            subprocess.run(child + (["--postgres", args.postgres] if args.postgres else []), check=True)
        big = write_report(folder / "r100mb.xml", suites=1_000, cases_per_suite=100, output_lines=22)
        seconds, megabytes = peak_memory(big, folder)
        print(
            f"sqlite: ingest a {big.stat().st_size / 1e6:.0f} MB report (100,000 cases): "
            f"{seconds:.2f} s, peak RSS {megabytes:.0f} MB"
        )


if __name__ == "__main__":
    asyncio.run(main())
