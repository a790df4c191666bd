"""`milestones serve`, `milestones deliveries` and `milestones sync`, declared for the core CLI.

Only their arguments live here: the entry points load this module for `milestones --help`,
and `integrations/commands.py` (the web server, GitHub, the delivery inbox) is imported
only when one of these commands runs.
"""

from __future__ import annotations

import os
from typing import Any

from core.cli import port, positive, repository_name


def add_serve(commands: Any) -> None:
    command = commands.add_parser("serve", help="run the web process (GitHub webhooks, health checks)")
    command.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=port, default=os.environ.get("PORT", "8000"), help="default $PORT or 8000")
    command.set_defaults(handler="integrations.commands:serve")


def add_deliveries(commands: Any) -> None:
    command = commands.add_parser("deliveries", help="webhook deliveries received: list them, replay one")
    command.add_argument("--failed", action="store_true", help="only those that failed for good")
    command.add_argument("--limit", type=positive, default=50, help="how many, newest first (default 50)")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler="integrations.commands:deliveries")
    actions = command.add_subparsers(dest="deliveries_command", metavar="ACTION")
    replay = actions.add_parser("replay", help="process a stored delivery again, here and now")
    replay.add_argument("guid", metavar="GUID")
    replay.set_defaults(handler="integrations.commands:replay")


def add_sync(commands: Any) -> None:
    command = commands.add_parser(
        "sync", help="pull a repository's milestones, defects, policy, latest runs and open pull requests"
    )
    command.add_argument("repo", metavar="OWNER/REPO", type=repository_name)
    command.set_defaults(handler="integrations.commands:sync")
