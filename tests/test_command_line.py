"""Reading `/milestone …` text."""

from __future__ import annotations

import pytest

from bot.command_line import SUBCOMMANDS, Invocation, Query, UsageError, parse


def test_empty_text_is_help() -> None:
    assert parse("").subcommand.name == "help"
    assert parse("   ").subcommand.name == "help"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("list", ("list", None, None, None)),
        ("LIST acme/shop", ("list", None, "acme/shop", None)),
        ("status v2.0", ("status", "v2.0", None, None)),
        ("status Sprint 24", ("status", "Sprint 24", None, None)),
        ('status "Sprint 24"', ("status", "Sprint 24", None, None)),
        ("status “Sprint 24”", ("status", "Sprint 24", None, None)),
        ("status v2.0 acme/shop", ("status", "v2.0", "acme/shop", None)),
        ("status release/2.0", ("status", "release/2.0", None, None)),
        ("defects v2.0 HIGH", ("defects", "v2.0", None, "high")),
        ("defects v2.0", ("defects", "v2.0", None, None)),
        ("tests v2.0 flaky acme/shop", ("tests", "v2.0", "acme/shop", "flaky")),
        ("tests v2.0", ("tests", "v2.0", None, None)),
        ("trend v2", ("trend", "v2", None, None)),
        ("link acme/shop", ("link", None, "acme/shop", None)),
        ("link Acme/Shop", ("link", None, "acme/shop", None)),
        ("list ACME/shop", ("list", None, "acme/shop", None)),
        ("unlink", ("unlink", None, None, None)),
        ("status", ("status", None, None, None)),
        ("defects v2.0 acme/shop high", ("defects", "v2.0", "acme/shop", "high")),
        ("defects v2.0 high Acme/Shop", ("defects", "v2.0", "acme/shop", "high")),
        ("status R&amp;D &lt;beta&gt;", ("status", "R&D <beta>", None, None)),
        ("status Bob's release", ("status", "Bob's release", None, None)),
        ("status release\\2", ("status", "release\\2", None, None)),
        ('status "v2.0', ("status", "v2.0", None, None)),
        ('status ""', ("status", None, None, None)),
        ("defects high", ("defects", "high", None, None)),
    ],
)
def test_subcommands_and_their_arguments(text: str, expected: tuple) -> None:
    invocation = parse(text, known_repositories={"acme/shop"})
    assert (invocation.subcommand.name, invocation.milestone, invocation.repository, invocation.option) == expected


@pytest.mark.parametrize(
    ("text", "message", "subcommand"),
    [
        ("stauts v2.0", "there is no subcommand “stauts”", None),
        ("link", "link needs the repository, as owner/repo", "link"),
        ("link shop", "“shop” is not a repository; write it as owner/repo", "link"),
        ("list a/b c/d", "list takes one repository, as owner/repo", "list"),
        ("unlink acme/shop", "unlink takes no arguments", "unlink"),
    ],
)
def test_wrong_text_names_what_is_wrong(text: str, message: str, subcommand: str | None) -> None:
    with pytest.raises(UsageError) as raised:
        parse(text)
    assert str(raised.value) == message
    assert (raised.value.subcommand.name if raised.value.subcommand else None) == subcommand


def test_an_unknown_trailing_repository_stays_in_the_name() -> None:
    assert parse("status v2.0 acme/other", {"acme/shop"}) == Invocation(SUBCOMMANDS["status"], "v2.0 acme/other")


def test_queries_round_trip_through_a_button_value() -> None:
    query = Query("tests", "acme/shop", "Sprint 24", "flaky")
    assert Query.decode(query.encode()) == query
    assert Query.decode(Query("list").encode()) == Query("list")
    # The longest names there can be, in characters that JSON would otherwise escape.
    widest = Query("tests", "o" * 100 + "/" + "r" * 99, "🚀" * 200, "untested")
    assert Query.decode(widest.encode()) == widest and len(widest.encode()) < 2000


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        '{"subcommand":"status"}',
        '{"subcommand":"link","repository":"a/b","milestone":"x"}',
        '{"subcommand":"tests","repository":"a/b","milestone":"x","option":"rm -rf"}',
        '{"subcommand":"status","repository":"a/b","milestone":["x"]}',
        '{"subcommand":"status","repository":"a/b","milestone":"x","admin":true}',
        '{"subcommand":"list","milestone":"x"}',
        '{"subcommand":"unlink"}',
    ],
)
def test_tampered_button_values_are_refused(value: str) -> None:
    with pytest.raises(UsageError):
        Query.decode(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("approvers v2.0", ("v2.0", None, None, ())),
        ("approvers v2.0 add <@U0ANN|ann>", ("v2.0", None, "add", ("U0ANN",))),
        (
            "approvers Sprint 24 acme/shop ADD <@U0ANN> <!subteam^S0QA|@QA-Leads> <@U0ANN|ann>",
            ("Sprint 24", "acme/shop", "add", ("U0ANN", "@qa-leads")),
        ),
        ("approvers v2.0 remove @qa-leads", ("v2.0", None, "remove", ("@qa-leads",))),
        # Slack's escaping of < and > in the text is undone first.
        ("approvers v2.0 add &lt;@U0ANN|ann&gt;", ("v2.0", None, "add", ("U0ANN",))),
        # A milestone may be called "add": only a word after the name starts an edit.
        ("approvers add", ("add", None, None, ())),
    ],
)
def test_approver_edits_name_people_and_groups_by_mention(text: str, expected: tuple) -> None:
    invocation = parse(text, ["acme/shop"])
    assert invocation.subcommand.name == "approvers"
    assert (invocation.milestone, invocation.repository, invocation.edit, invocation.members) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("approvers v2.0 add", "whom to add? Mention them: `add @person`"),
        ("approvers v2.0 add dana", "“dana” is not a person or user group; mention them with @"),
        (
            "approvers v2.0 remove <#C0CHAN|releases>",
            "“<#C0CHAN|releases>” is not a person or user group; mention them with @",
        ),
    ],
)
def test_approver_edits_refuse_what_is_not_a_mention(text: str, message: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse(text)
    assert str(refused.value) == message and refused.value.subcommand.name == "approvers"


def test_admins_dismiss_decisions_by_mention() -> None:
    invocation = parse("signoffs v2.0 dismiss <@U0BOB|bob>")
    assert (invocation.subcommand.name, invocation.milestone, invocation.edit, invocation.members) == (
        "signoffs",
        "v2.0",
        "dismiss",
        ("U0BOB",),
    )
    assert parse("approvers v2.0 dismiss <@U0BOB|bob>").edit is None, "each subcommand has its own edits"


def test_sign_off_queries_rerun_only_reads() -> None:
    assert Query.decode(Query("signoffs", "acme/shop", "v2.0").encode()).subcommand == "signoffs"
    with pytest.raises(UsageError):
        Query.decode('{"subcommand":"signoff","repository":"acme/shop","milestone":"v2.0"}')
