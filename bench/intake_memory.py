"""Webhook intake memory: a real `milestones serve` under bursts of large bodies, its RSS read from /proc.

    python -m bench.intake_memory [--engine sqlite|postgres] [--size-mb 24] [--signed 8] [--unsigned 16]

One server (its own process, its default two delivery workers, LOG_LEVEL=WARNING) on a
throw-away database migrated with `milestones migrate`, then one burst after another:

1. baseline: 20 small real deliveries, processed;
2. text: `--signed` deliveries of `--size-mb` MB at once, signed, each a real `issues`
   payload whose issue body is that large (one big string);
3. objects: as many `push` payloads of that size at once, signed, made large by ~100,000
   commits (many small objects, the costliest kind to parse);
4. unsigned: `--unsigned` bodies of that size at once with a wrong signature.

Each burst is sent from one `httpx.AsyncClient`, all requests started together. For each
it prints the answers by status, the server's peak RSS during the burst (VmHWM, reset
before it), and its RSS once every stored delivery is processed, 3 s later, and after one
more small delivery (SQLite keeps the parameters of its last insert until the next one).
The server's RSS is read from /proc/PID/status. Prints figures; asserts nothing.
"""

from __future__ import annotations

import asyncio
import copy
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.webhooks import FINISHED, Server, ThrowawayDatabase, engine_arguments, fixture, signature

MiB = 1024 * 1024


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets the peak resident set size (VmHWM) to the current one.
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def headers(event: str, body: bytes, *, signed: bool = True) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature(body) if signed else "sha256=" + "0" * 64,
    }


def text_payload(size: int) -> bytes:
    payload = fixture("issues", "opened")
    payload["issue"]["body"] = ""
    payload["issue"]["body"] = "x" * (size - len(json.dumps(payload)))
    return json.dumps(payload).encode()


def objects_payload(size: int) -> bytes:
    """A push to a feature branch with as many commits as fit in `size` bytes."""
    issue = fixture("issues", "opened")
    commit = {
        "id": "0" * 40,
        "message": "Fix the refund rounding",
        "timestamp": "2026-11-20T10:00:00Z",
        "author": {"name": "Codertocat", "email": "octocat@github.com", "username": "Codertocat"},
        "added": [],
        "removed": [],
        "modified": ["src/checkout/refund.py"],
    }
    payload: dict[str, Any] = {
        "ref": "refs/heads/feature",
        "before": "0" * 40,
        "after": "1" * 40,
        "repository": {**issue["repository"], "default_branch": "main"},
        "sender": issue["sender"],
        "commits": [],
    }
    one = len(json.dumps(commit)) + 2
    payload["commits"] = [copy.copy(commit) for _ in range((size - len(json.dumps(payload))) // one)]
    return json.dumps(payload).encode()


async def burst(server: Server, event: str, body: bytes, count: int, *, signed: bool) -> tuple[Counter, float]:
    pid = server.process.pid
    reset_peak(pid)
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60.0) as client:

        async def one() -> int | str:
            try:
                response = await client.post(
                    "/github/webhooks", content=body, headers=headers(event, body, signed=signed)
                )
                return response.status_code
            except httpx.HTTPError as error:
                return type(error).__name__

        answers = Counter(await asyncio.gather(*(one() for _ in range(count))))
    return answers, rss_mb(pid, "VmHWM")


async def settle(database: ThrowawayDatabase, timeout: float = 300.0) -> float:
    """Seconds until no delivery waits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        rows = await database.deliveries()
        if all(status in (*FINISHED, "failed") for _, status, _, _ in rows):
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def run(engine: str, postgres: str, size: int, signed: int, unsigned: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-intake-memory-") as scratch:
        folder = Path(scratch)
        async with ThrowawayDatabase(engine, postgres, folder) as database:
            async with Server(database.url, folder) as server:
                pid = server.process.pid
                small = json.dumps(fixture("issues", "opened")).encode()
                answers, _ = await burst(server, "issues", small, 20, signed=True)
                await settle(database)
                await asyncio.sleep(1)
                baseline = rss_mb(pid)
                print(f"{engine}: baseline after 20 small deliveries: RSS {baseline:.0f} MB ({dict(answers)})")
                bursts = [
                    ("text", "issues", text_payload(size), signed, True),
                    ("objects", "push", objects_payload(size), signed, True),
                    ("unsigned", "issues", text_payload(size), unsigned, False),
                ]
                for name, event, body, count, is_signed in bursts:
                    started = time.monotonic()
                    answers, peak = await burst(server, event, body, count, signed=is_signed)
                    answered = time.monotonic() - started
                    waited = await settle(database)
                    after = rss_mb(pid)
                    await asyncio.sleep(3)
                    later = rss_mb(pid)
                    # SQLite keeps the parameters of its last insert until the next one.
                    await burst(server, "issues", small, 1, signed=True)
                    await settle(database)
                    next_one = rss_mb(pid)
                    print(
                        f"  {name}: {count} x {len(body) / MiB:.1f} MB {'signed' if is_signed else 'wrongly signed'}"
                        f" {event}: answers {dict(sorted(answers.items(), key=str))} in {answered:.1f} s;"
                        f" peak RSS {peak:.0f} MB (+{peak - baseline:.0f}); processed {waited:.1f} s later:"
                        f" RSS {after:.0f} MB, 3 s later {later:.0f} MB (+{later - baseline:.0f}),"
                        f" after one more small delivery {next_one:.0f} MB (+{next_one - baseline:.0f})"
                    )
                rows = await database.deliveries()
                statuses = Counter(status for _, status, _, _ in rows)
                print(f"  deliveries stored: {len(rows)} ({dict(statuses)})")


def main() -> int:
    parser = engine_arguments(__doc__)
    parser.add_argument("--size-mb", type=float, default=24.0, help="size of each large body (default 24)")
    parser.add_argument("--signed", type=int, default=8, help="signed large deliveries per burst (default 8)")
    parser.add_argument("--unsigned", type=int, default=16, help="wrongly signed large bodies (default 16)")
    args = parser.parse_args()
    asyncio.run(run(args.engine, args.postgres, int(args.size_mb * MiB), args.signed, args.unsigned))
    return 0


if __name__ == "__main__":
    sys.exit(main())
