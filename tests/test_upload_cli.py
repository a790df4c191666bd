"""`milestones token` and `milestones upload` as a CI job runs them, against a real `milestones serve`."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import pty
import queue
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from core import ci
from core.cli import build_parser
from core.uploader import upload
from tests.cli import MILESTONES, assert_refused_quietly, json_of, migrated, run, succeeds
from tests.conftest import JUNIT
from tests.fake_github import FakeGitHub
from tests.loopback import read_body
from tests.test_github_api import shop_on_github
from tests.test_github_cli import serving
from tests.test_upload_api import MALFORMED, zip_bomb

REPO = "acme/shop"
JOB_URL = "https://gitlab.example.com/acme/shop/-/jobs/4242"
GITLAB_JOB = {
    "CI": "true",
    "GITLAB_CI": "true",
    "CI_JOB_ID": "4242",
    "CI_JOB_URL": JOB_URL,
    "CI_COMMIT_SHA": "c0ffee" + "0" * 34,
    "CI_COMMIT_BRANCH": "main",
    "CI_COMMIT_REF_NAME": "main",
    "CI_PROJECT_PATH": "acme/shop",
}
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0": {plans: [smoke], required: ["plan:smoke"]}
"""
# Modules a CI machine must not need for an upload.
SERVER_MODULES = (
    "tortoise",
    "asyncpg",
    "aiosqlite",
    "pydantic",
    "starlette",
    "uvicorn",
    "github",
    "slack_bolt",
    "lxml",
)


def ci_env(token: str, server_url: str, **more: str) -> dict[str, str]:
    """A CI job's environment: no database of ours, the upload settings, the CI's variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DATABASE_URL", "GITHUB_"))}
    return {**env, "MILESTONES_URL": server_url, "MILESTONES_TOKEN": token, **more}


def milestones_upload(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MILESTONES), "upload", *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def gitlab_job(folder: Path, *reports: str) -> Path:
    """A job's working directory with its reports where a build leaves them."""
    (folder / "build" / "test-results").mkdir(parents=True)
    for name in reports:
        shutil.copy(JUNIT / name, folder / "build" / "test-results" / name)
    return folder


def new_token(database_url: str, cwd: Path, *args: str) -> str:
    result = run("token", "create", "--repo", REPO, *args, database_url=database_url, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "shown this once; store it as MILESTONES_TOKEN" in result.stderr
    return result.stdout.strip()


def shop_with_milestone(scratch_database_url: str, cwd: Path) -> str:
    """A migrated database where acme/shop has milestone v2.0 on plan smoke."""
    database_url = migrated(scratch_database_url, cwd)
    policy = cwd / "milestones.yml"
    policy.write_text(POLICY)
    succeeds("milestone", "add", "v2.0", "--repo", REPO, "--policy", policy, database_url=database_url, cwd=cwd)
    return database_url


def gate_statuses(repo) -> list[dict]:
    return [status for status in repo.statuses if status["context"] == "milestone-gate/v2.0"]


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


def count_launches(database_url: str) -> int:
    return count_rows(database_url, "launch")


def count_rows(database_url: str, table: str) -> int:
    if database_url.startswith("sqlite://"):
        with sqlite3.connect(database_url.removeprefix("sqlite://")) as connection:
            return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    async def count() -> int:
        connection = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        try:
            return await connection.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await connection.close()

    return asyncio.run(count())


# The whole path, as a new user tries it -------------------------------------------------


def test_a_gitlab_job_uploads_and_the_gate_check_follows(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    with FakeGitHub() as fake:
        repo = shop_on_github(fake)
        github = {"GITHUB_TOKEN": "ghp_test", "GITHUB_API_URL": fake.url}
        synced = subprocess.run(
            [str(MILESTONES), "sync", REPO],
            env={**os.environ, "DATABASE_URL": database_url, **github},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert synced.returncode == 0, synced.stderr
        token = new_token(database_url, tmp_path, "--name", "gitlab", "--plan", "smoke")
        settings = {**github, "CHECKS_SETTLE_SECONDS": "0.2", "LOG_LEVEL": "DEBUG"}
        with serving(database_url, tmp_path, **settings) as [server]:
            before = wait_for(lambda: gate_statuses(repo), what="the gate status of the open pull request")[-1]
            written = len(gate_statuses(repo))
            job = gitlab_job(tmp_path / "job", "swift-xunit.xml", "python-xunit-unittest.xml")
            env = ci_env(token, server.url, **GITLAB_JOB)

            first = milestones_upload("build/test-results", "--plan", "smoke", cwd=job, env=env)
            after = wait_for(lambda: gate_statuses(repo)[-1] if len(gate_statuses(repo)) > written else None)
            again = milestones_upload("build/test-results", "--plan", "smoke", cwd=job, env=env)
            time.sleep(1)  # time enough for a (wrong) second update of the check to be written
            written_after_repeat = len(gate_statuses(repo))
        log = server.log.read_text()

    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        "11 tests in 2 files: 6 passed, 2 failed, 1 errors, 2 skipped, 0 flaky -> acme/shop plan smoke, launch 2",
        "  v2.0: blocked",
    ]
    assert (again.returncode, again.stderr) == (0, "")
    assert again.stdout.splitlines()[0].endswith("launch 2 (already recorded: nothing changed)")
    # The check on the pull request moved with the launch, once.
    assert after["sha"] == "a" * 40 and after["description"] != before["description"]
    assert written_after_repeat == written + 1
    status = json_of("status", "v2.0", "--repo", REPO, database_url=database_url, cwd=tmp_path)
    launch = status["launches"][0]
    assert (launch["id"], launch["url"], launch["commit_sha"], launch["branch"], launch["source"]) == (
        2,
        JOB_URL,
        GITLAB_JOB["CI_COMMIT_SHA"],
        "main",
        "gitlab:4242",
    )
    text = succeeds("status", "v2.0", "--repo", REPO, database_url=database_url, cwd=tmp_path)
    assert "  smoke: launch 2, " in text and f"11 tests, 3 failing · c0ffee0 on main · {JOB_URL}" in text
    # Neither the server's log (at DEBUG) nor the uploader's output ever shows the token.
    assert "upload with token gitlab of acme/shop: plan smoke, new launch 2 (11 tests, 3 failing)" in log
    assert token not in log and token[4:] not in log
    assert token not in first.stdout + first.stderr + again.stdout + again.stderr
    listed = succeeds("token", "list", database_url=database_url, cwd=tmp_path)
    assert token not in listed and token[:8] + "…" in listed and "last used never" not in listed


def test_refused_uploads_say_why_and_store_nothing(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = shop_with_milestone(scratch_database_url, tmp_path)
    token = new_token(database_url, tmp_path, "--name", "gitlab")
    revoked = new_token(database_url, tmp_path, "--name", "old")
    # The name alone is enough while no other repository has a token so named.
    assert succeeds("token", "revoke", "old", database_url=database_url, cwd=tmp_path) == (
        "token old of acme/shop revoked: uploads with it are refused from now on\n"
    )
    other = run("token", "create", "--repo", "acme/other", "--name", "gitlab", database_url=database_url, cwd=tmp_path)
    ambiguous = run("token", "revoke", "gitlab", database_url=database_url, cwd=tmp_path)
    assert assert_refused_quietly(ambiguous, 1) == [
        "error: gitlab is a token of several repositories: acme/other, acme/shop; name one with --repo"
    ]
    job = gitlab_job(tmp_path / "job", "swift-xunit.xml")
    reports = job / "build" / "test-results"
    (reports / "huge.xml").write_text(
        '<testsuite name="huge"><testcase name="t"><system-out>'
        + os.urandom(15 * 1024 * 1024).hex()
        + "</system-out></testcase></testsuite>"
    )
    assert (reports / "huge.xml").stat().st_size > 30 * 1000 * 1000
    (reports / "bomb.xml.gz").write_bytes(zip_bomb(64 * 1024 * 1024))
    (reports / "broken.xml").write_bytes(MALFORMED)

    with serving(database_url, tmp_path, LOG_LEVEL="DEBUG") as [server]:
        env = ci_env(token, server.url, **GITLAB_JOB)

        def refused(*args: str | Path, token_used: str = token) -> str:
            result = milestones_upload(*args, "--plan", "smoke", cwd=job, env={**env, "MILESTONES_TOKEN": token_used})
            [line] = assert_refused_quietly(result, 1)
            return line

        where = reports.relative_to(job)
        answers = {
            "revoked": refused(where / "swift-xunit.xml", token_used=revoked),
            "other repository": refused(where / "swift-xunit.xml", "--repo", REPO, token_used=other.stdout.strip()),
            "30 MB": refused(where / "huge.xml"),
            "zip bomb": refused(where / "bomb.xml.gz"),
            "malformed": refused(where / "swift-xunit.xml", where / "broken.xml"),
        }
        dropped = drop_mid_upload(server.url, token, multipart=True) and drop_mid_upload(server.url, token)
        wait_for(lambda: server.log.read_text().count("upload abandoned") == 2, what="the abandoned uploads in the log")
        healthy = httpx.get(f"{server.url}/readyz").status_code
        log = server.log.read_text()

    assert answers["revoked"].startswith("error: upload refused (HTTP 401: token old of acme/shop was revoked on ")
    assert answers["other repository"] == (
        "error: upload refused (HTTP 403: token gitlab uploads to acme/other (any plan), not to acme/shop: "
        "use that repository's token)"
    )
    assert answers["30 MB"].startswith("error: upload refused (HTTP 413: upload: build/test-results/huge.xml ")
    assert "inflates past the limit of 25.0 MB uncompressed" in answers["30 MB"]
    assert answers["zip bomb"].startswith("error: upload refused (HTTP 413: upload: build/test-results/bomb.xml.gz ")
    assert answers["malformed"] == (
        "error: upload refused (HTTP 422: build/test-results/broken.xml:4: malformed XML: Opening and ending tag "
        "mismatch: testcase line 3 and testsuit; the upload was refused whole)"
    )
    assert dropped and healthy == 200
    assert "upload abandoned: the client went away after" in log
    assert count_launches(database_url) == 0
    assert json_of("status", "v2.0", "--repo", REPO, database_url=database_url, cwd=tmp_path)["launches"] == []
    assert token not in log and revoked not in log


def drop_mid_upload(server_url: str, token: str, *, multipart: bool = False) -> bool:
    """Send the headers and a third of a declared body (a form's file part, or one gzip report), then hang up."""
    host, port = urlsplit(server_url).netloc.split(":")
    report = gzip.compress((JUNIT / "swift-xunit.xml").read_bytes() + b"<!--" + os.urandom(150_000).hex().encode())
    if multipart:
        content_type = "multipart/form-data; boundary=b"
        part = b"--b\r\nContent-Disposition: form-data; name=report; filename=r.xml.gz\r\n\r\n" + report
    else:
        content_type, part = "application/gzip", report
    head = (
        f"POST /api/v1/launches?plan=smoke&source=dropped HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(part) * 3}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head + part)
        time.sleep(0.3)
    return True


def test_concurrent_uploads_are_each_recorded_once(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = shop_with_milestone(scratch_database_url, tmp_path)
    token = new_token(database_url, tmp_path, "--name", "gitlab")
    report = (JUNIT / "swift-xunit.xml").read_bytes()
    settings = {"UPLOAD_RATE_LIMIT": "1000"}
    with serving(database_url, tmp_path, count=2, **settings) as [first, second]:

        def send(number: int) -> tuple[int, int, int]:
            server = (first, second)[number % 2]
            response = httpx.post(
                f"{server.url}/api/v1/launches",
                # Half the jobs upload to a plan no launch has named yet: its first uploads race to make it.
                params={
                    "plan": "smoke" if number % 50 < 25 else "perf",
                    "source": f"job-{number % 50}",
                    "commit": f"{number % 50:040x}",
                },
                files=[("report", ("swift.xml", report, "application/xml"))],
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )
            assert response.status_code in (200, 201), response.text
            return number % 50, response.status_code, response.json()["launch"]["id"]

        # Every job sends its upload twice at once, to both web processes.
        with ThreadPoolExecutor(max_workers=50) as pool:
            answers = list(pool.map(send, range(100)))

    by_job: dict[int, set[tuple[int, int]]] = {}
    for job, status, launch in answers:
        by_job.setdefault(job, set()).add((status, launch))
    assert len(by_job) == 50
    for job, seen in by_job.items():
        assert sorted(status for status, _ in seen) == [200, 201], (job, seen)
        assert len({launch for _, launch in seen}) == 1
    assert count_launches(database_url) == 50
    assert count_rows(database_url, "test_plan") == 2


# The uploader on its own ----------------------------------------------------------------


@dataclass
class Received:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


class StubServer:
    """A loopback HTTP server answering uploads from a script of (status, headers, JSON)."""

    def __init__(self, answers: list[tuple[int, dict[str, str], dict]]):
        self.answers: queue.Queue = queue.Queue()
        for answer in answers:
            self.answers.put(answer)
        self.received: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = read_body(self)
                split = urlsplit(self.path)
                stub.received.append(Received(split.path, parse_qs(split.query), dict(self.headers), body))
                status, headers, payload = stub.answers.get_nowait()
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> StubServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


RECORDED = {
    "launch": {"id": 7, "created": True, "repository": REPO, "plan": "smoke"},
    "counts": {"files": 1, "tests": 3, "passed": 2, "failed": 1, "errors": 0, "skipped": 0, "flaky": 0},
    "milestones": [{"name": "v2.0", "status": "blocked", "status_text": "blocked", "url": None}],
}


def upload_args(*args: str):
    return build_parser("upload").parse_args(["upload", *args])


def test_failures_on_the_way_are_retried_with_the_same_fields(capsys: pytest.CaptureFixture[str]) -> None:
    busy = {
        "error": "database_busy",
        "message": "the database was busy (…); nothing was stored: send the upload again in 5 s",
    }
    answers = [
        (503, {}, {"error": "down"}),
        (503, {"Retry-After": "5"}, busy),
        (429, {"Retry-After": "7"}, {"message": "slow down"}),
        (201, {}, RECORDED),
    ]
    slept: list[float] = []
    with StubServer(answers) as stub:
        code = upload(
            upload_args(str(JUNIT / "swift-xunit.xml"), "--plan", "smoke"),
            {**GITLAB_JOB, "MILESTONES_URL": stub.url + "/", "MILESTONES_TOKEN": "mgt_secret"},
            sleep=slept.append,
        )

    # The server's Retry-After is followed (a 503 of a database away too), else the back-off's.
    assert code == 0 and slept == [2.0, 5.0, 7.0]
    assert [request.query for request in stub.received] == [stub.received[0].query] * 4
    assert stub.received[0].path == "/api/v1/launches"
    assert stub.received[0].query == {
        "plan": ["smoke"],
        "commit": [GITLAB_JOB["CI_COMMIT_SHA"]],
        "branch": ["main"],
        "source": ["gitlab:4242"],
        "url": [JOB_URL],
    }
    assert stub.received[0].headers["Authorization"] == "Bearer mgt_secret"
    # Gzipped on the way: the part is a gzip stream of the report as it is on disk.
    assert b"\x1f\x8b" in stub.received[3].body and b"<testsuite" not in stub.received[3].body
    output = capsys.readouterr()
    assert output.out.splitlines()[0].endswith("-> acme/shop plan smoke, launch 7")
    assert output.err.splitlines() == [
        'upload failed (HTTP 503: {"error": "down"}); retrying in 2 s',
        f"upload failed (HTTP 503: {busy['message']}); retrying in 5 s",
        "upload failed (HTTP 429: slow down); retrying in 7 s",
    ]


def test_a_refusal_is_not_retried(capsys: pytest.CaptureFixture[str]) -> None:
    refusal = {"error": "forbidden", "message": "token gitlab uploads to acme/other (any plan), not to acme/shop"}
    with StubServer([(403, {}, refusal)]) as stub:
        code = main_upload(stub.url, str(JUNIT / "swift-xunit.xml"), "--plan", "smoke")

    assert code == 1 and len(stub.received) == 1
    assert capsys.readouterr().err == f"error: upload refused (HTTP 403: {refusal['message']})\n"


def test_a_redirect_says_which_url_to_set_and_sends_the_token_nowhere_else(capsys: pytest.CaptureFixture[str]) -> None:
    # An http:// URL in front of an https:// service: the token is not sent on to where it points.
    with StubServer([(301, {"Location": "https://milestones.example.com/api/v1/launches"}, {})]) as stub:
        code = main_upload(stub.url, str(JUNIT / "swift-xunit.xml"), "--plan", "smoke")

    assert code == 1 and len(stub.received) == 1
    assert capsys.readouterr().err == (
        f"error: upload refused (HTTP 301: {stub.url}/api/v1/launches redirects to "
        "https://milestones.example.com/api/v1/launches; set MILESTONES_URL to https://milestones.example.com)\n"
    )


def test_an_unreachable_server_is_retried_then_given_up(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = main_upload(f"http://127.0.0.1:{port}", str(JUNIT / "swift-xunit.xml"), "--plan", "smoke", "--retries", "2")

    assert code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[0].startswith(f"upload failed (cannot reach http://127.0.0.1:{port}/api/v1/")
    assert lines[2].startswith("error: upload failed after 3 attempts (cannot reach ")


def main_upload(server_url: str, *args: str) -> int:
    from core import uploader

    env = {"MILESTONES_URL": server_url, "MILESTONES_TOKEN": "mgt_x"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(uploader.time, "sleep", lambda seconds: None)  # read when each upload starts
        patch.setattr(uploader.os, "environ", env)
        return uploader.run(upload_args(*args))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MILESTONES_TOKEN": "mgt_x"}, "error: set MILESTONES_URL (or --server) to the service's URL"),
        ({"MILESTONES_URL": "http://127.0.0.1:9"}, "error: set MILESTONES_TOKEN to an upload token"),
        (
            {"MILESTONES_URL": "http://[::1", "MILESTONES_TOKEN": "mgt_x"},
            "error: MILESTONES_URL 'http://[::1': not a URL (Invalid IPv6 URL)",
        ),
        (
            {"MILESTONES_URL": "http://127.0.0.1:99999", "MILESTONES_TOKEN": "mgt_x"},
            "error: MILESTONES_URL 'http://127.0.0.1:99999': not a URL (Port out of range 0-65535)",
        ),
        # A token pasted with a line break, or with a look-alike letter: said without showing it.
        (
            {"MILESTONES_URL": "http://127.0.0.1:9", "MILESTONES_TOKEN": "mgt_half\nhalf"},
            "error: MILESTONES_TOKEN holds characters no token has",
        ),
        (
            {"MILESTONES_URL": "http://127.0.0.1:9", "MILESTONES_TOKEN": "mgt_tok\u0435n"},
            "error: MILESTONES_TOKEN holds characters no token has",
        ),
    ],
    ids=["no-url", "no-token", "url-unparsable", "url-port", "token-line-break", "token-not-ascii"],
)
def test_missing_settings_are_usage_errors(tmp_path: Path, env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [str(MILESTONES), "upload", str(JUNIT / "swift-xunit.xml"), "--plan", "smoke"],
        env={"PATH": os.environ["PATH"], **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    [line] = assert_refused_quietly(result, 2)
    assert line.startswith(message)
    for piece in env.get("MILESTONES_TOKEN", "").splitlines():
        assert piece == "mgt_x" or piece not in line


def test_the_uploader_needs_neither_the_database_nor_the_server_machinery(tmp_path: Path) -> None:
    script = f"""
import json, sys
from core.cli import main
code = main(["upload", {str(JUNIT / "swift-xunit.xml")!r}, "--plan", "smoke"])
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({SERVER_MODULES!r}))
print(json.dumps({{"code": code, "loaded": loaded, "models": "core.models" in sys.modules}}))
"""
    with StubServer([(201, {}, RECORDED)]) as stub:
        # A CI job's own DATABASE_URL (another product's) is not ours to read.
        env = {**os.environ, "MILESTONES_URL": stub.url, "MILESTONES_TOKEN": "mgt_x", "DATABASE_URL": "mysql://ci/db"}
        result = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {"code": 0, "loaded": [], "models": False}


def test_a_large_file_shows_a_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_text('<testsuite name="big"><system-out>' + "x" * (6 * 1024 * 1024) + "</system-out></testsuite>")
    outputs = []
    with StubServer([(201, {}, RECORDED), (201, {}, RECORDED)]) as stub:
        env = {**os.environ, "MILESTONES_URL": stub.url, "MILESTONES_TOKEN": "mgt_x", "TERM": "xterm"}
        for on_terminal in (True, False):
            leader, follower = pty.openpty()
            stderr = follower if on_terminal else subprocess.PIPE
            process = subprocess.Popen(
                [str(MILESTONES), "upload", str(big), "--plan", "smoke"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
            os.close(follower)
            out, err = process.communicate(timeout=60)
            outputs.append((process.returncode, err if err is not None else read_all(leader)))
            os.close(leader)

    (terminal_code, terminal), (piped_code, piped) = outputs
    assert terminal_code == piped_code == 0
    assert b"uploading" in terminal and b"\x1b[" in terminal
    assert piped == b""
    # What was sent is the report, gzipped.
    assert len(stub.received[0].body) < 100_000


def read_all(descriptor: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(descriptor, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# CI variables ---------------------------------------------------------------------------


def test_github_actions_reports_the_pull_request_head(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"head": {"sha": "f" * 40}}}))
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_SHA": "e" * 40,
        "GITHUB_HEAD_REF": "feature/x",
        "GITHUB_REF_NAME": "12/merge",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_RUN_ID": "9001",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_JOB": "test",
    }
    assert ci.detect(env) == ci.JobFacts(
        "GitHub Actions",
        commit="f" * 40,
        branch="feature/x",
        url="https://github.com/acme/shop/actions/runs/9001/attempts/2",
        source="github:9001:test",
        attempt=2,
        repository="acme/shop",
    )
    push = {**env, "GITHUB_EVENT_NAME": "push", "GITHUB_HEAD_REF": "", "GITHUB_REF_NAME": "main"}
    assert (ci.detect(push).commit, ci.detect(push).branch) == ("e" * 40, "main")


@pytest.mark.parametrize(
    ("env", "facts"),
    [
        (
            GITLAB_JOB,
            ci.JobFacts("GitLab CI", GITLAB_JOB["CI_COMMIT_SHA"], "main", JOB_URL, "gitlab:4242"),
        ),
        (
            # A merge request pipeline: no CI_COMMIT_BRANCH, the source branch instead.
            {**GITLAB_JOB, "CI_COMMIT_BRANCH": "", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/y"},
            ci.JobFacts("GitLab CI", GITLAB_JOB["CI_COMMIT_SHA"], "feature/y", JOB_URL, "gitlab:4242"),
        ),
        (
            {
                "JENKINS_URL": "https://jenkins.example.com/",
                "BUILD_NUMBER": "153",
                "BUILD_TAG": "jenkins-shop-main-153",
                "BUILD_URL": "https://jenkins.example.com/job/shop/job/main/153/",
                "GIT_COMMIT": "d" * 40,
                "GIT_BRANCH": "origin/main",
            },
            ci.JobFacts(
                "Jenkins",
                "d" * 40,
                "main",
                "https://jenkins.example.com/job/shop/job/main/153/",
                "jenkins:jenkins-shop-main-153",
            ),
        ),
        (
            {
                "CIRCLECI": "true",
                "CIRCLE_SHA1": "c" * 40,
                "CIRCLE_BRANCH": "main",
                "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/88",
                "CIRCLE_WORKFLOW_JOB_ID": "5f1e",
                "CIRCLE_NODE_TOTAL": "4",
                "CIRCLE_NODE_INDEX": "2",
            },
            ci.JobFacts("CircleCI", "c" * 40, "main", "https://circleci.com/gh/acme/shop/88", "circleci:5f1e:2"),
        ),
        (
            {
                "BUILDKITE": "true",
                "BUILDKITE_COMMIT": "b" * 40,
                "BUILDKITE_BRANCH": "main",
                "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/12",
                "BUILDKITE_JOB_ID": "0190-ab",
            },
            ci.JobFacts(
                "Buildkite", "b" * 40, "main", "https://buildkite.com/acme/shop/builds/12#0190-ab", "buildkite:0190-ab"
            ),
        ),
        (
            # Started by hand in the UI, without a commit.
            {"BUILDKITE": "true", "BUILDKITE_COMMIT": "HEAD", "BUILDKITE_BRANCH": "main", "BUILDKITE_JOB_ID": "01"},
            ci.JobFacts("Buildkite", None, "main", None, "buildkite:01"),
        ),
        ({"CI": "true"}, ci.JobFacts()),
    ],
    ids=["gitlab", "gitlab-merge-request", "jenkins", "circleci-parallel", "buildkite", "buildkite-by-hand", "unknown"],
)
def test_each_ci_says_what_its_job_is(env: dict[str, str], facts: ci.JobFacts) -> None:
    assert ci.detect(env) == facts
