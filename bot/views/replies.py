"""Answers that are not about one milestone: help, usage, what was not found, links."""

from __future__ import annotations

from collections.abc import Sequence

from bot.command_line import SUBCOMMANDS, Query, Subcommand, UsageError, typed
from bot.views.blocks import Message, actions, button, context, escape, header, section
from core.lookup import Resolution, ambiguous_text, not_found_text, ref_text

CHOICES = 5


def help_message(command: str) -> Message:
    lines = [f"{usage(command, subcommand)}: {subcommand.summary}" for subcommand in SUBCOMMANDS.values()]
    examples = ", ".join(
        f"`{command} {subcommand.example}`" for subcommand in SUBCOMMANDS.values() if subcommand.name != "help"
    )
    blocks = [
        header("Milestone gate"),
        section("\n".join(lines)),
        section(f"*Examples*: {examples}"),
        context(
            "Milestone names are forgiving: `v2`, `V2.0` and `2.0` all find v2.0. "
            f"Add `owner/repo` after the name when several repositories have it, or `{command} link owner/repo` once per channel. "
            "Answers are visible only to you until you press *Share to channel*."
        ),
    ]
    return Message(f"{command}: " + ", ".join(SUBCOMMANDS), blocks)


def usage_message(command: str, error: UsageError) -> Message:
    subcommand = error.subcommand
    if subcommand is None:
        text = escape(f"{error}. Try `{command} help`.")
        return Message(text, [section(f":thinking_face: {escape(str(error))}."), *help_message(command).blocks[1:3]])
    return Message(
        escape(f"{error}: {usage(command, subcommand)}"),
        [
            section(
                f":thinking_face: {escape(str(error))}.\nUsage: {usage(command, subcommand)}, e.g. `{command} {subcommand.example}`"
            )
        ],
    )


def usage(command: str, subcommand: Subcommand) -> str:
    arguments = f" {subcommand.arguments}" if subcommand.arguments else ""
    return f"`{command} {subcommand.name}{arguments}`"


def which_milestone(
    command: str, subcommand: Subcommand, open_names: Sequence[str], option: str | None = None
) -> Message:
    """No milestone named; `option`: the word taken as the subcommand's option (`defects high`)."""
    shown = f"`{command} {subcommand.name} <milestone> {option}`" if option else usage(command, subcommand)
    text = f"Which milestone? {shown}"
    names = ", ".join(f"`{escape(name)}`" for name in open_names[:20]) or "none yet"
    return Message(text, [section(f":thinking_face: Which milestone? {shown}\nOpen milestones: {names}")])


def not_found(resolution: Resolution, where: str | None) -> Message:
    place = f" in {where}" if where else ""
    suggestions = resolution.suggestions
    text = escape(not_found_text(resolution, where))
    lines = [f":mag: No milestone *{escape(resolution.query)}*{place}."]
    if suggestions:
        lines.append("Did you mean: " + ", ".join(f"*{escape(ref_text(ref))}*" for ref in suggestions) + "?")
    return Message(text, [section("\n".join(lines))])


def choose_repository(resolution: Resolution, query: Query, command: str) -> Message:
    """One name in several repositories: a button per repository runs the command in it."""
    refs = resolution.ambiguous[:CHOICES]
    buttons = [
        button(
            ref.repository,
            f"choose_repository_{index}",
            value=Query(query.subcommand, ref.repository, ref.name, query.option).encode(),
        )
        for index, ref in enumerate(refs)
    ]
    text = escape(ambiguous_text(resolution))
    more = len(resolution.ambiguous) - len(refs)
    others = f" It is in {more} more: add `owner/repo` after the name." if more else ""
    blocks = [
        section(
            f":twisted_rightwards_arrows: *{escape(resolution.query)}* is a milestone in several repositories. Which one?{others}"
        ),
        actions(*buttons, block_id="choose_repository"),
        context(f"`{command} link owner/repo` makes one repository this channel's default."),
    ]
    return Message(text, blocks)


def name_the_repository(resolution: Resolution, command: str, subcommand: str, after: str = "") -> Message:
    """A change (a sign-off request, an approver edit) in a name several repositories share."""
    repositories = ", ".join(f"`{ref.repository}`" for ref in resolution.ambiguous[:10])
    example = escape(f"{command} {subcommand} {typed(resolution.query)} {resolution.ambiguous[0].repository}{after}")
    reply = f"*{escape(resolution.query)}* is a milestone in {repositories}. Add the repository: `{example}`"
    return Message(
        escape(f"{resolution.query} is a milestone in several repositories; add owner/repo."),
        [section(f":twisted_rightwards_arrows: {reply}")],
    )


def unknown_repository(name: str, known: Sequence[str]) -> Message:
    listed = (
        ", ".join(f"`{repository}`" for repository in known[:20])
        or "none yet (install the GitHub App, or run `milestones sync`)"
    )
    return Message(
        escape(f"No repository {name} is known here."),
        [section(f":mag: No repository *{escape(name)}* is known here. Known: {listed}.")],
    )


def linked(repository: str, before: str | None, command: str) -> Message:
    change = f" (was {before})" if before and before != repository else ""
    text = f"This channel now speaks about {repository}{change}."
    return Message(
        text, [section(f":link: {text} `{command} list` and every milestone name now mean *{repository}* here.")]
    )


def unlinked(repository: str | None) -> Message:
    if repository is None:
        return Message("This channel has no default repository.", [section("This channel has no default repository.")])
    text = f"This channel no longer defaults to {repository}."
    return Message(text, [section(f":broken_chain: {text}")])


def done(what: str) -> Message:
    return Message(escape(what), [section(f":white_check_mark: {escape(what)}")])


def failure(reason: str) -> Message:
    return Message(escape(reason), [section(f":warning: {escape(reason)}")])
