"""Gate checks benchmark: the output of a very large milestone, and the GitHub calls a burst costs.

    python -m bench.checks [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--pulls 20] [--issues 200]

1. Render: the check run of a verdict with 5,000 failing required tests and 300
   blocking defects (a pure function): median time of 5, and the sizes of its fields
   against GitHub's 65,535.
2. Burst: a throw-away database (SQLite file, or a database on --postgres, dropped at
   the end), the real app with a loopback fake GitHub in App mode, `--pulls` open pull
   requests in one milestone with their checks written; then `--issues` defect issues
   filed and a launch failing 2,000 required tests, all within the settling window.
   Counts the check run requests GitHub receives for the burst (one edit per pull
   request is the aim) and times the publishing.

Prints the figures; exits 1 if a pull request got more than one check run or the burst
cost more than one write per pull request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from core import outbox, services
from core.clock import utcnow
from core.db import close_database, migrate, open_database
from core.enums import Severity
from core.ingest import LaunchSource
from integrations.github.check_output import FIELD_LIMIT, gate_check
from tests.conftest import throwaway_database
from tests.fake_github import FakeGitHub
from tests.github import fixture, private_key_pem, running_app, settings_for
from tests.test_check_output import SINCE, verdict
from tests.test_gate import F, defect, fact
from tests.test_github_checks import POLICY, REPO
from tests.test_services import report


def bench_render() -> None:
    tests = [
        fact(f"test_{n:05d}_checkout_flow", F, required=True, failing_since=SINCE, message="AssertionError " * 8)
        for n in range(5000)
    ]
    large = verdict(tests=tests, defects=[defect(n, Severity.CRITICAL) for n in range(1, 301)])
    times = []
    for _ in range(5):
        started = time.perf_counter()
        check = gate_check(
            large, details_url="https://milestones.example.com/m", repository_url="https://github.com/o/r"
        )
        times.append(time.perf_counter() - started)
    shown = sum(1 for line in check.text.splitlines() if line.startswith("- `"))
    print("render: 5,000 failing required tests, 300 blocking defects")
    print(f"  median {statistics.median(times) * 1000:.1f} ms")
    print(
        f"  summary {len(check.summary.encode()):,} bytes, text {len(check.text.encode()):,} bytes (limit {FIELD_LIMIT:,})"
    )
    print(f"  tests listed {shown:,} of 5,000, then a line saying how many were left out")


async def bench_burst(database_url: str, pulls: int, issues: int) -> bool:
    await migrate(database_url)
    await open_database(database_url)
    try:
        await services.apply_policy_file(REPO, POLICY)
        await services.save_milestone(REPO, "v1.0", github_number=1)
        with FakeGitHub() as fake:
            repo = fake.repo(REPO, default_branch="master", installation_id=1)
            settings = settings_for(
                database_url,
                github_app_id=1,
                github_private_key=private_key_pem(),
                github_api_url=fake.url,
                public_url="https://milestones.example.com",
                checks_settle_seconds=5,
            )
            async with running_app(settings) as hooks:
                publisher = hooks.app.state.publisher
                milestone = fixture("issues", "opened")["issue"]["milestone"]
                for number in range(1, pulls + 1):
                    head = f"{number:040x}"
                    repo.add_pull(number, head, base="master", files=["src/app.py"])
                    payload = fixture("pull_request", "opened")
                    payload["pull_request"].update(number=number, milestone=milestone, updated_at=utcnow().isoformat())
                    payload["pull_request"]["head"]["sha"] = head
                    await hooks.send("pull_request", payload)
                await hooks.worker.drain()
                await publisher.drain(now=utcnow() + timedelta(seconds=6))
                created = len(fake.calls("POST", f"/repos/{REPO}/check-runs"))
                fake.clear_requests()

                started = time.perf_counter()
                for number in range(1000, 1000 + issues):
                    payload = fixture("issues", "opened")
                    payload["issue"].update(
                        number=number, labels=[{"name": "bug"}, {"name": "P1"}], updated_at=utcnow().isoformat()
                    )
                    await hooks.send("issues", payload)
                await hooks.worker.drain()
                cases = [("com.acme.Checkout", f"test_{n}", "failed") for n in range(2000)]
                await services.record_launch(
                    report(*cases), LaunchSource(REPO, "smoke", "run-1", commit_sha="c0ffee", branch="master")
                )
                intake = time.perf_counter() - started
                waiting = len(await outbox.pending(outbox.PULL_REQUEST_CHECKS))
                started = time.perf_counter()
                await publisher.drain(now=utcnow() + timedelta(seconds=6))
                publishing = time.perf_counter() - started
                edits = [r for r in fake.requests if r.method == "PATCH"]
                posts = [r for r in fake.requests if r.method == "POST" and "check-runs" in r.path]
                reads = [r for r in fake.requests if r.method == "GET"]
                runs_per_head = {len(repo.check_runs_for(f"{n:040x}")) for n in range(1, pulls + 1)}
        print(f"burst: {pulls} open pull requests, {issues} defects filed and a launch failing 2,000 tests")
        print(f"  check runs created when opened: {created}")
        print(f"  intake of the burst: {intake:.2f} s; pull requests waiting to publish: {waiting}")
        print(f"  GitHub requests for the burst: {len(edits)} edits, {len(posts)} creates, {len(reads)} reads")
        print(
            f"  publishing: {publishing:.2f} s ({publishing / max(len(edits), 1) * 1000:.0f} ms per pull request, verdict computed once)"
        )
        print(f"  check runs per head commit: {sorted(runs_per_head)}")
        return runs_per_head == {1} and len(edits) == pulls and not posts
    finally:
        await close_database()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL; a throw-away database is created on it")
    parser.add_argument("--pulls", type=int, default=20)
    parser.add_argument("--issues", type=int, default=200)
    args = parser.parse_args()
    bench_render()
    if args.postgres:
        os.environ["TEST_DATABASE_URL"] = args.postgres
    with tempfile.TemporaryDirectory() as folder:
        async with throwaway_database(Path(folder)) as url:
            ok = await bench_burst(url, args.pulls, args.issues)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
