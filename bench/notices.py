"""Notices benchmark: from a `milestones ingest` that turns a gate red to the dismissed
approver's direct message in Slack.

    python -m bench.notices [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--rounds 5]

1. A throw-away database (SQLite file, or a database created on the --postgres server),
   with acme/bench's milestone v2.0 requiring plan smoke and approved by U0ANN after a
   green launch of 20 tests.
2. A loopback fake Slack API (tests/fake_slack.py) in this process and `milestones serve`
   in a process of its own (bench/webhooks.py `Server`, Slack in HTTP mode against the fake).
3. Each round: `milestones ingest` of a report with one required test failing, in a process
   of its own, as a CI job or a person runs it; the time is from starting that process to
   the fake receiving the chat.postMessage to U0ANN that says the approval was dismissed.
   Then a green launch and the approval again, in this process, before the next round.

Prints each round, the median and the CLI's own run time; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.engine import ThrowawayDatabase
from bench.slack import slack_environment
from bench.webhooks import MILESTONES, Server
from core import services
from core.db import close_database, migrate, open_database
from core.enums import Decision
from core.ingest import LaunchSource
from core.junit import parse_reports

REPO = "acme/bench"
APPROVER = "U0ANN"
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["plan:smoke"]
    signoff: {approvers: [U0ANN]}
"""
TESTS = 20
TIMEOUT = 120.0


def write_report(path: Path, failing: int) -> Path:
    cases = "".join(
        f'<testcase classname="com.acme.Bench" name="test_{n}">{"<failure/>" if n < failing else ""}</testcase>'
        for n in range(TESTS)
    )
    path.write_text(f'<testsuite name="bench">{cases}</testsuite>')
    return path


async def green_and_approved(folder: Path, run: int) -> None:
    report = parse_reports([write_report(folder / f"green-{run}.xml", 0)])
    await services.record_launch(report, LaunchSource(REPO, "smoke", f"green-{run}", commit_sha="abc1234"))
    await services.record_decision(REPO, "v2.0", APPROVER, Decision.APPROVE)


async def bench(server_url: str | None, rounds: int) -> list[tuple[float, float]]:
    from tests.fake_slack import FakeSlack

    figures = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        async with ThrowawayDatabase(server_url, folder) as url:
            await migrate(url)
            await open_database(url)
            try:
                await services.apply_policy_file(REPO, POLICY)
                await services.save_milestone(REPO, "v2.0")
                await green_and_approved(folder, 0)
                with FakeSlack() as fake:
                    server = Server(url, folder)
                    slack_environment(server, fake)
                    async with server:
                        for run in range(1, rounds + 1):
                            figures.append(await one_round(fake, server, folder, run))
                            await green_and_approved(folder, run)
            finally:
                await close_database()
    return figures


async def one_round(fake, server: Server, folder: Path, run: int) -> tuple[float, float]:
    before = len(fake.messages(APPROVER))
    report = write_report(folder / f"red-{run}.xml", 1)
    started = time.monotonic()
    done = await asyncio.to_thread(
        subprocess.run,
        [str(MILESTONES), "ingest", str(report), "--repo", REPO, "--plan", "smoke", "--source", f"red-{run}"],
        env=server.environment,
        cwd=folder,
        capture_output=True,
        text=True,
    )
    cli = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"milestones ingest failed ({done.returncode}): {done.stdout}{done.stderr}")
    while len(fake.messages(APPROVER)) == before:
        if time.monotonic() - started > TIMEOUT:
            raise SystemExit(f"no direct message after {TIMEOUT:.0f} s:\n{server.output_text()}")
        await asyncio.sleep(0.01)
    arrived = next(call.at for call in reversed(fake.calls("chat.postMessage")) if call.body.get("channel") == APPROVER)
    return arrived - started, cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL to create the throw-away database on")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = "PostgreSQL" if args.postgres else "SQLite"
    figures = asyncio.run(bench(args.postgres, args.rounds))
    for run, (delay, cli) in enumerate(figures, 1):
        print(
            f"{engine}: round {run}: direct message {delay:.2f} s after the ingest started (the CLI took {cli:.2f} s)"
        )
    delays = [delay for delay, _ in figures]
    clis = [cli for _, cli in figures]
    print(
        f"{engine}: CLI launch to the approver's direct message: median {statistics.median(delays):.2f} s, "
        f"max {max(delays):.2f} s over {len(delays)} rounds; the CLI itself median {statistics.median(clis):.2f} s"
    )


if __name__ == "__main__":
    main()
