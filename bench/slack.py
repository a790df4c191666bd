"""Slack benchmark: `/milestone status v2.0` on a large milestone, end to end over HTTP.

    python -m bench.slack [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--count 200]

1. A throw-away database (a SQLite file in a temporary folder, or with --postgres a
   database created on that server and dropped at the end), filled as bench/engine.py
   fills its verdict benchmark (`bench_verdict`: the policy, milestone v2.0 requiring
   every test, 99 launches of 10,000 cases with ~3% random failures), then a 100th
   launch in which exactly 50 of the 10,000 required tests fail: 1,000,000 results, a
   card with blockers.
2. A loopback fake Slack API (tests/fake_slack.py) in this process, and `milestones
   serve` in a process of its own on a free port (LOG_LEVEL=WARNING, no delivery
   workers busy), with SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL (the fake)
   and PUBLIC_URL set; `milestones migrate` runs first (a no-op by then).
3. From one `httpx.AsyncClient` (one keep-alive connection), after 5 warm-up requests
   of each, sequentially: `--count` slash commands `/milestone status v2.0`, then a
   quarter as many `/milestone list` and `/milestone tests v2.0 failing`. Each is the
   form body Slack posts (tests/slack.py `command_form`, a fresh response_url of the
   fake), signed with a fresh timestamp; the time is from the send to the complete
   response. An answer counts as good when it is HTTP 200 with the answer itself in
   it (JSON `text` starting with `v2.0`, or naming it for `list`), not the "Working on
   it…" that comes when the answer takes over 2 s.

Also printed, for telling the parts apart: the same three commands answered in this
process without HTTP or Bolt (`Answers.command_text`, what the listener awaits), and
the server process's CPU time per request.

Prints the figures and asserts nothing (a p99 over the 100 ms target is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from slack_sdk.web.async_client import AsyncWebClient

from bench.engine import ThrowawayDatabase, bench_verdict
from bench.reports import write_report
from bench.webhooks import Server, percentile, print_server_log
from bot.alerts import Alerts
from bot.answers import Answers
from bot.command_line import Asker
from bot.digests import Digests
from bot.signoffs import Signoffs
from core import services
from core.db import close_database, open_database
from core.ingest import LaunchSource
from core.junit import parse_reports
from core.page_links import PageLinks
from tests.fake_slack import FakeSlack
from tests.slack import CHANNEL_ID, FORM, SIGNING_SECRET, TEAM_ID, USER_AGENT, USER_ID, command_form, sign

TARGET_P99_MS = 100.0
LAUNCHES = 100
CASES = 10_000
FAILING = 50
WARM_UP = 5
PUBLIC_URL = "https://milestones.example.com"
COMMAND = "/milestone"
REPOSITORY = "acme/bench"  # bench/engine.py's


@dataclass
class Command:
    text: str
    good: str  # what the answer's text must start with ("" for list: it must name v2.0)
    count: int
    latencies: list[float] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    cpu: float | None = None  # the server's CPU seconds over the timed requests
    sample: str = ""
    size: int = 0

    def accepts(self, text: str) -> bool:
        return text.startswith(self.good) if self.good else "v2.0" in text


# The data ----------------------------------------------------------------------


async def build(url: str, folder: Path) -> tuple[float, float, float, float]:
    """bench_verdict's milestone (99 launches), then a last launch failing exactly FAILING tests.

    Returns the seconds of the 99 launches and of the last one, and bench_verdict's
    in-process verdict median and p95 (after 99 launches).
    """
    loading, verdict_median, verdict_p95 = await bench_verdict(url, folder, LAUNCHES - 1, CASES)
    failing = set(range(0, CASES, CASES // FAILING))
    last = write_report(folder / "last.xml", suites=CASES // 100, seed=LAUNCHES, failing=failing)
    await open_database(url)
    try:
        started = time.perf_counter()
        await services.record_launch(
            parse_reports([last]),
            LaunchSource(
                REPOSITORY, "smoke", f"nightly-{LAUNCHES - 1}", commit_sha=f"{LAUNCHES - 1:040x}", branch="main"
            ),
        )
        return loading, time.perf_counter() - started, verdict_median, verdict_p95
    finally:
        await close_database()


async def in_process(url: str, commands: list[Command], times: int = 20) -> dict[str, float]:
    """Median seconds of each command answered here, as the listener computes its answer."""
    # The commands measured are reads: they call no Slack method.
    client = AsyncWebClient(token="xoxb-bench", base_url="http://127.0.0.1:9/api/")
    answers = Answers(
        COMMAND,
        PageLinks(PUBLIC_URL, SIGNING_SECRET).milestone_url,
        Signoffs(client, COMMAND),
        Digests(client, COMMAND, "UTC"),
        Alerts(client, COMMAND),
    )
    asker = Asker(TEAM_ID, CHANNEL_ID, USER_ID)
    medians = {}
    await open_database(url)
    try:
        for command in commands:
            timings = []
            for _ in range(times + 2):
                started = time.perf_counter()
                message = await answers.command_text(command.text, asker)
                timings.append(time.perf_counter() - started)
            assert command.accepts(message.text), message.text
            medians[command.text] = statistics.median(timings[2:])
    finally:
        await close_database()
    return medians


# The requests -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of a process (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


async def send(client: httpx.AsyncClient, fake: FakeSlack, command: Command) -> tuple[float, httpx.Response]:
    body = command_form(command.text, response_url=fake.response_url(channel=CHANNEL_ID))
    headers = {"Content-Type": FORM, "User-Agent": USER_AGENT, **sign(body)}
    started = time.perf_counter()
    response = await client.post("/slack/events", content=body, headers=headers)
    return time.perf_counter() - started, response


async def run_commands(url: str, pid: int, fake: FakeSlack, commands: list[Command]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        # The first request also makes Bolt call auth.test (once); none of these are timed.
        for command in commands:
            for _ in range(WARM_UP):
                await send(client, fake, command)
        for command in commands:
            before = cpu_seconds(pid)
            for _ in range(command.count):
                seconds, response = await send(client, fake, command)
                command.latencies.append(seconds)
                try:
                    text = response.json().get("text", "") if response.status_code == 200 else ""
                except ValueError:
                    text = ""
                if response.status_code != 200 or not command.accepts(text):
                    command.bad.append(f"{response.status_code} {response.text[:200]}")
                else:
                    command.sample, command.size = text, len(response.content)
            after = cpu_seconds(pid)
            command.cpu = after - before if before is not None and after is not None else None


def slack_environment(server: Server, fake: FakeSlack) -> None:
    """Slack in HTTP mode against the fake; nothing Slack-related taken from this shell."""
    for name in list(server.environment):
        if name.upper().startswith("SLACK_") or name.upper() in ("PUBLIC_URL", "WEBHOOK_WORKERS"):
            del server.environment[name]
    server.environment.update(
        SLACK_BOT_TOKEN=fake.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        PUBLIC_URL=PUBLIC_URL,
    )


# The run ---------------------------------------------------------------------------


def report(engine: str, command: Command, here: float | None) -> None:
    ordered = sorted(command.latencies)
    p50, p95, p99, top = (percentile(ordered, fraction) * 1000 for fraction in (0.50, 0.95, 0.99, 1.0))
    target = ""
    if command.text.startswith("status"):
        target = f" (p99 target {TARGET_P99_MS:.0f} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'})"
    print(
        f"{engine}: {COMMAND} {command.text}: {len(ordered)} requests: "
        f"median {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {top:.1f} ms{target}; "
        f"good answers {len(ordered) - len(command.bad)}/{len(ordered)}"
    )
    parts = []
    if here is not None:
        parts.append(f"answered in this process without HTTP or Bolt: median {here * 1000:.1f} ms")
    if command.cpu is not None:
        parts.append(f"server CPU {command.cpu / len(ordered) * 1000:.1f} ms a request")
    if command.size:
        parts.append(f"answer {command.size:,} bytes")
    print("  " + "; ".join(parts))
    if command.sample:
        print(f"  text: {command.sample}")
    for bad in command.bad[:3]:
        print(f"  bad answer: {bad}")


async def run(server_url: str | None, count: int) -> None:
    engine = "postgres" if server_url else "sqlite"
    commands = [
        Command("status v2.0", "v2.0", count),
        Command("list", "", max(count // 4, 1)),
        Command("tests v2.0 failing", "v2.0", max(count // 4, 1)),
    ]
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as scratch:
        folder = Path(scratch)
        async with ThrowawayDatabase(server_url, folder) as url:
            started = time.perf_counter()
            loading, last, verdict_median, verdict_p95 = await build(url, folder)
            built = time.perf_counter() - started
            print(
                f"{engine}: data: {CASES:,} required tests, {LAUNCHES} launches ({LAUNCHES * CASES:,} results), "
                f"{FAILING} required tests failing in the last; built in {built:.1f} s "
                f"(reports and launches 1-{LAUNCHES - 1} {loading:.1f} s of that, the last launch {last:.2f} s)"
            )
            print(
                f"  verdict in this process after {LAUNCHES - 1} launches (bench/engine.py): "
                f"median {verdict_median * 1000:.1f} ms, p95 {verdict_p95 * 1000:.1f} ms"
            )
            here = await in_process(url, commands)
            with FakeSlack() as fake:
                server = Server(url, folder)
                slack_environment(server, fake)
                async with server:
                    await run_commands(server.url, server.process.pid, fake, commands)
                log = server.log.read_text()
                auth_tests = len(fake.calls("auth.test"))
                other_calls = len(fake.calls()) - auth_tests
    for command in commands:
        report(engine, command, here.get(command.text))
    print(
        f"  fake Slack: auth.test called {auth_tests} time(s), {other_calls} other calls (response_url posts and API)"
    )
    print(
        f"  load average at the end (1, 5 min): {os.getloadavg()[0]:.2f}, {os.getloadavg()[1]:.2f} on {os.cpu_count()} CPUs"
    )
    print_server_log(log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", help="a PostgreSQL server URL: run on a throw-away database there instead of SQLite"
    )
    parser.add_argument(
        "--count", type=int, default=200, help="timed `status` requests (default 200; a quarter as many of the others)"
    )
    args = parser.parse_args()
    if args.count < 1:
        parser.error("--count must be positive")
    asyncio.run(run(args.postgres, args.count))


if __name__ == "__main__":
    main()
