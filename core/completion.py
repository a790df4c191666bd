"""Shell completion: `milestones completion bash|zsh|fish` prints a script that asks
`milestones __complete WORDS…` on each Tab.

The candidates come from the parser itself (subcommands, options, choices), so they never
drift from the commands; milestone and repository names come from the database, read
only when one is due. Completing never prints an error: a shell cannot show one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from core.cli import COMPLETE_COMMAND, build_parser

BASH = f"""# milestones completion for bash: eval "$(milestones completion bash)"
_milestones_complete() {{
    local IFS=$'\\n'
    COMPREPLY=($(milestones {COMPLETE_COMMAND} "${{COMP_WORDS[@]:1:COMP_CWORD}}" 2>/dev/null))
}}
complete -o default -o nosort -F _milestones_complete milestones
"""

ZSH = f"""#compdef milestones
# milestones completion for zsh: eval "$(milestones completion zsh)"
_milestones_complete() {{
    local -a candidates
    candidates=("${{(@f)$(milestones {COMPLETE_COMMAND} "${{(@)words[2,CURRENT]}}" 2>/dev/null)}}")
    if [[ -n "${{candidates[1]}}" ]]; then
        compadd -Q -- "${{candidates[@]}}"
    else
        _files
    fi
}}
compdef _milestones_complete milestones
"""

FISH = f"""# milestones completion for fish: milestones completion fish | source
complete -c milestones -e
complete -c milestones -k -a '(milestones {COMPLETE_COMMAND} (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
"""

SCRIPTS = {"bash": BASH, "zsh": ZSH, "fish": FISH}

# Positionals whose values are milestone names, and options whose values are repositories.
MILESTONE_ARGUMENTS = ("name",)
REPOSITORY_OPTIONS = ("--repo",)
REPOSITORY_ARGUMENTS = ("repo",)


def script(args: argparse.Namespace) -> int:
    sys.stdout.write(SCRIPTS[args.shell])
    return 0


def complete(args: argparse.Namespace) -> int:
    """The candidates for the last word, one a line."""
    words = list(args.words) or [""]
    try:
        candidates = candidates_for(words[:-1], words[-1])
    except Exception:
        # A broken database or settings must not print into someone's command line.
        return 0
    for candidate in candidates:
        print(candidate)
    return 0


def candidates_for(before: Sequence[str], current: str) -> list[str]:
    parser = build_parser(before[0] if before and not before[0].startswith("-") else None)
    positional_index = 0
    options: dict[str, str] = {}
    index = 0
    while index < len(before):
        word = before[index]
        subcommands = _subcommands(parser)
        if word.startswith("-"):
            action = _option(parser, word.partition("=")[0])
            if action is not None and action.nargs != 0 and "=" not in word:
                index += 1
                options[word] = before[index] if index < len(before) else ""
        elif subcommands is not None and positional_index == 0 and word in subcommands.choices:
            parser = subcommands.choices[word]
            positional_index = 0
        else:
            positional_index += 1
        index += 1
    # The value of an option?
    if before and before[-1].startswith("-") and "=" not in before[-1]:
        action = _option(parser, before[-1])
        if action is not None and action.nargs != 0:
            return _values(action, current, options, option=before[-1])
    if current.startswith("-"):
        return sorted(
            option
            for action in parser._actions
            if action.help != argparse.SUPPRESS
            for option in action.option_strings
            if option.startswith(current)
        )
    subcommands = _subcommands(parser)
    if subcommands is not None:
        return [name for name in subcommands.choices if name.startswith(current) and not name.startswith("__")]
    positionals = [action for action in parser._actions if not action.option_strings and action.nargs != 0]
    if positional_index < len(positionals):
        return _values(positionals[positional_index], current, options)
    return []


def _values(action: argparse.Action, current: str, options: dict[str, str], option: str | None = None) -> list[str]:
    if action.choices is not None:
        return [str(choice) for choice in action.choices if str(choice).startswith(current)]
    if option in REPOSITORY_OPTIONS or action.dest in REPOSITORY_ARGUMENTS:
        return _from_database(current, None, repositories=True)
    if action.dest in MILESTONE_ARGUMENTS:
        return _from_database(current, options.get("--repo") or None, repositories=False)
    return []


def _subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _option(parser: argparse.ArgumentParser, word: str) -> argparse.Action | None:
    return parser._option_string_actions.get(word)


def _from_database(prefix: str, repository: str | None, *, repositories: bool) -> list[str]:
    from core.settings import get_settings

    async def read() -> list[str]:
        from core.db import database
        from core.lookup import milestone_refs

        async with database(get_settings().database_url):
            refs = await milestone_refs([repository] if repository else None)
        names = {ref.repository if repositories else ref.name for ref in refs}
        return sorted(name for name in names if name.casefold().startswith(prefix.casefold()))

    return asyncio.run(read())
