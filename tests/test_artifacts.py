"""GitHub Actions artifacts: real reports read from zips, hostile zips refused, downloads."""

from __future__ import annotations

import base64
import io
import random
import stat
import struct
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from core.junit import ParsedReport, ReportError, parse_reports
from integrations.github.artifacts import (
    ARTIFACT_LIMITS,
    ArtifactGone,
    UnsafeArchive,
    download_artifact,
    read_reports,
)
from integrations.limits import ReportLimits
from tests.conftest import JUNIT
from tests.github import make_zip

ARTIFACT = "junit-linux"
API_URL = "https://api.github.com/repos/o/r/actions/artifacts/1/zip"
STORAGE_URL = "https://storage.example.net/blob?sig=1"
TOKEN = "ghs_t0ken"

# Different runners, and in a zip in different folders: name in the zip -> fixture file.
RUNNERS = {
    "java/surefire/TEST-junit4-complete.xml": "external_java_junit4-complete.xml",
    "java/testng/TEST-pulsar.xml": "external_java_pulsar-test-report.xml",
    "js/jest/results.xml": "external_jest_jest-test-results.xml",
    "python/pytest.xml": "python-xunit-pytest.xml",
    "php/PHPUNIT.XML": "phpunit_phpunit.xml",
    "swift-xunit.xml": "swift-xunit.xml",
}

COBERTURA = b"""<?xml version="1.0" ?>
<coverage version="7.4.0" timestamp="1700000000000" lines-valid="10" lines-covered="8"
          line-rate="0.8" branches-covered="0" branches-valid="0" branch-rate="0" complexity="0">
  <sources><source>/home/runner/work/app/app</source></sources>
  <packages/>
</coverage>
"""


def fixture(name: str) -> bytes:
    return (JUNIT / name).read_bytes()


def expected_counts(*fixtures: str) -> dict[str, int]:
    return parse_reports([JUNIT / name for name in fixtures]).counts()


def refusal(archive: bytes, limits: ReportLimits = ARTIFACT_LIMITS) -> tuple[str, ParsedReport]:
    report = ParsedReport()
    with pytest.raises(UnsafeArchive) as caught:
        read_reports(io.BytesIO(archive), ARTIFACT, report, limits)
    return str(caught.value), report


# Reading real reports


def test_counts_match_the_same_reports_read_directly() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.mkdir("java")
        zf.mkdir("java/surefire")
        for name, source in RUNNERS.items():
            zf.writestr(name, fixture(source))
        zf.writestr("logs/build.log", b"BUILD SUCCESSFUL\n")
    report = ParsedReport()

    warnings = read_reports(io.BytesIO(archive.getvalue()), ARTIFACT, report)

    assert warnings == []
    direct = parse_reports([JUNIT / source for source in RUNNERS.values()])
    assert report.counts() == direct.counts()
    assert report.counts() == {
        "files": 6,
        "suites": 583,
        "tests": 4638,
        "passed": 4593,
        "failed": 8,
        "errors": 1,
        "skipped": 36,
        "flaky": 0,
    }
    assert report.cases.keys() == direct.cases.keys()


def test_reads_from_a_path_and_adds_to_an_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "artifact.zip"
    path.write_bytes(make_zip({"nested/deeper/still/TEST-basic.xml": fixture("external_java_junit4-basic.xml")}))
    report = parse_reports([JUNIT / "python-xunit-unittest.xml"])

    assert read_reports(path, ARTIFACT, report) == []
    assert read_reports(str(path), ARTIFACT, report) == []

    # The same tests twice: merged into one identity each, the file count goes up.
    assert report.counts() == expected_counts(
        "python-xunit-unittest.xml", "external_java_junit4-basic.xml", "external_java_junit4-basic.xml"
    )
    assert report.files == 3


def test_parse_errors_name_the_file_inside_the_artifact() -> None:
    archive = make_zip({"reports/broken.xml": b'<testsuite name="s">\n<testcase name="a">\n'})

    with pytest.raises(ReportError) as caught:
        read_reports(io.BytesIO(archive), ARTIFACT, ParsedReport())

    assert caught.value.file == "junit-linux/reports/broken.xml"
    assert caught.value.reason.startswith("malformed XML")


def test_coverage_xml_is_skipped_with_a_warning() -> None:
    archive = make_zip({"coverage.xml": COBERTURA, "junit/pytest.xml": fixture("python-xunit-pytest.xml")})
    report = ParsedReport()

    warnings = read_reports(io.BytesIO(archive), ARTIFACT, report)

    assert warnings == ["junit-linux/coverage.xml: skipped, not a JUnit report"]
    assert report.counts() == expected_counts("python-xunit-pytest.xml")


def test_a_report_with_a_dtd_still_refuses_the_artifact() -> None:
    archive = make_zip({"coverage.xml": COBERTURA, "evil.xml": b'<!DOCTYPE x [<!ENTITY a "b">]>\n<testsuite/>'})

    with pytest.raises(ReportError) as caught:
        read_reports(io.BytesIO(archive), ARTIFACT, ParsedReport())

    assert caught.value.file == "junit-linux/evil.xml"
    assert caught.value.reason == "DOCTYPE declarations are not accepted in test reports"


def test_an_artifact_without_xml_files_warns() -> None:
    archive = make_zip({"screenshots/": b"", "screenshots/login.png": b"\x89PNG\r\n", "log.txt": b"ok"})
    report = ParsedReport()

    warnings = read_reports(io.BytesIO(archive), ARTIFACT, report)

    assert warnings == ["artifact junit-linux: no XML files, nothing to read"]
    assert report.counts()["files"] == 0


# Refusing hostile archives


@pytest.mark.parametrize(
    "name",
    [
        "../evil.xml",
        "/abs.xml",
        "a/../../b.xml",
        "a/../b.xml",
        "..\\..\\evil.xml",
        "\\evil.xml",
        "C:/evil.xml",
        "c:evil.xml",
    ],
)
def test_paths_leaving_the_archive_are_refused_before_anything_is_read(name: str) -> None:
    # The good report comes first: nothing may be parsed before every entry passed.
    archive = make_zip({"ok.xml": fixture("python-xunit-pytest.xml"), name: fixture("swift-xunit.xml")})

    message, report = refusal(archive)

    assert message == f"artifact junit-linux: entry {name!r} escapes the archive"
    assert report.counts()["files"] == 0
    assert report.cases == {}


def test_symbolic_links_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        link = zipfile.ZipInfo("reports/TEST-link.xml")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")

    message, _ = refusal(buffer.getvalue())

    assert message == "artifact junit-linux: entry 'reports/TEST-link.xml' is a symbolic link"


def test_too_many_entries_are_refused() -> None:
    archive = make_zip({f"r{index}.xml": fixture("swift-xunit.xml") for index in range(6)})

    message, report = refusal(archive, replace(ARTIFACT_LIMITS, max_files=5))

    assert message == "artifact junit-linux: 6 entries, more than the limit of 5"
    assert report.files == 0
    # Exactly at the limit is fine.
    report = ParsedReport()
    assert read_reports(io.BytesIO(archive), ARTIFACT, report, replace(ARTIFACT_LIMITS, max_files=6)) == []
    assert report.files == 6


def test_a_zip_bomb_is_refused_by_its_ratio() -> None:
    archive = make_zip({"ok.xml": fixture("python-xunit-pytest.xml"), "bomb.xml": bytes(50 * 1024 * 1024)})
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo("bomb.xml")
    ratio = info.file_size // info.compress_size
    assert ratio > 200

    message, report = refusal(archive)

    assert message == f"artifact junit-linux: entry 'bomb.xml' expands {ratio} times (zip bomb?)"
    assert report.files == 0


def test_repetitive_small_reports_are_not_mistaken_for_bombs() -> None:
    # Under 1 MiB the ratio is not checked: 20,000 copies of one passing case compress
    # far beyond the ratio.
    cases = b'<testcase classname="c" name="same"/>' * 20_000
    archive = make_zip({"big.xml": b"<testsuite>" + cases + b"</testsuite>"})
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo("big.xml")
    assert info.file_size < 1024 * 1024 and info.file_size // info.compress_size > 200
    report = ParsedReport()

    assert read_reports(io.BytesIO(archive), ARTIFACT, report) == []
    assert report.counts()["tests"] == 1


def test_the_declared_total_size_is_limited() -> None:
    entries = {"a.xml": fixture("external_jest_jest-test-results.xml"), "b.xml": fixture("phpunit_phpunit.xml")}
    archive = make_zip(entries)
    total = sum(len(data) for data in entries.values())

    message, report = refusal(archive, replace(ARTIFACT_LIMITS, max_uncompressed_bytes=total - 1))

    assert total == 615_349 + 7_483
    assert message == "artifact junit-linux: uncompressed size 608.2 KB over the limit of 608.2 KB"
    assert report.files == 0
    # Exactly at the limit is fine: bytes the parser reads twice (its probe) count once.
    report = ParsedReport()
    assert (
        read_reports(io.BytesIO(archive), ARTIFACT, report, replace(ARTIFACT_LIMITS, max_uncompressed_bytes=total))
        == []
    )
    assert report.counts() == expected_counts("external_jest_jest-test-results.xml", "phpunit_phpunit.xml")


def test_the_default_limits_name_sizes_in_gigabytes() -> None:
    archive = make_zip({"a.xml": fixture("swift-xunit.xml")})

    message, _ = refusal(archive, replace(ARTIFACT_LIMITS, max_uncompressed_bytes=100))

    assert ARTIFACT_LIMITS == ReportLimits(512 * 1024**2, 10_000, 2 * 1024**3, 200)
    assert message == "artifact junit-linux: uncompressed size 510 bytes over the limit of 100 bytes"


def test_a_bomb_that_under_declares_its_size_is_refused_without_inflating() -> None:
    archive = bytearray(make_zip({"bomb.xml": bytes(50 * 1024 * 1024)}))
    # Declare 1000 bytes in both the local header and the central directory.
    local = archive.index(b"PK\x03\x04")
    central = archive.index(b"PK\x01\x02")
    struct.pack_into("<I", archive, local + 22, 1000)
    struct.pack_into("<I", archive, central + 24, 1000)
    assert zipfile.ZipFile(io.BytesIO(archive)).getinfo("bomb.xml").file_size == 1000

    message, report = refusal(bytes(archive))

    # zipfile stops at the declared size, and the CRC of what it read then fails.
    assert message == "artifact junit-linux: entry 'bomb.xml' cannot be read (Bad CRC-32 for file 'bomb.xml')"
    assert report.files == 0


def test_bytes_beyond_the_declared_sizes_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    # A member stream that yields more than the directory declares, as a zip reader that
    # trusted the compressed stream would: the running count must stop it.
    archive = make_zip({"pytest.xml": fixture("python-xunit-pytest.xml")})
    big = fixture("external_jest_jest-test-results.xml")
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info, *args, **kwargs: io.BytesIO(big))
    limits = replace(ARTIFACT_LIMITS, max_uncompressed_bytes=64 * 1024, max_ratio=1_000_000)

    message, _ = refusal(archive, limits)

    assert message == ("artifact junit-linux: entry 'pytest.xml' inflates past the limit of 64.0 KB uncompressed")


def overlapping_zip(data: bytes, copies: int) -> bytes:
    """One entry's data listed `copies` times in the central directory, as an overlapping zip bomb is."""
    archive = make_zip({"report.xml": data})
    central = archive.index(b"PK\x01\x02")
    end = archive.index(b"PK\x05\x06")
    record = archive[central:end]
    directory = record * copies
    trailer = bytearray(archive[end:])
    struct.pack_into("<HHII", trailer, 8, copies, copies, len(directory), central)
    return archive[:central] + directory + bytes(trailer)


def test_entries_sharing_one_stretch_of_compressed_data_are_refused_before_anything_is_read() -> None:
    data = b"<testsuite>" + b'<testcase classname="c" name="t"/>' * 30_000 + b"</testsuite>"
    archive = overlapping_zip(data, 2_048)
    assert len(zipfile.ZipFile(io.BytesIO(archive)).infolist()) == 2_048
    assert len(archive) < 200 * 1024  # 2 GiB once inflated 2,048 times

    message, report = refusal(archive)

    assert message == "artifact junit-linux: entries 'report.xml' and 'report.xml' overlap (zip bomb?)"
    assert report.files == 0


def test_an_entry_whose_header_lies_inside_another_entrys_data_is_refused() -> None:
    archive = bytearray(make_zip({"a.xml": fixture("phpunit_phpunit.xml"), "b.xml": fixture("swift-xunit.xml")}))
    first = zipfile.ZipFile(io.BytesIO(archive)).getinfo("a.xml")
    second_record = archive.index(b"PK\x01\x02", archive.index(b"PK\x01\x02") + 1)
    struct.pack_into("<I", archive, second_record + 42, first.header_offset + 40)

    message, _ = refusal(bytes(archive))

    assert message == "artifact junit-linux: entries 'a.xml' and 'b.xml' overlap (zip bomb?)"


def test_what_the_entries_inflate_to_together_is_checked_against_the_archives_size() -> None:
    # Each entry stays under the ratio floor, so only the running total can tell.
    small = b"<testsuite>" + b'<testcase classname="c" name="same"/>' * 20_000 + b"</testsuite>"
    archive = make_zip({f"r{index}.xml": small for index in range(4)})
    inflated = 4 * len(small)
    assert inflated // len(archive) > 200

    message, report = refusal(archive)

    assert message.startswith("artifact junit-linux expands ") and message.endswith(" times (zip bomb?)")
    assert report.files < 4  # refused by the bytes read so far, before the last entry was done


def test_a_report_with_a_huge_attribute_that_compresses_poorly_is_refused_with_its_line() -> None:
    # Random text stays under the ratio limit, as the 200 MB attribute of the real attack did.
    attribute = base64.b64encode(random.Random(7).randbytes(5 * 1024 * 1024))
    report_xml = b'<?xml version="1.0"?>\n<testsuites name="' + attribute + b'"><testsuite/></testsuites>'
    archive = make_zip({"reports/big.xml": report_xml})

    report = ParsedReport()
    with pytest.raises(ReportError) as error:
        read_reports(io.BytesIO(archive), ARTIFACT, report)

    assert str(error.value).startswith(
        "junit-linux/reports/big.xml:2: the root element does not start within the first"
    )
    assert report.files == 0


def test_reading_an_artifact_is_bounded_in_time() -> None:
    archive = make_zip({"a.xml": fixture("swift-xunit.xml")})

    message, report = refusal(archive, replace(ARTIFACT_LIMITS, max_seconds=0))

    assert message == "artifact junit-linux: entry 'a.xml' still being read after 0 s, the limit for reading"
    assert report.files == 0


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not a zip", b"<testsuite/>", make_zip({"a.xml": b"<testsuite/>"})[:40]],
    ids=["empty", "text", "xml", "truncated"],
)
def test_not_a_zip_is_refused(data: bytes) -> None:
    message, _ = refusal(data)

    assert message == "artifact junit-linux: not a zip file"


# Downloading


async def test_download_follows_the_redirect_without_sending_the_token_to_storage(respx_mock) -> None:
    archive = make_zip({"TEST-basic.xml": fixture("external_java_junit4-basic.xml")})
    api = respx_mock.get(API_URL).mock(return_value=httpx.Response(302, headers={"Location": STORAGE_URL}))
    storage = respx_mock.get(STORAGE_URL).mock(return_value=httpx.Response(200, content=archive))
    destination = io.BytesIO()

    async with httpx.AsyncClient() as client:
        written = await download_artifact(client, API_URL, TOKEN, destination, max_bytes=len(archive))

    assert written == len(archive)
    assert destination.getvalue() == archive
    assert api.call_count == 1 and storage.call_count == 1
    sent = api.calls.last.request.headers
    assert sent["Authorization"] == f"Bearer {TOKEN}"
    assert sent["Accept"] == "application/vnd.github+json"
    assert sent["X-GitHub-Api-Version"] == "2022-11-28"
    assert "Authorization" not in storage.calls.last.request.headers
    assert storage.calls.last.request.url == STORAGE_URL
    report = ParsedReport()
    assert read_reports(io.BytesIO(destination.getvalue()), ARTIFACT, report) == []
    assert report.counts() == expected_counts("external_java_junit4-basic.xml")


@pytest.mark.parametrize("status", [404, 410])
async def test_an_expired_artifact_is_gone(respx_mock, status: int) -> None:
    respx_mock.get(API_URL).mock(return_value=httpx.Response(status, json={"message": "Artifact has expired"}))
    destination = io.BytesIO()

    async with httpx.AsyncClient() as client:
        with pytest.raises(ArtifactGone) as caught:
            await download_artifact(client, API_URL, TOKEN, destination, max_bytes=1024)

    assert str(caught.value) == f"artifact {API_URL}: HTTP {status}, expired or deleted"
    assert destination.getvalue() == b""


async def test_other_http_errors_raise_for_status(respx_mock) -> None:
    respx_mock.get(API_URL).mock(return_value=httpx.Response(302, headers={"Location": STORAGE_URL}))
    respx_mock.get(STORAGE_URL).mock(return_value=httpx.Response(503))

    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.HTTPStatusError) as caught:
            await download_artifact(client, API_URL, TOKEN, io.BytesIO(), max_bytes=1024)

    assert caught.value.response.status_code == 503


async def test_a_declared_length_over_the_limit_is_refused_before_reading(respx_mock) -> None:
    respx_mock.get(API_URL).mock(return_value=httpx.Response(200, content=bytes(4096)))
    destination = io.BytesIO()

    async with httpx.AsyncClient() as client:
        with pytest.raises(UnsafeArchive) as caught:
            await download_artifact(client, API_URL, TOKEN, destination, max_bytes=2048)

    assert str(caught.value) == f"artifact {API_URL}: download of 4.0 KB over the limit of 2.0 KB"
    assert destination.getvalue() == b""


async def test_a_body_over_the_limit_is_refused_while_streaming(respx_mock) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield bytes(1024)

    # A generator body goes out chunked, with no Content-Length to refuse up front.
    respx_mock.get(API_URL).mock(side_effect=lambda request: httpx.Response(200, content=chunks()))
    destination = io.BytesIO()

    async with httpx.AsyncClient() as client:
        with pytest.raises(UnsafeArchive) as caught:
            await download_artifact(client, API_URL, TOKEN, destination, max_bytes=4000)

    assert str(caught.value) == f"artifact {API_URL}: download passes the limit of 3.9 KB"
    assert len(destination.getvalue()) <= 4000
