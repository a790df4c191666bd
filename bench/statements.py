"""What one webhook costs the database, by kind: SQL statements and time, in one process.

    python -m bench.statements [--engine sqlite|postgres] [--count 680]

The deliveries of the intake benchmark (`bench.webhooks`: the same mix, built the same
way) are stored and processed one at a time by a delivery worker in this process, on a
throw-away database migrated as `milestones migrate` does. Every statement Tortoise sends
is counted (its `tortoise.db_client` log), from storing the delivery to marking it done
(one that no handler takes is stored ignored, as intake does, and never claimed);
BEGIN and COMMIT are not. The counts do not move with the machine's load, unlike the
times printed beside them. Figures are from the second half of the run, when the
milestones, issues and pull requests it touches exist already.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.webhooks import MIX, SECRET, ThrowawayDatabase, build_deliveries, engine_arguments
from core import db, inbox
from core.settings import Settings
from integrations.github.events import handler_context
from integrations.github.handlers import unhandled
from integrations.github.worker import DeliveryWorker


class StatementCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def run(engine: str, server: str, count: int) -> None:
    deliveries = build_deliveries(count)
    statements: dict[str, list[int]] = defaultdict(list)
    seconds: dict[str, list[float]] = defaultdict(list)
    counter = StatementCounter()
    sql_log = logging.getLogger("tortoise.db_client")
    with tempfile.TemporaryDirectory(prefix="bench-statements-") as scratch:
        async with ThrowawayDatabase(engine, server, Path(scratch)) as database:
            await db.migrate(database.url)
            await db.open_database(database.url)
            sql_log.setLevel(logging.DEBUG)
            sql_log.addHandler(counter)
            sql_log.propagate = False
            try:
                settings = Settings(database_url=database.url, github_webhook_secret=SECRET)
                async with handler_context(settings) as context:
                    worker = DeliveryWorker(context)
                    for index, delivery in enumerate(deliveries):
                        kind = MIX[index % len(MIX)]
                        payload = json.loads(delivery.body)
                        counter.count = 0
                        started = time.perf_counter()
                        # As intake stores it: a delivery no handler takes is ignored there.
                        ignored = unhandled(delivery.event, payload.get("action"))
                        await inbox.accept(
                            delivery.guid,
                            delivery.event,
                            delivery.body.decode(),
                            action=payload.get("action"),
                            repository=(payload.get("repository") or {}).get("full_name"),
                            ignored=ignored,
                        )
                        if ignored is None:
                            status = await worker.process_next()
                            if status is None or status.value not in ("done", "ignored"):
                                raise SystemExit(f"delivery {index} ({kind}) was not processed: {status}")
                        if index >= count // 2:
                            seconds[kind].append(time.perf_counter() - started)
                            statements[kind].append(counter.count)
            finally:
                sql_log.removeHandler(counter)
                await db.close_database()
    print(f"{engine}: {count} deliveries processed one at a time; per delivery, the second half's mean")
    every_count = [number for kind in statements for number in statements[kind]]
    every_time = [second for kind in seconds for second in seconds[kind]]
    for kind in dict.fromkeys(MIX):
        print(
            f"  {kind:26} {statistics.mean(statements[kind]):5.1f} statements"
            f"  {statistics.mean(seconds[kind]) * 1000:6.2f} ms"
        )
    print(
        f"  {'the mix':26} {statistics.mean(every_count):5.1f} statements"
        f"  {statistics.mean(every_time) * 1000:6.2f} ms ({len(every_time) / sum(every_time):.0f} a second)"
    )


def main() -> int:
    parser = engine_arguments(__doc__)
    parser.add_argument("--count", type=int, default=680, help="deliveries (default 680: 34 rounds of the mix)")
    arguments = parser.parse_args()
    asyncio.run(run(arguments.engine, arguments.postgres, arguments.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
