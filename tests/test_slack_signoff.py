"""Sign-off through Slack: `/milestone signoff`, its buttons and modal, signed as Slack signs
them and sent to the real app, with Slack's side played by the loopback fake Slack."""

from __future__ import annotations

import asyncio
import copy
import json
from datetime import timedelta
from typing import Any

import pytest

from core import services
from core.clock import utcnow
from core.enums import Decision, GateStatus
from core.ingest import LaunchSource
from core.models import Milestone, Signoff, SignoffRequest, UserGroup
from tests.block_kit import assert_within_limits
from tests.slack import CHANNEL_ID, TEAM_ID, block_actions_form, post, view_submission_form
from tests.test_slack_app import REPO, Slack, eventually, report, section_texts, slack_app

ANN, BOB, EVE, ADMIN = "U0ANN", "U0BOB", "U0EVE", "U0ADMIN"
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["plan:smoke"]
    signoff: {approvers: [U0ANN, U0BOB]}
"""


@pytest.fixture
async def slack(db: str):
    async with slack_app(db) as running:
        running.fake.add_user(ANN, "ann")
        running.fake.add_user(BOB, "bob")
        running.fake.add_user(EVE, "eve")
        running.fake.add_user(ADMIN, "root", is_admin=True)
        yield running


runs = iter(range(1, 1_000_000))


async def launch(failing: int = 0) -> services.LaunchOutcome:
    """A launch of the same five required tests, the first `failing` of them failing."""
    cases = {f"test_{n}": "failed" if n < failing else "passed" for n in range(5)}
    return await services.record_launch(
        report(cases), LaunchSource(REPO, "smoke", f"run-{next(runs)}", commit_sha="abc1234", branch="main")
    )


async def green_release(policy: str = POLICY) -> None:
    await services.apply_policy_file(REPO, policy)
    await services.save_milestone(REPO, "v2.0", target_date=utcnow().date() + timedelta(days=7), github_number=1)
    await launch()


async def notices(slack: Slack) -> int:
    """Do the owed Slack work now (the web process's runner would, a second after the change)."""
    return await slack.app.state.notices.drain(now=utcnow() + timedelta(seconds=11))


async def request(
    slack: Slack, user: str = EVE, channel: str = CHANNEL_ID, text: str = "signoff v2.0"
) -> dict[str, Any]:
    """Run `/milestone signoff` and return the request message the app posted."""
    before = len(slack.fake.messages(channel))
    answer = await slack.answer(text, user_id=user, channel_id=channel)
    assert answer["response_type"] == "ephemeral", answer
    messages = await eventually(lambda: slack.fake.messages(channel)[before:])
    # A copy: the fake edits its own on chat.update, and a client may still show this one.
    return copy.deepcopy(messages[-1])


def current(slack: Slack, message: dict[str, Any], channel: str = CHANNEL_ID) -> dict[str, Any]:
    """The message as it reads in Slack now, after chat.update."""
    return slack.fake.message(channel, message["ts"])


async def press(
    slack: Slack,
    message: dict[str, Any],
    action_id: str,
    user: str,
    *,
    value: str | None = None,
    team_id: str = TEAM_ID,
    channel: str = CHANNEL_ID,
) -> str:
    """Press a button of a request message; returns the response_url the click carried."""
    button = next(
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    )
    response_url = slack.fake.response_url(channel=channel, original=message)
    body = block_actions_form(
        action_id,
        button["value"] if value is None else value,
        user_id=user,
        team_id=team_id,
        channel_id=channel,
        response_url=response_url,
        message=message,
    )
    response = await post(slack.client, body)
    assert response.status_code == 200, response.text
    return response_url


async def private_reply(slack: Slack, response_url: str) -> str:
    [reply] = await eventually(lambda: slack.fake.responses(response_url))
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    return reply["text"]


async def submit_reason(slack: Slack, modal: dict[str, Any], user: str, reason: str):
    body = view_submission_form(
        modal["callback_id"],
        {"reason": {"reason_input": reason}},
        private_metadata=modal["private_metadata"],
        user_id=user,
        view_id=modal["id"],
        blocks=modal["blocks"],
    )
    return await post(slack.client, body)


async def trail() -> list[tuple[str, Decision, bool]]:
    return [
        (entry.user_id, entry.decision, entry.valid) for entry in (await services.signoff_state(REPO, "v2.0")).trail
    ]


# The request ----------------------------------------------------------------------------


async def test_a_request_names_the_gate_and_mentions_the_approvers(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    assert_within_limits({"text": message["text"], "blocks": message["blocks"]}, "message")
    text = section_texts(message)
    assert "<@U0EVE> asks for sign-off of *v2.0*" in text and "Ready for sign-off" in text
    assert (
        ":hourglass_flowing_sand: <@U0ANN> to decide" in text and ":hourglass_flowing_sand: <@U0BOB> to decide" in text
    )
    labels = [
        element["text"]["text"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert labels == ["Approve", "Reject", "Withdraw my decision"]
    [stored] = await SignoffRequest.all()
    assert (stored.channel_id, stored.message_ts, stored.requested_by, stored.live_for) == (
        CHANNEL_ID,
        message["ts"],
        EVE,
        stored.milestone_id,
    )


async def test_a_red_gate_says_what_blocks_and_refuses_approval(slack: Slack) -> None:
    await green_release()
    await launch(failing=2)
    message = await request(slack)
    assert (
        ":lock: *Approval opens when tests, defects and coverage are met.* Still blocking: 2 of 5 required tests failing"
        in section_texts(message)
    )
    url = await press(slack, message, "signoff_approve", ANN)
    assert (
        "V2.0 cannot be approved until its tests, defects and coverage are met (2 of 5 required tests failing"
        in await private_reply(slack, url)
    )
    assert await trail() == []


async def test_a_new_request_replaces_the_old_one_which_points_to_it(slack: Slack) -> None:
    await green_release()
    first = await request(slack)
    second = await request(slack, channel="C0OTHER")
    await notices(slack)
    # The old message is edited; the new one is already up to date.
    assert [call.body["ts"] for call in slack.fake.calls("chat.update")] == [first["ts"]]
    old = current(slack, first)
    assert old["blocks"][0]["text"]["text"].startswith(
        ":arrow_right: This sign-off request for v2.0 (acme/shop) was replaced by <https://acme.slack.com/archives/C0OTHER/p"
    )
    assert [block["type"] for block in old["blocks"]] == ["section"], "no buttons left"
    # A click on the old message (its buttons, as a client that did not refresh still shows them) counts nothing.
    url = await press(slack, first, "signoff_approve", ANN)
    assert (await private_reply(slack, url)).startswith(
        "This sign-off request was replaced by a newer one: <https://acme.slack.com/archives/C0OTHER/"
    )
    assert await trail() == []
    await press(slack, second, "signoff_approve", ANN, channel="C0OTHER")
    assert await eventually_trail([(ANN, Decision.APPROVE, True)])


async def eventually_trail(expected: list, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while await trail() != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"trail is {await trail()}, expected {expected}")
        await asyncio.sleep(0.02)
    return True


# Decisions ------------------------------------------------------------------------------


async def test_an_approver_approves_and_the_message_shows_it(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    url = await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, True)])
    await notices(slack)
    updated = current(slack, message)
    text = section_texts(updated)
    assert (
        ":white_check_mark: <@U0ANN> approved <!date^" in text and ":hourglass_flowing_sand: <@U0BOB> to decide" in text
    )
    assert "1 of 2 approvals" in text
    assert slack.fake.responses(url) == [], "an approval that counts needs no private answer"
    [update] = slack.fake.calls("chat.update")
    assert update.body["ts"] == message["ts"] and update.body["channel"] == CHANNEL_ID


async def test_someone_else_is_told_they_are_not_an_approver_and_nothing_is_recorded(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    for action in ("signoff_approve", "signoff_reject", "signoff_withdraw"):
        url = await press(slack, message, action, EVE)
        reply = await private_reply(slack, url)
        assert reply == "You are not an approver of v2.0 (approvers: <@U0ANN>, <@U0BOB>)."
    assert slack.fake.calls("views.open") == []
    assert await trail() == []


async def test_a_double_click_and_concurrent_clicks_record_one_approval(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, True)])
    again = await press(slack, message, "signoff_approve", ANN)
    assert await private_reply(slack, again) == "You approved v2.0 already; nothing changed."
    # Five clicks at once by Bob: one record, whichever request wins.
    await asyncio.gather(*(press(slack, message, "signoff_approve", BOB) for _ in range(5)))
    await eventually(lambda: len([call for call in slack.fake.calls("response_url")]) >= 5)
    assert await eventually_trail([(ANN, Decision.APPROVE, True), (BOB, Decision.APPROVE, True)])
    assert await Signoff.filter(user_id=BOB).count() == 1


async def test_reject_asks_for_a_reason_and_a_rejection_blocks_until_withdrawn(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    await press(slack, message, "signoff_reject", BOB)
    [modal] = await eventually(lambda: list(slack.fake.views.values()))
    assert modal["callback_id"] == "signoff_reject_reason" and modal["type"] == "modal"
    # Without a reason (Slack's client checks it; the app checks again): the modal stays, nothing recorded.
    empty = await submit_reason(slack, modal, BOB, "   ")
    assert empty.json() == {
        "response_action": "errors",
        "errors": {"reason": "Please say why: the reason is shown with the rejection."},
    }
    assert await trail() == []
    done = await submit_reason(slack, modal, BOB, "Perf sign-off <@U0ANN> missing")
    assert done.status_code == 200 and done.text == ""
    assert await trail() == [(BOB, Decision.REJECT, True)]
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.BLOCKED
    await notices(slack)
    text = section_texts(current(slack, message))
    assert ":no_entry: <@U0BOB> rejected <!date^" in text and "“Perf sign-off &lt;@U0ANN&gt; missing”" in text
    # Ann's approval cannot complete it while the rejection stands.
    await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(BOB, Decision.REJECT, True), (ANN, Decision.APPROVE, True)])
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.BLOCKED
    # Only its author withdraws it: Ann's withdrawal ends her own approval.
    await press(slack, message, "signoff_withdraw", BOB)
    await eventually_trail(
        [(BOB, Decision.REJECT, False), (ANN, Decision.APPROVE, True), (BOB, Decision.WITHDRAW, False)]
    )
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.READY_FOR_SIGNOFF
    await notices(slack)
    assert ":hourglass_flowing_sand: <@U0BOB> to decide" in section_texts(current(slack, message))


async def test_a_tampered_value_or_a_foreign_team_records_nothing(slack: Slack) -> None:
    await green_release()
    await services.save_milestone(REPO, "v2.1")
    other = await Milestone.get(name="v2.1")
    message = await request(slack)
    # The value names another milestone: the click is on v2.0's request, so it is refused.
    url = await press(slack, message, "signoff_approve", ANN, value=json.dumps({"milestone": other.id}))
    assert await private_reply(slack, url) == "This button is out of date: it does not belong to a sign-off request."
    url = await press(slack, message, "signoff_approve", ANN, value="not json")
    assert await private_reply(slack, url) == "This button is out of date: it does not belong to a sign-off request."
    # A button copied into another message is not on a request.
    forged = {**message, "ts": "1700000099.000100"}
    url = await press(slack, forged, "signoff_approve", ANN)
    assert await private_reply(slack, url) == "This button is out of date: it does not belong to a sign-off request."
    # Another workspace: answered with nothing, recorded nothing.
    body = block_actions_form(
        "signoff_approve",
        message["blocks"][-2]["elements"][0]["value"],
        user_id=ANN,
        team_id="T0OTHER",
        message=message,
    )
    response = await post(slack.client, body)
    assert response.status_code == 200 and response.text == ""
    # The workspace's own team, but a person of another workspace (a shared channel).
    value = message["blocks"][-2]["elements"][0]["value"]
    body = block_actions_form("signoff_approve", value, user_id=ANN, user_team_id="T0OTHER", message=message)
    response = await post(slack.client, body)
    assert response.status_code == 200 and response.text == ""
    submission = view_submission_form(
        "signoff_reject_reason",
        {"reason": {"reason_input": "from elsewhere"}},
        private_metadata=json.dumps(
            {"milestone": json.loads(value)["milestone"], "channel": CHANNEL_ID, "ts": message["ts"]}
        ),
        user_id=ANN,
        user_team_id="T0OTHER",
    )
    response = await post(slack.client, submission)
    assert response.status_code == 200 and response.text == ""
    await asyncio.sleep(0.1)
    assert await trail() == []


# User groups ----------------------------------------------------------------------------


async def test_user_group_approvers_are_resolved_from_slack(slack: Slack) -> None:
    slack.fake.add_usergroup("S0QA", "qa-leads", [ANN, BOB])
    await green_release(POLICY.replace("[U0ANN, U0BOB]}", "['@qa-leads'], quorum: 1}"))
    message = await request(slack)
    assert [call.body.get("usergroup") for call in slack.fake.calls("usergroups.users.list")] == ["S0QA"]
    text = section_texts(message)
    assert "<@U0ANN> to decide" in text and "<@U0BOB> to decide" in text
    url = await press(slack, message, "signoff_approve", EVE)
    assert await private_reply(slack, url) == "You are not an approver of v2.0 (approvers: *@qa-leads*)."
    # Eve joins the group: her next click is checked against Slack's membership now.
    slack.fake.add_usergroup("S0QA", "qa-leads", [ANN, BOB, EVE])
    await press(slack, message, "signoff_approve", EVE)
    await eventually_trail([(EVE, Decision.APPROVE, True)])
    milestone = await Milestone.get(name="v2.0")
    assert milestone.completed_at is not None and [entry["user"] for entry in milestone.completed_with] == [EVE]


# Stale approvals, completion, reopening -------------------------------------------------


async def test_a_full_release_from_red_to_complete_with_a_late_regression(slack: Slack) -> None:
    await services.apply_policy_file(REPO, POLICY.replace("signoff:", "close_on_complete: true\n    signoff:"))
    await services.save_milestone(REPO, "v2.0", github_number=1)
    await launch(failing=1)
    await slack.answer("link acme/shop", channel_id="C0TEAM")
    message = await request(slack)
    # Red: nobody can approve yet.
    url = await press(slack, message, "signoff_approve", ANN)
    assert "cannot be approved until" in await private_reply(slack, url)
    # Fixed: Ann approves, then a launch fails again and her approval is dismissed.
    await launch()
    await notices(slack)
    assert ":lock:" not in section_texts(current(slack, message))
    await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, True)])
    outcome = await launch(failing=1)
    [dismissal] = outcome.changes[0].dismissed
    await notices(slack)
    [dm] = slack.fake.messages(ANN)
    assert dm["text"].startswith("Your approval of v2.0 was dismissed: gate turned red: 1 of 5 required tests failing")
    assert "<https://acme.slack.com/archives/C0CHAN/p" in section_texts(dm), "links to the request"
    text = section_texts(current(slack, message))
    assert (
        ":warning: approval by <@U0ANN> dismissed <!date^" in text
        and ":hourglass_flowing_sand: <@U0ANN> to decide" in text
    )
    # Green again; both approve; the milestone completes and is announced.
    await launch()
    # One after the other, as people click: the second click is pressed once the first is
    # recorded, so the trail's order is the order of the clicks.
    trail_so_far = [(ANN, Decision.APPROVE, False), (ANN, Decision.DISMISS, False)]
    for approver in (ANN, BOB):
        await press(slack, message, "signoff_approve", approver)
        trail_so_far.append((approver, Decision.APPROVE, True))
        await eventually_trail(trail_so_far)
    milestone = await Milestone.get(name="v2.0")
    assert milestone.completed_at is not None and [entry["user"] for entry in milestone.completed_with] == [ANN, BOB]
    await notices(slack)
    assert section_texts(current(slack, message)).count(":tada: *Complete* since") == 1
    for channel in ("C0TEAM", CHANNEL_ID):
        texts = [message["text"] for message in slack.fake.messages(channel)]
        assert texts.count("v2.0 (acme/shop) is complete") == 1, channel
    assert await notices(slack) == 0, "announced once"
    # A late critical defect reopens it: announced too.
    await services.upsert_defect(
        REPO, services.IssueFacts(9, "Data loss", ["bug", "P0"], "open", milestone_title="v2.0", milestone_number=1)
    )
    await notices(slack)
    reopened = "v2.0 (acme/shop) reopened: open defects over the limit: 1 critical (max 0); 0 of 2 approvals"
    team = [message["text"] for message in slack.fake.messages("C0TEAM")]
    assert team.index(reopened) > team.index("v2.0 (acme/shop) is complete")
    # The linked channel also had the live alerts, each once: green, red with the new defect, and so on.
    assert "v2.0 (acme/shop): turned red; 1 new critical or high defect" in team
    # Both approvals were given on a green gate, so the defect dismissed them, and each approver was told.
    assert [len(slack.fake.messages(approver)) for approver in (ANN, BOB)] == [2, 1]
    assert (await Milestone.get(name="v2.0")).completed_at is None
    assert dismissal.decision is Decision.DISMISS


async def test_a_completion_that_flips_back_before_it_is_announced_is_not_announced(slack: Slack) -> None:
    await green_release(POLICY.replace("[U0ANN, U0BOB]}", "[U0ANN]}"))
    await slack.answer("link acme/shop", channel_id="C0TEAM")
    await services.record_decision(REPO, "v2.0", ANN, Decision.APPROVE)
    await services.withdraw_decision(REPO, "v2.0", ANN)
    await notices(slack)
    assert slack.fake.messages("C0TEAM") == []


# Approvers and the trail -----------------------------------------------------------------


async def test_approvers_kept_in_slack_are_changed_by_admins_and_approvers(slack: Slack) -> None:
    await green_release(POLICY.replace("    signoff: {approvers: [U0ANN, U0BOB]}\n", ""))
    slack.fake.add_usergroup("S0QA", "qa-leads", [BOB])
    answer = await slack.answer("approvers v2.0")
    assert "None yet: a workspace admin names the first with `/milestone approvers v2.0 add @person`" in section_texts(
        answer
    )
    refused = await slack.answer("approvers v2.0 add <@U0EVE|eve>", user_id=EVE)
    assert "Only v2.0's approvers and workspace admins can change its approvers" in refused["text"]
    added = await slack.answer("approvers v2.0 add <@U0ANN|ann> <!subteam^S0QA|@qa-leads>", user_id=ADMIN)
    text = section_texts(added)
    assert (
        "*Approvers of v2.0* (acme/shop): <@U0ANN>, *@qa-leads*" in text
        and "That is 2 people: <@U0ANN>, <@U0BOB>" in text
    )
    assert "Added by <@U0ADMIN>." in text
    unknown = await slack.answer("approvers v2.0 add @nobody", user_id=ANN)
    assert unknown["text"] == "There is no user group @nobody in this workspace"
    # Ann is an approver now, so she may change them.
    removed = await slack.answer("approvers v2.0 remove <!subteam^S0QA|@qa-leads>", user_id=ANN)
    assert "*Approvers of v2.0* (acme/shop): <@U0ANN>\n" in section_texts(removed)
    # The policy file wins once it lists approvers, and Slack says so.
    await services.apply_policy_file(REPO, POLICY)
    policy = await slack.answer("approvers v2.0 add <@U0EVE|eve>", user_id=ADMIN)
    assert "V2.0's approvers are set in acme/shop's .github/milestones.yml; change them there." in policy["text"]
    listed = await slack.answer("approvers v2.0")
    assert "Set in acme/shop's `.github/milestones.yml`; change them there." in section_texts(listed)


async def test_someone_who_may_not_edit_approvers_is_refused_before_any_group_is_read(slack: Slack) -> None:
    await green_release(POLICY.replace("    signoff: {approvers: [U0ANN, U0BOB]}\n", ""))
    await slack.answer("approvers v2.0 add <@U0ANN|ann>", user_id=ADMIN)
    slack.fake.add_usergroup("S0QA", "qa-leads", [EVE])
    slack.fake.clear_calls()
    refused = await slack.answer("approvers v2.0 add @qa-leads @nobody", user_id=EVE)
    assert refused["text"] == ":no_entry_sign: Only v2.0's approvers and workspace admins can change its approvers."
    # Only whether Eve is an admin was asked of Slack; no group was read, nothing was stored.
    assert [call.method for call in slack.fake.calls()] == ["users.info"]
    assert await UserGroup.all().count() == 0
    # An approver is not looked up at all.
    slack.fake.clear_calls()
    await slack.answer("approvers v2.0 remove <@U0EVE|eve>", user_id=ANN)
    assert [call.method for call in slack.fake.calls()] == []
    # The policy file's approvers are refused without a word to Slack.
    await services.apply_policy_file(REPO, POLICY)
    slack.fake.clear_calls()
    policy = await slack.answer("approvers v2.0 add @qa-leads", user_id=EVE)
    assert "change them there" in policy["text"] and slack.fake.calls() == []


async def test_a_group_handle_over_the_limit_is_refused_with_a_message(slack: Slack) -> None:
    await green_release(POLICY.replace("    signoff: {approvers: [U0ANN, U0BOB]}\n", ""))
    slack.fake.clear_calls()
    answer = await slack.answer("approvers v2.0 add @" + "q" * 150, user_id=ADMIN)
    assert (
        answer["text"]
        == "@qqqqqqqqqqqqqqqqqqqqqqqqqqqqq… is too long for a user-group handle (150 characters; at most 80)"
    )
    # Bolt's own auth.test aside, Slack was not asked.
    assert [call.method for call in slack.fake.calls() if call.method != "auth.test"] == []
    assert await UserGroup.all().count() == 0


async def test_the_trail_is_read_back_from_slack(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, True)])
    await press(slack, message, "signoff_withdraw", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, False), (ANN, Decision.WITHDRAW, False)])
    answer = await slack.answer("signoffs v2.0")
    text = section_texts(answer)
    assert ":white_check_mark: <!date^" in text and "<@U0ANN> approved" in text
    assert "<@U0ANN> withdrew their decision: “withdrawn”" in text
    assert answer["text"] == "Sign-off trail of v2.0 (acme/shop): 2 entries"


async def test_the_trail_says_which_decisions_were_made_on_the_milestone_page(slack: Slack) -> None:
    await green_release()
    await services.record_decision(REPO, "v2.0", ANN, Decision.APPROVE, via="web")
    await services.record_decision(REPO, "v2.0", BOB, Decision.APPROVE)
    text = section_texts(await slack.answer("signoffs v2.0"))
    assert "<@U0ANN> approved _(standing)_ _(on the milestone page)_" in text
    assert "<@U0BOB> approved _(standing)_\n" in text + "\n" and text.count("on the milestone page") == 1


async def test_a_milestone_without_approvers_gets_no_request(slack: Slack) -> None:
    await green_release(POLICY.replace("    signoff: {approvers: [U0ANN, U0BOB]}\n", ""))
    answer = await slack.answer("signoff v2.0")
    assert (
        answer["text"]
        == "v2.0 has no approvers, so there is nobody to ask. Name them in the policy file, or with `/milestone approvers v2.0 add @person`"
    )
    assert slack.fake.messages(CHANNEL_ID) == [] and await SignoffRequest.all().count() == 0


async def test_early_sign_off_and_self_approval_follow_the_policy(slack: Slack) -> None:
    policy = POLICY.replace(
        "[U0ANN, U0BOB]}", "[U0ANN, U0BOB], allow_early_signoff: true, prevent_self_approval: true}"
    )
    await green_release(policy)
    await launch(failing=1)
    message = await request(slack, user=ANN)
    assert ":lock:" not in section_texts(message), "approval is open while red"
    url = await press(slack, message, "signoff_approve", ANN)
    assert await private_reply(slack, url) == (
        ":no_entry_sign: You requested this sign-off, and v2.0's policy does not let the requester approve it."
    )
    await press(slack, message, "signoff_approve", BOB)
    await eventually_trail([(BOB, Decision.APPROVE, True)])
    [approval] = await Signoff.all()
    assert approval.given_while_green is False and approval.requested_by == ANN


async def test_a_reason_is_submitted_without_waiting_for_slack(slack: Slack) -> None:
    slack.fake.add_usergroup("S0QA", "qa-leads", [BOB])
    await green_release(POLICY.replace("[U0ANN, U0BOB]}", "[U0ANN, '@qa-leads']}"))
    message = await request(slack)
    await press(slack, message, "signoff_reject", BOB)
    [modal] = await eventually(lambda: list(slack.fake.views.values()))
    # Slack is slow now (rate-limited for 4 s): the submission must not wait for it.
    slack.fake.rate_limit("usergroups.list", times=3, retry_after=4)
    slack.fake.clear_calls()
    done = await submit_reason(slack, modal, BOB, "Not before the pen test")
    assert done.status_code == 200 and done.text == ""
    assert [call.method for call in slack.fake.calls() if call.method.startswith("usergroups")] == []
    assert await trail() == [(BOB, Decision.REJECT, True)]
    # Someone who is not an approver sees why under the reason field.
    again = await submit_reason(slack, modal, EVE, "I object")
    assert again.json() == {
        "response_action": "errors",
        "errors": {"reason": "You are not an approver of v2.0 (approvers: @U0ANN, @qa-leads)."},
    }


async def test_a_click_reads_group_members_again_when_they_are_over_a_minute_old(slack: Slack) -> None:
    slack.fake.add_usergroup("S0QA", "qa-leads", [ANN, EVE])
    await green_release(POLICY.replace("[U0ANN, U0BOB]}", "['@qa-leads'], quorum: 1}"))
    message = await request(slack)
    # Eve leaves the group in Slack. Within the minute the stored members serve...
    slack.fake.add_usergroup("S0QA", "qa-leads", [ANN])
    slack.fake.clear_calls()
    await UserGroup.filter(handle="@qa-leads").update(refreshed_at=utcnow() - timedelta(minutes=2))
    # ...after it, a click reads them again, and Eve's counts for nothing.
    url = await press(slack, message, "signoff_approve", EVE)
    assert await private_reply(slack, url) == "You are not an approver of v2.0 (approvers: *@qa-leads*)."
    assert [call.body.get("usergroup") for call in slack.fake.calls("usergroups.users.list")] == ["S0QA"]
    assert await trail() == []


async def test_an_admin_dismisses_the_rejection_of_someone_who_left(slack: Slack) -> None:
    await green_release(POLICY.replace("    signoff: {approvers: [U0ANN, U0BOB]}\n", ""))
    await slack.answer("approvers v2.0 add <@U0ANN|ann> <@U0BOB|bob>", user_id=ADMIN)
    message = await request(slack)
    await press(slack, message, "signoff_reject", BOB)
    [modal] = await eventually(lambda: list(slack.fake.views.values()))
    await submit_reason(slack, modal, BOB, "Wait for the audit")
    # Bob leaves; his rejection still blocks, and an approver cannot clear it.
    await slack.answer("approvers v2.0 remove <@U0BOB|bob>", user_id=ADMIN)
    await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(BOB, Decision.REJECT, True), (ANN, Decision.APPROVE, True)])
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.BLOCKED
    refused = await slack.answer("signoffs v2.0 dismiss <@U0BOB|bob>", user_id=ANN)
    assert "Only workspace admins can dismiss someone else's decision" in refused["text"]
    answer = await slack.answer("signoffs v2.0 dismiss <@U0BOB|bob>", user_id=ADMIN)
    text = section_texts(answer)
    assert "Dismissed by <@U0ADMIN>: <@U0BOB>." in text
    assert "the rejection by <@U0BOB> was dismissed: “dismissed by U0ADMIN”" in text
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.COMPLETE


# Slack failing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    ["connection dropped after Slack stored it", "503 after Slack stored it", "internal_error, not stored"],
)
async def test_a_request_whose_post_failed_leaves_one_live_request_message(slack: Slack, failure: str) -> None:
    await green_release()
    if failure == "connection dropped after Slack stored it":
        slack.fake.drop_connection("chat.postMessage", processed=True)
    elif failure == "503 after Slack stored it":
        slack.fake.fail("chat.postMessage", status=503, processed=True)
    else:
        slack.fake.fail("chat.postMessage", error="internal_error")
    answer = await slack.answer("signoff v2.0", user_id=EVE)
    assert answer["text"] == "Sign-off request for v2.0 posted."
    [message] = slack.fake.messages(CHANNEL_ID)
    assert message["metadata"]["event_type"] == "milestone_signoff_request"
    [stored] = await SignoffRequest.all()
    assert stored.message_ts == message["ts"] and stored.channel_id == CHANNEL_ID
    # Its buttons work: it is the live request.
    url = await press(slack, message, "signoff_approve", ANN)
    await eventually_trail([(ANN, Decision.APPROVE, True)])
    assert slack.fake.responses(url) == []


async def test_slack_failing_on_its_side_is_answered_with_a_clear_message(slack: Slack) -> None:
    await green_release()
    slack.fake.fail("chat.postMessage", times=10, status=500)
    answer = await slack.answer("signoff v2.0", user_id=EVE)
    assert answer["text"].endswith(
        "Slack is having trouble right now (internal_error); nothing was changed. Please try again in a minute."
    )
    assert slack.fake.messages(CHANNEL_ID) == [] and await SignoffRequest.all().count() == 0


@pytest.mark.parametrize(
    ("status", "error"), [(500, ""), (503, ""), (200, "fatal_error"), (200, "service_unavailable")]
)
async def test_announcements_ride_out_slacks_failures(slack: Slack, status: int, error: str) -> None:
    from bot.slack_api import post_in_channels
    from bot.views.blocks import Message as Text
    from core.backoff import Backoff

    slack.fake.fail("chat.postMessage", times=2, status=status, error=error)
    told = await post_in_channels(
        slack.app.state.slack.bolt.client,
        ["C0ONE", "C0TWO"],
        Text("v2.0 is complete"),
        backoff=Backoff(first_delay=timedelta(0)),
    )
    assert told == 2
    assert [m["text"] for m in slack.fake.messages("C0ONE") + slack.fake.messages("C0TWO")] == ["v2.0 is complete"] * 2


async def test_a_reason_over_2000_characters_is_refused_by_the_server(slack: Slack) -> None:
    await green_release()
    message = await request(slack)
    await press(slack, message, "signoff_reject", BOB)
    [modal] = await eventually(lambda: list(slack.fake.views.values()))
    refused = await submit_reason(slack, modal, BOB, "r" * 2001)
    assert refused.json() == {
        "response_action": "errors",
        "errors": {"reason": "The reason takes at most 2,000 characters; this one has 2,001."},
    }
    assert await trail() == []
    with pytest.raises(services.SignoffRefused, match="at most 2,000 characters"):
        await services.record_decision(REPO, "v2.0", BOB, Decision.REJECT, comment="r" * 2001)
    assert (await submit_reason(slack, modal, BOB, "r" * 2000)).text == ""
    assert await trail() == [(BOB, Decision.REJECT, True)]
