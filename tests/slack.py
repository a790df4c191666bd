"""Slack as the tests play it: requests built in the shapes Slack sends and signed exactly as
Slack signs them, for posting to the real ASGI app.

    body = command_form("status v2.0", response_url=fake.response_url())
    response = await post(client, body, content_type=FORM, path="/slack/commands")

Shapes follow Slack's reference and the examples in it:
- signing: https://api.slack.com/authentication/verifying-requests-from-slack
  (docs.slack.dev/authentication/verifying-requests-from-slack); its worked example uses
  SIGNING_SECRET below, and tests/test_fake_slack.py checks `sign` against it.
- slash commands: https://api.slack.com/interactivity/slash-commands (form fields, in the
  order Slack sends them)
- block_actions: https://docs.slack.dev/reference/interaction-payloads/block_actions-payload
- view_submission: https://api.slack.com/reference/interaction-payloads/views
- events: https://api.slack.com/apis/connections/events-api (the event_callback envelope,
  and url_verification)

Interactions arrive form-encoded as one field, payload=<JSON>; events arrive as JSON.
The identifiers default to those of tests/fake_slack.py, so that the app, the fake Slack
and these requests agree on the workspace, the app and the bot.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "CHANNEL_ID",
    "FORM",
    "JSON",
    "SIGNING_SECRET",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "USER_ID",
    "VERIFICATION_TOKEN",
    "block_actions_form",
    "command_form",
    "event_json",
    "post",
    "sign",
    "signature",
    "url_verification_json",
    "view_submission_form",
]

# Slack's documented example signing secret (Verifying requests from Slack).
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
# The deprecated verification token Slack still sends in every payload; nothing checks it.
VERIFICATION_TOKEN = "xyzz0WbapA4vBCDEFasx0q6G"
TEAM_ID = "T0001"
TEAM_DOMAIN = "acme"
API_APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
USER_ID = "U0USER"
USER_NAME = "ada"
CHANNEL_ID = "C0CHAN"
CHANNEL_NAME = "releases"

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"

_serial = itertools.count(1)

Json = dict[str, Any]


# -- signing ---------------------------------------------------------------------------


def signature(body: bytes, timestamp: int | str, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature: "v0=" + hex HMAC-SHA256 of "v0:{timestamp}:{body}"."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def sign(body: bytes, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The two headers Slack signs a request with; the timestamp is now unless given."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": signature(body, stamp, secret)}


# -- identifiers Slack makes up ----------------------------------------------------------


def _trigger_id() -> str:
    # Slack's shape: "<digits>.<digits>.<32 hex>"
    n = next(_serial)
    return f"{1700000000000 + n}.{123456789 + n}.{uuid.uuid4().hex}"


def _response_url(kind: str, team_id: str) -> str:
    """A hooks.slack.com-shaped URL; tests that read responses pass FakeSlack.response_url()."""
    n = next(_serial)
    return f"https://hooks.slack.com/{kind}/{team_id}/{1000000000 + n}/{uuid.uuid4().hex[:24]}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


# -- slash commands ------------------------------------------------------------------------


def command_form(
    text: str,
    *,
    command: str = "/milestone",
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    channel_id: str = CHANNEL_ID,
    response_url: str | None = None,
    trigger_id: str | None = None,
    user_name: str = USER_NAME,
    channel_name: str = CHANNEL_NAME,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = API_APP_ID,
    enterprise_id: str | None = None,
    enterprise_name: str | None = None,
) -> bytes:
    """The form body Slack posts for a slash command, every field in Slack's order."""
    fields: list[tuple[str, str]] = [
        ("token", VERIFICATION_TOKEN),
        ("team_id", team_id),
        ("team_domain", team_domain),
    ]
    if enterprise_id is not None:
        fields += [("enterprise_id", enterprise_id), ("enterprise_name", enterprise_name or "")]
    fields += [
        ("channel_id", channel_id),
        ("channel_name", channel_name),
        ("user_id", user_id),
        ("user_name", user_name),
        ("command", command),
        ("text", text),
        ("api_app_id", api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url or _response_url("commands", team_id)),
        ("trigger_id", trigger_id or _trigger_id()),
    ]
    return urlencode(fields).encode()


# -- interactions --------------------------------------------------------------------------


def _user(user_id: str, team_id: str, user_name: str) -> Json:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def _find_action(blocks: Any, action_id: str) -> tuple[str | None, Json | None]:
    """The block_id and element of the element with this action_id, if the blocks have it."""
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


def _form(payload: Json) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def block_actions_form(
    action_id: str,
    value: str,
    *,
    block_id: str | None = None,
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    channel_id: str = CHANNEL_ID,
    response_url: str | None = None,
    message: Json | None = None,
    container: Json | None = None,
    view: Json | None = None,
    trigger_id: str | None = None,
    state: Json | None = None,
    user_name: str = USER_NAME,
    channel_name: str = CHANNEL_NAME,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = API_APP_ID,
    user_team_id: str | None = None,
) -> bytes:
    """The form body (payload=<JSON>) Slack posts when a user clicks a button.

    `user_team_id`: the clicking user's own workspace, when it is not `team_id` (a shared channel).

    With `view` (a Home tab or modal as FakeSlack stored it), the click came from that view:
    the container is the view and there is no channel, message or response_url. Otherwise it
    came from `message` (one of FakeSlack.messages(...), or a minimal bot message) in
    `channel_id`. The block_id and button text are taken from the blocks when they have the
    action_id; `block_id` overrides.
    """
    source_blocks = (view if view is not None else message or {}).get("blocks")
    found_block_id, element = _find_action(source_blocks, action_id)
    action: Json = {
        "action_id": action_id,
        "block_id": block_id or found_block_id or "actions",
        "text": (element or {}).get("text") or {"type": "plain_text", "text": action_id, "emoji": True},
        "value": value,
        "type": "button",
        "action_ts": _action_ts(),
    }
    if element and element.get("style"):
        action["style"] = element["style"]
    if view is None and message is None:
        message = {
            "type": "message",
            "text": "",
            "ts": "1700000000.000100",
            "bot_id": BOT_ID,
            "user": BOT_USER_ID,
            "app_id": api_app_id,
            "team": team_id,
            "blocks": [],
        }
    if message is not None:
        message = {k: v for k, v in message.items() if k != "channel"}  # FakeSlack's own key
    if container is None:
        if view is not None:
            container = {"type": "view", "view_id": view.get("id", "V0VIEW")}
        else:
            assert message is not None
            container = {
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
    payload: Json = {
        "type": "block_actions",
        "user": _user(user_id, user_team_id or team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or _trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        payload["view"] = view
        payload["state"] = state or view.get("state") or {"values": {}}
    else:
        payload["channel"] = {"id": channel_id, "name": channel_name}
        payload["message"] = message
        payload["state"] = state or {"values": {}}
        payload["response_url"] = response_url or _response_url("actions", team_id)
    payload["actions"] = [action]
    return _form(payload)


def _state_values(values: Json) -> Json:
    """`values` as view.state.values; a bare string becomes a plain_text_input's value."""
    state: Json = {}
    for block_id, actions in values.items():
        state[block_id] = {
            action_id: ({"type": "plain_text_input", "value": entry} if isinstance(entry, str) else entry)
            for action_id, entry in actions.items()
        }
    return state


def view_submission_form(
    callback_id: str,
    values: Json,
    *,
    private_metadata: str = "",
    user_id: str = USER_ID,
    team_id: str = TEAM_ID,
    view_id: str | None = None,
    blocks: list[Json] | None = None,
    title: str = "Milestone",
    external_id: str = "",
    trigger_id: str | None = None,
    user_name: str = USER_NAME,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = API_APP_ID,
    user_team_id: str | None = None,
) -> bytes:
    """The form body Slack posts when a user submits a modal (`user_team_id` as for block_actions_form).

    `values` is view.state.values: {block_id: {action_id: {"type": ..., "value": ...}}}; a
    plain string in place of the inner object stands for a plain_text_input's value.
    """
    view_id = view_id or f"V{next(_serial):08d}"
    payload: Json = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": _user(user_id, user_team_id or team_id, user_name),
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id or _trigger_id(),
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": blocks or [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": _state_values(values)},
            "hash": f"{int(time.time())}.{uuid.uuid4().hex[:8]}",
            "title": {"type": "plain_text", "text": title, "emoji": True},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
            "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": api_app_id,
            "external_id": external_id,
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _form(payload)


# -- events --------------------------------------------------------------------------------


def event_json(
    event: Json,
    *,
    team_id: str = TEAM_ID,
    event_id: str | None = None,
    event_time: int | None = None,
    api_app_id: str = API_APP_ID,
    bot_user_id: str = BOT_USER_ID,
) -> bytes:
    """An Events API delivery: the event_callback envelope around `event`."""
    stamp = int(time.time()) if event_time is None else event_time
    envelope: Json = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_serial):010d}",
        "event_time": stamp,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{uuid.uuid4().hex}",
    }
    return json.dumps(envelope).encode()


def url_verification_json(challenge: str) -> bytes:
    """The handshake Slack sends when the Events API request URL is set."""
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"}).encode()


# -- sending -------------------------------------------------------------------------------


async def post(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    content_type: str | None = None,
    timestamp: int | None = None,
    secret: str | None = SIGNING_SECRET,
    headers: dict[str, str] | None = None,
    path: str = "/slack/events",
) -> httpx.Response:
    """Sign `body` as Slack would and post it to `path`.

    `content_type` defaults to JSON for a body starting with "{" and to the form type
    otherwise; `secret=None` sends no signature; `headers` are added last (overriding, say,
    X-Slack-Signature, or adding X-Slack-Retry-Num).
    """
    if content_type is None:
        content_type = JSON if body.lstrip()[:1] == b"{" else FORM
    sent = {"Content-Type": content_type, "User-Agent": USER_AGENT}
    if secret is not None:
        sent.update(sign(body, timestamp, secret))
    sent.update(headers or {})
    return await client.post(path, content=body, headers=sent)
