"""Requests to /slack/events checked before Bolt sees them: their size, Slack's signature and
timestamp, and the body's encoding.

Bolt's own check raises (answering 500) on a timestamp that is not a number or a body that
is not UTF-8, and logs the whole body of a request with a bad signature; here any request
that fails is answered 401 and logged in one line, with its size and its source only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("milestones.slack")

# Slack's own payloads are a few kilobytes (a view submission with every block's state is the
# largest); anything far beyond is not Slack's.
MAX_BODY_BYTES = 256 * 1024
# Slack: "verify that the request timestamp is within five minutes of the local time".
MAX_AGE_SECONDS = 5 * 60


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    """A request Slack signed: its body as text, for Bolt."""

    body: str


def check_signature(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float | None = None
) -> str:
    """The body as text when Slack signed it within the last five minutes; Refused(401) otherwise."""
    if not timestamp or not signature:
        raise Refused(401, "unsigned")
    stamp = timestamp.strip()
    if not stamp.isascii() or not stamp.isdigit():
        raise Refused(401, "timestamp is not a number")
    if abs((time.time() if now is None else now) - int(stamp)) > MAX_AGE_SECONDS:
        raise Refused(401, "timestamp out of the five-minute window")
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise Refused(401, "bad signature")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(401, "body is not UTF-8") from None


async def read_capped(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read no further than `limit` bytes (Refused(413) beyond)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body of {int(declared):,} bytes over the {limit:,}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body over the {limit:,}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def verify(request: Request, secret: str, limit: int = MAX_BODY_BYTES) -> Verified | Response:
    """The verified request, or the answer to give it (401, 413), logged in one line without the body."""
    size = request.headers.get("content-length", "?")
    try:
        body = await read_capped(request, limit)
        size = str(len(body))
        text = check_signature(
            secret, body, request.headers.get("x-slack-request-timestamp"), request.headers.get("x-slack-signature")
        )
    except Refused as refusal:
        source = request.client.host if request.client else "unknown"
        log.warning("refused a request to /slack/events: %s (%s bytes from %s)", refusal.reason, size, source)
        return JSONResponse({"error": "invalid request"}, status_code=refusal.status)
    return Verified(text)
