"""What test reports from outside may cost: the limits and checks that artifacts and uploads share.

Both are hostile input (a fork's workflow, anyone holding an upload token): the bytes received,
the number of files, the bytes they inflate to and the compression ratio are each bounded, and
inflated bytes are counted as they are read, because the sizes an archive or a gzip trailer
declares can lie.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import IO

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Below this, even an extreme ratio cannot inflate into anything harmful, and small
# repetitive XML files legitimately compress very well.
RATIO_FLOOR = MiB


@dataclass(frozen=True)
class ReportLimits:
    """How much one batch of reports (an artifact, an upload) may cost."""

    # Bytes received (an artifact's download, an upload's request body).
    max_transfer_bytes: int
    # Files in the batch (an artifact's entries, an upload's reports).
    max_files: int
    # Bytes the files inflate to, all together.
    max_uncompressed_bytes: int
    # How many times a compressed file may expand (once past RATIO_FLOOR).
    max_ratio: int
    # Seconds that reading the batch's reports may take, all together.
    max_seconds: float = 120.0


class OverLimit(ValueError):
    """Reports refused for their size: the message names the file and the limit."""


def check_declared(what: str, declared: int, limit: int) -> None:
    """A size announced before reading (Content-Length, a zip's directory): `what` says of what."""
    if declared > limit:
        raise OverLimit(f"{what} {size_text(declared)} over the limit of {size_text(limit)}")


def check_transfer(what: str, received: int, limit: int) -> None:
    """Bytes counted while receiving, for when nothing was announced or the announcement lied."""
    if received > limit:
        raise OverLimit(f"{what} passes the limit of {size_text(limit)}")


def check_file_count(what: str, count: int, limits: ReportLimits, noun: str = "files") -> None:
    if count > limits.max_files:
        raise OverLimit(f"{what}: {count} {noun}, more than the limit of {limits.max_files}")


def check_ratio(what: str, uncompressed: int, compressed: int, limits: ReportLimits) -> None:
    ratio = uncompressed // max(compressed, 1)
    if uncompressed > RATIO_FLOOR and ratio > limits.max_ratio:
        raise OverLimit(f"{what} expands {ratio} times (zip bomb?)")


class Budget:
    """Uncompressed bytes actually read from one batch, against its limit.

    With `received` (the bytes the batch came in) and `limits`, the ratio of everything inflated
    so far to it is checked too: files that each stay under the ratio floor, or that share one
    stretch of compressed data, cannot add up to more than the batch's own bytes allow.
    """

    def __init__(self, what: str, limits: ReportLimits, received: int | None = None):
        self.what = what
        self.limit = limits.max_uncompressed_bytes
        self.used = 0
        self._limits = limits
        self._received = received
        self._deadline = time.monotonic() + limits.max_seconds

    def charge(self, entry: str, count: int) -> None:
        """`entry` names the file in the message, as the caller words it."""
        self.used += count
        if self.used > self.limit:
            raise OverLimit(f"{self.what}: {entry} inflates past the limit of {size_text(self.limit)} uncompressed")
        if self._received is not None:
            check_ratio(self.what, self.used, self._received, self._limits)
        # Checked at every read: the work between two reads is bounded by the reader's own limits.
        if time.monotonic() > self._deadline:
            raise OverLimit(
                f"{self.what}: {entry} still being read after {self._limits.max_seconds:g} s, the limit for reading"
            )


class CountingReader:
    """A file's stream that charges the budget for each byte it inflates.

    The report reader seeks back to the start after probing the root element; bytes read again
    are charged once, so that the limit means the same as the declared sizes it backs up. With
    `compressed_size`, the ratio of what was inflated so far to it is checked as reading goes,
    whatever the file declares. `digest` sees each inflated byte once, in order.
    """

    def __init__(
        self,
        stream: IO[bytes],
        budget: Budget,
        entry: str,
        limits: ReportLimits,
        compressed_size: int | None = None,
    ):
        self._stream = stream
        self._budget = budget
        self._entry = entry
        self._limits = limits
        self._compressed_size = compressed_size
        self._position = 0
        self._furthest = 0
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._position += len(data)
        if self._position > self._furthest:
            fresh = self._position - self._furthest
            self._budget.charge(self._entry, fresh)
            self.digest.update(data[len(data) - fresh :])
            self._furthest = self._position
            if self._compressed_size is not None:
                check_ratio(f"{self._budget.what}: {self._entry}", self._furthest, self._compressed_size, self._limits)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._position = self._stream.seek(offset, whence)
        return self._position


def size_text(count: int) -> str:
    for unit, scale in (("GB", GiB), ("MB", MiB), ("KB", KiB)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"
