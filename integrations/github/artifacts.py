"""JUnit results from GitHub Actions artifacts, read without trusting the zip.

An artifact is whatever a workflow run chose to upload, including runs of pull requests
from forks, so the archive is hostile input: every entry is checked before anything is
read, members are parsed straight from the zip (nothing is extracted to disk), and the
bytes actually inflated are counted because the sizes a zip declares can lie.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib
from typing import BinaryIO

import httpx

from core.junit import ParsedReport, ReportError, parse_stream
from integrations.limits import (
    Budget,
    CountingReader,
    GiB,
    MiB,
    OverLimit,
    ReportLimits,
    check_declared,
    check_file_count,
    check_ratio,
    check_transfer,
)

# How much one artifact may cost; `max_transfer_bytes` is for download_artifact's caller.
ARTIFACT_LIMITS = ReportLimits(
    max_transfer_bytes=512 * MiB, max_files=10_000, max_uncompressed_bytes=2 * GiB, max_ratio=200
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_NOT_JUNIT = "not a JUnit report"


class UnsafeArchive(ValueError):
    """An artifact refused as a whole: the message names the artifact and the entry."""


class ArtifactGone(LookupError):
    """GitHub no longer serves the artifact, typically because its retention period ended."""


def read_reports(
    archive: BinaryIO | str | os.PathLike[str],
    artifact_name: str,
    report: ParsedReport,
    limits: ReportLimits = ARTIFACT_LIMITS,
) -> list[str]:
    """Add every JUnit report in the zip to `report` and return warnings about what was skipped.

    Raises UnsafeArchive for an archive that is not a zip or breaks `limits`, and ReportError
    for a malformed report. After an error `report` may hold part of the artifact: discard it.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            _check_entries(entries, artifact_name, limits)
            # Everything before the central directory: the most the entries' data can take up.
            budget = Budget(f"artifact {artifact_name}", limits, zf.start_dir)
            return _parse_entries(zf, entries, artifact_name, report, limits, budget)
    except zipfile.BadZipFile:
        # Raised only while reading the central directory: members' errors are rewrapped.
        raise UnsafeArchive(f"artifact {artifact_name}: not a zip file") from None
    except OverLimit as error:
        raise UnsafeArchive(str(error)) from None


async def download_artifact(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    destination: BinaryIO,
    max_bytes: int,
) -> int:
    """Stream the artifact zip at `url` (the REST API's .../artifacts/ID/zip) into `destination`.

    GitHub answers with a redirect to a signed storage URL on another host; httpx drops
    the Authorization header when a redirect leaves the origin, so the token stays with
    GitHub. Errors name `url`, never the signed URL, which is a credential of its own.
    Returns the number of bytes written.
    """
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    async with client.stream("GET", url, headers=headers, follow_redirects=True) as response:
        if response.status_code in (404, 410):
            raise ArtifactGone(f"artifact {url}: HTTP {response.status_code}, expired or deleted")
        if response.is_error:
            # raise_for_status would name the final, signed storage URL.
            raise httpx.HTTPStatusError(
                f"artifact {url}: HTTP {response.status_code}", request=response.request, response=response
            )
        declared = response.headers.get("Content-Length", "")
        written = 0
        try:
            if declared.isdigit():
                check_declared(f"artifact {url}: download of", int(declared), max_bytes)
            async for chunk in response.aiter_bytes():
                written += len(chunk)
                check_transfer(f"artifact {url}: download", written, max_bytes)
                destination.write(chunk)
        except OverLimit as error:
            raise UnsafeArchive(str(error)) from None
    return written


def _check_entries(entries: list[zipfile.ZipInfo], artifact: str, limits: ReportLimits) -> None:
    check_file_count(f"artifact {artifact}", len(entries), limits, "entries")
    declared = 0
    for info in entries:
        name = info.filename
        if _escapes(name):
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} escapes the archive")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} is encrypted")
        check_ratio(f"artifact {artifact}: entry {name!r}", info.file_size, info.compress_size, limits)
        declared += info.file_size
    check_declared(f"artifact {artifact}: uncompressed size", declared, limits.max_uncompressed_bytes)
    _check_overlaps(entries, artifact)


def _check_overlaps(entries: list[zipfile.ZipInfo], artifact: str) -> None:
    """Refuse entries that share bytes: many entries over one stretch of compressed data inflate
    it many times over while each looks harmless (an overlapping zip bomb)."""
    # Each entry takes at least its local header (30 bytes and the name) and its compressed data.
    spans = sorted(
        (info.header_offset, info.header_offset + 30 + len(info.orig_filename) + info.compress_size, info.filename)
        for info in entries
    )
    for (_, end, name), (start, _, following) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise UnsafeArchive(f"artifact {artifact}: entries {name!r} and {following!r} overlap (zip bomb?)")


def _escapes(name: str) -> bool:
    # Windows tools write backslashes, and zipfile keeps them as they are on POSIX.
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return True
    return ".." in re.split(r"[/\\]", name)


def _parse_entries(
    zf: zipfile.ZipFile,
    entries: list[zipfile.ZipInfo],
    artifact: str,
    report: ParsedReport,
    limits: ReportLimits,
    budget: Budget,
) -> list[str]:
    warnings: list[str] = []
    xml_entries = [info for info in entries if not info.is_dir() and info.filename.lower().endswith(".xml")]
    if not xml_entries:
        return [f"artifact {artifact}: no XML files, nothing to read"]
    for info in xml_entries:
        name = f"{artifact}/{info.filename}"
        try:
            with zf.open(info) as member:
                entry = CountingReader(member, budget, f"entry {info.filename!r}", limits, info.compress_size)
                parse_stream(entry, name, report)
        except ReportError as exc:
            # Artifacts often bundle other XML (coverage, lint): not an error, but said.
            if not exc.reason.startswith(_NOT_JUNIT):
                raise
            warnings.append(f"{name}: skipped, {_NOT_JUNIT}")
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # A CRC mismatch is how a member whose declared size lies usually shows up.
            raise UnsafeArchive(f"artifact {artifact}: entry {info.filename!r} cannot be read ({exc})") from None
    return warnings
