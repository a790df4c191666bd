"""`milestones upload`: test reports from any CI, sent to the web process's upload API.

It runs on CI machines, so it needs neither the database nor the server's machinery: the
standard library and httpx (rich draws the progress bar on a terminal). It reads no settings
either, since a CI job's environment (its own DATABASE_URL, say) is not ours to validate.
The commit, branch, job link and source come from the CI's variables (core.ci) unless given.

Reports are gzipped while they are sent. A failure on the way (a connection lost, a 5xx, a
rate limit) is retried with the same fields: the server records a source and attempt once, so
a retry of an upload that did arrive is answered 200 and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from core import ci
from core.wording import launch_counts

API_PATH = "/api/v1/launches"
GZIP_MAGIC = b"\x1f\x8b"
# Files this large get a progress bar, when standard error is a terminal.
PROGRESS_FROM_BYTES = 4 * 1024 * 1024
RETRY_AFTER_LONGEST = 60.0
# What an HTTP header may carry of a token, whatever its shape (the server judges that).
TOKEN_CHARACTERS = re.compile(r"[\x21-\x7e]+")


class UploadFailed(Exception):
    """Said in one line; `status` is the exit status (1 refused or failed, 2 usage)."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def run(args: argparse.Namespace) -> int:
    try:
        return upload(args, os.environ)
    except UploadFailed as failure:
        print(f"error: {failure}", file=sys.stderr)
        return failure.status
    except KeyboardInterrupt:
        return 130


@dataclass(frozen=True)
class Target:
    endpoint: str
    token: str


def upload(args: argparse.Namespace, env: Mapping[str, str], sleep: Callable[[float], None] = time.sleep) -> int:
    target = _target(args, env)
    files = _report_files(args.reports)
    if args.attempt is not None and args.attempt < 1:
        raise UploadFailed("--attempt must be 1 or more", 2)
    fields = _fields(args, ci.detect(env))
    answer = _send(target, fields, files, args.retries, time.sleep if sleep is None else sleep)
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    else:
        for line in _summary(answer):
            print(line)
    return 0


def _target(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    server = (args.server or env.get("MILESTONES_URL") or "").strip().rstrip("/")
    if not server:
        raise UploadFailed(
            "set MILESTONES_URL (or --server) to the service's URL, e.g. https://milestones.example.com", 2
        )
    if not server.startswith(("https://", "http://")):
        raise UploadFailed(f"MILESTONES_URL {server!r}: expected an http(s) URL", 2)
    try:
        parts = urlsplit(server)
        host, _ = parts.hostname, parts.port  # the port is checked when read
    except ValueError as error:
        raise UploadFailed(f"MILESTONES_URL {server!r}: not a URL ({error})", 2) from None
    if not host:
        raise UploadFailed(f"MILESTONES_URL {server!r}: no host in it", 2)
    token = env.get("MILESTONES_TOKEN", "").strip()
    if not token:
        raise UploadFailed("set MILESTONES_TOKEN to an upload token (`milestones token create` makes one)", 2)
    if not TOKEN_CHARACTERS.fullmatch(token):
        # Never repeated in the message: a CI's log keeps what the job prints.
        raise UploadFailed(
            "MILESTONES_TOKEN holds characters no token has (a line break, a space, a letter outside ASCII): "
            "copy it again as `milestones token create` printed it",
            2,
        )
    return Target(server + API_PATH, token)


def _report_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.xml")) + sorted(path.glob("*.xml.gz"))
            if not found:
                raise UploadFailed(f"{path}: no *.xml or *.xml.gz files in this directory", 2)
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UploadFailed(f"{path}: no such file", 2)
    return files


def _fields(args: argparse.Namespace, job: ci.JobFacts) -> dict[str, str]:
    values = {
        "plan": args.plan,
        "repository": args.repo or job.repository,
        "commit": args.commit or job.commit,
        "branch": args.branch or job.branch,
        "source": args.source or job.source,
        "attempt": str(args.attempt or job.attempt or "") or None,
        "url": args.job_url or job.url,
    }
    return {name: value for name, value in values.items() if value}


def _send(
    target: Target, fields: dict[str, str], files: list[Path], retries: int, sleep: Callable[[float], None]
) -> dict[str, Any]:
    import httpx

    headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
    timeout = httpx.Timeout(connect=10.0, read=300.0, write=60.0, pool=10.0)
    attempts = max(retries, 0) + 1
    with httpx.Client(timeout=timeout, headers=headers) as client:
        for attempt in range(1, attempts + 1):
            wait = min(2.0**attempt, 30.0)
            try:
                with _report_parts(files) as parts:
                    response = client.post(target.endpoint, params=fields, files=parts)
            except httpx.TransportError as error:
                problem = f"cannot reach {target.endpoint}: {error or type(error).__name__}"
            else:
                answer = _json(response)
                if response.status_code in (200, 201):
                    return answer
                problem = f"HTTP {response.status_code}: {_message(answer, response)}"
                if response.is_redirect:
                    # Not followed: the token goes to the service named, nowhere else.
                    location = str(response.next_request.url) if response.next_request else "elsewhere"
                    base = location.removesuffix(API_PATH)
                    problem = f"HTTP {response.status_code}: {target.endpoint} redirects to {location}"
                    if base != location:
                        problem += f"; set MILESTONES_URL to {base}"
                    raise UploadFailed(f"upload refused ({problem})")
                if response.status_code < 500 and response.status_code != 429:
                    raise UploadFailed(f"upload refused ({problem})")
                # A rate limit, or a database away, says when to come back.
                wait = min(_retry_after(response) or wait, RETRY_AFTER_LONGEST)
            if attempt == attempts:
                raise UploadFailed(f"upload failed after {attempts} attempts ({problem})")
            print(f"upload failed ({problem}); retrying in {wait:.0f} s", file=sys.stderr)
            sleep(wait)
    raise AssertionError("unreachable")


@contextmanager
def _report_parts(files: list[Path]) -> Iterator[list[tuple[str, tuple[str, Any, str]]]]:
    """The multipart file parts, each read (and gzipped) only as the request goes out."""
    with ExitStack() as stack:
        progress = stack.enter_context(_progress(sum(path.stat().st_size for path in files)))
        parts = []
        for path in files:
            stream = stack.enter_context(open(path, "rb"))
            already = stream.read(2) == GZIP_MAGIC
            stream.seek(0)
            # Named as given: the server's messages (`file:line: reason`) then point at the file.
            parts.append(("report", (str(path), _Gzipping(stream, progress, already), "application/gzip")))
        yield parts


class _Gzipping:
    """A report read as gzip while it is sent (or as it is, when it is gzip already)."""

    def __init__(self, source: IO[bytes], progress: Callable[[int], None], already_gzip: bool):
        self._source = source
        self._progress = progress
        self._compressor = None if already_gzip else zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._pending = bytearray()
        self._finished = False

    def read(self, size: int = -1) -> bytes:
        while not self._finished and (size < 0 or len(self._pending) < size):
            block = self._source.read(256 * 1024)
            self._progress(len(block))
            if self._compressor is None:
                self._pending += block
                self._finished = not block
            elif block:
                self._pending += self._compressor.compress(block)
            else:
                self._pending += self._compressor.flush()
                self._finished = True
        size = len(self._pending) if size < 0 else size
        data = bytes(self._pending[:size])
        del self._pending[:size]
        return data


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    if total < PROGRESS_FROM_BYTES or not sys.stderr.isatty():
        yield lambda count: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = ("uploading", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("upload", total=total)
        yield lambda count: bar.advance(task, count)


def _json(response: Any) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _message(answer: dict[str, Any], response: Any) -> str:
    message = answer.get("message")
    if isinstance(message, str) and message:
        return message
    return (response.text or response.reason_phrase or "no explanation").strip().splitlines()[0][:300]


def _retry_after(response: Any) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _summary(answer: dict[str, Any]) -> list[str]:
    launch = answer.get("launch", {})
    line = launch_counts(answer.get("counts", {})) + (
        f" -> {launch.get('repository')} plan {launch.get('plan')}, launch {launch.get('id')}"
    )
    if not launch.get("created", True):
        line += " (already recorded: nothing changed)"
    lines = [line]
    for milestone in answer.get("milestones", []):
        link = f" {milestone['url']}" if milestone.get("url") else ""
        lines.append(f"  {milestone.get('name')}: {milestone.get('status_text', milestone.get('status'))}{link}")
    return lines
