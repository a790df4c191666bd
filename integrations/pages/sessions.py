"""Who is looking at a page: sessions in a cookie after signing in with GitHub.

The cookie is a Fernet token (AES and an HMAC, with its time of issue): signed and encrypted,
so the person's GitHub token inside it can be read by nobody but this service, and the whole
thing expires. Nothing of the session is kept on the server; signing out removes the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "milestones_session"
SIGNIN_COOKIE = "milestones_signin"
# Between leaving for GitHub and coming back.
SIGNIN_SECONDS = 600


@dataclass(frozen=True)
class Session:
    login: str
    name: str | None
    token: str
    # Sent back with every form: a request from another site cannot know it.
    csrf: str

    @property
    def user_id(self) -> str:
        from core.approvers import github_user

        return github_user(self.login)


class Sessions:
    def __init__(self, secret: str, *, hours: float, secure: bool):
        key = hashlib.sha256(b"milestones-session\n" + secret.encode()).digest()
        self.fernet = Fernet(base64.urlsafe_b64encode(key))
        self.seconds = int(hours * 3600)
        self.secure = secure

    def read(self, request: Request) -> Session | None:
        data = self._open(request.cookies.get(SESSION_COOKIE), self.seconds)
        if data is None:
            return None
        try:
            return Session(**data)
        except TypeError:
            return None

    def start(self, response: Response, login: str, name: str | None, token: str) -> Session:
        session = Session(login, name, token, secrets.token_urlsafe(24))
        self._set(response, SESSION_COOKIE, asdict(session), self.seconds)
        return session

    def end(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")

    def remember_signin(self, response: Response, state: str, next_path: str) -> None:
        self._set(response, SIGNIN_COOKIE, {"state": state, "next": next_path}, SIGNIN_SECONDS)

    def signin_state(self, request: Request) -> dict[str, str] | None:
        return self._open(request.cookies.get(SIGNIN_COOKIE), SIGNIN_SECONDS)

    def forget_signin(self, response: Response) -> None:
        response.delete_cookie(SIGNIN_COOKIE, path="/", secure=self.secure, httponly=True, samesite="lax")

    def _set(self, response: Response, name: str, data: dict[str, object], seconds: int) -> None:
        value = self.fernet.encrypt(json.dumps(data).encode()).decode()
        response.set_cookie(name, value, max_age=seconds, path="/", secure=self.secure, httponly=True, samesite="lax")

    def _open(self, value: str | None, seconds: int) -> dict[str, str] | None:
        if not value:
            return None
        try:
            data = json.loads(self.fernet.decrypt(value.encode(), ttl=seconds))
        except (InvalidToken, ValueError):
            return None
        return data if isinstance(data, dict) else None
