"""Failure clusters benchmark: prints seconds; asserts nothing.

    python bench/clusters.py [--postgres postgres://postgres@127.0.0.1:5432/postgres]

A 50,000-case report (the ingest benchmark's size) in which 5,000 tests fail for five
causes, each message carrying what varies between runs (numbers, ids, quoted values,
paths) and a Java stack trace:

1. parsing with every failure's cause worked out (core.causes), beside the same parse of
   the ingest benchmark's report (1,500 failures);
2. working out the 5,000 causes alone;
3. ingesting it through `services.record_launch` with a milestone tracking the plan
   (first and next launch), as the ingest benchmark does;
4. the verdict, whose triage groups the 5,000 failing tests into clusters: median of 10.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import ThrowawayDatabase, open_fresh  # noqa: E402
from bench.reports import STACK_TRACE, write_report  # noqa: E402
from core import services  # noqa: E402
from core.causes import cause_of  # noqa: E402
from core.db import close_database  # noqa: E402
from core.ingest import LaunchSource  # noqa: E402
from core.junit import parse_reports  # noqa: E402

CAUSES = [
    ("java.net.ConnectException", "connect to db-{n}.internal:5432 refused after {n} ms"),
    ("java.lang.AssertionError", "expected total '{n}.50' but was '{n}.49'"),
    ("java.util.concurrent.TimeoutException", "request {uuid} timed out after {n} s"),
    ("java.io.FileNotFoundException", "/var/lib/shop/cache/{n}/index.bin (No such file or directory)"),
    ("java.lang.IllegalStateException", "order 0x{n:x} is in state 'PAID' at 2026-11-{day:02d}T10:00:00Z"),
]


def write_failing_report(path: Path, *, suites: int = 500, cases_per_suite: int = 100, every: int = 10) -> int:
    failures = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
        for suite in range(suites):
            classname = f"com.acme.shop.module{suite // 50}.Feature{suite}Test"
            out.write(f'  <testsuite name="{classname}" tests="{cases_per_suite}">\n')
            for case in range(cases_per_suite):
                head = f'    <testcase classname="{classname}" name="test{case}" time="0.01"'
                index = suite * cases_per_suite + case
                if index % every:
                    out.write(f"{head}/>\n")
                    continue
                kind, template = CAUSES[failures % len(CAUSES)]
                message = template.format(n=index, uuid=uuid.UUID(int=index), day=1 + index % 28)
                trace = f"{kind}: {message}\n\tat {classname}.test{case}({classname}.java:{case})\n{STACK_TRACE}"
                out.write(f"{head}>\n      <failure message={quoteattr(message)} type={quoteattr(kind)}>")
                out.write(f"{escape(trace)}</failure>\n    </testcase>\n")
                failures += 1
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")
    return failures


def timed(run, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


async def bench_database(url: str, report: Path) -> tuple[float, float, float, int]:
    await open_fresh(url)
    try:
        ingest = []
        for attempt in range(2):
            started = time.perf_counter()
            await services.record_launch(
                parse_reports([report]),
                LaunchSource("acme/bench", "smoke", f"run-{attempt}", commit_sha=f"{attempt:040x}", branch="main"),
            )
            ingest.append(time.perf_counter() - started)
        verdicts = []
        for _ in range(10):
            started = time.perf_counter()
            verdict = await services.get_verdict("acme/bench", "v2.0")
            verdicts.append(time.perf_counter() - started)
        return ingest[0], ingest[1], statistics.median(verdicts), len(verdict.triage.clusters)
    finally:
        await close_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL; SQLite when not given")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        report = folder / "failing.xml"
        failures = write_failing_report(report)
        plain = write_report(folder / "plain.xml")
        print(f"report: 50,000 cases, {failures:,} failing, {report.stat().st_size / 1e6:.1f} MB")
        print(f"parse, ingest benchmark's report (1,500 failures): {timed(lambda: parse_reports([plain])):.2f} s")
        parsed = parse_reports([report])
        print(f"parse with causes, 5,000 failures: {timed(lambda: parse_reports([report])):.2f} s")
        failing = [case for case in parsed.cases.values() if case.cause is not None]
        texts = [
            (kind, message, f"{kind}: {message}\n{STACK_TRACE}")
            for kind, message in ((CAUSES[n % len(CAUSES)][0], case.message) for n, case in enumerate(failing))
        ]
        print(f"causes alone, 5,000 failures: {timed(lambda: [cause_of(*text) for text in texts]):.3f} s")
        print(f"distinct causes: {len({case.cause.signature for case in failing if case.cause})}")
        engine = "PostgreSQL" if args.postgres else "SQLite"
        for name, path in (("the ingest benchmark's report", plain), ("5,000 failures", report)):
            with tempfile.TemporaryDirectory() as databases:
                first, following, verdict, clusters = asyncio.run(_in_database(args.postgres, Path(databases), path))
            print(f"{engine} ingest of {name} with a milestone, first / next launch: {first:.2f} s / {following:.2f} s")
            print(f"{engine} verdict of {name} ({clusters} clusters), median of 10: {verdict * 1000:.0f} ms")


async def _in_database(server: str | None, folder: Path, report: Path) -> tuple[float, float, float, int]:
    async with ThrowawayDatabase(server, folder) as url:
        return await bench_database(url, report)


if __name__ == "__main__":
    main()
