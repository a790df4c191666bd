"""The web process and the GitHub commands as a user runs them.

The web process runs as real processes over loopback (killed, restarted, two at once);
`deliveries` and `sync` run in this process (tests/cli.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.cli import MILESTONES, assert_refused_quietly, json_of, run, succeeds
from tests.fake_github import FakeGitHub
from tests.github import SECRET, fixture, signature
from tests.test_github_api import shop_on_github


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A `milestones serve` process on a port of its own, its output in a log file."""

    def __init__(self, database_url: str, cwd: Path, env: dict[str, str]):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = cwd / f"server-{port}.log"
        environment = dict(os.environ, DATABASE_URL=database_url, GITHUB_WEBHOOK_SECRET=SECRET, **env)
        for variable in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "LOG_LEVEL"):
            if variable not in env:
                environment.pop(variable, None)
        with open(self.log, "w") as output:
            self.process = subprocess.Popen(
                [str(MILESTONES), "serve", "--port", str(port)],
                cwd=cwd,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        # One connection kept open, as GitHub's deliveries arrive.
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def wait_until_ready(self) -> None:
        # Generous: on a loaded machine a cold start of Python and the app takes tens of seconds.
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if self.http.get("/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)

    def send(
        self, event: str, payload: dict | bytes, guid: str | None = None, *, secret: str = SECRET
    ) -> httpx.Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid or str(uuid.uuid4()),
            "X-Hub-Signature-256": signature(body, secret),
        }
        return self.http.post("/github/webhooks", content=body, headers=headers)


@contextmanager
def serving(database_url: str, cwd: Path, *, count: int = 1, **env: str) -> Iterator[list[Server]]:
    """`count` web processes on one database, started together, stopped with SIGTERM at the end."""
    servers = [Server(database_url, cwd, env) for _ in range(count)]
    try:
        for server in servers:
            server.wait_until_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def deliveries(database_url: str, cwd: Path) -> list[dict]:
    return json_of("deliveries", "--limit", "1000", database_url=database_url, cwd=cwd)


def wait_until_finished(database_url: str, cwd: Path, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(database_url, cwd)
        if len(found) == count and all(item["status"] in ("done", "ignored", "failed") for item in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def issue(number: int) -> dict:
    payload = fixture("issues", "opened")
    payload["issue"]["number"] = number
    return payload


def test_the_server_accepts_verifies_and_processes_webhooks(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    with serving(database_url, tmp_path) as [server]:
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        assert server.send("ping", fixture("ping", "payload"), "guid-ping").status_code == 202
        assert server.send("issues", issue(5), "guid-issue").status_code == 202
        assert server.send("issues", issue(5), "guid-bad", secret="wrong").status_code == 401
        broken = b'{"action": '
        bad_json = httpx.post(
            f"{server.url}/github/webhooks",
            content=broken,
            headers={
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": "guid-broken",
                "X-Hub-Signature-256": signature(broken),
            },
        )
        assert bad_json.status_code == 400
        found = wait_until_finished(database_url, tmp_path, 2)
        again = server.send("issues", issue(5), "guid-issue")
        assert again.status_code == 200, (again.json(), found, server.log.read_text())
    assert {item["guid"]: (item["status"], item["attempts"]) for item in found} == {
        "guid-ping": ("done", 1),
        "guid-issue": ("done", 1),
    }
    log = server.log.read_text()
    # SIGTERM stops it gracefully (uvicorn then re-raises the signal, as a host expects).
    assert "Finished server process" in log
    assert "GitHub: webhooks on at POST /github/webhooks; GitHub API access is off" in log
    assert "refused: signature does not match the secret (delivery guid-bad)" in log


def test_deliveries_accepted_before_a_kill_are_processed_after_a_restart(
    migrated_database_url: str, tmp_path: Path
) -> None:
    database_url = migrated_database_url
    # A claim held by the killed process runs out after a second.
    with serving(database_url, tmp_path, WEBHOOK_LEASE_SECONDS="1") as [server]:
        for number in range(30):
            assert server.send("issues", issue(number + 1)).status_code == 202
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    with serving(database_url, tmp_path, WEBHOOK_LEASE_SECONDS="1"):
        found = wait_until_finished(database_url, tmp_path, 30)
    assert {item["status"] for item in found} == {"done"}


def test_two_servers_on_one_database_process_each_delivery_once(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    with serving(database_url, tmp_path, count=2) as [first, second]:
        for number in range(60):
            server = first if number % 2 else second
            assert server.send("issues", issue(number % 7 + 1)).status_code == 202
        found = wait_until_finished(database_url, tmp_path, 60)
    assert {(item["status"], item["attempts"]) for item in found} == {("done", 1)}


def test_failed_deliveries_are_listed_and_can_be_replayed(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    broken = fixture("milestone", "created")
    del broken["milestone"]["title"]
    with serving(database_url, tmp_path) as [server]:
        server.send("milestone", broken, "guid-broken")
        server.send("milestone", fixture("milestone", "created"), "guid-good")
        wait_until_finished(database_url, tmp_path, 2)
    failed = succeeds("deliveries", "--failed", database_url=database_url, cwd=tmp_path).splitlines()
    assert len(failed) == 2
    assert failed[0].split() == [
        "RECEIVED",
        "(UTC)",
        "GUID",
        "EVENT",
        "REPOSITORY",
        "STATUS",
        "ATTEMPTS",
        "ERROR",
        "OR",
        "NOTE",
    ]
    assert failed[1].split()[2:] == [
        "guid-broken",
        "milestone.created",
        "Codertocat/Hello-World",
        "failed",
        "1",
        *"milestone payload is invalid: milestone.title: Field required".split(),
    ]
    assert failed[1].index("guid-broken") == failed[0].index("GUID")

    replayed = run("deliveries", "replay", "guid-good", database_url=database_url, cwd=tmp_path)
    assert replayed.returncode == 0
    assert "guid-good milestone.created Codertocat/Hello-World: done (1 attempt)" in replayed.stdout
    again = run("deliveries", "replay", "guid-broken", database_url=database_url, cwd=tmp_path)
    assert again.returncode == 1 and "failed (1 attempt)" in again.stdout
    lines = assert_refused_quietly(run("deliveries", "replay", "nope", database_url=database_url, cwd=tmp_path), 1)
    assert lines == ["error: no delivery nope"]


def test_sync_from_the_command_line(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    with FakeGitHub() as fake:
        shop_on_github(fake)
        result = run(
            "sync",
            "acme/shop",
            database_url=database_url,
            cwd=tmp_path,
            GITHUB_TOKEN="ghp_test",
            GITHUB_API_URL=fake.url,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "acme/shop: .github/milestones.yml: applied to 1 milestones"
    assert lines[1] == "  2 milestones, 75 issues (75 counting as defects)"
    assert lines[2].startswith("  ci.yml run 501: plan smoke: ")
    assert lines[3] == "  1 open pull requests, their gate checks due"
    status = json_of("status", "v2.0", "--repo", "acme/shop", database_url=database_url, cwd=tmp_path)
    assert status["target_date"] == "2026-12-15"


def test_sync_without_credentials_says_what_to_set(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    unset = {key: None for key in os.environ if key.startswith("GITHUB_")}
    result = run("sync", "acme/shop", database_url=database_url, cwd=tmp_path, **unset)
    lines = assert_refused_quietly(result, 2)
    assert len(lines) == 1 and "set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN" in lines[0]


def test_sync_during_a_github_outage_says_github_cannot_be_reached(migrated_database_url: str, tmp_path: Path) -> None:
    database_url = migrated_database_url
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    result = run(
        "sync", "acme/shop", database_url=database_url, cwd=tmp_path, GITHUB_TOKEN="ghp_test", GITHUB_API_URL=down
    )

    [line] = assert_refused_quietly(result, 1)
    assert line.startswith(f"error: cannot reach GitHub at {down} (")
    assert "Connection refused" in line and "database" not in line
    assert line.endswith(
        "); run sync again once it answers (what was pulled so far is kept, and nothing is pulled twice)"
    )


def test_deliveries_and_serve_refuse_numbers_out_of_range_as_usage_errors(tmp_path: Path) -> None:
    unused = f"sqlite://{tmp_path / 'unused.db'}"

    negative_limit = run("deliveries", "--limit", "-1", database_url=unused, cwd=tmp_path)
    port_too_high = run("serve", "--port", "99999", database_url=unused, cwd=tmp_path)
    port_from_the_host = run("serve", database_url=unused, cwd=tmp_path, PORT="web")

    assert assert_refused_quietly(negative_limit, 2)[-1] == (
        "milestones deliveries: error: argument --limit: '-1' is not a whole number of 1 or more"
    )
    assert assert_refused_quietly(port_too_high, 2)[-1] == (
        "milestones serve: error: argument --port: '99999' is not a port number (0 to 65535)"
    )
    assert assert_refused_quietly(port_from_the_host, 2)[-1] == (
        "milestones serve: error: argument --port: 'web' is not a port number (0 to 65535)"
    )
    assert not (tmp_path / "unused.db").exists()


def test_serve_with_a_sqlite_too_old_says_so_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    refused = run("serve", "--port", "0", database_url=f"sqlite://{tmp_path / 'x.db'}", cwd=tmp_path)
    assert assert_refused_quietly(refused, 2)[-1] == (
        "error: SQLite 3.35 or newer is needed, and this Python's sqlite3 module has 3.31.1: use a Python "
        "built with a newer SQLite, or PostgreSQL (DATABASE_URL=postgres://...)"
    )
    assert not (tmp_path / "x.db").exists()
