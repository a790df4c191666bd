"""A loopback fake of the Slack Web API and of Slack's response URLs, for tests.

A real HTTP server on 127.0.0.1, on a port the OS picks, bound when FakeSlack is created:

    with FakeSlack() as fake:
        client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
        await client.chat_postMessage(channel="C0CHAN", text="hi", blocks=[...])
        assert [m["text"] for m in fake.messages("C0CHAN")] == ["hi"]
        url = fake.response_url(channel="C0CHAN")   # for a slash command or a click
        ...
        assert fake.response_messages(url)[-1]["text"] == "done"

Web API methods are served at /api/<method> (GET or POST) with arguments from the query,
a JSON body or a form body, whichever slack_sdk used; form fields that carry JSON
(blocks, attachments, view, metadata) are decoded, as Slack does. Answers are Slack's: HTTP
200 with {"ok": false, "error": ...} for errors, including a wrong token ("invalid_auth",
or "not_authed" without one). Served: auth.test, chat.postMessage, chat.update,
chat.postEphemeral, chat.delete, conversations.history, views.publish, views.open,
views.update, usergroups.users.list, users.info; any other method answers "unknown_method".

chat.postMessage and chat.update also refuse, as Slack does, more than 12,000 characters of
text in all the blocks ("msg_blocks_too_long") and a top-level text over 40,000 characters
("msg_too_long"); response URL posts are not held to either.

Everything posted for people to see (messages, ephemeral messages, response URL posts and
views) is checked against Block Kit's limits (tests/block_kit.py) and refused with
"invalid_blocks" and the problems in "errors" and in response_metadata.messages (real
Slack may word views.* refusals as "invalid_arguments"; the fake keeps one error for all).

Response URLs (`response_url()`) keep Slack's rules: at most 5 uses within 30 minutes
("up to 5 times within 30 minutes", https://api.slack.com/interactivity/slash-commands);
every request that reaches a live URL counts, refused or not. Slack does not document its
answers, so these are the fake's choice: 200 {"ok": true}; errors as plain text, like
incoming webhooks: 404 "used_url" (6th use), 404 "expired_url", 400 "no_text",
400 "invalid_blocks". Responses are ephemeral unless response_type is "in_channel"; and
replace_original / delete_original act on the message the interaction came from, keeping
its visibility. `response_messages(url)` is what the user sees now.

conversations.history serves a channel's messages newest first, with their metadata when
asked (include_all_metadata), for tests of posting once by a marker in a message's metadata.

Failures to test retries with (the first two are what slack_sdk's retry handlers are for):
- `rate_limit(method, times, retry_after)`: HTTP 429, Retry-After, {"ok": false, "error":
  "ratelimited"}, as Slack's rate limiter answers.
- `drop_connection(method, times)`: the server reads the request and closes the socket
  without answering; aiohttp raises ServerDisconnectedError. With `reset=True` it sends a
  TCP reset instead (SO_LINGER 0); aiohttp raises ClientOSError ([Errno 104] Connection
  reset by peer). AsyncConnectionErrorRetryHandler retries both. With `processed=True` the
  call takes effect first and only the answer is lost, which is what makes a retried
  chat.postMessage post twice.
- `fail(method, times, status=500|503)` or `fail(method, times, error="internal_error")`:
  Slack's own failures, an HTTP 5xx or HTTP 200 with {"ok": false}; `processed=True` as above.
- `hold(method, processed=..., answer=...)`: the call waits until released (`Hold.arrived`
  says it came), then is answered, or dropped after taking effect or not: for killing a
  process while Slack holds its post.

Configure and read data from the test thread through the helpers (they take the lock);
the dicts they return are the ones served. Every request is recorded (`calls()`), with
the status and body it was answered with.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.block_kit import MAX_POSTED_BLOCK_TEXT, block_problems, block_text
from tests.loopback import read_body

__all__ = ["FakeSlack", "RecordedCall", "RESPONSE_URL_USES", "RESPONSE_URL_LIFETIME"]

Json = dict[str, Any]

# Slack: a response_url "can be used up to 5 times within 30 minutes".
RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60
# Message timestamps are the time of posting, as Slack's are (conversations.history's
# oldest and latest compare them with real times), 100 µs apart at least: "1764680000.123400".
_TS_STEP = 100
# chat.postMessage and chat.update: "msg_too_long" beyond this many characters of text.
MAX_MESSAGE_TEXT = 40_000
# Form fields Slack takes as JSON strings.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


@dataclass(frozen=True)
class RecordedCall:
    """One request as the fake received it, and what it answered."""

    method: str  # Slack API method ("chat.postMessage"), or "response_url"
    path: str
    headers: dict[str, str]  # lower-case names
    body: Json  # the arguments: query, form (JSON fields decoded) or JSON body, merged
    url: str | None = None  # the full URL, for response URL posts
    http_method: str = "POST"
    status: int | None = None  # None when the connection was dropped
    answer: Any = None  # the JSON answered, or the text of a plain-text answer
    at: float = 0.0  # time.monotonic() when it was received

    @property
    def ok(self) -> bool:
        return isinstance(self.answer, dict) and bool(self.answer.get("ok"))


@dataclass
class _Failure:
    method: str
    kind: str  # "ratelimit", "drop" or "error"
    remaining: int
    retry_after: int = 1
    reset: bool = False
    processed: bool = False
    status: int = 200  # "error": the HTTP status answered
    error: str = ""  # "error": Slack's error code


class Hold:
    """A call kept waiting by the fake (`FakeSlack.hold`): `arrived` is set once it came in;
    `release()` lets it go on, to be answered (or dropped, as the hold says)."""

    def __init__(self, method: str, processed: bool, answer: bool):
        self.method = method
        self.processed = processed
        self.answer = answer
        self.arrived = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def wait_arrival(self, timeout: float = 30.0) -> bool:
        return self.arrived.wait(timeout)


@dataclass
class _Answer:
    status: int
    payload: Any  # dict -> JSON, str -> text/plain
    headers: dict[str, str] = field(default_factory=dict)
    drop: str | None = None  # "close" or "reset": no answer at all

    def encode(self) -> tuple[bytes, str]:
        if isinstance(self.payload, str):
            return self.payload.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.payload).encode(), "application/json; charset=utf-8"


@dataclass
class _ResponseURL:
    url: str
    created: float
    channel: str | None
    uses: int = 0
    bodies: list[Json] = field(default_factory=list)
    # What the user sees from this interaction, oldest first; [0] is "the original".
    visible: list[Json] = field(default_factory=list)


def _ok(**data: Any) -> Json:
    return {"ok": True, **data}


def _error(error: str, **data: Any) -> Json:
    return {"ok": False, "error": error, **data}


def _missing(name: str) -> Json:
    return _error("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {name}"]})


def _invalid_blocks(problems: list[str]) -> Json:
    return _error("invalid_blocks", errors=problems, response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})


def _decode_json_fields(args: Json) -> Json:
    """Decode JSON-string fields in place; one that is not JSON stays a string (and is refused)."""
    for name in _JSON_FIELDS:
        value = args.get(name)
        if isinstance(value, str):
            try:
                args[name] = json.loads(value) if value.strip() else None
            except ValueError:
                pass
    return args


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client's idle keep-alive connection must not hold up stop()
    request_queue_size = 64  # many concurrent clients; the default backlog is 5

    def __init__(self, fake: FakeSlack):
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Slack; every answer has Content-Length
    timeout = 10
    server: _Server

    def do_POST(self) -> None:
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        answer = self.server.fake._dispatch(self.command, split.path, split.query, headers, read_body(self))
        if answer.drop:
            # No answer: close (FIN) or reset (RST) the connection once the request is read.
            self.close_connection = True
            if answer.drop == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        body, content_type = answer.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", content_type)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded in FakeSlack.calls() instead


class FakeSlack:
    """The fake Slack: Web API, response URLs, recorded calls.

    Readable state (take the lock or use the helpers when a server thread may write):
    `ephemerals` (list), `home_views` (user id -> view), `views` (view id -> open modal),
    `errors` (bugs of the fake itself, answered as HTTP 500).
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        team_id: str = "T0001",
        *,
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        app_id: str = "A0APP",
        team_domain: str = "acme",
    ):
        self._lock = threading.RLock()
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.team_domain = team_domain
        self._last_ts = 0
        self._ids = itertools.count(1)
        self._calls: list[RecordedCall] = []
        self._failures: list[_Failure] = []
        self._holds: list[Hold] = []
        self._channels: dict[str, list[Json]] = {}
        self._not_in: set[str] = set()
        self._missing: set[str] = set()
        self._usergroups: dict[str, Json] = {}
        self._users: dict[str, Json] = {}
        self._response_urls: dict[str, _ResponseURL] = {}
        self._clock_offset = 0.0
        self.ephemerals: list[Json] = []
        self.home_views: dict[str, Json] = {}
        self.views: dict[str, Json] = {}
        # Files uploaded through files.getUploadURLExternal: id -> {"name", "length", "content", "shared"}.
        self.files: dict[str, Json] = {}
        self.errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._methods: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._delete,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroup_users,
            "chat.getPermalink": self._permalink,
            "conversations.history": self._history,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "users.info": self._users_info,
        }

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The base_url for slack_sdk's clients (it must end with a slash)."""
        return f"{self.url}/api/"

    def start(self) -> FakeSlack:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="fake-slack", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; the instance cannot be started again."""
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------

    def not_in_channel(self, channel: str) -> None:
        """The bot is not a member: posting and updating there answer "not_in_channel"."""
        with self._lock:
            self._not_in.add(channel)

    def missing_channel(self, channel: str) -> None:
        """No such channel (or archived, or not visible): "channel_not_found"."""
        with self._lock:
            self._missing.add(channel)

    def join_channel(self, channel: str) -> None:
        """Undo not_in_channel and missing_channel."""
        with self._lock:
            self._not_in.discard(channel)
            self._missing.discard(channel)

    def add_usergroup(self, usergroup_id: str, handle: str, users: list[str]) -> Json:
        with self._lock:
            group = {
                "id": usergroup_id,
                "team_id": self.team_id,
                "is_usergroup": True,
                "name": handle,
                "handle": handle,
                "date_delete": 0,
                "users": list(users),
                "user_count": len(users),
            }
            self._usergroups[usergroup_id] = group
            return group

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        real_name: str | None = None,
        is_admin: bool = False,
        team_id: str | None = None,
        **extra: Any,
    ) -> Json:
        """A user as users.info serves it; `extra` sets further top-level fields (is_bot, tz...)."""
        real = real_name if real_name is not None else name
        user = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "deleted": False,
            "real_name": real,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1700000000,
            "profile": {"real_name": real, "display_name": name, "team": team_id or self.team_id},
            **extra,
        }
        with self._lock:
            self._users[user_id] = user
            return user

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` (or "response_url") answer 429 ratelimited."""
        with self._lock:
            self._failures.append(_Failure(method, "ratelimit", times, retry_after=retry_after))

    def drop_connection(self, method: str, times: int = 1, *, reset: bool = False, processed: bool = False) -> None:
        """The next `times` calls of `method` (or "response_url") get no answer: the socket is
        closed (or, with `reset`, reset) after the request is read. With `processed` the call
        takes effect before the answer is lost."""
        with self._lock:
            self._failures.append(_Failure(method, "drop", times, reset=reset, processed=processed))

    def fail(self, method: str, times: int = 1, *, status: int = 200, error: str = "", processed: bool = False) -> None:
        """The next `times` calls of `method` fail as Slack fails: HTTP `status` (500, 503) with an
        error body, or HTTP 200 with {"ok": false, "error": `error`} (internal_error, fatal_error,
        service_unavailable). With `processed` the call takes effect first."""
        with self._lock:
            self._failures.append(
                _Failure(method, "error", times, processed=processed, status=status, error=error or "internal_error")
            )

    def hold(self, method: str, *, processed: bool = False, answer: bool = False) -> Hold:
        """The next call of `method` waits, unanswered, until released. Then, with `answer`, it
        is served as usual; without, the connection is closed without an answer, after the call
        took effect when `processed` (Slack stored it and the answer was lost) or not at all."""
        hold = Hold(method, processed, answer)
        with self._lock:
            self._holds.append(hold)
        return hold

    def response_url(self, *, channel: str | None = None, original: Json | None = None) -> str:
        """A new response URL, as Slack puts in a slash command or an interaction payload.

        `original` is the message the interaction came from (a button's message, e.g. one of
        `messages(channel)`): replace_original and delete_original act on it, and on the
        stored channel message when it is one. Without it, the first message posted through
        the URL is the original (a slash command's own response).
        """
        with self._lock:
            url = f"{self.url}/response/{next(self._ids)}"
            state = _ResponseURL(url, self._now(), channel)
            if original is not None:
                entry = dict(original)
                entry.setdefault("response_type", "ephemeral" if original.get("is_ephemeral") else "in_channel")
                if channel is None:
                    state.channel = original.get("channel")
                state.visible.append(entry)
            self._response_urls[url] = state
            return url

    def advance(self, seconds: float) -> None:
        """Move the fake's clock on (response URLs expire after 30 minutes)."""
        with self._lock:
            self._clock_offset += seconds

    # -- inspection --------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Recorded calls, oldest first; only those of `method` when given."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def messages(self, channel: str) -> list[Json]:
        """The channel's messages as they are now (edited, not deleted), oldest first."""
        with self._lock:
            return list(self._channels.get(channel, []))

    def message(self, channel: str, ts: str) -> Json | None:
        with self._lock:
            return self._find(channel, ts)

    def responses(self, url: str) -> list[Json]:
        """The bodies a response URL accepted, oldest first (refused ones are in calls())."""
        with self._lock:
            return list(self._response_urls[url].bodies)

    def response_messages(self, url: str) -> list[Json]:
        """What the user sees now from this interaction: each message with its response_type
        ("ephemeral" or "in_channel"), after replacements and deletions."""
        with self._lock:
            return [dict(m) for m in self._response_urls[url].visible]

    def response_url_uses(self, url: str) -> int:
        with self._lock:
            return self._response_urls[url].uses

    # -- dispatch ----------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() + self._clock_offset

    def _next_ts(self) -> str:
        micros = max(int(time.time() * 1_000_000) // _TS_STEP * _TS_STEP, self._last_ts + _TS_STEP)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _dispatch(self, http_method: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> _Answer:
        # One lock around the whole request keeps data and counters consistent; every call
        # is short, so concurrent clients are served one after the other at once.
        received = time.monotonic()
        hold = self._take_hold(path)
        if hold is not None:
            hold.arrived.set()
            hold._released.wait(60)  # outside the lock: other calls go on meanwhile
            if not hold.answer:
                with self._lock:
                    if hold.processed:
                        self._serve_api(hold.method, headers, self._arguments(query, headers, raw))
                    self._calls.append(
                        RecordedCall(hold.method, path, headers, {}, None, http_method, None, None, received)
                    )
                return _Answer(0, None, drop="close")
        with self._lock:
            method, url, args = "", None, {}
            if path.startswith("/api/"):
                method = path[len("/api/") :]
            elif path.startswith("/response/"):
                method, url = "response_url", self.url + path
            elif path.startswith("/upload/"):
                answer = self._receive_upload(path[len("/upload/") :], raw)
                self._calls.append(
                    RecordedCall(
                        "upload",
                        path,
                        headers,
                        {"bytes": len(raw)},
                        self.url + path,
                        http_method,
                        answer.status,
                        answer.payload,
                        received,
                    )
                )
                return answer
            try:
                args = self._arguments(query, headers, raw)
            except ValueError:  # a body that is not the JSON or form it says it is
                answer = _Answer(200, _error("invalid_json")) if url is None else _Answer(400, "invalid_payload")
            else:
                try:
                    if url is not None:
                        answer = self._serve_response_url(url, args)
                    elif method:
                        answer = self._serve_api(method, headers, args)
                    else:
                        answer = _Answer(404, _error("not_found"))
                except Exception as exc:  # a bug in the fake: say so rather than hang the client
                    self.errors.append(f"{http_method} {path}: {exc!r}")
                    answer = _Answer(500, _error("fake_slack_error", detail=repr(exc)))
            status = None if answer.drop else answer.status
            payload = None if answer.drop else answer.payload
            self._calls.append(RecordedCall(method, path, headers, args, url, http_method, status, payload, received))
            return answer

    def _take_hold(self, path: str) -> Hold | None:
        with self._lock:
            for hold in self._holds:
                if path == f"/api/{hold.method}":
                    self._holds.remove(hold)
                    return hold
        return None

    @staticmethod
    def _arguments(query: str, headers: dict[str, str], raw: bytes) -> Json:
        args: Json = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if raw:
            if content_type == "application/json":
                body = json.loads(raw)
                if isinstance(body, dict):
                    args.update(body)
            else:
                form = parse_qs(raw.decode(), keep_blank_values=True)
                args.update({k: v[-1] for k, v in form.items()})
        return _decode_json_fields(args)

    def _failure(self, method: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.remaining > 0:
                failure.remaining -= 1
                return failure
        return None

    def _injected(self, method: str, run: Callable[[], _Answer]) -> _Answer:
        """The call's answer, unless a rate limit or a dropped connection is due."""
        failure = self._failure(method)
        if failure is None:
            return run()
        if failure.kind == "ratelimit":
            return _Answer(429, _error("ratelimited"), {"Retry-After": str(failure.retry_after)})
        if failure.processed:
            run()
        if failure.kind == "error":
            return _Answer(failure.status, _error(failure.error))
        return _Answer(0, None, drop="reset" if failure.reset else "close")

    def _serve_api(self, method: str, headers: dict[str, str], args: Json) -> _Answer:
        def run() -> _Answer:
            handler = self._methods.get(method)
            if handler is None:
                return _Answer(200, _error("unknown_method"))
            token = headers.get("authorization", "")
            token = token[len("Bearer ") :] if token.startswith("Bearer ") else args.get("token", "")
            if not token:
                return _Answer(200, _error("not_authed"))
            if token != self.bot_token:
                return _Answer(200, _error("invalid_auth"))
            return _Answer(200, handler(args))

        return self._injected(method, run)

    # -- Web API methods ---------------------------------------------------------------

    def _auth_test(self, args: Json) -> Json:
        return _ok(
            url=f"https://{self.team_domain}.slack.com/",
            team=self.team_domain.title(),
            user="milestone-gate",
            team_id=self.team_id,
            user_id=self.bot_user_id,
            bot_id=self.bot_id,
            is_enterprise_install=False,
        )

    def _channel_error(self, channel: str | None) -> Json | None:
        if not channel or channel in self._missing:
            return _error("channel_not_found")
        if channel in self._not_in:
            return _error("not_in_channel")
        return None

    def _content(self, args: Json, surface: str = "message") -> Json | None:
        """The error for a message without content or with broken blocks, else None."""
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return _error("no_text")
        blocks = args.get("blocks")
        if blocks is not None:
            if not isinstance(blocks, list):
                return _error("invalid_blocks_format")
            problems = block_problems({"blocks": blocks}, surface)
            if problems:
                return _invalid_blocks(problems)
        return None

    @staticmethod
    def _too_long(args: Json) -> Json | None:
        """Slack's size refusals of chat.postMessage and chat.update (response URLs take more)."""
        if len(args.get("text") or "") > MAX_MESSAGE_TEXT:
            return _error("msg_too_long")
        if block_text(args.get("blocks")) > MAX_POSTED_BLOCK_TEXT:
            return _error("msg_blocks_too_long")
        return None

    def _find(self, channel: str, ts: str) -> Json | None:
        for message in self._channels.get(channel, []):
            if message["ts"] == ts:
                return message
        return None

    @staticmethod
    def _public(message: Json) -> Json:
        return {k: v for k, v in message.items() if k != "channel"}

    def _post_message(self, args: Json) -> Json:
        channel = args.get("channel")
        error = self._channel_error(channel) or self._content(args) or self._too_long(args)
        if error:
            return error
        message: Json = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "text": args.get("text") or "",
            "ts": self._next_ts(),
            "channel": channel,
        }
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if args.get(key) is not None:
                message[key] = args[key]
        self._channels.setdefault(channel, []).append(message)
        return _ok(channel=channel, ts=message["ts"], message=self._public(message))

    def _update(self, args: Json) -> Json:
        channel, ts = args.get("channel"), args.get("ts")
        error = self._channel_error(channel)
        if error:
            return error
        if not ts:
            return _missing("ts")
        message = self._find(channel, ts)
        if message is None:
            return _error("message_not_found")
        error = self._content(args) or self._too_long(args)
        if error:
            return error
        # Slack keeps the blocks and attachments an update leaves out; text is replaced.
        message["text"] = args.get("text") or ""
        for key in ("blocks", "attachments", "metadata"):
            if key in args:
                message[key] = args[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return _ok(channel=channel, ts=ts, text=message["text"], message=self._public(message))

    def _post_ephemeral(self, args: Json) -> Json:
        channel = args.get("channel")
        error = self._channel_error(channel)
        if error:
            return error
        if not args.get("user"):
            return _missing("user")
        error = self._content(args)
        if error:
            return error
        message: Json = {
            "channel": channel,
            "user": args["user"],
            "ts": self._next_ts(),
            "text": args.get("text") or "",
        }
        for key in ("blocks", "attachments", "thread_ts"):
            if args.get(key) is not None:
                message[key] = args[key]
        self.ephemerals.append(message)
        return _ok(message_ts=message["ts"])

    def _delete(self, args: Json) -> Json:
        channel, ts = args.get("channel"), args.get("ts")
        error = self._channel_error(channel)
        if error:
            return error
        message = self._find(channel, ts or "")
        if message is None:
            return _error("message_not_found")
        self._channels[channel].remove(message)
        return _ok(channel=channel, ts=ts)

    def _view(self, given: Json, view_id: str, previous: Json | None) -> Json:
        """A view as Slack stores and answers it: the fields posted plus Slack's own."""
        view: Json = {
            "id": view_id,
            "team_id": self.team_id,
            "type": given.get("type"),
            "blocks": given.get("blocks", []),
            "private_metadata": given.get("private_metadata", ""),
            "callback_id": given.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{next(self._ids):08d}",
            "title": given.get("title"),
            "clear_on_close": bool(given.get("clear_on_close", False)),
            "notify_on_close": bool(given.get("notify_on_close", False)),
            "close": given.get("close"),
            "submit": given.get("submit"),
            "previous_view_id": None,
            "root_view_id": (previous or {}).get("root_view_id", view_id),
            "app_id": self.app_id,
            "external_id": given.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        return view

    def _view_error(self, given: Any, surface: str | None) -> Json | None:
        if not isinstance(given, dict):
            return _missing("view")
        kind = given.get("type")
        if kind not in ("home", "modal") or (surface is not None and kind != surface):
            return _error("invalid_arguments", response_metadata={"messages": [f"[ERROR] invalid view type: {kind}"]})
        problems = block_problems(given, kind)
        return _invalid_blocks(problems) if problems else None

    def _hash_conflict(self, args: Json, current: Json | None) -> bool:
        return bool(args.get("hash")) and current is not None and args["hash"] != current["hash"]

    def _views_publish(self, args: Json) -> Json:
        user_id = args.get("user_id")
        if not user_id:
            return _missing("user_id")
        error = self._view_error(args.get("view"), "home")
        if error:
            return error
        current = self.home_views.get(user_id)
        if self._hash_conflict(args, current):
            return _error("hash_conflict")
        view = self._view(args["view"], current["id"] if current else f"V{next(self._ids):010d}", current)
        self.home_views[user_id] = view
        return _ok(view=view)

    def _views_open(self, args: Json) -> Json:
        if not args.get("trigger_id"):
            return _missing("trigger_id")
        error = self._view_error(args.get("view"), "modal")
        if error:
            return error
        view = self._view(args["view"], f"V{next(self._ids):010d}", None)
        self.views[view["id"]] = view
        return _ok(view=view)

    def _views_update(self, args: Json) -> Json:
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            return _missing("view_id")
        every = list(self.views.values()) + list(self.home_views.values())
        current = next(
            (v for v in every if (view_id and v["id"] == view_id) or (external_id and v["external_id"] == external_id)),
            None,
        )
        if current is None:
            return _error("not_found")
        error = self._view_error(args.get("view"), None)
        if error:
            return error
        if self._hash_conflict(args, current):
            return _error("hash_conflict")
        view = self._view(args["view"], current["id"], current)
        if current["id"] in self.views:
            self.views[current["id"]] = view
        else:
            for user_id, home in self.home_views.items():
                if home["id"] == current["id"]:
                    self.home_views[user_id] = view
        return _ok(view=view)

    def _usergroups_list(self, args: Json) -> Json:
        # Slack lists a group's members only when asked (include_users), and never disabled groups unless asked.
        include_users = _is_true(args.get("include_users"))
        groups = [
            {key: value for key, value in group.items() if key != "users" or include_users}
            for group in self._usergroups.values()
            if group.get("date_delete", 0) == 0 or _is_true(args.get("include_disabled"))
        ]
        return _ok(usergroups=groups)

    def _history(self, args: Json) -> Json:
        """conversations.history: newest first, between `oldest` and `latest` (exclusive unless
        `inclusive`), at most `limit` (default 100, at most 999); metadata only with
        include_all_metadata, as Slack answers."""
        channel = args.get("channel")
        error = self._channel_error(channel)
        if error:
            return error
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or "inf")
        inclusive = _is_true(args.get("inclusive"))
        limit = min(int(args.get("limit") or 100), 999)
        with_metadata = _is_true(args.get("include_all_metadata"))
        found = [
            message
            for message in reversed(self._channels.get(channel or "", []))
            if (oldest <= float(message["ts"]) <= latest)
            if inclusive or float(message["ts"]) not in (oldest, latest)
        ]
        messages = [
            {k: v for k, v in self._public(message).items() if with_metadata or k != "metadata"}
            for message in found[:limit]
        ]
        return _ok(messages=messages, has_more=len(found) > limit, pin_count=0)

    def _permalink(self, args: Json) -> Json:
        channel, ts = args.get("channel"), args.get("message_ts")
        error = self._channel_error(channel)
        if error:
            return error
        if not ts or self._find(channel, ts) is None:
            return _error("message_not_found")
        return _ok(
            channel=channel, permalink=f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        )

    def _upload_url(self, args: Json) -> Json:
        if not args.get("filename"):
            return _missing("filename")
        length = int(args.get("length") or 0)
        if length <= 0:
            return _error("invalid_arguments")
        file_id = f"F{next(self._ids):010d}"
        self.files[file_id] = {"id": file_id, "name": args["filename"], "length": length, "content": None, "shared": []}
        return _ok(upload_url=f"{self.url}/upload/{file_id}", file_id=file_id)

    def _receive_upload(self, file_id: str, raw: bytes) -> _Answer:
        stored = self.files.get(file_id)
        if stored is None:
            return _Answer(404, "not_found")
        if len(raw) != stored["length"]:
            return _Answer(400, "length_mismatch")
        stored["content"] = raw
        return _Answer(200, f"OK - {len(raw)}")

    def _complete_upload(self, args: Json) -> Json:
        files = args.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not files:
            return _missing("files")
        channel = args.get("channel_id")
        error = self._channel_error(channel) if channel else None
        if error:
            return error
        done = []
        for item in files:
            stored = self.files.get(item.get("id", ""))
            if stored is None or stored["content"] is None:
                return _error("file_not_found")
            stored["title"] = item.get("title")
            if channel:
                stored["shared"].append(channel)
                message = {
                    "type": "message",
                    "user": self.bot_user_id,
                    "text": args.get("initial_comment") or "",
                    "ts": self._next_ts(),
                    "channel": channel,
                    "files": [{"id": stored["id"], "name": stored["name"], "title": stored.get("title")}],
                }
                self._channels.setdefault(channel, []).append(message)
            done.append({"id": stored["id"], "name": stored["name"], "title": stored.get("title")})
        return _ok(files=done)

    def _usergroup_users(self, args: Json) -> Json:
        group = self._usergroups.get(args.get("usergroup") or "")
        if group is None:
            return _error("no_such_subteam")
        return _ok(users=list(group["users"]))

    def _users_info(self, args: Json) -> Json:
        user = self._users.get(args.get("user") or "")
        if user is None:
            return _error("user_not_found")
        return _ok(user=user)

    # -- response URLs -----------------------------------------------------------------

    def _serve_response_url(self, url: str, args: Json) -> _Answer:
        state = self._response_urls.get(url)
        if state is None:
            return _Answer(404, "invalid_url")
        return self._injected("response_url", lambda: self._respond(state, args))

    def _respond(self, state: _ResponseURL, body: Json) -> _Answer:
        if self._now() - state.created > RESPONSE_URL_LIFETIME:
            return _Answer(404, "expired_url")
        if state.uses >= RESPONSE_URL_USES:
            return _Answer(404, "used_url")
        state.uses += 1  # every request that reaches a live URL counts, refused or not
        if _is_true(body.get("delete_original")):
            if state.visible:
                self._unlink(state, state.visible.pop(0))
            state.bodies.append(body)
            return _Answer(200, _ok())
        error = self._content(body)
        if error:
            return _Answer(400, error["error"])
        state.bodies.append(body)
        shown: Json = {"text": body.get("text") or ""}
        for key in ("blocks", "attachments", "thread_ts"):
            if body.get(key) is not None:
                shown[key] = body[key]
        if _is_true(body.get("replace_original")) and state.visible:
            original = state.visible[0]
            # A replacement keeps the original's visibility (and its place in the channel).
            shown["response_type"] = original.get("response_type", "ephemeral")
            if "ts" in original:
                shown["ts"] = original["ts"]
                stored = self._find(state.channel or "", original["ts"])
                if stored is not None:
                    stored["text"] = shown["text"]
                    for key in ("blocks", "attachments"):
                        if key in shown:
                            stored[key] = shown[key]
                        else:
                            stored.pop(key, None)
            state.visible[0] = shown
        else:
            shown["response_type"] = "in_channel" if body.get("response_type") == "in_channel" else "ephemeral"
            if shown["response_type"] == "in_channel" and state.channel:
                stored = {
                    "type": "message",
                    "user": self.bot_user_id,
                    "bot_id": self.bot_id,
                    "app_id": self.app_id,
                    "team": self.team_id,
                    "ts": self._next_ts(),
                    "channel": state.channel,
                    **{k: v for k, v in shown.items() if k != "response_type"},
                }
                self._channels.setdefault(state.channel, []).append(stored)
                shown["ts"] = stored["ts"]
            state.visible.append(shown)
        return _Answer(200, _ok())

    def _unlink(self, state: _ResponseURL, shown: Json) -> None:
        """A message deleted through a response URL also leaves the channel."""
        if "ts" in shown and state.channel:
            stored = self._find(state.channel, shown["ts"])
            if stored is not None:
                self._channels[state.channel].remove(stored)


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "1"))
