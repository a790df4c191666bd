"""Reading real JUnit/xUnit reports: exact counts per runner, and refusing bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from core.enums import TestStatus
from core.junit import (
    MESSAGE_LIMIT,
    NAME_LIMIT,
    PROLOG_LIMIT,
    TAG_LIMIT,
    UNLISTED_FAILURE,
    UNLISTED_LIMIT,
    ReportError,
    parse_reports,
    parse_stream,
)
from tests.conftest import JUNIT

# file: (tests, passed, failed, errors, skipped, flaky, suites, declared tests)
# Declared tests: the root's `tests` attribute, or else the sum over top-level suites.
EXPECTED = {
    "empty_java-junit.xml": (0, 0, 0, 0, 0, 0, 1, 0),
    "empty_jest-junit-empty-testsuite.xml": (0, 0, 0, 0, 0, 0, 1, 0),
    "empty_jest-junit.xml": (0, 0, 0, 0, 0, 0, 0, 0),
    "empty_phpunit-empty.xml": (0, 0, 0, 0, 0, 0, 0, 0),
    # TestNG reports the same test twice, skipped then failed: one test, the worst wins.
    "external_java_TEST-org.apache.pulsar.AddMissingPatchVersionTest.xml": (1, 0, 1, 0, 0, 0, 1, 2),
    "external_java_empty_failures.xml": (3, 2, 1, 0, 0, 0, 1, 3),
    "external_java_junit4-basic.xml": (6, 5, 1, 0, 0, 0, 2, 0),
    "external_java_junit4-complete.xml": (8, 5, 1, 1, 1, 0, 1, 8),
    "external_java_pulsar-test-report.xml": (670, 666, 1, 0, 3, 0, 176, 808),
    "external_jest_jest-react-component-test-results.xml": (1, 1, 0, 0, 0, 0, 1, 1),
    # Jest leaves classname empty: "gets changed files for hg" fails in two suites, one identity.
    "external_jest_jest-test-results.xml": (3935, 3904, 1, 0, 30, 0, 400, 4239),
    "external_phpunit_junit-basic.xml": (9, 8, 1, 0, 0, 0, 3, 0),
    "external_phpunit_phpcheckstyle-phpunit.xml": (30, 28, 2, 0, 0, 0, 14, 30),
    "jest-junit-eslint.xml": (1, 1, 0, 0, 0, 0, 1, 1),
    "jest-junit.xml": (6, 1, 4, 0, 1, 0, 2, 6),
    "junit-with-message.xml": (1, 0, 1, 0, 0, 0, 1, 1),
    "nette-tester_BootstrapFormRenderer-report.xml": (4, 4, 0, 0, 0, 0, 1, 4),
    "nette-tester_tester-v1.7-report.xml": (65, 61, 1, 0, 3, 0, 1, 65),
    "phpunit_phpunit-paths.xml": (6, 0, 6, 0, 0, 0, 1, 6),
    "phpunit_phpunit.xml": (12, 10, 2, 0, 0, 0, 4, 12),
    "python-xunit-pytest.xml": (10, 6, 2, 0, 2, 0, 1, 15),
    "python-xunit-unittest.xml": (8, 4, 1, 1, 2, 0, 1, 8),
    "swift-xunit.xml": (3, 2, 1, 0, 0, 0, 1, 3),
    "test-errors_jest_jest-test-results.xml": (2, 0, 0, 2, 0, 0, 2, 0),
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(path.name for path in JUNIT.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_counts(name: str) -> None:
    tests, passed, failed, errors, skipped, flaky, suites, declared = EXPECTED[name]
    report = parse_reports([JUNIT / name])
    assert report.counts() == {
        "files": 1,
        "suites": suites,
        "tests": tests,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "skipped": skipped,
        "flaky": flaky,
    }
    assert report.declared.tests == declared


def test_declared_totals_of_suites_without_cases() -> None:
    report = parse(
        '<testsuites><testsuite name="a" tests="5" failures="1" errors="2" skipped="1">'
        '<testsuite name="a.inner" tests="5" failures="1"/></testsuite>'
        '<testsuite name="b" tests="3" disabled="1"/></testsuites>'
    )
    assert vars(report.declared) == {"tests": 8, "failures": 1, "errors": 2, "skipped": 2}
    # The outer suite's numbers include its inner suite's: each result is counted once.
    assert report.counts() == {
        "files": 1,
        "suites": 3,
        "tests": 8,
        "passed": 3,
        "failed": 1,
        "errors": 2,
        "skipped": 2,
        "flaky": 0,
    }
    assert {case.suite for case in report.cases.values()} == {"a", "b"}


def test_a_suite_that_declares_results_but_lists_no_cases_counts_them() -> None:
    report = parse('<testsuite name="checkout" tests="6" failures="1" skipped="2"></testsuite>', "unit.xml")
    counts = report.counts()
    assert (counts["tests"], counts["passed"], counts["failed"], counts["skipped"]) == (6, 3, 1, 2)
    assert sorted(report.cases) == [("checkout", f"(unnamed {n})") for n in range(1, 7)]
    [failed] = [case for case in report.cases.values() if case.status is TestStatus.FAILED]
    assert failed.message == UNLISTED_FAILURE
    assert report.warnings == [
        "unit.xml: report lists no cases for 1 suite declaring 6 tests (1 failed, 0 errors, 2 skipped); "
        "recorded as unnamed tests of each suite"
    ]


def test_only_the_suites_without_cases_are_counted_from_their_declaration() -> None:
    report = parse(
        '<testsuites tests="9" failures="2">'
        '<testsuite name="listed" tests="2" failures="1"><testcase classname="C" name="a"/>'
        '<testcase classname="C" name="b"><failure/></testcase></testsuite>'
        '<testsuite name="unlisted" tests="7" failures="1" errors="1"/></testsuites>'
    )
    counts = report.counts()
    assert (counts["tests"], counts["passed"], counts["failed"], counts["errors"]) == (9, 6, 2, 1)
    assert len(report.warnings) == 1 and "1 suite declaring 7 tests" in report.warnings[0]


def test_reports_that_declare_nothing_have_no_unlisted_results() -> None:
    for xml in ('<testsuites tests="0"><testsuite name="s" tests="0"/></testsuites>', "<testsuites/>"):
        report = parse(xml)
        assert report.counts()["tests"] == 0
        assert report.warnings == []


def test_a_declaration_too_large_to_be_true_is_refused_with_its_line() -> None:
    xml = f'<testsuites>\n<testsuite name="s" tests="{UNLISTED_LIMIT + 1}"/>\n</testsuites>'
    with pytest.raises(ReportError) as error:
        parse(xml, "big.xml")
    assert str(error.value).startswith(f"big.xml:2: suite s declares {UNLISTED_LIMIT + 1} tests without listing them")


def test_a_text_node_over_ten_megabytes_is_read() -> None:
    output = "x" * (11 * 1024 * 1024)
    report = parse(wrap(f'<testcase classname="C" name="t"><system-out>{output}</system-out></testcase>'))
    assert report.counts()["passed"] == 1


def test_several_files_make_one_launch() -> None:
    report = parse_reports([JUNIT / "jest-junit.xml", JUNIT / "swift-xunit.xml", JUNIT / "python-xunit-pytest.xml"])
    counts = report.counts()
    assert (counts["files"], counts["tests"], counts["failed"]) == (3, 19, 7)


def test_case_details_are_kept() -> None:
    report = parse_reports([JUNIT / "python-xunit-unittest.xml"])
    failing = report.cases[("TestAcme", "test_always_fail")]
    assert failing.status is TestStatus.FAILED
    assert failing.message == "failed"
    assert failing.file == "tests/test_lib.py"
    assert failing.suite == "TestAcme-20251114214921"
    error = report.cases[("TestAcme", "test_error")]
    assert (error.status, error.message) == (TestStatus.ERROR, "error")
    skipped = report.cases[("TestAcme", "test_expected_failure")]
    assert skipped.status is TestStatus.SKIPPED


def test_entities_and_nested_suites() -> None:
    report = parse_reports([JUNIT / "external_jest_jest-react-component-test-results.xml"])
    [case] = report.cases.values()
    assert case.name == "<Component /> should render properly"
    assert case.suite == "<Component />"
    nested = parse_reports([JUNIT / "external_phpunit_junit-basic.xml"])
    assert nested.cases[("Tests.Authentication.Login", "testCase4")].suite == "Tests.Authentication.Login"
    assert nested.cases[("Tests.Authentication", "testCase7")].suite == "Tests.Authentication"


def test_windows_paths_are_normalised() -> None:
    report = parse_reports([JUNIT / "phpunit_phpunit-paths.xml"])
    assert report.cases[("SampleSuite", "testWindowsFailure")].file == "C:/repo/src/Win.php"


def parse(xml: str, name: str = "report.xml"):
    return parse_stream(io.BytesIO(xml.encode()), name)


def wrap(cases: str) -> str:
    return f'<testsuites><testsuite name="S">{cases}</testsuite></testsuites>'


def test_surefire_flaky_failure_passed_on_rerun() -> None:
    report = parse(
        wrap(
            '<testcase classname="C" name="t"><flakyFailure message="timeout" type="X"/>'
            '<flakyError message="boom" type="Y"/><system-out>retry</system-out></testcase>'
        )
    )
    case = report.cases[("C", "t")]
    assert (case.status, case.flaky, case.retried, case.message) == (TestStatus.PASSED, True, True, "timeout")
    assert report.counts()["flaky"] == 1


def test_surefire_rerun_failure_still_fails() -> None:
    report = parse(
        wrap('<testcase classname="C" name="t"><failure message="no"/><rerunFailure message="no again"/></testcase>')
    )
    case = report.cases[("C", "t")]
    assert (case.status, case.flaky, case.retried) == (TestStatus.FAILED, False, True)


def test_pass_and_failure_of_one_test_in_a_launch_is_flaky_and_failed() -> None:
    report = parse(wrap('<testcase classname="C" name="t"/><testcase classname="C" name="t"><failure/></testcase>'))
    case = report.cases[("C", "t")]
    assert (case.status, case.flaky, case.retried) == (TestStatus.FAILED, True, True)
    assert report.counts() == {
        "files": 1,
        "suites": 1,
        "tests": 1,
        "passed": 0,
        "failed": 1,
        "errors": 0,
        "skipped": 0,
        "flaky": 1,
    }


@pytest.mark.parametrize(
    ("children", "status"),
    [
        ("<skipped/><failure/>", TestStatus.FAILED),
        ("<failure/><error/>", TestStatus.ERROR),
        ("<error/><skipped/>", TestStatus.ERROR),
        ("<disabled/>", TestStatus.SKIPPED),
        ("<system-out>x</system-out><system-err>y</system-err>", TestStatus.PASSED),
    ],
)
def test_several_result_elements_worst_wins(children: str, status: TestStatus) -> None:
    assert parse(wrap(f'<testcase classname="C" name="t">{children}</testcase>')).cases[("C", "t")].status is status


def test_googletest_disabled_tests_are_skipped() -> None:
    report = parse(wrap('<testcase classname="C" name="DISABLED_t" status="notrun" result="suppressed"/>'))
    assert report.cases[("C", "DISABLED_t")].status is TestStatus.SKIPPED


def test_missing_attributes_and_bare_testsuite_root() -> None:
    report = parse(
        '<testsuite><testcase name="only-name"/><testcase classname="only-class"/><testcase/></testsuite>', "bare.xml"
    )
    assert set(report.cases) == {("", "only-name"), ("only-class", "(unnamed 1)"), ("bare", "(unnamed 1)")}
    assert {case.suite for case in report.cases.values()} == {"bare"}


def test_nameless_cases_are_distinct_tests_by_position() -> None:
    report = parse(
        '<testsuites><testsuite name="s"><testcase/><testcase><failure/></testcase><testcase/></testsuite>'
        '<testsuite name="t"><testcase classname="C"/><testcase classname="C"><skipped/></testcase></testsuite>'
        "</testsuites>"
    )
    counts = report.counts()
    assert (counts["tests"], counts["passed"], counts["failed"], counts["skipped"]) == (5, 3, 1, 1)
    assert report.cases[("s", "(unnamed 2)")].status is TestStatus.FAILED
    assert report.cases[("C", "(unnamed 2)")].status is TestStatus.SKIPPED


def test_whitespace_in_identity_is_normalised() -> None:
    report = parse(
        wrap('<testcase classname=" C " name="a  b"/><testcase classname="C" name="a b"><failure/></testcase>')
    )
    assert list(report.cases) == [("C", "a b")]


def test_long_messages_are_truncated() -> None:
    report = parse(wrap(f'<testcase classname="C" name="t"><failure>{"x" * 5000}</failure></testcase>'))
    message = report.cases[("C", "t")].message
    assert len(message) == MESSAGE_LIMIT and message.endswith("…")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<testsuites><testsuite name="s"><testcase classname="a" name="&lol9;"/></testsuite></testsuites>
"""


@pytest.mark.parametrize(
    ("xml", "line", "reason"),
    [
        ("", 1, "malformed XML"),
        ("not xml at all", 1, "malformed XML"),
        ('<?xml version="1.0"?>\n<testsuites>\n<testsuite>\n<testcase name="a">\n</testsuites>', 5, "malformed XML"),
        ('<?xml version="1.0"?>\n<html><body/></html>', 2, "not a JUnit report: root element <html>"),
        (BILLION_LAUGHS, None, None),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            '<testsuites><testsuite><testcase name="&xxe;"/></testsuite></testsuites>',
            None,
            None,
        ),
        (
            '<!DOCTYPE testsuites SYSTEM "http://127.0.0.1:9/evil.dtd">\n<testsuites/>',
            1,
            "DOCTYPE declarations are not accepted",
        ),
    ],
    ids=["empty", "text", "truncated", "foreign root", "billion laughs", "external entity", "external DTD"],
)
def test_bad_reports_are_refused_with_file_and_line(xml: str, line: int | None, reason: str | None) -> None:
    with pytest.raises(ReportError) as refused:
        parse(xml, "bad.xml")
    error = refused.value
    assert error.file == "bad.xml"
    assert error.line is not None and error.line >= 1
    if line is not None:
        assert error.line == line
    if reason is not None:
        assert reason in error.reason
    assert str(error).startswith(f"bad.xml:{error.line}: ")


def test_one_bad_file_refuses_the_whole_launch(tmp_path: Path) -> None:
    bad = tmp_path / "broken.xml"
    bad.write_text("<testsuites><testsuite>")
    with pytest.raises(ReportError, match="broken.xml"):
        parse_reports([JUNIT / "jest-junit.xml", bad])


def test_upload_ids_tell_commits_apart(tmp_path: Path) -> None:
    from core.ingest import file_digest, upload_source_id

    report = tmp_path / "r.xml"
    report.write_text(wrap('<testcase classname="C" name="t"/>'))
    digests = [file_digest(report)]
    same = upload_source_id(digests, "o/r", "smoke", "aaa", "main")
    assert same == upload_source_id(digests, "o/r", "smoke", "aaa", "main")
    assert same != upload_source_id(digests, "o/r", "smoke", "bbb", "main")
    assert same != upload_source_id(digests, "o/r", "nightly", "aaa", "main")


class HostileStream:
    """`head`, then `size` bytes of filler made as they are read (never held whole), then `tail`;
    counts the bytes handed out."""

    def __init__(self, head: bytes, size: int, tail: bytes):
        self.head, self.size, self.tail = head, size, tail
        self.total = len(head) + size + len(tail)
        self.position = 0
        self.handed_out = 0

    def read(self, size: int = -1) -> bytes:
        size = 1 << 20 if size < 0 else size
        out = bytearray()
        while len(out) < size and self.position < self.total:
            at, want = self.position, size - len(out)
            if at < len(self.head):
                piece = self.head[at : at + want]
            elif at < len(self.head) + self.size:
                piece = b"x" * min(want, len(self.head) + self.size - at)
            else:
                start = at - len(self.head) - self.size
                piece = self.tail[start : start + want]
            out += piece
            self.position += len(piece)
        self.handed_out += len(out)
        return bytes(out)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = offset
        return offset


GIANT = 200 * 1024 * 1024


def test_a_200_mb_attribute_on_the_root_element_is_refused_from_a_bounded_prefix() -> None:
    stream = HostileStream(b'<?xml version="1.0"?>\n<testsuites name="', GIANT, b'"><testsuite/></testsuites>')
    with pytest.raises(ReportError) as error:
        parse_stream(stream, "huge.xml")
    assert str(error.value) == (
        f"huge.xml:2: the root element does not start within the first {PROLOG_LIMIT // 1024} KB "
        "(a start tag or attribute too long?)"
    )
    assert stream.handed_out <= PROLOG_LIMIT + 16384


def test_a_200_mb_test_name_is_refused_before_the_parser_holds_it() -> None:
    head = b'<testsuites>\n<testsuite name="s">\n<testcase classname="c" name="ok"/>\n<testcase classname="c" name="'
    stream = HostileStream(head, GIANT, b'"/></testsuite></testsuites>')
    with pytest.raises(ReportError) as error:
        parse_stream(stream, "huge.xml")
    assert str(error.value) == "huge.xml:4: a start tag longer than 4 MB (an attribute or name too long)"
    assert stream.handed_out <= TAG_LIMIT + 2 * 1024 * 1024


def test_long_texts_and_quoted_angle_brackets_are_not_long_tags() -> None:
    message = "expected <a> but was <b> " * 20_000  # 500 KB, '>' inside the quotes
    cdata = "x" * (TAG_LIMIT + 10)
    report = parse(
        wrap(
            f'<testcase classname="C" name="t"><failure message="{message.replace("<", "&lt;")}"/></testcase>'
            f'<testcase classname="C" name="u"><system-out><![CDATA[{cdata}]]></system-out></testcase>'
        )
    )
    assert report.counts()["tests"] == 2 and report.counts()["failed"] == 1


@pytest.mark.parametrize("attribute", ["name", "classname", "file"])
def test_test_identities_over_the_limit_are_refused_with_their_line(attribute: str) -> None:
    long = "n" * (NAME_LIMIT + 1)
    case = {"classname": "C", "name": "t", attribute: long}
    attributes = " ".join(f'{key}="{value}"' for key, value in case.items())
    with pytest.raises(ReportError) as error:
        parse(f"<testsuite>\n<testcase {attributes}/>\n</testsuite>", "long.xml")
    assert str(error.value) == (
        f"long.xml:2: test case {attribute} of {NAME_LIMIT + 1} characters, more than the limit of {NAME_LIMIT}"
    )
    assert parse(f'<testsuite><testcase classname="C" name="{"n" * NAME_LIMIT}"/></testsuite>').counts()["tests"] == 1
