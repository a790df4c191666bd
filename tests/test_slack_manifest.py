"""The Slack app manifest matches what the service serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from core.settings import Settings

MANIFEST = yaml.safe_load((Path(__file__).resolve().parent.parent / "slack-manifest.yml").read_text())


def test_every_request_url_is_the_one_endpoint() -> None:
    settings = MANIFEST["settings"]
    urls = [
        *(command["url"] for command in MANIFEST["features"]["slash_commands"]),
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert urls and all(url.endswith("/slack/events") for url in urls)
    assert settings["interactivity"]["is_enabled"] is True


def test_the_command_is_the_default_command_name() -> None:
    [command] = MANIFEST["features"]["slash_commands"]
    assert command["command"] == Settings(_env_file=None).slack_command == "/milestone"
    # Escaped, so that `approvers v2.0 add @dana` arrives with Dana's user id.
    assert len(command["description"]) <= 100 and command["should_escape"] is True


def test_home_tab_events_and_scopes() -> None:
    assert MANIFEST["features"]["app_home"]["home_tab_enabled"] is True
    assert MANIFEST["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    # commands: the slash command; chat:write(.public): Share, sign-off requests, announcements
    # and direct messages; usergroups:read: group approvers; users:read: who is an admin.
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "chat:write.public",
        "usergroups:read",
        "users:read",
        "files:write",
        "channels:history",
        "groups:history",
    }
    # Dismissed approvers are told in the app's messages tab, which they cannot write to.
    app_home = MANIFEST["features"]["app_home"]
    assert app_home["messages_tab_enabled"] is True and app_home["messages_tab_read_only_enabled"] is True
