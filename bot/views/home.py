"""The App Home tab: the milestones of the repositories linked in this workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from bot.views.blocks import SURFACE_BLOCKS, Block, context, divider, escape, header, line_sections, section
from bot.views.milestones import STATUS_EMOJI, STATUS_LABEL, completion_line, due_text, slack_time, summary_line
from core.readings import MilestoneSummary

REPOSITORY_SECTIONS = 3
# Room kept at the end for "and N more repositories" and the footer.
RESERVED = 3


def home_view(
    milestones: Sequence[MilestoneSummary],
    awaiting: Sequence[MilestoneSummary],
    *,
    linked: bool,
    command: str,
    today: date,
    now: datetime,
) -> dict[str, Any]:
    blocks: list[Block] = [header("Milestone gate")]
    if awaiting:
        lines = [
            f"{STATUS_EMOJI[summary.status]} *{escape(summary.name)}* `{summary.repository}` "
            f"{STATUS_LABEL[summary.status]} · {completion_line(summary.completion)} · "
            f"{due_text(summary.target_date, summary.days_left, summary.overdue)}"
            for summary in awaiting
        ]
        blocks.append(section("*Awaiting your sign-off*"))
        blocks += line_sections(lines, max_sections=REPOSITORY_SECTIONS, more="…and {count} more")
        blocks.append(divider())
    by_repository: dict[str, list[MilestoneSummary]] = {}
    for summary in milestones:
        by_repository.setdefault(summary.repository, []).append(summary)
    shown = 0
    for repository, summaries in by_repository.items():
        part = [section(f"*{escape(repository)}*")]
        part += line_sections(
            [summary_line(summary, today, show_repository=False) for summary in summaries],
            max_sections=REPOSITORY_SECTIONS,
            more=f"…and {{count}} more: `{command} list {repository}`",
        )
        part.append(divider())
        if len(blocks) + len(part) > SURFACE_BLOCKS - RESERVED:
            break
        blocks += part
        shown += 1
    if not milestones:
        blocks.append(section("No open milestones yet. They come from GitHub milestones and `.github/milestones.yml`."))
    hidden = len(by_repository) - shown
    if hidden:
        blocks.append(context(f"…and {hidden} more repositories: `{command} list owner/repo`"))
    where = (
        "Repositories linked to a channel with "
        if linked
        else "Every repository, as no channel is linked yet: link one with "
    )
    blocks.append(context(f"{where}`{command} link owner/repo`. Updated {slack_time(now)}."))
    return {"type": "home", "blocks": blocks}
