"""GitHub as the tests play it: webhooks signed exactly as GitHub signs them, sent to the
real ASGI app; artifact zips; GitHub App keys."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from core.models import Delivery
from core.settings import Settings
from integrations.github.api import GitHubAccess
from integrations.github.intake import WebhookLimits
from integrations.web import create_app
from tests.conftest import WEBHOOKS

# The example secret of GitHub's documentation on validating deliveries.
SECRET = "It's a Secret to Everybody"


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def private_key_pem() -> str:
    """A new RSA key, as a GitHub App's private key is handed out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def fixture(event: str, name: str, **changes: Any) -> dict[str, Any]:
    """A real payload from the shared fixtures; `repository="o/r"` points it at another repository."""
    file = WEBHOOKS / event / ("payload.json" if name == "payload" else f"{name}.payload.json")
    payload = json.loads(file.read_text())
    if "repository" in changes:
        owner, repo_name = changes.pop("repository").split("/")
        payload["repository"].update(full_name=f"{owner}/{repo_name}", name=repo_name)
        payload["repository"]["owner"]["login"] = owner
    payload.update(changes)
    return payload


class Hooks:
    """The app and a client that posts deliveries to it."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient):
        self.app = app
        self.client = client

    @property
    def worker(self):
        return self.app.state.worker

    async def send(
        self,
        event: str,
        payload: dict[str, Any] | bytes,
        guid: str | None = None,
        *,
        secret: str | None = SECRET,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        sent = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/test",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid or str(uuid.uuid4()),
        }
        if secret is not None:
            sent["X-Hub-Signature-256"] = signature(body, secret)
        sent.update(headers or {})
        return await self.client.post("/github/webhooks", content=body, headers=sent)

    async def deliver(self, event: str, payload: dict[str, Any], guid: str | None = None) -> Delivery:
        """Send a delivery, process everything waiting, and return the delivery as stored."""
        response = await self.send(event, payload, guid)
        assert response.status_code == 202, response.text
        await self.worker.drain()
        return await Delivery.get(guid=response.json()["delivery"])


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database_url, "github_webhook_secret": SECRET, **overrides}
    return Settings(_env_file=None, **values)


def github_access(settings: Settings) -> GitHubAccess:
    """PyGithub without its pacing and retry back-off, which only slow a loopback fake down."""
    return GitHubAccess(settings, seconds_between_requests=0, seconds_between_writes=0, retry=None)


@asynccontextmanager
async def running_app(
    settings: Settings, *, workers: int = 0, intake: WebhookLimits | None = None
) -> AsyncIterator[Hooks]:
    """The app with its lifespan running on the already open test database.

    With no workers, deliveries wait until the test processes them (`hooks.worker.drain()`).
    """
    app = create_app(settings, github=github_access(settings), manage_database=False, workers=workers, intake=intake)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://milestones.test") as client:
            yield Hooks(app, client)
