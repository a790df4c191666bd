"""GitHub webhooks through the real ASGI app: verification, durable intake, redeliveries, restarts."""

from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import urlencode

import pytest

from core import inbox
from core.enums import DeliveryStatus
from core.models import Defect, Delivery
from tests.github import SECRET, fixture, running_app, settings_for, signature


@pytest.fixture
async def hooks(db):
    async with running_app(settings_for(db)) as running:
        yield running


async def stored(guid: str) -> Delivery:
    return await Delivery.get(guid=guid)


def test_signatures_are_made_as_github_documents_them():
    # The worked example of GitHub's "Validating webhook deliveries".
    assert signature(b"Hello, World!") == "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


async def test_a_signed_delivery_is_stored_answered_202_then_processed(hooks):
    response = await hooks.send("ping", fixture("ping", "payload"), "guid-ping")
    assert response.status_code == 202
    assert response.json() == {"delivery": "guid-ping", "status": "accepted"}
    delivery = await stored("guid-ping")
    assert (delivery.status, delivery.event) == (DeliveryStatus.PENDING, "ping")
    assert json.loads(delivery.payload)["hook_id"] == 109948940
    assert await hooks.worker.drain() == 1
    delivery = await stored("guid-ping")
    assert (delivery.status, delivery.note, delivery.attempts) == (DeliveryStatus.DONE, "hook 109948940", 1)


@pytest.mark.parametrize(
    "headers, secret",
    [
        ({}, None),  # no signature at all
        ({}, "not the secret"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, SECRET),
        ({"X-Hub-Signature-256": "sha1=0123"}, SECRET),
        ({"X-Hub-Signature-256": "garbage"}, SECRET),
        ({"X-Hub-Signature-256": "sha256=\u00e9".encode("latin-1")}, SECRET),  # not ASCII
    ],
)
async def test_a_bad_signature_is_refused_and_leaves_nothing_but_a_log_line(hooks, caplog, headers, secret):
    caplog.set_level(logging.WARNING, logger="integrations.github.intake")
    response = await hooks.send("issues", fixture("issues", "opened"), "guid-bad", secret=secret, headers=headers)
    assert response.status_code == 401
    assert await Delivery.all().count() == 0
    [record] = caplog.records
    assert (
        "refused" in record.getMessage() and "guid-bad" in record.getMessage() and "192.0.2.10" in record.getMessage()
    )


async def test_the_signature_covers_the_exact_bytes(hooks):
    body = json.dumps(fixture("ping", "payload")).encode()
    response = await hooks.client.post(
        "/github/webhooks",
        content=body + b" ",
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": "g", "X-Hub-Signature-256": signature(body)},
    )
    assert response.status_code == 401


async def test_malformed_json_is_refused_with_a_message(hooks):
    response = await hooks.send("issues", b'{"action": "opened",', "guid-broken")
    assert response.status_code == 400
    assert response.json()["error"].startswith("malformed JSON: ")
    response = await hooks.send("issues", b"[1, 2]", "guid-array")
    assert response.status_code == 400 and "must be an object" in response.json()["error"]
    assert await Delivery.all().count() == 0


async def test_a_body_over_25_mb_is_refused(hooks):
    body = b'{"padding": "' + b"x" * (25 * 1024 * 1024) + b'"}'
    response = await hooks.send("issues", body, "guid-huge")
    assert response.status_code == 413
    assert await Delivery.all().count() == 0


async def test_deliveries_need_their_event_and_guid_headers(hooks):
    response = await hooks.send("ping", fixture("ping", "payload"), headers={"X-GitHub-Delivery": ""})
    assert response.status_code == 400


async def test_a_form_encoded_delivery_is_accepted(hooks):
    body = urlencode({"payload": json.dumps(fixture("ping", "payload"))}).encode()
    response = await hooks.send(
        "ping", body, "guid-form", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 202
    assert json.loads((await stored("guid-form")).payload)["hook_id"] == 109948940


async def test_a_redelivery_of_a_processed_guid_is_answered_200_and_not_processed_again(hooks):
    payload = fixture("issues", "opened")
    assert (await hooks.send("issues", payload, "guid-1")).status_code == 202
    await hooks.worker.drain()
    again = await hooks.send("issues", payload, "guid-1")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert await hooks.worker.drain() == 0
    assert (await stored("guid-1")).attempts == 1


async def test_a_redelivery_of_a_failed_guid_is_processed_again(db):
    async with running_app(settings_for(db, webhook_max_attempts=1)) as hooks:
        await _redeliver_after_failure(hooks)


async def _redeliver_after_failure(hooks):
    payload = fixture("issues", "opened")
    payload["issue"]["number"] = "not a number"
    assert (await hooks.send("issues", payload, "guid-f")).status_code == 202
    await hooks.worker.drain()
    failed = await stored("guid-f")
    assert failed.status is DeliveryStatus.FAILED and failed.error
    # Redelivered from GitHub's UI after the cause was fixed: processed, not dropped.
    response = await hooks.send("issues", fixture("issues", "opened"), "guid-f")
    assert response.status_code == 202 and response.json()["status"] == "requeued"
    assert await hooks.worker.drain() == 1


async def test_an_event_without_a_handler_is_stored_ignored_at_intake_and_answered_why(hooks):
    response = await hooks.send("workflow_job", fixture("workflow_job", "queued"), "guid-job")
    assert response.status_code == 202
    assert response.json() == {
        "delivery": "guid-job",
        "status": "ignored",
        "detail": "no handler for workflow_job queued",
    }
    delivery = await stored("guid-job")
    assert (delivery.status, delivery.note, delivery.attempts) == (
        DeliveryStatus.IGNORED,
        "no handler for workflow_job queued",
        0,
    )
    assert delivery.finished_at is not None and delivery.payload  # kept, for a replay once a handler exists
    # Nothing for a worker to do, and GitHub's redelivery of it is a duplicate.
    assert await hooks.worker.drain() == 0
    again = await hooks.send("workflow_job", fixture("workflow_job", "queued"), "guid-job")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    # An action of a handled event that no handler takes is ignored the same way.
    response = await hooks.send("issues", fixture("issues", "opened") | {"action": "pinned"}, "guid-pinned")
    assert response.json()["detail"] == "no handler for issues pinned"
    # A replay runs it through the router all the same.
    await inbox.replay("guid-job")
    assert await hooks.worker.drain() == 1
    assert (await stored("guid-job")).note == "no handler for workflow_job queued"


async def test_a_redelivery_under_an_unhandled_event_still_runs_the_stored_delivery(db):
    # The same GUID again, its headers naming an event no handler takes: what runs is the
    # delivery as first stored, queued again, not an ignored one.
    async with running_app(settings_for(db, webhook_max_attempts=1)) as hooks:
        broken = fixture("issues", "opened")
        broken["issue"]["number"] = "not a number"
        assert (await hooks.send("issues", broken, "guid-r")).status_code == 202
        await hooks.worker.drain()
        assert (await stored("guid-r")).status is DeliveryStatus.FAILED
        again = await hooks.send("star", fixture("issues", "opened"), "guid-r")
        assert again.status_code == 202 and again.json() == {"delivery": "guid-r", "status": "requeued"}
        assert await hooks.worker.drain() == 1
        delivery = await stored("guid-r")
        assert (delivery.event, delivery.status, delivery.attempts) == ("issues", DeliveryStatus.FAILED, 1)


async def test_deliveries_accepted_before_a_crash_are_processed_after_the_restart(db):
    settings = settings_for(db)
    async with running_app(settings, workers=0) as before_crash:
        for number in range(3):
            payload = fixture("issues", "opened")
            payload["issue"]["number"] = 100 + number
            assert (await before_crash.send("issues", payload, f"guid-{number}")).status_code == 202
    # The process died with nothing processed; the next one starts its workers.
    assert await Delivery.filter(status=DeliveryStatus.PENDING).count() == 3
    async with running_app(settings, workers=2):
        for _ in range(200):
            if await Delivery.filter(status=DeliveryStatus.DONE).count() == 3:
                break
            await asyncio.sleep(0.02)
    assert await Delivery.filter(status=DeliveryStatus.DONE).count() == 3
    assert sorted(await Defect.all().values_list("number", flat=True)) == [100, 101, 102]


async def test_a_running_worker_processes_a_delivery_soon_after_its_answer(db):
    async with running_app(settings_for(db), workers=1) as hooks:
        assert (await hooks.send("ping", fixture("ping", "payload"), "guid-live")).status_code == 202
        for _ in range(200):
            if (await stored("guid-live")).status is DeliveryStatus.DONE:
                break
            await asyncio.sleep(0.01)
    assert (await stored("guid-live")).status is DeliveryStatus.DONE


async def test_racing_workers_process_each_delivery_once(hooks):
    from integrations.github.worker import DeliveryWorker

    for number in range(40):
        payload = fixture("issues", "opened")
        payload["issue"]["number"] = number + 1
        await hooks.send("issues", payload, f"guid-{number}")
    workers = [DeliveryWorker(hooks.worker.context) for _ in range(4)]
    counts = await asyncio.gather(*(worker.drain() for worker in workers))
    assert sum(counts) == 40
    assert set(await Delivery.all().values_list("status", "attempts")) == {(DeliveryStatus.DONE, 1)}


async def test_without_a_secret_webhooks_are_off_and_the_rest_runs(db, caplog):
    caplog.set_level(logging.INFO, logger="milestones.web")
    async with running_app(settings_for(db, github_webhook_secret=None)) as hooks:
        response = await hooks.send("ping", fixture("ping", "payload"))
        assert response.status_code == 503
        assert "GITHUB_WEBHOOK_SECRET" in response.json()["error"]
        assert (await hooks.client.get("/healthz")).json() == {"status": "ok"}
    [line] = [
        record.getMessage()
        for record in caplog.records
        if record.name == "milestones.web" and record.getMessage().startswith("GitHub:")
    ]
    assert "webhooks OFF (GITHUB_WEBHOOK_SECRET is not set" in line and "API access is off" in line


async def test_health_and_readiness(hooks):
    assert (await hooks.client.get("/healthz")).status_code == 200
    ready = await hooks.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


def nested(depth: int) -> bytes:
    """A signed-looking issues payload whose `issue.body` is `depth` arrays deep."""
    payload = json.dumps(fixture("issues", "opened")).encode()
    return payload[:-1] + b', "deep": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    "body, reason",
    [
        (nested(1000), "malformed JSON: recursion limit exceeded"),
        (nested(100_000), "malformed JSON: recursion limit exceeded"),
        (
            json.dumps(fixture("issues", "opened", action="x" * 65)).encode(),
            "invalid payload: action: String should have at most 64 characters",
        ),
        (
            json.dumps(fixture("issues", "opened", repository=f"{'o' * 150}/{'r' * 60}")).encode(),
            "invalid payload: repository.full_name: String should have at most 200 characters",
        ),
        (
            json.dumps(fixture("issues", "opened", installation={"id": 2**64})).encode(),
            "invalid payload: installation.id: Input should be less than or equal to 9223372036854775807",
        ),
        (
            json.dumps(fixture("issues", "opened", installation={"id": "abc"})).encode(),
            "invalid payload: installation.id: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            json.dumps(fixture("issues", "opened", installation={"id": 1.5})).encode(),
            "invalid payload: installation.id: Input should be a valid integer, got a number with a fractional part",
        ),
        (
            json.dumps(fixture("issues", "opened", action="opened\u0000")).encode(),
            "invalid payload: action: String should match pattern '^[A-Za-z0-9_.-]*$'",
        ),
    ],
    ids=["nested-1000", "nested-100000", "long-action", "long-repository", "installation-2^64", "installation-text",
         "installation-fraction", "action-with-nul"],
)  # fmt: skip
async def test_a_signed_delivery_that_cannot_be_filed_is_refused_400_with_the_reason_every_time(hooks, body, reason):
    for attempt in ("first", "redelivered"):
        response = await hooks.send("issues", body, "guid-hostile")
        assert response.status_code == 400, (attempt, response.text)
        assert response.json()["error"].startswith(reason), response.json()
    assert await Delivery.all().count() == 0


async def test_the_largest_fields_a_real_delivery_has_are_filed(hooks):
    # GitHub's limits: a 39-character owner, a 100-character name, 64-bit installation ids.
    name = f"{'o' * 39}/{'r' * 100}"
    payload = fixture("issues", "opened", repository=name, installation={"id": 2**63 - 1})
    payload["deep"] = json.loads("[" * 150 + "]" * 150)
    response = await hooks.send("issues", payload, "guid-large-fields")
    assert response.status_code == 202, response.text
    delivery = await stored("guid-large-fields")
    assert (delivery.repository, delivery.installation_id, delivery.action) == (name, 2**63 - 1, "opened")


async def test_a_worker_starts_its_next_delivery_once_no_webhook_is_being_answered(hooks):
    await hooks.send("ping", fixture("ping", "payload"), "guid-ping")
    traffic = hooks.app.state.intake_traffic
    traffic.longest = 30.0
    with traffic.answer():
        waiting = asyncio.create_task(hooks.worker.process_next())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert (await stored("guid-ping")).status is DeliveryStatus.PENDING
    assert await asyncio.wait_for(waiting, 10) is DeliveryStatus.DONE


async def test_a_steady_stream_of_webhooks_slows_the_workers_without_stopping_them(hooks):
    await hooks.send("ping", fixture("ping", "payload"), "guid-ping")
    traffic = hooks.app.state.intake_traffic
    traffic.longest = 0.05
    with traffic.answer():
        assert await asyncio.wait_for(hooks.worker.process_next(), 10) is DeliveryStatus.DONE
