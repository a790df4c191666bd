"""Block Kit building blocks that cannot exceed Slack's limits, and Slack's markup (escaping, links, mentions).

Limits from Slack's Block Kit reference: 50 blocks in a message, 100 in the Home tab
and modals, 3,000 characters in a section's text, 10 fields of 2,000 characters, 75
characters in a button's label, 150 in a header, 10 elements in a context block.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from core.wording import clip

Block = dict[str, Any]

MESSAGE_BLOCKS = 50
SURFACE_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
SECTION_FIELDS = 10
BUTTON_LABEL = 75
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
# A notification shows a line or two of the fallback; the rest is in the blocks.
FALLBACK_TEXT = 1000
# Slack refuses chat.postMessage and chat.update whose blocks hold more than about 12,000
# characters of text in all (msg_blocks_too_long; undocumented, reported in Slack's SDK
# issues). Response URLs take more, but a message shared from one is posted again.
POSTED_BLOCK_TEXT = 11_000
SHARE_ACTION = "share"
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Message:
    """A message as Slack takes it: `text` is the notification and screen-reader fallback."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    # Results start private; errors always stay private.
    response_type: str = "ephemeral"

    def payload(self) -> dict[str, Any]:
        return {"text": clip(self.text, FALLBACK_TEXT), "blocks": self.blocks, "response_type": self.response_type}

    def posted(self, rest: str = "") -> dict[str, Any]:
        """The arguments of chat.postMessage and chat.update: the fallback clipped, and the blocks
        within POSTED_BLOCK_TEXT, what does not fit counted in "…and N more" followed by `rest`
        (where to read it all: a link, a command)."""
        return {"text": clip(self.text, FALLBACK_TEXT), "blocks": within_text_budget(self.blocks, rest=rest)}

    def with_blocks(self, *extra: Block) -> Message:
        return replace(self, blocks=[*self.blocks, *extra])

    def in_channel(self) -> Message:
        """The message as everyone in the channel sees it: no Share button."""
        blocks = []
        for block in self.blocks:
            if block["type"] == "actions":
                elements = [element for element in block["elements"] if element.get("action_id") != SHARE_ACTION]
                if not elements:
                    continue
                block = {**block, "elements": elements}
            blocks.append(block)
        return replace(self, blocks=blocks, response_type="in_channel")


def escape(text: str) -> str:
    """User text (test names, issue titles) must not turn into mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    label = escape(label).replace("|", "¦")
    return f"<{url}|{label}>" if url else label


def mention(user_id: str) -> str:
    """A user mention; anything that is not a Slack user id (a typo in a policy file)
    is shown as text, never as markup."""
    return f"<@{user_id}>" if USER_ID.fullmatch(user_id) else escape(user_id)


def mrkdwn(text: str, limit: int = SECTION_TEXT) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(text, limit)}


def plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, HEADER_TEXT)}


def section(text: str, *, fields: Sequence[str] = (), accessory: Block | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(text)}
    if fields:
        block["fields"] = [mrkdwn(item, FIELD_TEXT) for item in fields[:SECTION_FIELDS]]
    if accessory:
        block["accessory"] = accessory
    return block


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(text) for text in texts[:CONTEXT_ELEMENTS]]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    label: str, action_id: str, *, value: str | None = None, url: str | None = None, style: str | None = None
) -> Block:
    element: Block = {"type": "button", "text": plain(label, BUTTON_LABEL), "action_id": action_id}
    if value is not None:
        element["value"] = value
    if url is not None:
        element["url"] = url
    if style is not None:
        element["style"] = style
    return element


def actions(*elements: Block, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements)}
    if block_id:
        block["block_id"] = block_id
    return block


def line_sections(lines: Sequence[str], *, max_sections: int, more: str, max_lines: int | None = None) -> list[Block]:
    """Lines packed into as few sections as fit, at most `max_sections` and `max_lines`;
    what does not fit is summed up in a last context block: `more` with `{count}` filled in."""
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    shown = 0
    for line in lines[:max_lines]:
        line = clip(line, SECTION_TEXT)
        if chunk and size + len(line) + 1 > SECTION_TEXT:
            if len(blocks) + 1 == max_sections:
                break
            blocks.append(section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
        shown += 1
    if chunk:
        blocks.append(section("\n".join(chunk)))
    hidden = len(lines) - shown
    if hidden and more:
        blocks.append(context(more.replace("{count}", f"{hidden:,}")))
    return blocks


def sparkline(values: Iterable[float | None]) -> str:
    """One character per value, scaled between the smallest and largest (a flat line sits
    in the middle); gaps as spaces."""
    points = list(values)
    known = [value for value in points if value is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    top = len(BARS) - 1
    return "".join(
        " " if value is None else BARS[top // 2 if not span else round((value - low) / span * top)] for value in points
    )


def text_length(value: Any) -> int:
    """Characters of text a block (or anything inside one) shows: every text object's."""
    if isinstance(value, list):
        return sum(text_length(item) for item in value)
    if not isinstance(value, dict):
        return 0
    own = (
        len(value["text"])
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str)
        else 0
    )
    return own + sum(text_length(item) for key, item in value.items() if isinstance(item, (dict, list)))


def _lines(block: Block) -> int:
    texts = [block.get("text")] + list(block.get("fields") or []) + list(block.get("elements") or [])
    return sum(
        len([line for line in text["text"].splitlines() if line.strip()])
        for text in texts
        if isinstance(text, dict) and isinstance(text.get("text"), str) and text.get("type") in ("mrkdwn", "plain_text")
    )


# Room kept for the note that says what was left out.
_NOTE_ROOM = 600


def within_text_budget(blocks: Sequence[Block], limit: int = POSTED_BLOCK_TEXT, *, rest: str = "") -> list[Block]:
    """The blocks, at most `limit` characters of text in all. Sections and context blocks that
    do not fit are left out (a section cut at a line where part of it fits), counted in lines
    in an "…and N more" note where they were; headers and buttons are always kept."""
    if text_length(list(blocks)) <= limit:
        return list(blocks)
    kept_always = sum(text_length(block) for block in blocks if block["type"] not in ("section", "context"))
    budget = limit - kept_always - _NOTE_ROOM - len(rest)
    out: list[Block] = []
    hidden = 0
    note_at: int | None = None
    for block in blocks:
        if block["type"] not in ("section", "context"):
            out.append(block)
            continue
        size = text_length(block)
        if note_at is None and size <= budget:
            out.append(block)
            budget -= size
            continue
        if note_at is None:
            partial = _first_lines(block, budget)
            if partial is not None:
                out.append(partial)
                hidden += _lines(block) - _lines(partial)
                note_at = len(out)
                continue
            note_at = len(out)
        hidden += max(_lines(block), 1)
    if note_at is None:  # only headers and buttons over the limit: nothing to leave out
        return out
    note = f"…and {hidden:,} more {'line' if hidden == 1 else 'lines'}" + (f": {rest}" if rest else "")
    out.insert(note_at, context(note))
    return out


def _first_lines(block: Block, budget: int) -> Block | None:
    """A section's first lines within `budget` characters; None when not even one fits."""
    if block["type"] != "section" or not isinstance(block.get("text"), dict) or budget <= 0:
        return None
    lines = block["text"]["text"].split("\n")
    kept: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    if not any(line.strip() for line in kept):
        return None
    partial = {key: value for key, value in block.items() if key not in ("fields", "accessory")}
    partial["text"] = {**block["text"], "text": "\n".join(kept)}
    return partial
