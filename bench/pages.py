"""Web pages benchmark: the milestone page and the overview at 1,000,000 results.

    python -m bench.pages [--postgres postgres://postgres@127.0.0.1:5432/postgres] [--count 100]

1. The data of bench/slack.py (`build`): milestone v2.0 of acme/bench requiring 10,000
   tests, 100 launches (1,000,000 results), 50 required tests failing in the last.
2. The real ASGI app in this process (`integrations.web.create_app`, no background
   workers), asked through httpx's ASGI transport after 5 warm-up requests of each:
   the milestone page with its key (HTML, 60 KB or so), page 2 of its failing tests,
   `?format=json`; and the overview (the dashboard service and its template) for a
   person who may read the repository, as it runs once GitHub's answer is cached.
3. In this process, the parts of the milestone page: the verdict alone, all the page's
   reads (`services.milestone_dashboard`), and the template.

Prints the median, p95 and max of each and asserts nothing (a p95 over 100 ms is reported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.engine import ThrowawayDatabase
from bench.slack import CASES, LAUNCHES, REPOSITORY, build
from core import services
from core.db import close_database, open_database
from core.settings import Settings
from integrations.pages.views import ENVIRONMENT, render_milestone_page
from integrations.web import create_app

TARGET_MS = 100.0
PUBLIC_URL = "https://milestones.example.com"
SECRET = "bench secret"


async def timed(label: str, count: int, call: Callable[[], Awaitable[int]]) -> None:
    for _ in range(5):
        await call()
    timings = []
    size = 0
    for _ in range(count):
        started = time.perf_counter()
        size = await call()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
    verdict = "" if p95 <= TARGET_MS else f"  OVER the {TARGET_MS:.0f} ms target"
    print(
        f"  {label}: median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms "
        f"({size:,} bytes){verdict}"
    )


async def run(server_url: str | None, count: int) -> None:
    engine = "postgres" if server_url else "sqlite"
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as scratch:
        folder = Path(scratch)
        async with ThrowawayDatabase(server_url, folder) as url:
            started = time.perf_counter()
            await build(url, folder)
            print(
                f"{engine}: {CASES:,} required tests, {LAUNCHES * CASES:,} results; built in {time.perf_counter() - started:.1f} s"
            )
            settings = Settings(_env_file=None, database_url=url, github_webhook_secret=SECRET, public_url=PUBLIC_URL)
            await open_database(url)
            try:
                app = create_app(settings, manage_database=False, workers=0)
                page = app.state.page_links.milestone_url(REPOSITORY, "v2.0").removeprefix(PUBLIC_URL)
                async with app.router.lifespan_context(app):
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

                        def getter(path: str) -> Callable[[], Awaitable[int]]:
                            async def get() -> int:
                                response = await client.get(path)
                                assert response.status_code == 200, response.text[:200]
                                return len(response.content)

                            return get

                        await timed("milestone page", count, getter(page))
                        await timed("failing tests, page 2", count, getter(page + "&failing_page=2"))
                        await timed("?format=json", count, getter(page + "&format=json"))

                        async def overview() -> int:
                            result = await services.overview([REPOSITORY])
                            html = ENVIRONMENT.get_template("overview.html").render(
                                overview=result,
                                groups={
                                    group.repository: [(row, None, "/") for row in group.milestones]
                                    for group in result.groups
                                },
                                filters={"repository": "", "status": "", "tag": ""},
                                statuses=[],
                                session=None,
                            )
                            return len(html)

                        await timed("overview (service and template)", count, overview)

                        # Where the milestone page's time goes.
                        async def dashboard() -> int:
                            await services.milestone_dashboard(REPOSITORY, "v2.0")
                            return 0

                        board = await services.milestone_dashboard(REPOSITORY, "v2.0")

                        async def render() -> int:
                            return len(render_milestone_page(board))

                        async def verdict() -> int:
                            await services.get_verdict(REPOSITORY, "v2.0")
                            return 0

                        await timed("  of which the verdict alone (services.get_verdict)", count, verdict)
                        await timed("  of which the page's reads (services.milestone_dashboard)", count, dashboard)
                        await timed("  of which the template", count, render)
            finally:
                await close_database()
    load = os.getloadavg()
    print(f"  load average at the end (1, 5 min): {load[0]:.2f}, {load[1]:.2f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: a throw-away database there instead of SQLite")
    parser.add_argument("--count", type=int, default=100, help="timed requests of each kind (default 100)")
    args = parser.parse_args()
    asyncio.run(run(args.postgres, args.count))


if __name__ == "__main__":
    main()
