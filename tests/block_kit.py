"""Block Kit's limits, checked the way Slack checks what an app posts.

    problems({"text": "fallback", "blocks": [...]}, "message")  # [] when Slack would take it
    assert_within_limits(view, "modal")                          # AssertionError listing them

A payload is a message (top-level "text" and "blocks", as sent to chat.postMessage,
chat.update, chat.postEphemeral or a response_url) or a view object (surface "home" or
"modal", as sent to views.publish, views.open and views.update). Each problem names the
place with a JSON pointer into the payload, as Slack's own "invalid_blocks" errors do.

The numbers come from Slack's reference (docs.slack.dev, formerly api.slack.com/reference):
- blocks: up to 50 blocks in a message, 100 in a modal or Home tab
  https://docs.slack.dev/reference/block-kit/blocks
- section: text 1..3000 characters; at most 10 fields of at most 2000 characters each;
  block_id at most 255 characters, unique in the message
  https://docs.slack.dev/reference/block-kit/blocks/section-block
- header: plain_text, at most 150 characters
  https://docs.slack.dev/reference/block-kit/blocks/header-block
- context: at most 10 elements  https://docs.slack.dev/reference/block-kit/blocks/context-block
- actions: at most 25 elements  https://docs.slack.dev/reference/block-kit/blocks/actions-block
- button: plain_text text at most 75, value 2000, action_id 255, url 3000 characters
  https://docs.slack.dev/reference/block-kit/block-elements/button-element
- modal: plain_text title, close and submit of at most 24 characters; submit required when
  the view has an input block  https://docs.slack.dev/reference/views/modal-views
- the top-level text of a message is its notification and accessibility fallback when it
  has blocks  https://docs.slack.dev/reference/methods/chat.postMessage
  Slack itself takes a message without it; here it is a problem, so that tests of our
  views insist on one (the fake Slack server leaves it out: see `block_problems`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_BLOCKS", "MAX_POSTED_BLOCK_TEXT", "assert_within_limits", "block_problems", "block_text", "problems"]

MAX_BLOCKS = {"message": 50, "home": 100, "modal": 100}
# chat.postMessage and chat.update refuse blocks holding more text than this in all
# ("msg_blocks_too_long"). Undocumented; reported in Slack's SDK issues
# (slackapi/python-slack-sdk, slackapi/bolt-js) at about 12,000 characters, while response
# URLs take more.
MAX_POSTED_BLOCK_TEXT = 12_000
MAX_BLOCK_ID = 255
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_ACTION_ID = 255
MAX_BUTTON = {"text": 75, "value": 2000, "url": 3000}
MAX_MODAL_TEXT = 24  # title, close, submit
TEXT_TYPES = ("plain_text", "mrkdwn")

Json = dict[str, Any]


def problems(payload: Json, surface: str) -> list[str]:
    """Everything Slack's limits reject in `payload`, plus a message without a text fallback."""
    found = block_problems(payload, surface)
    if surface == "message":
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            found.insert(0, "/text: a message needs a non-empty top-level text (the notification fallback)")
    return found


def assert_within_limits(payload: Json, surface: str) -> None:
    found = problems(payload, surface)
    if found:
        raise AssertionError(f"{len(found)} Block Kit problem(s) in a {surface}:\n" + "\n".join(found))


def block_problems(payload: Json, surface: str) -> list[str]:
    """What Slack answers "invalid_blocks" (or, for views, refuses) for: `problems` less the
    text fallback rule. The fake Slack server uses this one."""
    if surface not in MAX_BLOCKS:
        raise ValueError(f"unknown surface {surface!r}: one of {sorted(MAX_BLOCKS)}")
    found: list[str] = []
    if surface in ("home", "modal"):
        _check_view(payload, surface, found)
    blocks = payload.get("blocks")
    if blocks is None:
        if surface != "message":
            found.append("/blocks: a view needs a blocks array")
        return found
    if not isinstance(blocks, list):
        return found + ["/blocks: must be an array"]
    if len(blocks) > MAX_BLOCKS[surface]:
        found.append(f"/blocks: {len(blocks)} blocks; a {surface} takes at most {MAX_BLOCKS[surface]}")
    seen_ids: dict[str, int] = {}
    for index, block in enumerate(blocks):
        _check_block(block, f"/blocks/{index}", seen_ids, found)
    return found


def _check_view(view: Json, surface: str, found: list[str]) -> None:
    if view.get("type") != surface:
        found.append(f"/type: a {surface} view has type {surface!r}, not {view.get('type')!r}")
    if surface != "modal":
        return
    if "title" not in view:
        found.append("/title: a modal needs a title")
    for key in ("title", "close", "submit"):
        if key in view:
            _check_text(view[key], f"/{key}", found, limit=MAX_MODAL_TEXT, plain_only=True)
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    if has_input and "submit" not in view:
        found.append("/submit: a modal with an input block needs a submit button")


def _check_block(block: Any, where: str, seen_ids: dict[str, int], found: list[str]) -> None:
    if not isinstance(block, dict) or not block.get("type"):
        found.append(f"{where}: a block is an object with a type")
        return
    block_id = block.get("block_id")
    if block_id is not None:
        if not isinstance(block_id, str) or not block_id:
            found.append(f"{where}/block_id: must be a non-empty string")
        else:
            if len(block_id) > MAX_BLOCK_ID:
                found.append(f"{where}/block_id: {len(block_id)} characters, at most {MAX_BLOCK_ID}")
            if block_id in seen_ids:
                found.append(f"{where}/block_id: {block_id!r} repeats the block_id of /blocks/{seen_ids[block_id]}")
            else:
                seen_ids[block_id] = int(where.rsplit("/", 1)[1])
    kind = block["type"]
    if kind == "section":
        _check_section(block, where, found)
    elif kind == "header":
        if "text" not in block:
            found.append(f"{where}/text: a header needs text")
        else:
            _check_text(block["text"], f"{where}/text", found, limit=MAX_HEADER_TEXT, plain_only=True)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            found.append(f"{where}/elements: a context block needs elements")
            return
        if len(elements) > MAX_CONTEXT_ELEMENTS:
            found.append(f"{where}/elements: {len(elements)} elements, at most {MAX_CONTEXT_ELEMENTS}")
        for index, element in enumerate(elements):
            if isinstance(element, dict) and element.get("type") in TEXT_TYPES:
                _check_text(element, f"{where}/elements/{index}", found)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            found.append(f"{where}/elements: an actions block needs elements")
            return
        if len(elements) > MAX_ACTIONS_ELEMENTS:
            found.append(f"{where}/elements: {len(elements)} elements, at most {MAX_ACTIONS_ELEMENTS}")
        for index, element in enumerate(elements):
            _check_element(element, f"{where}/elements/{index}", found)


def _check_section(block: Json, where: str, found: list[str]) -> None:
    if "text" not in block and "fields" not in block:
        found.append(f"{where}: a section needs text or fields")
    if "text" in block:
        _check_text(block["text"], f"{where}/text", found, limit=MAX_SECTION_TEXT)
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or not fields:
            found.append(f"{where}/fields: must be a non-empty array")
        else:
            if len(fields) > MAX_FIELDS:
                found.append(f"{where}/fields: {len(fields)} fields, at most {MAX_FIELDS}")
            for index, field in enumerate(fields):
                _check_text(field, f"{where}/fields/{index}", found, limit=MAX_FIELD_TEXT)
    if isinstance(block.get("accessory"), dict):
        _check_element(block["accessory"], f"{where}/accessory", found)


def _check_element(element: Any, where: str, found: list[str]) -> None:
    if not isinstance(element, dict) or not element.get("type"):
        found.append(f"{where}: an element is an object with a type")
        return
    action_id = element.get("action_id")
    if isinstance(action_id, str) and len(action_id) > MAX_ACTION_ID:
        found.append(f"{where}/action_id: {len(action_id)} characters, at most {MAX_ACTION_ID}")
    if element["type"] != "button":
        return
    if "text" not in element:
        found.append(f"{where}/text: a button needs text")
    else:
        _check_text(element["text"], f"{where}/text", found, limit=MAX_BUTTON["text"], plain_only=True)
    for key in ("value", "url"):
        value = element.get(key)
        if isinstance(value, str) and len(value) > MAX_BUTTON[key]:
            found.append(f"{where}/{key}: {len(value)} characters, at most {MAX_BUTTON[key]}")


def _check_text(obj: Any, where: str, found: list[str], *, limit: int | None = None, plain_only: bool = False) -> None:
    """A text composition object: {"type": "plain_text" | "mrkdwn", "text": "..."}."""
    if not isinstance(obj, dict):
        found.append(f"{where}: a text object is an object with type and text, not {type(obj).__name__}")
        return
    kind = obj.get("type")
    if kind not in TEXT_TYPES:
        found.append(f"{where}/type: {kind!r} is not a text type ({', '.join(TEXT_TYPES)})")
    elif plain_only and kind != "plain_text":
        found.append(f"{where}/type: must be plain_text, not {kind}")
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        found.append(f"{where}/text: a text object needs non-empty text")
    elif limit is not None and len(text) > limit:
        found.append(f"{where}/text: {len(text)} characters, at most {limit}")


def block_text(blocks: Any) -> int:
    """Characters in all the text objects (mrkdwn and plain_text) of the blocks, at any depth."""
    if isinstance(blocks, list):
        return sum(block_text(item) for item in blocks)
    if not isinstance(blocks, dict):
        return 0
    total = 0
    if blocks.get("type") in ("mrkdwn", "plain_text") and isinstance(blocks.get("text"), str):
        total += len(blocks["text"])
    for value in blocks.values():
        if isinstance(value, (dict, list)):
            total += block_text(value)
    return total
