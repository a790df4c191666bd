"""`milestones token create|list|revoke`: the upload tokens CI jobs send launches with."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import datetime


def add_token(token: argparse.ArgumentParser) -> None:
    """The actions of `milestones token`, declared on its parser."""
    from core.cli import with_database

    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    command = actions.add_parser("create", help="make a token (shown once) that uploads launches of one repository")
    command.add_argument("--repo", required=True, help="OWNER/NAME")
    command.add_argument("--name", required=True, help="what the token is for, e.g. jenkins (unique per repository)")
    command.add_argument("--plan", action="append", default=[], help="a plan it may upload to (repeat; default any)")
    command.add_argument("--by", default=_user(), help="who creates it (default: the user running this)")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=with_database(cmd_create))

    command = actions.add_parser("list", help="tokens with their scope and last use (never the tokens themselves)")
    command.add_argument("--repo", help="OWNER/NAME")
    command.add_argument("--all", action="store_true", help="include revoked tokens")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=with_database(cmd_list))

    command = actions.add_parser("revoke", help="stop a token from working, at once")
    command.add_argument("name")
    command.add_argument("--repo", help="OWNER/NAME (needed when several repositories have a token so named)")
    command.add_argument("--by", default=_user(), help="who revokes it (default: the user running this)")
    command.set_defaults(handler=with_database(cmd_revoke))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


async def cmd_create(args: argparse.Namespace) -> int:
    from core.output import print_json
    from core.services import create_token

    token, info = await create_token(args.repo, args.name, args.plan, args.by)
    if args.json:
        print_json({"token": token, **vars(info)})
        return 0
    # The token alone on standard output, so that a script can capture it.
    print(token)
    print(
        f"token {info.name} for {info.repository} ({_plans(info.plans)}): shown this once; "
        "store it as MILESTONES_TOKEN in the CI's secrets",
        file=sys.stderr,
    )
    return 0


async def cmd_list(args: argparse.Namespace) -> int:
    from core.output import print_json
    from core.services import list_tokens

    found = await list_tokens(args.repo, include_revoked=args.all)
    if args.json:
        print_json([vars(info) for info in found])
        return 0
    if not found:
        print("no upload tokens: `milestones token create --repo OWNER/NAME --name NAME` makes one")
        return 0
    for info in found:
        line = (
            f"{info.repository} {info.name} {info.prefix}… {_plans(info.plans)} · "
            f"created {_when(info.created_at)} by {info.created_by} · last used {_when(info.last_used_at)}"
        )
        if info.revoked_at is not None:
            line += f" · revoked {_when(info.revoked_at)} by {info.revoked_by}"
        print(line)
    return 0


async def cmd_revoke(args: argparse.Namespace) -> int:
    from core.services import revoke_token

    info = await revoke_token(args.repo, args.name, args.by)
    print(f"token {info.name} of {info.repository} revoked: uploads with it are refused from now on")
    return 0


def _plans(plans: list[str]) -> str:
    return "plans: " + ", ".join(plans) if plans else "any plan"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"
