"""Webhook intake benchmark: a real `milestones serve` fed signed deliveries at a fixed rate.

    python -m bench.webhooks [--engine sqlite|postgres] [--count 2000] [--rate 200]

1. A throw-away database (a SQLite file in a temporary folder, or a database created on
   the PostgreSQL server at --postgres and dropped at the end), migrated with
   `milestones migrate`, and `milestones serve` on a free port (its own process, its
   default two delivery workers, LOG_LEVEL=WARNING).
2. `count` deliveries built from the real payloads of the shared fixtures, cycling
   through issues opened/labeled/edited/closed (issue numbers 1..300, increasing
   `updated_at`), milestone created/edited (five milestones), pull_request
   opened/synchronize, label edited, ping, and events nobody handles (workflow_job
   queued, check_suite completed); serialised and signed before the clock starts.
3. Sent open loop from one `httpx.AsyncClient`: request i starts at t0 + i/rate whatever
   became of the earlier ones, each in a task of its own; the latency of each is the
   time from its start to its response.
4. The database is then read until every delivery is done or ignored (120 s at most):
   "processed in" runs from the first send to the last `finished_at`.

Prints the figures and exits 1 when a check fails: an answer other than 202, a delivery
failed or unfinished, one claimed more than once, a row count other than `count`, a
server that does not stop cleanly. A p99 over the 25 ms target is reported, not failed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
WEBHOOKS = ROOT.parent / "shared" / "fixtures" / "github-webhooks"
MILESTONES = Path(sys.executable).with_name("milestones")
SECRET = "bench-webhook-secret"
TARGET_P99_MS = 25.0
PROCESS_TIMEOUT = 120.0
FINISHED = ("done", "ignored")

# Settings the server would otherwise take from this shell (core.settings.Settings):
# the benchmark runs on the defaults.
SETTINGS_VARIABLES = {
    "DATABASE_URL", "LOG_LEVEL", "GITHUB_WEBHOOK_SECRET", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY",
    "GITHUB_PRIVATE_KEY_PATH", "GITHUB_TOKEN", "GITHUB_API_URL", "WEBHOOK_WORKERS",
    "WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_SECONDS",
}  # fmt: skip


# The deliveries -------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    guid: str
    event: str
    body: bytes
    headers: dict[str, str]


def fixture(event: str, name: str) -> dict[str, Any]:
    file = WEBHOOKS / event / ("payload.json" if name == "payload" else f"{name}.payload.json")
    return json.loads(file.read_text())


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# One cycle of the mix: half issue events, then milestones, pull requests, the rest.
MIX = (
    ["issues.opened"] * 3 + ["issues.labeled"] * 3 + ["issues.edited"] * 2 + ["issues.closed"] * 2
    + ["milestone.created", "milestone.edited"]
    + ["pull_request.opened"] + ["pull_request.synchronize"] * 2
    + ["label.edited", "ping"]
    + ["workflow_job.queued"] * 2 + ["check_suite.completed"]
)  # fmt: skip
LABELS = [["bug"], ["bug", "P0"], ["bug", "P2"], ["enhancement"], [], ["bug", "P1", "regression"]]
MILESTONE_COUNT = 5


class Payloads:
    """Variations on the real payloads; every fixture is read once."""

    def __init__(self) -> None:
        self.base = {
            "issues": fixture("issues", "opened"),
            "milestone": fixture("milestone", "created"),
            "pull_request.opened": fixture("pull_request", "opened"),
            "pull_request.synchronize": fixture("pull_request", "synchronize"),
            "label.edited": fixture("label", "edited"),
            "ping": fixture("ping", "payload"),
            "workflow_job.queued": fixture("workflow_job", "queued"),
            "check_suite.completed": fixture("check_suite", "completed"),
        }
        self.clock = datetime(2026, 11, 1, tzinfo=UTC)
        self.seen: dict[str, int] = {}

    def _tick(self) -> str:
        # Every event is newer than the one before, so that each applies.
        self.clock += timedelta(seconds=1)
        return stamp(self.clock)

    def milestone_ref(self, number: int) -> dict[str, Any]:
        milestone = copy.deepcopy(self.base["milestone"]["milestone"])
        milestone.update(number=number, title=f"v1.{number - 1}", id=1000 + number)
        return milestone

    def make(self, kind: str) -> dict[str, Any]:
        event, _, action = kind.partition(".")
        # How many of this event came before: what varies the numbers, titles and labels.
        index = self.seen[event] = self.seen.get(event, -1) + 1
        if event == "issues":
            payload = copy.deepcopy(self.base["issues"])
            number = index * 7 % 300 + 1
            # The same issue comes back every 300 events, with other labels.
            labels = LABELS[(index + index // 300) % len(LABELS)]
            closed = action == "closed"
            updated = self._tick()
            payload["action"] = action
            payload["issue"].update(
                number=number,
                id=10_000 + number,
                title=f"Issue {number}",
                html_url=f"https://github.com/Codertocat/Hello-World/issues/{number}",
                labels=[{"name": name} for name in labels],
                milestone=self.milestone_ref(number % MILESTONE_COUNT + 1) if number % 4 else None,
                state="closed" if closed else "open",
                state_reason="completed" if closed else None,
                closed_at=updated if closed else None,
                updated_at=updated,
            )
            if action == "labeled":
                payload["label"] = {"name": (labels or ["bug"])[-1]}
            if action == "edited":
                payload["changes"] = {"title": {"from": f"Old title of issue {number}"}}
            return payload
        if event == "milestone":
            payload = copy.deepcopy(self.base["milestone"])
            number = index % MILESTONE_COUNT + 1
            payload["action"] = action
            payload["milestone"] = self.milestone_ref(number)
            payload["milestone"].update(
                description=f"Release 1.{number - 1}, revision {index}",
                due_on=stamp(datetime(2026, 12, 1, 7, tzinfo=UTC) + timedelta(days=7 * number)),
                updated_at=self._tick(),
            )
            if action == "edited":
                payload["changes"] = {"description": {"from": f"Release 1.{number - 1}"}}
            return payload
        if event == "pull_request":
            payload = copy.deepcopy(self.base[kind])
            number = index % 120 + 301
            pull = payload["pull_request"]
            payload["number"] = number
            pull.update(
                number=number,
                id=20_000 + number,
                html_url=f"https://github.com/Codertocat/Hello-World/pull/{number}",
                title=f"Change {number}",
                milestone=self.milestone_ref(number % MILESTONE_COUNT + 1) if number % 2 else None,
                updated_at=self._tick(),
            )
            pull["head"]["sha"] = hashlib.sha1(f"{number}-{index}".encode()).hexdigest()
            if action == "synchronize":
                payload["before"], payload["after"] = payload.get("after") or "0" * 40, pull["head"]["sha"]
            return payload
        # label edited (a colour change), ping and the events nobody handles: as they come.
        return self.base[kind]


def build_deliveries(count: int) -> list[Delivery]:
    payloads = Payloads()
    deliveries = []
    for index in range(count):
        kind = MIX[index % len(MIX)]
        event = kind.partition(".")[0]
        body = json.dumps(payloads.make(kind)).encode()
        guid = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/bench",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-Hub-Signature-256": signature(body),
        }
        deliveries.append(Delivery(guid, event, body, headers))
    return deliveries


# The database and the server -------------------------------------------------


class ThrowawayDatabase:
    """A SQLite file in `folder`, or a database created on the PostgreSQL server and dropped after."""

    def __init__(self, engine: str, server: str, folder: Path):
        self.engine = engine
        self.server = server.replace("postgresql://", "postgres://", 1)
        self.folder = folder
        self.name = f"milestones_bench_{uuid.uuid4().hex[:8]}"
        self.path = folder / f"{self.name}.db"

    async def __aenter__(self) -> ThrowawayDatabase:
        if self.engine == "postgres":
            base, _, maintenance = self.server.rpartition("/")
            self.base = base
            self.admin = await asyncpg.connect(f"{base.replace('postgres://', 'postgresql://', 1)}/{maintenance}")
            await self.admin.execute(f'CREATE DATABASE "{self.name}"')
        return self

    @property
    def url(self) -> str:
        return f"sqlite://{self.path}" if self.engine == "sqlite" else f"{self.base}/{self.name}"

    async def __aexit__(self, *exc: object) -> None:
        if self.engine == "postgres":
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await self.admin.close()

    async def deliveries(self) -> list[tuple[str, str, int, Any]]:
        """(guid, status, attempts, finished_at) of every delivery, read without writing."""
        query = "SELECT guid, status, attempts, finished_at FROM delivery"
        if self.engine == "postgres":
            reader = await asyncpg.connect(f"{self.base.replace('postgres://', 'postgresql://', 1)}/{self.name}")
            try:
                return [tuple(row) for row in await reader.fetch(query)]
            finally:
                await reader.close()
        reader = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return reader.execute(query).fetchall()
        finally:
            reader.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(database_url: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name.upper() not in SETTINGS_VARIABLES}
    environment.update(DATABASE_URL=database_url, GITHUB_WEBHOOK_SECRET=SECRET, LOG_LEVEL="WARNING")
    return environment


class Server:
    """`milestones serve` in a process of its own, its output kept in a file."""

    def __init__(self, database_url: str, folder: Path):
        self.environment = server_environment(database_url)
        # Run from the scratch folder, so that no `.env` of the working tree applies.
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"

    def migrate(self) -> None:
        done = subprocess.run(
            [str(MILESTONES), "migrate"], env=self.environment, cwd=self.folder, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"milestones migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    async def __aenter__(self) -> Server:
        self.migrate()
        self.output = self.log.open("w")
        self.process = subprocess.Popen(
            [str(MILESTONES), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.environment,
            cwd=self.folder,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        try:
            await self._ready()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def _ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise SystemExit(f"milestones serve exited ({self.process.returncode}):\n{self.output_text()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit(f"milestones serve not ready after {timeout:.0f} s:\n{self.output_text()}")

    def output_text(self) -> str:
        self.output.flush()
        return self.log.read_text()

    async def __aexit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


# The run --------------------------------------------------------------------


@dataclass
class Sent:
    wall_start: float = 0.0  # time.time() of the first send
    latencies: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)  # how late each start was
    statuses: dict[int | str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    finished: float = 0.0  # time.time() of the last send's start


async def send_all(url: str, deliveries: list[Delivery], rate: float) -> Sent:
    sent = Sent(latencies=[0.0] * len(deliveries), lags=[0.0] * len(deliveries))
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30.0) as client:
        # Open the connections before the clock starts, as a long-running sender would have them.
        await asyncio.gather(*(client.get("/healthz") for _ in range(16)))

        async def one(index: int, delivery: Delivery) -> None:
            started = time.perf_counter()
            try:
                response = await client.post("/github/webhooks", content=delivery.body, headers=delivery.headers)
                code: int | str = response.status_code
            except httpx.HTTPError as error:
                code = type(error).__name__
                sent.errors.append(f"{delivery.guid}: {error!r}")
            sent.latencies[index] = time.perf_counter() - started
            sent.statuses[code] = sent.statuses.get(code, 0) + 1

        tasks = []
        sent.wall_start = time.time()
        t0 = time.perf_counter()
        for index, delivery in enumerate(deliveries):
            due = t0 + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            sent.lags[index] = time.perf_counter() - due
            tasks.append(asyncio.create_task(one(index, delivery)))
        sent.finished = time.time()
        await asyncio.gather(*tasks)
    return sent


def as_epoch(value: Any) -> float:
    """A finished_at from either engine (SQLite hands back ISO text) as seconds since the epoch."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


async def wait_processed(database: ThrowawayDatabase, timeout: float) -> list[tuple[str, str, int, Any]]:
    """Every row once none is waiting: all were stored before they were answered, so no more come."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await database.deliveries()
        if not any(status in ("pending", "processing") for _, status, _, _ in rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


async def run(engine: str, server_url: str, count: int, rate: float) -> bool:
    deliveries = build_deliveries(count)
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as scratch:
        folder = Path(scratch)
        async with ThrowawayDatabase(engine, server_url, folder) as database:
            async with Server(database.url, folder) as server:
                sent = await send_all(server.url, deliveries, rate)
                rows = await wait_processed(database, PROCESS_TIMEOUT)
            log = server.log.read_text()
    ordered = sorted(sent.latencies)
    ms = [percentile(ordered, p) * 1000 for p in (0.50, 0.95, 0.99, 1.0)]
    statuses: dict[str, int] = {}
    for _, status, _, _ in rows:
        statuses[status] = statuses.get(status, 0) + 1
    twice = sum(1 for _, _, attempts, _ in rows if attempts > 1)
    never = sum(1 for _, _, attempts, _ in rows if attempts < 1)
    finished = [as_epoch(at) for _, status, _, at in rows if status in FINISHED and at is not None]
    unfinished = count - statuses.get("done", 0) - statuses.get("ignored", 0)
    all_202 = sent.statuses == {202: count}
    if finished and not unfinished:
        last = max(finished)
        processed = (
            f"processed in {last - sent.wall_start:.1f} s (last {last - sent.finished:.1f} s after the last send)"
        )
    else:
        waiting = sum(1 for _, status, _, _ in rows if status in ("pending", "processing"))
        processed = f"NOT all processed: {count - len(rows)} never stored, {waiting} still waiting"
        processed += f" after {PROCESS_TIMEOUT:.0f} s" if waiting else ""
    lags = sorted(sent.lags)
    print(
        f"{engine}: {count} deliveries at {rate:g}/s: "
        f"p50 {ms[0]:.1f} ms, p95 {ms[1]:.1f} ms, p99 {ms[2]:.1f} ms, max {ms[3]:.0f} ms "
        f"(p99 target {TARGET_P99_MS:.0f} ms: {'met' if ms[2] < TARGET_P99_MS else 'MISSED'}); "
        f"all 202: {'yes' if all_202 else 'NO ' + json.dumps({str(k): v for k, v in sent.statuses.items()})}; "
        f"{processed}; processed twice: {twice}; failed: {statuses.get('failed', 0)}"
    )
    print(
        f"  done {statuses.get('done', 0)}, ignored {statuses.get('ignored', 0)}, rows {len(rows)}; "
        f"sender: start lag p99 {percentile(lags, 0.99) * 1000:.1f} ms, max {lags[-1] * 1000:.1f} ms"
    )
    # uvicorn shuts down, then raises the signal it caught again: -SIGTERM is a clean stop.
    stopped = server.process.returncode in (0, -signal.SIGTERM)
    if not stopped:
        print(f"  the server did not stop cleanly on SIGTERM: exit status {server.process.returncode}")
    for error in sent.errors[:5]:
        print(f"  request error: {error}")
    print_server_log(log)
    return all_202 and not unfinished and not twice and not never and len(rows) == count and stopped


def print_server_log(log: str) -> None:
    if log.strip():
        lines = log.strip().splitlines()
        print(f"  server log ({len(lines)} lines), first ones:")
        for line in lines[:10]:
            print(f"    {line}")


def engine_arguments(description: str | None) -> argparse.ArgumentParser:
    """A parser with the benchmarks' --engine and --postgres."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server for --engine postgres (default %(default)s)",
    )
    return parser


def main() -> int:
    parser = engine_arguments(__doc__)
    parser.add_argument("--count", type=int, default=2000, help="deliveries to send (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second (default 200)")
    args = parser.parse_args()
    if args.count < 1 or args.rate <= 0:
        parser.error("--count and --rate must be positive")
    ok = asyncio.run(run(args.engine, args.postgres, args.count, args.rate))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
