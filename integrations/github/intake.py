"""`POST /github/webhooks`: verify, store, answer; the work happens after the answer.

Nothing is parsed or stored before the signature is checked. A verified delivery is
stored under its GUID before it is answered 202, so an answer GitHub gets means the
delivery is safe; a GUID already processed successfully is answered 200 and left alone.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event
from starlette.requests import Request
from starlette.responses import JSONResponse

from core import inbox

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 25 * 1024 * 1024


def _answer(code: int, **body: object) -> JSONResponse:
    return JSONResponse(body, status_code=code)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None once it passes the size limit (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _payload_text(body: bytes, content_type: str) -> str:
    """The JSON document, from either of the content types a GitHub webhook can use."""
    text = body.decode("utf-8")
    if content_type.split(";")[0].strip() == "application/x-www-form-urlencoded":
        return parse_qs(text).get("payload", [""])[0]
    return text


async def receive_webhook(request: Request) -> JSONResponse:
    secret: str | None = request.app.state.webhook_secret
    if secret is None:
        return _answer(503, error="GitHub webhooks are off: GITHUB_WEBHOOK_SECRET is not set")
    body = await _read_body(request)
    if body is None:
        return _answer(413, error=f"payload over {MAX_BODY_BYTES // (1024 * 1024)} MB")
    guid = request.headers.get("x-github-delivery", "")
    signature = request.headers.get("x-hub-signature-256")
    client = request.client.host if request.client else "?"
    if not signature or not signature.startswith("sha256="):
        log.warning("webhook from %s refused: no X-Hub-Signature-256 (delivery %s)", client, guid or "?")
        return _answer(401, error="missing X-Hub-Signature-256")
    try:
        validate_event(body, signature=signature, secret=secret)
    except (ValidationFailure, TypeError):  # TypeError: a header that is not ASCII
        log.warning("webhook from %s refused: signature does not match the secret (delivery %s)", client, guid or "?")
        return _answer(401, error="signature does not match")
    event = request.headers.get("x-github-event", "")
    if not guid or not event or len(guid) > 64 or len(event) > 64:
        return _answer(400, error="X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        text = _payload_text(body, request.headers.get("content-type", ""))
        payload = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return _answer(400, error=f"malformed JSON: {error}")
    if not isinstance(payload, dict):
        return _answer(400, error="malformed JSON: the payload must be an object")
    action = payload.get("action")
    installation = payload.get("installation")
    repository = payload.get("repository")
    intake = await inbox.accept(
        guid,
        event,
        text,
        action=action if isinstance(action, str) else None,
        repository=repository.get("full_name") if isinstance(repository, dict) else None,
        installation_id=installation.get("id") if isinstance(installation, dict) else None,
    )
    if intake.duplicate:
        return _answer(200, delivery=guid, status="duplicate", detail="already processed")
    request.app.state.worker.wake()
    return _answer(202, delivery=guid, status=intake.result)
