"""`POST /github/webhooks`: verify, store, answer; the work happens after the answer.

The body is hashed as it arrives and, past `spill` bytes, written to a temporary file
instead of memory: nothing is parsed before the signature is checked, and a body costs
little memory until it is. A verified delivery is stored under its GUID before it is
answered 202, so an answer GitHub gets means the delivery is safe; a GUID already
processed successfully is answered 200 and left alone.

Memory is budgeted across concurrent requests: a body being received holds up to
`spill` bytes of it, a verified one being read and stored holds what its parse may
take. Past the budget a request is answered 503 with Retry-After rather than let the
process grow; so is one that arrives while the database is away.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import hmac
import logging
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import IO
from urllib.parse import parse_qs

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from core import inbox
from core.clock import event_within
from core.db import DatabaseUnavailable, within_deadline
from integrations.github.events import LARGE_DOCUMENT, Envelope, describe_invalid, parse
from integrations.github.handlers import unhandled

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# Reading a verified body holds its text and its parse at once: a document of many small
# objects parses to about 4.5 times its size (bench/README.md, webhook memory).
PARSE_FACTOR = 6
# Seconds a client is asked to wait: a burst of large bodies passes in a few seconds, a
# database outage is probed every second.
RETRY_AFTER_BUSY = 2
RETRY_AFTER_DATABASE = 5


@dataclass(frozen=True)
class WebhookLimits:
    """What receiving webhook bodies may cost; the reports an artifact brings are bounded by
    integrations.limits.ReportLimits."""

    max_body: int = 25 * MiB  # GitHub caps payloads at 25 MB
    spill: int = LARGE_DOCUMENT  # larger bodies go to a temporary file as they arrive
    memory: int = 160 * MiB  # what all requests being received and stored may hold at once
    wait: float = 5.0  # how long a verified body waits for memory before it is answered 503


class IntakeBusy(Exception):
    """The memory budget of intake is spent."""


class MemoryBudget:
    """Bytes that requests and workers handling large bodies may hold at once.

    Each takes its share, waiting for it at most `wait` seconds; a worker (`wait=None`)
    waits as long as it takes, and lets requests waiting for their answer go first.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self._hurried = 0  # requests waiting
        self._released = asyncio.Condition()

    def _fits(self, size: int, patient: bool) -> bool:
        return self.used + size <= self.limit and not (patient and self._hurried)

    @asynccontextmanager
    async def share(self, size: int, wait: float | None = 0.0) -> AsyncIterator[None]:
        size = min(size, self.limit)
        patient = wait is None
        async with self._released:
            if not self._fits(size, patient):
                if wait is not None and wait <= 0:
                    raise IntakeBusy
                self._hurried += not patient
                try:
                    # asyncio.timeout, not wait_for: see core.clock.event_within.
                    async with asyncio.timeout(wait):
                        await self._released.wait_for(lambda: self._fits(size, patient))
                except TimeoutError:
                    raise IntakeBusy from None
                finally:
                    if not patient:
                        self._hurried -= 1
                        self._released.notify_all()
            self.used += size
        try:
            yield
        finally:
            async with self._released:
                self.used -= size
                self._released.notify_all()


class IntakeTraffic:
    """Webhook requests being answered: the delivery workers of the process let them go first.

    A worker starts its next delivery once no request is being answered, or after
    `longest` seconds, so that a steady stream of requests slows processing without stopping it.
    """

    def __init__(self, longest: float = 0.1):
        self.longest = longest
        self.answering = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @contextmanager
    def answer(self) -> Iterator[None]:
        self.answering += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self.answering -= 1
            if not self.answering:
                self._quiet.set()

    async def quiet(self) -> None:
        await event_within(self._quiet, self.longest)


class BodyTooLarge(Exception):
    pass


def _answer(code: int, retry_after: int | None = None, **body: object) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(body, status_code=code, headers=headers)


def _busy() -> JSONResponse:
    return _answer(503, RETRY_AFTER_BUSY, error="too many large deliveries at once; try again shortly")


async def _receive(request: Request, spool: IO[bytes], secret: str, max_body: int) -> tuple[int, str]:
    """Write the body to `spool` as it arrives; its size and its `sha256=` signature."""
    mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge
        mac.update(chunk)
        spool.write(chunk)
    return size, "sha256=" + mac.hexdigest()


def _signed(signature: str, expected: str) -> bool:
    try:
        return hmac.compare_digest(signature, expected)
    except TypeError:  # a header that is not ASCII
        return False


def _payload_text(body: bytes, content_type: str) -> str:
    """The JSON document, from either of the content types a GitHub webhook can use."""
    text = body.decode("utf-8")
    if content_type.split(";")[0].strip() == "application/x-www-form-urlencoded":
        return parse_qs(text).get("payload", [""])[0]
    return text


def _refusal(error: ValidationError) -> str:
    [first, *_] = error.errors(include_url=False)
    if first["type"] == "json_invalid":
        return "malformed JSON: " + first["msg"].removeprefix("Invalid JSON: ")
    if first["type"] == "model_type" and not first["loc"]:
        return "malformed JSON: the payload must be an object"
    return f"invalid payload: {describe_invalid(error)}"


async def receive_webhook(request: Request) -> JSONResponse:
    traffic: IntakeTraffic = request.app.state.intake_traffic
    with traffic.answer():
        return await _answer_webhook(request)


async def _answer_webhook(request: Request) -> JSONResponse:
    secret: str | None = request.app.state.webhook_secret
    if secret is None:
        return _answer(503, error="GitHub webhooks are off: GITHUB_WEBHOOK_SECRET is not set")
    limits: WebhookLimits = request.app.state.webhook_limits
    budget: MemoryBudget = request.app.state.intake_budget
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_body:
        return _answer(413, error=f"payload over {limits.max_body // MiB} MB")
    guid = request.headers.get("x-github-delivery", "")
    signature = request.headers.get("x-hub-signature-256")
    client = request.client.host if request.client else "?"
    if not signature or not signature.startswith("sha256="):
        log.warning("webhook from %s refused: no X-Hub-Signature-256 (delivery %s)", client, guid or "?")
        return _answer(401, error="missing X-Hub-Signature-256")
    with tempfile.SpooledTemporaryFile(max_size=limits.spill) as spool:
        try:
            try:
                async with budget.share(min(int(declared), limits.spill) if declared.isdigit() else limits.spill):
                    size, expected = await _receive(request, spool, secret, limits.max_body)
            except BodyTooLarge:
                return _answer(413, error=f"payload over {limits.max_body // MiB} MB")
            except IntakeBusy:
                return _busy()
            if not _signed(signature, expected):
                log.warning(
                    "webhook from %s refused: signature does not match the secret (delivery %s)", client, guid or "?"
                )
                return _answer(401, error="signature does not match")
            event = request.headers.get("x-github-event", "")
            if not guid or not event or len(guid) > 64 or len(event) > 64:
                return _answer(400, error="X-GitHub-Event and X-GitHub-Delivery headers are required")
            try:
                async with budget.share(size * PARSE_FACTOR, wait=limits.wait):
                    return await _store(request, spool, guid, event)
            except IntakeBusy:
                return _busy()
        finally:
            if spool.tell() > limits.spill:
                release_memory()


async def _store(request: Request, spool: IO[bytes], guid: str, event: str) -> JSONResponse:
    spool.seek(0)
    try:
        text = _payload_text(spool.read(), request.headers.get("content-type", ""))
    except UnicodeDecodeError as error:
        return _answer(400, error=f"malformed JSON: {error}")
    try:
        envelope = await parse(Envelope, text)
    except ValidationError as error:
        return _answer(400, error=_refusal(error))
    ignored = unhandled(event, envelope.action)
    try:
        intake = await within_deadline(
            lambda: inbox.accept(
                guid,
                event,
                text,
                action=envelope.action,
                repository=envelope.repository.full_name if envelope.repository else None,
                installation_id=envelope.installation.id if envelope.installation else None,
                ignored=ignored,
            )
        )
    except DatabaseUnavailable as error:
        return _answer(503, RETRY_AFTER_DATABASE, error=f"database unavailable ({error}); nothing was stored")
    if intake.duplicate:
        return _answer(200, delivery=guid, status="duplicate", detail="already processed")
    if intake.result == "accepted" and ignored is not None:
        return _answer(202, delivery=guid, status="ignored", detail=ignored)
    # A redelivery runs the delivery as first stored, whatever this one's headers say.
    request.app.state.worker.wake()
    return _answer(202, delivery=guid, status=intake.result)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


_GLIBC = _glibc()
M_MMAP_THRESHOLD = -3  # glibc's malloc.h


def hand_back_large_blocks(threshold: int = MiB) -> None:
    """Memory blocks over `threshold` bytes are mapped for themselves and unmapped when freed.

    By default glibc raises that threshold after each large block freed (up to 32 MB), so
    the text of a large body would come from a heap that keeps it once freed.
    """
    if _GLIBC is not None:
        _GLIBC.mallopt(M_MMAP_THRESHOLD, threshold)


def release_memory() -> None:
    """Hand what a large body took, freed by now, back to the system: the parse's many small
    blocks sit between others in the heap, which glibc does not give back by itself."""
    if _GLIBC is not None:
        _GLIBC.malloc_trim(0)
