"""`POST /api/v1/launches`: test reports from any CI, recorded as one launch.

The request carries an upload token (`Authorization: Bearer mgt_…`), the launch's fields (in
the query string or as form fields) and the reports: multipart/form-data files, each plain or
gzip, or one report as the whole body. The body is streamed to temporary files and counted
against the same kinds of limits as artifacts (integrations/limits.py); the reports are read by
the same reader and recorded by the same service call as an artifact's launch, so the gate,
checks, alerts and digests follow alike. Every refusal is JSON that says what to fix, and
nothing is stored unless the whole upload is.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import tempfile
import zlib
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any, cast
from urllib.parse import urlsplit

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from core import services
from core.db import DatabaseUnavailable, database_errors, describe, note_failure, transient, within_deadline
from core.ingest import LaunchSource, content_digest, upload_source_id
from core.junit import ParsedReport, ReportError, parse_stream
from core.page_links import PageLinks
from core.report import STATUS_TITLE
from integrations.github.intake import RETRY_AFTER_DATABASE
from integrations.limits import (
    Budget,
    CountingReader,
    MiB,
    OverLimit,
    ReportLimits,
    check_declared,
    check_file_count,
    check_transfer,
)

log = logging.getLogger("milestones.uploads")

GZIP_MAGIC = b"\x1f\x8b"
FIELDS = ("plan", "repository", "commit", "branch", "source", "attempt", "url")
# The longest each field may be (what the store keeps).
FIELD_LENGTHS = {"plan": 100, "repository": 200, "commit": 64, "branch": 255, "source": 200, "url": 500}
# The store's integer column.
MOST_ATTEMPTS = 2**31 - 1
# No field means anything with them, PostgreSQL's text refuses NUL, and a report's name
# (any bytes a client puts in a part's filename) shows in messages and warnings kept.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
BODY_TYPES = {"application/gzip", "application/x-gzip", "application/xml", "text/xml", "application/octet-stream"}
# How long an upload waits for its first answers from the database. Longer than a webhook's:
# a burst of uploads (a pipeline's parallel jobs finishing together) queues for the
# connection pool and for the token's row, and must not be taken for an outage.
UPLOAD_DEADLINE = 30.0
# A refused body is still read, up to this many times the limit, so that the client (which
# sends all before it reads) gets the answer rather than a reset connection.
DRAIN_FACTOR = 4


def upload_limits(max_mb: float, max_files: int) -> ReportLimits:
    size = int(max_mb * MiB)
    return ReportLimits(max_transfer_bytes=size, max_files=max_files, max_uncompressed_bytes=size, max_ratio=200)


class ApiError(Exception):
    """A refusal: HTTP status, a code for programs, and a message that says what to fix."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.code, "message": self.message}, status_code=self.status, headers=self.headers
        )


@dataclass
class _Report:
    name: str
    stream: IO[bytes]
    size: int


class _Body:
    """The request body, counted against the transfer limit as it streams in."""

    def __init__(self, request: Request, limit: int):
        self._request = request
        self._limit = limit
        self.received = 0
        self.consumed = False

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        declared = self._request.headers.get("content-length", "")
        if declared.isdigit():
            check_declared("upload of", int(declared), self._limit)
        async for chunk in self._request.stream():
            self.received += len(chunk)
            check_transfer("upload", self.received, self._limit)
            yield chunk
        self.consumed = True

    async def drain(self) -> None:
        """Read what the client still sends, so that it reads the answer (up to a bound)."""
        if self.consumed:
            return
        try:
            async for chunk in self._request.stream():
                self.received += len(chunk)
                if self.received > self._limit * DRAIN_FACTOR:
                    return
        except (ClientDisconnect, RuntimeError):
            # Gone, or the stream was consumed already (Starlette's RuntimeError).
            return


class LaunchUploads:
    """The endpoint; `after_recording` wakes what owes the outside world (checks, Slack)."""

    def __init__(
        self,
        limits: ReportLimits,
        rate_per_minute: int,
        links: PageLinks,
        after_recording: Callable[[], None] = lambda: None,
    ):
        self.limits = limits
        self.rate_per_minute = rate_per_minute
        self.links = links
        self.after_recording = after_recording

    async def post(self, request: Request) -> Response:
        body = _Body(request, self.limits.max_transfer_bytes)
        with ExitStack() as files:
            try:
                return await self._upload(request, body, files)
            except ApiError as error:
                await body.drain()
                return error.response()
            except ClientDisconnect:
                log.info("upload abandoned: the client went away after %s bytes; nothing stored", body.received)
                return Response(status_code=400)
            except database_errors() as error:
                refusal = _database_refusal(error)
                if refusal is None:
                    raise
                await body.drain()
                return refusal.response()

    async def _upload(self, request: Request, body: _Body, files: ExitStack) -> Response:
        # While the database is known to be away the client hears so at once; one that stops
        # answering (black-holed) is given up on, rather than waited on for as long as TCP takes.
        grant = await within_deadline(lambda: _authenticate(request), UPLOAD_DEADLINE)
        given = _fields(request.query_params.multi_items())
        _check_scope(grant, given)
        wait = await within_deadline(lambda: services.take_upload_slot(grant, self.rate_per_minute), UPLOAD_DEADLINE)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"token {grant.name} may upload {self.rate_per_minute} times a minute; retry in {wait:.0f} s",
                {"Retry-After": f"{wait:.0f}"},
            )
        reports, form_fields = await self._receive(request, body, files)
        for name, value in form_fields.items():
            if given.get(name, value) != value:
                raise ApiError(400, "bad_request", f"{name} is given twice, as {given[name]!r} and {value!r}")
        given.update(form_fields)
        _check_scope(grant, given)
        fields = _launch_fields(given, grant)
        try:
            report, digests = await asyncio.to_thread(_read_reports, reports, self.limits)
        except OverLimit as error:
            raise ApiError(413, "too_large", f"{error}; send less, or ask for UPLOAD_MAX_MB to be raised") from None
        except ReportError as error:
            raise ApiError(422, "malformed_report", f"{error}; the upload was refused whole") from None
        source = LaunchSource(
            repository=grant.repository,
            plan=fields["plan"],
            source_id=fields.get("source")
            or upload_source_id(digests, grant.repository, fields["plan"], fields.get("commit"), fields.get("branch")),
            attempt=int(fields.get("attempt") or 1),
            commit_sha=fields.get("commit"),
            branch=fields.get("branch"),
            url=fields.get("url"),
            content_digest=content_digest(digests),
        )
        try:
            outcome = await services.record_launch(report, source)
        except services.LaunchConflict as conflict:
            raise ApiError(409, "conflict", str(conflict)) from None
        if outcome.created:
            self.after_recording()
        log.info(
            "upload with token %s of %s: plan %s, %s launch %s (%s tests, %s failing)",
            grant.name,
            grant.repository,
            source.plan,
            "new" if outcome.created else "already recorded,",
            outcome.launch_id,
            outcome.counts["tests"],
            outcome.counts["failed"] + outcome.counts["errors"],
        )
        return JSONResponse(self._answer(source, outcome), status_code=201 if outcome.created else 200)

    async def _receive(self, request: Request, body: _Body, files: ExitStack) -> tuple[list[_Report], dict[str, str]]:
        """The reports, in temporary files (closed with `files`), and the form's fields."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type == "multipart/form-data":
                return await self._receive_form(request, body, files)
            if content_type in BODY_TYPES or (not content_type and request.headers.get("content-length")):
                return [await _spool(body, files)], {}
        except OverLimit as error:
            raise ApiError(413, "too_large", f"{error}; send less, or ask for UPLOAD_MAX_MB to be raised") from None
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type {content_type or 'missing'}: send the reports as multipart/form-data files, "
            "or one report as application/xml or application/gzip",
        )

    async def _receive_form(
        self, request: Request, body: _Body, files: ExitStack
    ) -> tuple[list[_Report], dict[str, str]]:
        parser = MultiPartParser(
            request.headers, body.chunks(), max_files=self.limits.max_files, max_fields=2 * len(FIELDS)
        )
        try:
            form = await parser.parse()
        except MultiPartException as error:
            if error.message.startswith("Too many files"):
                raise OverLimit(f"upload: more than the limit of {self.limits.max_files} files") from None
            raise ApiError(400, "bad_request", f"multipart/form-data: {error.message}") from None
        reports, fields = [], []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.callback(value.file.close)
                label = CONTROL_CHARACTERS.sub("?", value.filename or name)
                reports.append(_Report(label, value.file, value.size or 0))
            else:
                fields.append((name, value))
        if not reports:
            raise ApiError(400, "no_reports", "no report in the upload: send each as a file part of the form")
        check_file_count("upload", len(reports), self.limits)
        return reports, _fields(fields)

    def _answer(self, source: LaunchSource, outcome: services.LaunchOutcome) -> dict[str, Any]:
        return {
            "launch": {
                "id": outcome.launch_id,
                "created": outcome.created,
                "superseded": outcome.superseded,
                "repository": source.repository,
                "plan": source.plan,
                "source": source.source_id,
                "attempt": source.attempt,
                "commit": source.commit_sha,
                "branch": source.branch,
                "url": source.url,
            },
            "counts": outcome.counts,
            "milestones": [
                {
                    "name": change.milestone.name,
                    "status": change.verdict.status.value,
                    "status_text": STATUS_TITLE[change.verdict.status],
                    "previous_status": change.previous_status.value if change.previous_status else None,
                    "url": self.links.milestone_url(source.repository, change.milestone.name),
                }
                for change in outcome.changes
            ],
        }


async def _authenticate(request: Request) -> services.TokenGrant:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="milestones"'}
    if scheme.lower() != "bearer" or not token.strip():
        if "token" in request.query_params:
            message = "send the token in the Authorization header (Bearer), never in the URL, which logs keep"
        else:
            message = "no token: send Authorization: Bearer <token> (`milestones token create` makes one)"
        raise ApiError(401, "unauthorized", message, challenge)
    try:
        return await services.authenticate_token(token.strip())
    except services.TokenRefused as refused:
        raise ApiError(401, "unauthorized", str(refused), challenge) from None


def _database_refusal(error: BaseException) -> ApiError | None:
    """The 503 for a database that is away or was busy (the transaction rolled back); None for other errors."""
    retry = {"Retry-After": str(RETRY_AFTER_DATABASE)}
    again = f"nothing was stored: send the upload again in {RETRY_AFTER_DATABASE} s"
    if isinstance(error, DatabaseUnavailable) or note_failure(error):
        reason = str(error) if isinstance(error, DatabaseUnavailable) else describe(error)
        return ApiError(503, "database_unavailable", f"the database is unavailable ({reason}); {again}", retry)
    if transient(error):
        log.warning("upload refused, the database was busy: %s", describe(error))
        return ApiError(503, "database_busy", f"the database was busy ({describe(error)}); {again}", retry)
    return None


def _fields(items: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in items:
        if name not in FIELDS:
            hint = "; send the token in the Authorization header" if name == "token" else ""
            raise ApiError(400, "bad_request", f"unknown field {name!r} (fields: {', '.join(FIELDS)}){hint}")
        if name in fields and fields[name] != value:
            raise ApiError(400, "bad_request", f"{name} is given twice, as {fields[name]!r} and {value!r}")
        if CONTROL_CHARACTERS.search(value.strip()):
            raise ApiError(400, "bad_request", f"{name} {value.strip()!r}: control characters are not allowed")
        fields[name] = value.strip()
    return {name: value for name, value in fields.items() if value}


def _check_scope(grant: services.TokenGrant, fields: Mapping[str, str]) -> None:
    repository, plan = fields.get("repository"), fields.get("plan")
    if repository and not grant.allows_repository(repository):
        raise ApiError(
            403,
            "forbidden",
            f"token {grant.name} uploads to {grant.scope}, not to {repository}: use that repository's token",
        )
    if plan and not grant.allows_plan(plan):
        raise ApiError(403, "forbidden", f"token {grant.name} uploads to {grant.scope}, not to plan {plan}")


def _launch_fields(fields: dict[str, str], grant: services.TokenGrant) -> dict[str, str]:
    if "plan" not in fields:
        raise ApiError(400, "bad_request", "plan is missing: name the test plan the launch belongs to")
    for name, longest in FIELD_LENGTHS.items():
        if len(fields.get(name, "")) > longest:
            raise ApiError(400, "bad_request", f"{name} is longer than {longest} characters")
    attempt = fields.get("attempt", "1")
    if not attempt.isdecimal() or not 1 <= int(attempt) <= MOST_ATTEMPTS:
        raise ApiError(400, "bad_request", f"attempt {attempt!r}: a whole number from 1 to {MOST_ATTEMPTS}")
    url = fields.get("url")
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise ApiError(400, "bad_request", f"url {url!r}: a link to the CI job, http(s)://…")
    return fields


async def _spool(body: _Body, files: ExitStack) -> _Report:
    """The whole body as one report (plain or gzip), in a temporary file."""
    spool = files.enter_context(tempfile.SpooledTemporaryFile(max_size=MiB))
    async for chunk in body.chunks():
        spool.write(chunk)
    if body.received == 0:
        raise ApiError(400, "no_reports", "the body is empty: send a report")
    return _Report("report", spool, body.received)


def _read_reports(reports: list[_Report], limits: ReportLimits) -> tuple[ParsedReport, list[bytes]]:
    """Parse every report as one launch; the digests of their inflated content, in order."""
    parsed = ParsedReport()
    budget = Budget("upload", limits)
    digests = []
    for report in reports:
        report.stream.seek(0)
        compressed = report.stream.read(2) == GZIP_MAGIC
        report.stream.seek(0)
        source: IO[bytes] = (
            cast(IO[bytes], gzip.GzipFile(fileobj=report.stream, mode="rb")) if compressed else report.stream
        )
        reader = CountingReader(source, budget, report.name, limits, report.size if compressed else None)
        try:
            parse_stream(reader, report.name, parsed)
            while reader.read(MiB):
                pass  # what follows the document counts too, and is digested
        except (OSError, EOFError, zlib.error) as error:
            raise ReportError(report.name, None, f"not readable as gzip ({error})") from None
        digests.append(reader.digest.digest())
    return parsed, digests
