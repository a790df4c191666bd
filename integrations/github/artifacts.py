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
from dataclasses import dataclass
from typing import IO, BinaryIO

import httpx

from core.junit import ParsedReport, ReportError, parse_stream

MiB = 1024 * 1024
GiB = 1024 * MiB

# Below this, even an extreme ratio cannot inflate into anything harmful, and small
# repetitive XML files legitimately compress very well.
_RATIO_FLOOR = MiB
_DRIVE = re.compile(r"^[A-Za-z]:")
_NOT_JUNIT = "not a JUnit report"


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one artifact may cost; `max_download_bytes` is for download_artifact's caller."""

    max_download_bytes: int = 512 * MiB
    max_entries: int = 10_000
    max_uncompressed_bytes: int = 2 * GiB
    max_ratio: int = 200


class UnsafeArchive(ValueError):
    """An artifact refused as a whole: the message names the artifact and the entry."""


class ArtifactGone(LookupError):
    """GitHub no longer serves the artifact, typically because its retention period ended."""


def read_reports(
    archive: BinaryIO | str | os.PathLike[str],
    artifact_name: str,
    report: ParsedReport,
    limits: ArchiveLimits = ArchiveLimits(),
) -> list[str]:
    """Add every JUnit report in the zip to `report` and return warnings about what was skipped.

    Raises UnsafeArchive for an archive that is not a zip or breaks `limits`, and ReportError
    for a malformed report. After an error `report` may hold part of the artifact: discard it.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            _check_entries(entries, artifact_name, limits)
            return _parse_entries(zf, entries, artifact_name, report, limits)
    except zipfile.BadZipFile:
        # Raised only while reading the central directory: members' errors are rewrapped.
        raise UnsafeArchive(f"artifact {artifact_name}: not a zip file") from None


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
        if declared.isdigit() and int(declared) > max_bytes:
            raise UnsafeArchive(
                f"artifact {url}: download of {_size(int(declared))} over the limit of {_size(max_bytes)}"
            )
        written = 0
        async for chunk in response.aiter_bytes():
            written += len(chunk)
            if written > max_bytes:
                raise UnsafeArchive(f"artifact {url}: download passes the limit of {_size(max_bytes)}")
            destination.write(chunk)
    return written


def _check_entries(entries: list[zipfile.ZipInfo], artifact: str, limits: ArchiveLimits) -> None:
    if len(entries) > limits.max_entries:
        raise UnsafeArchive(f"artifact {artifact}: {len(entries)} entries, more than the limit of {limits.max_entries}")
    declared = 0
    for info in entries:
        name = info.filename
        if _escapes(name):
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} escapes the archive")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} is encrypted")
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > limits.max_ratio:
            raise UnsafeArchive(f"artifact {artifact}: entry {name!r} expands {ratio} times (zip bomb?)")
        declared += info.file_size
    if declared > limits.max_uncompressed_bytes:
        raise UnsafeArchive(
            f"artifact {artifact}: uncompressed size {_size(declared)} "
            f"over the limit of {_size(limits.max_uncompressed_bytes)}"
        )


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
    limits: ArchiveLimits,
) -> list[str]:
    warnings: list[str] = []
    budget = _Budget(artifact, limits.max_uncompressed_bytes)
    xml_entries = [info for info in entries if not info.is_dir() and info.filename.lower().endswith(".xml")]
    if not xml_entries:
        return [f"artifact {artifact}: no XML files, nothing to read"]
    for info in xml_entries:
        name = f"{artifact}/{info.filename}"
        try:
            with zf.open(info) as member:
                parse_stream(_CountingReader(member, budget, info.filename), name, report)
        except ReportError as exc:
            # Artifacts often bundle other XML (coverage, lint): not an error, but said.
            if not exc.reason.startswith(_NOT_JUNIT):
                raise
            warnings.append(f"{name}: skipped, {_NOT_JUNIT}")
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # A CRC mismatch is how a member whose declared size lies usually shows up.
            raise UnsafeArchive(f"artifact {artifact}: entry {info.filename!r} cannot be read ({exc})") from None
    return warnings


class _Budget:
    """Uncompressed bytes actually read from one archive, against its limit."""

    def __init__(self, artifact: str, limit: int):
        self.artifact = artifact
        self.limit = limit
        self.used = 0

    def charge(self, entry: str, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise UnsafeArchive(
                f"artifact {self.artifact}: entry {entry!r} inflates past the limit of "
                f"{_size(self.limit)} uncompressed, more than the archive declares"
            )


class _CountingReader:
    """A member stream that charges the budget for each byte it inflates.

    The parser seeks back to the start after probing the root element; bytes read again
    are charged once, so that the limit means the same as the declared sizes it backs up.
    """

    def __init__(self, stream: IO[bytes], budget: _Budget, entry: str):
        self._stream = stream
        self._budget = budget
        self._entry = entry
        self._position = 0
        self._furthest = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._position += len(data)
        if self._position > self._furthest:
            self._budget.charge(self._entry, self._position - self._furthest)
            self._furthest = self._position
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._position = self._stream.seek(offset, whence)
        return self._position


def _size(count: int) -> str:
    for unit, scale in (("GB", GiB), ("MB", MiB), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
