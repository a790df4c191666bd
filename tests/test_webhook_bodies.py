"""Large and unverified webhook bodies: hashed as they arrive, spilled to a file, memory capped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.enums import DeliveryStatus
from core.models import Delivery
from integrations.github.intake import MemoryBudget, WebhookLimits
from tests.github import SECRET, fixture, running_app, settings_for, signature

MiB = 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
async def hooks(db):
    async with running_app(settings_for(db)) as running:
        yield running


def large_issue(size: int) -> bytes:
    """A real issues payload whose issue body makes it `size` bytes."""
    payload = fixture("issues", "opened")
    payload["issue"]["body"] = ""
    base = len(json.dumps(payload).encode())
    payload["issue"]["body"] = "x" * (size - base)
    body = json.dumps(payload).encode()
    assert len(body) == size
    return body


class Trickle:
    """A request body sent in chunks, pausing once `pause_at` bytes are out until the test resumes it."""

    def __init__(self, body: bytes, pause_at: int | None = None, chunk: int = CHUNK):
        self.body = body
        self.pause_at = pause_at
        self.chunk = chunk
        self.sent = 0
        self.paused = asyncio.Event()
        self.resume = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            if self.pause_at is not None and self.sent >= self.pause_at and not self.resume.is_set():
                self.paused.set()
                await self.resume.wait()
            chunk = self.body[start : start + self.chunk]
            self.sent += len(chunk)
            yield chunk


def headers(body: bytes, guid: str, *, secret: str | None = SECRET) -> dict[str, str]:
    sent = {"Content-Type": "application/json", "X-GitHub-Event": "issues", "X-GitHub-Delivery": guid}
    if secret is not None:
        sent["X-Hub-Signature-256"] = signature(body, secret)
    return sent


def open_files_in(folder: Path) -> list[int]:
    """Sizes of the files this process holds open in `folder` (unnamed temporary files included)."""
    sizes = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(folder)):
                sizes.append(os.fstat(int(fd)).st_size)
        except OSError:
            continue
    return sizes


@pytest.mark.parametrize("body", [b'{"action": ', b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe not even text"])
async def test_the_signature_is_checked_before_the_body_is_parsed(hooks, body):
    wrong = await hooks.send("issues", body, "guid-wrong", secret="not the secret")
    assert wrong.status_code == 401 and wrong.json() == {"error": "signature does not match"}
    right = await hooks.send("issues", body, "guid-right")
    assert right.status_code == 400 and right.json()["error"].startswith("malformed JSON: ")
    assert await Delivery.all().count() == 0


async def test_without_a_signature_the_body_is_not_even_read(hooks):
    body = Trickle(large_issue(4 * MiB))
    response = await hooks.client.post("/github/webhooks", content=body, headers=headers(body.body, "g", secret=None))
    assert response.status_code == 401
    assert body.sent == 0


async def test_a_large_body_goes_to_a_temporary_file_as_it_arrives(db, tmp_path, monkeypatch):
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    limits = WebhookLimits(spill=1 * MiB)
    async with running_app(settings_for(db), intake=limits) as hooks:
        body = Trickle(large_issue(3 * MiB), pause_at=2 * MiB)
        sending = asyncio.create_task(
            hooks.client.post("/github/webhooks", content=body, headers=headers(body.body, "guid-large"))
        )
        await asyncio.wait_for(body.paused.wait(), 10)
        # Two thirds in: the body is in a file, and what it holds of the memory budget is the spill size.
        assert open_files_in(spill) == [2 * MiB]
        assert hooks.app.state.intake_budget.used == 1 * MiB
        body.resume.set()
        response = await sending
        assert response.status_code == 202, response.text
        assert open_files_in(spill) == []
        assert hooks.app.state.intake_budget.used == 0
        small = json.dumps(fixture("issues", "opened")).encode()
        small_body = Trickle(small, pause_at=len(small) // 2, chunk=1024)
        sending = asyncio.create_task(
            hooks.client.post("/github/webhooks", content=small_body, headers=headers(small, "guid-small"))
        )
        await asyncio.wait_for(small_body.paused.wait(), 10)
        assert open_files_in(spill) == []  # a small body stays in memory
        small_body.resume.set()
        assert (await sending).status_code == 202
    stored = await Delivery.get(guid="guid-large")
    assert len(stored.payload) == 3 * MiB and stored.status is DeliveryStatus.PENDING


async def test_past_the_memory_budget_a_delivery_is_answered_503_with_retry_after(db):
    limits = WebhookLimits(memory=8 * MiB, spill=1 * MiB, wait=0.2)
    body = json.dumps(fixture("issues", "opened")).encode()
    async with running_app(settings_for(db), intake=limits) as hooks:
        budget = hooks.app.state.intake_budget
        async with budget.share(limits.memory):
            refused = await hooks.send("issues", body, "guid-busy")
            assert refused.status_code == 503
            assert refused.headers["Retry-After"] == "2"
            assert refused.json() == {"error": "too many large deliveries at once; try again shortly"}
        # Room to receive it, not to parse it: a verified body waits up to `wait` for its share...
        async with budget.share(limits.memory - 2 * len(body)):
            answered = await hooks.send("issues", body, "guid-no-room")
            assert answered.status_code == 503 and answered.headers["Retry-After"] == "2"
            assert await Delivery.all().count() == 0
            # ...and is stored as soon as the memory is there.
            waiting = asyncio.create_task(hooks.send("issues", body, "guid-waits"))
            await asyncio.sleep(0.1)
            assert not waiting.done()
        assert (await waiting).status_code == 202
        assert (await hooks.send("issues", body, "guid-busy")).status_code == 202
        assert budget.used == 0


async def test_workers_let_requests_waiting_for_an_answer_take_memory_first():
    budget = MemoryBudget(10)
    order: list[str] = []

    async def take(name: str, wait: float | None) -> None:
        async with budget.share(6, wait=wait):
            order.append(name)
            await asyncio.sleep(0.01)

    async with budget.share(10):
        worker = asyncio.create_task(take("worker", None))
        await asyncio.sleep(0.01)
        request = asyncio.create_task(take("request", 5.0))
        await asyncio.sleep(0.01)
        assert order == []
    await asyncio.gather(worker, request)
    assert order == ["request", "worker"] and budget.used == 0


async def test_a_request_cancelled_as_memory_frees_up_takes_no_share():
    # Its client went away just as the memory it waited for was released: the request ends
    # there (Python 3.11's wait_for could return instead, and the request went on).
    budget = MemoryBudget(10)
    went_on: list[str] = []

    async def request() -> None:
        async with budget.share(6, wait=5.0):
            went_on.append("request")

    holder = budget.share(10)
    await holder.__aenter__()
    waiting = asyncio.create_task(request())
    await asyncio.sleep(0.01)
    await holder.__aexit__(None, None, None)  # frees the memory and wakes the request
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert waiting.cancelled() and went_on == []
    assert (budget.used, budget._hurried) == (0, 0)
