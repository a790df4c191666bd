"""The web process and the GitHub commands as a user runs them: real processes over loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.fake_github import FakeGitHub
from tests.github import SECRET, fixture, signature
from tests.test_cli import MILESTONES, assert_refused_quietly, json_of, migrated, run, succeeds
from tests.test_github_api import shop_on_github


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    def __init__(self, process: subprocess.Popen[str], port: int, log: Path):
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

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
        return httpx.post(f"{self.url}/github/webhooks", content=body, headers=headers, timeout=10)


@contextmanager
def serving(database_url: str, cwd: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    log = cwd / f"server-{port}.log"
    environment = dict(os.environ, DATABASE_URL=database_url, GITHUB_WEBHOOK_SECRET=SECRET, **env)
    for variable in ("GITHUB_TOKEN", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY", "LOG_LEVEL"):
        if variable not in env:
            environment.pop(variable, None)
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(MILESTONES), "serve", "--port", str(port)],
            cwd=cwd,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = Server(process, port, log)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def deliveries(database_url: str, cwd: Path) -> list[dict]:
    return json_of("deliveries", "--limit", "1000", database_url=database_url, cwd=cwd)


def wait_until_finished(database_url: str, cwd: Path, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = deliveries(database_url, cwd)
        if len(found) == count and all(item["status"] in ("done", "ignored", "failed") for item in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def issue(number: int) -> dict:
    payload = fixture("issues", "opened")
    payload["issue"]["number"] = number
    return payload


def test_the_server_accepts_verifies_and_processes_webhooks(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    with serving(database_url, tmp_path) as server:
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
        assert server.send("issues", issue(5), "guid-issue").status_code == 200
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
    scratch_database_url: str, tmp_path: Path
) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    settings = {"WEBHOOK_LEASE_SECONDS": "1"}
    with serving(database_url, tmp_path, **settings) as server:
        for number in range(30):
            assert server.send("issues", issue(number + 1)).status_code == 202
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
    with serving(database_url, tmp_path, **settings):
        found = wait_until_finished(database_url, tmp_path, 30)
    assert {item["status"] for item in found} == {"done"}


def test_two_servers_on_one_database_process_each_delivery_once(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    with serving(database_url, tmp_path) as first, serving(database_url, tmp_path) as second:
        for number in range(60):
            server = first if number % 2 else second
            assert server.send("issues", issue(number % 7 + 1)).status_code == 202
        found = wait_until_finished(database_url, tmp_path, 60)
    assert {(item["status"], item["attempts"]) for item in found} == {("done", 1)}


def test_failed_deliveries_are_listed_and_can_be_replayed(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    broken = fixture("milestone", "created")
    del broken["milestone"]["title"]
    with serving(database_url, tmp_path) as server:
        server.send("milestone", broken, "guid-broken")
        server.send("milestone", fixture("milestone", "created"), "guid-good")
        wait_until_finished(database_url, tmp_path, 2)
    failed = succeeds("deliveries", "--failed", database_url=database_url, cwd=tmp_path).splitlines()
    assert len(failed) == 2
    assert failed[0].endswith("guid-broken milestone.created Codertocat/Hello-World: failed (1 attempt)")
    assert failed[1] == "    milestone payload is invalid: milestone.title: Field required"

    replayed = run("deliveries", "replay", "guid-good", database_url=database_url, cwd=tmp_path)
    assert replayed.returncode == 0
    assert "guid-good milestone.created Codertocat/Hello-World: done (1 attempt)" in replayed.stdout
    again = run("deliveries", "replay", "guid-broken", database_url=database_url, cwd=tmp_path)
    assert again.returncode == 1 and "failed (1 attempt)" in again.stdout
    lines = assert_refused_quietly(run("deliveries", "replay", "nope", database_url=database_url, cwd=tmp_path), 1)
    assert lines == ["error: no delivery nope"]


def test_sync_from_the_command_line(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    with FakeGitHub() as fake:
        shop_on_github(fake)
        env = dict(os.environ, DATABASE_URL=database_url, GITHUB_TOKEN="ghp_test", GITHUB_API_URL=fake.url)
        result = subprocess.run(
            [str(MILESTONES), "sync", "acme/shop"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "acme/shop: .github/milestones.yml: applied to 1 milestones"
    assert lines[1] == "  2 milestones, 75 issues (75 counting as defects)"
    assert lines[2].startswith("  ci.yml run 501: plan smoke: ")
    assert lines[3] == "  1 open pull requests, their gate checks due"
    status = json_of("status", "v2.0", "--repo", "acme/shop", database_url=database_url, cwd=tmp_path)
    assert status["target_date"] == "2026-12-15"


def test_sync_without_credentials_says_what_to_set(scratch_database_url: str, tmp_path: Path) -> None:
    database_url = migrated(scratch_database_url, tmp_path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("GITHUB_")}
    env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [str(MILESTONES), "sync", "acme/shop"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    lines = assert_refused_quietly(result, 2)
    assert len(lines) == 1 and "set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN" in lines[0]
