"""Streaming, hardened reader of JUnit/xUnit XML reports.

Reports come from many runners (Surefire, TestNG, Jest, PHPUnit, pytest, unittest,
Swift, Nette Tester, GoogleTest); they agree on `testsuite`/`testcase` and little
else, so every attribute is optional. Parsing streams with lxml's iterparse and
drops each test case once read, so memory follows the number of distinct tests,
not the size of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from lxml import etree

from core.causes import Cause, cause_of
from core.enums import STATUS_RANK, TestStatus

MESSAGE_LIMIT = 1000
# Results a launch may hold that its reports declare without listing (`tests="N"` on a suite
# with no <testcase>): each becomes a row, so a hostile count must not become a billion rows.
UNLISTED_LIMIT = 100_000
UNLISTED_FAILURE = "the report declares this failure but lists no test cases"
# The longest start tag (its attributes together) and test identity a report may carry: the
# parser holds a whole tag in memory before anything can look at it, and names are stored.
TAG_LIMIT = 4 * 1024 * 1024
NAME_LIMIT = 10_000
# The XML declaration, comments and the root's start tag.
PROLOG_LIMIT = TAG_LIMIT + 64 * 1024

_FAILING_CHILD = {"failure": TestStatus.FAILED, "error": TestStatus.ERROR}
_SKIPPED_CHILD = {"skipped", "disabled"}
# Surefire writes these next to the final outcome: flaky* when a rerun passed,
# rerun* when every rerun failed too.
_FLAKY_CHILD = {"flakyFailure", "flakyError"}
_RERUN_CHILD = {"rerunFailure", "rerunError"}
# GoogleTest marks disabled tests with attributes instead of a <skipped> child.
_SKIPPED_STATUS_ATTR = {"notrun", "disabled", "skipped"}
_SKIPPED_RESULT_ATTR = {"skipped", "suppressed"}


class ReportError(ValueError):
    """A report that cannot be ingested: names the file, the line and why."""

    def __init__(self, file: str, line: int | None, reason: str):
        self.file = file
        self.line = line
        self.reason = reason
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


@dataclass(slots=True)
class CaseResult:
    """One distinct test (classname + name) in one launch, after merging repeats."""

    classname: str
    name: str
    file: str | None
    suite: str
    status: TestStatus
    duration: float
    message: str | None
    flaky: bool = False
    retried: bool = False
    saw_pass: bool = False
    saw_failure: bool = False
    cause: Cause | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.classname, self.name)


@dataclass
class DeclaredTotals:
    """What the suites say about themselves, kept for reports with no test cases."""

    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0

    def add(self, element: etree._Element) -> None:
        self.tests += _int_attr(element, "tests")
        self.failures += _int_attr(element, "failures")
        self.errors += _int_attr(element, "errors")
        self.skipped += _int_attr(element, "skipped") + _int_attr(element, "disabled")

    def add_totals(self, other: DeclaredTotals) -> None:
        self.tests += other.tests
        self.failures += other.failures
        self.errors += other.errors
        self.skipped += other.skipped


@dataclass
class ParsedReport:
    """Every test of one launch, however many files it came in."""

    files: int = 0
    cases: dict[tuple[str, str], CaseResult] = field(default_factory=dict)
    declared: DeclaredTotals = field(default_factory=DeclaredTotals)
    suites: int = 0
    # What a reader of the launch should know about its reports (suites declaring results they do not list).
    warnings: list[str] = field(default_factory=list)
    # Per class name, how many tests without a name were seen: the next one's position.
    unnamed: dict[str, int] = field(default_factory=dict)
    unlisted: int = 0

    def counts(self) -> dict[str, int]:
        tally = {status: 0 for status in TestStatus}
        flaky = 0
        for case in self.cases.values():
            tally[case.status] += 1
            flaky += case.flaky
        return {
            "files": self.files,
            "suites": self.suites,
            "tests": len(self.cases),
            "passed": tally[TestStatus.PASSED],
            "failed": tally[TestStatus.FAILED],
            "errors": tally[TestStatus.ERROR],
            "skipped": tally[TestStatus.SKIPPED],
            "flaky": flaky,
        }

    def unnamed_test(self, classname: str) -> str:
        """The name of the next test of `classname` that has none: its position, so that each stays distinct."""
        position = self.unnamed.get(classname, 0) + 1
        self.unnamed[classname] = position
        return f"(unnamed {position})"

    def record(self, case: CaseResult) -> None:
        """Merge one <testcase> into the launch: the worst state wins, pass+fail is flaky."""
        key = (case.classname, case.name)
        seen = self.cases.get(key)
        if seen is None:
            case.flaky = case.flaky or (case.saw_pass and case.saw_failure)
            self.cases[key] = case
            return
        seen.retried = True
        seen.saw_pass |= case.saw_pass
        seen.saw_failure |= case.saw_failure
        seen.flaky = seen.flaky or case.flaky or (seen.saw_pass and seen.saw_failure)
        seen.duration = max(seen.duration, case.duration)
        if STATUS_RANK[case.status] > STATUS_RANK[seen.status]:
            seen.status = case.status
            seen.message = case.message
            seen.cause = case.cause
        seen.file = seen.file or case.file


def parse_reports(
    paths: Iterable[str | os.PathLike[str]], progress: Callable[[int], None] | None = None
) -> ParsedReport:
    """Parse several report files as one launch; any bad file refuses them all.

    `progress` is told the number of bytes read, as they are read (for a progress bar)."""
    report = ParsedReport()
    for path in paths:
        with open(path, "rb") as stream:
            parse_stream(_Counted(stream, progress) if progress else stream, str(path), report)
    return report


class _Counted:
    """A report file that tells how far into it the reader got (a look back is not counted twice)."""

    def __init__(self, stream: BinaryIO, progress: Callable[[int], None]):
        self._stream = stream
        self._progress = progress
        self._furthest = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._stream.read(size)
        position = self._stream.tell()
        if position > self._furthest:
            self._progress(position - self._furthest)
            self._furthest = position
        return data

    def tell(self) -> int:
        return self._stream.tell()

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._stream.seek(offset, whence)


class ReportStream(Protocol):
    """What the reader needs of a report: a file, or an archive member read through a budget."""

    def read(self, size: int = -1, /) -> bytes: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def parse_stream(stream: ReportStream, name: str, report: ParsedReport | None = None) -> ParsedReport:
    """Add one report file to `report` (a new one when None); `name` is used in errors."""
    report = report if report is not None else ParsedReport()
    parser = _ReportParser(name, report)
    try:
        parser.run(stream)
    except etree.XMLSyntaxError as exc:
        raise ReportError(name, exc.lineno or 1, f"malformed XML: {_syntax_reason(exc)}") from None
    report.files += 1
    return report


_SUITE_TAGS = ("testsuite", "testsuites")


@dataclass(frozen=True, slots=True)
class _Unlisted:
    """A suite's declared results, for a suite (and everything in it) that lists no test case."""

    suite: str
    line: int | None
    tests: int
    failures: int
    errors: int
    skipped: int


class _ReportParser:
    def __init__(self, name: str, report: ParsedReport):
        self.name = name
        self.report = report
        self.fallback_suite = Path(name).stem
        self.suite_element: etree._Element | None = None
        self.suite_name = self.fallback_suite
        # Many cases share a class name: one string object each saves memory.
        self.shared_strings: dict[str, str] = {}
        # The last class name as read, and as kept.
        self.last_classname = ("", "")
        # Suites still open that hold a test case somewhere inside (lxml gives the same proxy
        # object for an element while a reference to it lives, so the set can hold them).
        self.with_cases: set[etree._Element] = set()
        # Declarations of case-less suites, waiting for their parent to end: a parent that lists
        # no case either and declares its own totals speaks for them (its numbers include theirs).
        self.pending: dict[etree._Element, list[_Unlisted]] = {}
        self.unlisted: list[_Unlisted] = []

    def run(self, stream: ReportStream) -> None:
        self._check_prolog(stream)
        events = etree.iterparse(
            _TagBound(stream, self.name),
            events=("end",),
            tag=("testsuite", "testcase"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            # Real reports carry system-out of tens of MB; with DTDs refused above, the
            # limits huge_tree lifts no longer guard against entity expansion.
            huge_tree=True,
            remove_comments=True,
        )
        root = None
        root_declares = False
        on_root = DeclaredTotals()
        top_level = DeclaredTotals()
        read = 0
        for _, element in events:
            if root is None:
                # Read now: the root is cleared when its own end event comes.
                root = element.getroottree().getroot()
                on_root.add(root)
                root_declares = root.get("tests") is not None or root.tag == "testsuite"
            if element.tag == "testcase":
                self.report.record(self._case(element))
            else:
                self.report.suites += 1
                if element.getparent() is root:
                    top_level.add(element)
                self._suite_ended(element)
            # Drop what was read so that memory stays flat on large reports; the emptied
            # elements themselves are removed now and then (a suite's go when it ends).
            element.clear()
            read += 1
            if not read % 256:
                parent = element.getparent()
                if parent is not None:
                    del parent[: parent.index(element)]
        if events.root is not None:
            if root is None:
                on_root.add(events.root)
                root_declares = True
            if events.root.tag == "testsuites":  # <testsuite> roots end as a suite above
                self._suite_ended(events.root)
        # Suites inside elements other than suites (never ended above) speak for themselves.
        for declarations in self.pending.values():
            self.unlisted.extend(declarations)
        self._record_unlisted()
        # Totals are declared on the outermost element, or else on each top-level suite;
        # nested suites repeat their parents' numbers.
        self.report.declared.add_totals(on_root if root_declares else top_level)

    def _suite_ended(self, suite: etree._Element) -> None:
        parent = _enclosing_suite(suite)
        inner = self.pending.pop(suite, [])
        if suite in self.with_cases:
            self.with_cases.discard(suite)
            if parent is not None:
                self.with_cases.add(parent)
            self.unlisted.extend(inner)
            return
        declared = suite.get("tests") is not None
        own = _Unlisted(
            self._name_of(suite),
            _line_of(suite),
            _int_attr(suite, "tests"),
            _int_attr(suite, "failures"),
            _int_attr(suite, "errors"),
            _int_attr(suite, "skipped") + _int_attr(suite, "disabled"),
        )
        speaks = [own] if declared and (own.tests or own.failures or own.errors or not inner) else inner
        if parent is None:
            self.unlisted.extend(speaks)
        else:
            self.pending.setdefault(parent, []).extend(speaks)

    def _record_unlisted(self) -> None:
        """Results a suite declares but does not list, recorded as unnamed tests of that suite."""
        suites = tests = failed = errors = skipped = 0
        for unlisted in self.unlisted:
            outcomes = (
                [TestStatus.FAILED] * unlisted.failures
                + [TestStatus.ERROR] * unlisted.errors
                + [TestStatus.SKIPPED] * unlisted.skipped
            )
            count = max(unlisted.tests, len(outcomes))
            if not count:
                continue
            self.report.unlisted += count
            if self.report.unlisted > UNLISTED_LIMIT:
                raise ReportError(
                    self.name,
                    unlisted.line,
                    f"suite {unlisted.suite} declares {count} tests without listing them; "
                    f"at most {UNLISTED_LIMIT} unlisted results are accepted in a launch",
                )
            outcomes += [TestStatus.PASSED] * (count - len(outcomes))
            suite = self._shared(unlisted.suite)
            for status in outcomes:
                failing = status in (TestStatus.FAILED, TestStatus.ERROR)
                self.report.record(
                    CaseResult(
                        suite,
                        self.report.unnamed_test(suite),
                        None,
                        suite,
                        status,
                        0.0,
                        UNLISTED_FAILURE if failing else None,
                        saw_pass=status is TestStatus.PASSED,
                        saw_failure=failing,
                    )
                )
            suites += 1
            tests += count
            failed += unlisted.failures
            errors += unlisted.errors
            skipped += unlisted.skipped
        if suites:
            self.report.warnings.append(
                f"{self.name}: report lists no cases for {suites} suite{'s' if suites != 1 else ''} declaring "
                f"{tests} tests ({failed} failed, {errors} errors, {skipped} skipped); "
                "recorded as unnamed tests of each suite"
            )

    def _name_of(self, element: etree._Element | None) -> str:
        """The name of the suite `element` is or belongs to: its own, its nearest named parent's, or the file's."""
        while element is not None:
            name = (element.get("name") or "").strip()
            if name:
                return name
            element = element.getparent()
        return self.fallback_suite

    def _check_prolog(self, stream: ReportStream) -> None:
        """Read up to the root element: refuse DTDs and foreign roots before parsing on."""
        start = stream.tell()
        probe = etree.XMLPullParser(
            events=("start",), resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True
        )
        prolog = bytearray()
        root: etree._Element | None = None
        while root is None:
            if len(prolog) >= PROLOG_LIMIT:
                raise ReportError(
                    self.name,
                    prolog.count(b"\n") + 1,
                    f"the root element does not start within the first {PROLOG_LIMIT // 1024} KB "
                    "(a start tag or attribute too long?)",
                )
            chunk = stream.read(16384)
            if not chunk:
                probe.close()  # raises the syntax error that explains the truncation
                raise ReportError(self.name, 1, "empty document")
            prolog += chunk
            probe.feed(chunk)
            for _, element in probe.read_events():
                if isinstance(element, etree._Element):  # "start" events carry elements only
                    root = element
                    break
        docinfo = root.getroottree().docinfo
        if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
            line = prolog.count(b"\n", 0, max(prolog.find(b"<!DOCTYPE"), 0)) + 1
            raise ReportError(self.name, line, "DOCTYPE declarations are not accepted in test reports")
        if root.tag not in ("testsuites", "testsuite"):
            raise ReportError(
                self.name,
                root.sourceline,
                f"not a JUnit report: root element <{_local(root.tag)}>, expected <testsuites> or <testsuite>",
            )
        stream.seek(start)

    def _suite_of(self, case: etree._Element) -> str:
        parent = case.getparent()
        if parent is not self.suite_element:
            self.suite_element = parent
            self.suite_name = self._shared(self._name_of(parent))
            holder = parent if parent is not None and parent.tag in _SUITE_TAGS else _enclosing_suite(case)
            if holder is not None:
                self.with_cases.add(holder)
        return self.suite_name

    def _shared(self, text: str) -> str:
        return self.shared_strings.setdefault(text, text)

    def _case(self, element: etree._Element) -> CaseResult:
        # The hot loop of ingestion: one call per test case, so kept lean. One call copies the
        # attributes: cheaper than asking lxml for each of them.
        attributes = cast(dict[str, str], dict(element.items()))  # lxml gives str values
        get = attributes.get
        status = TestStatus.PASSED
        message = None
        cause = None
        flaky = retried = saw_failure = False
        if len(element):
            for child in element:
                tag = child.tag
                failing = _FAILING_CHILD.get(tag)
                if failing is not None:
                    saw_failure = True
                    if STATUS_RANK[failing] > STATUS_RANK[status]:
                        status = failing
                        message = _message(child)
                        cause = cause_of(child.get("type"), child.get("message"), child.text)
                elif tag in _SKIPPED_CHILD:
                    if status is TestStatus.PASSED:
                        status = TestStatus.SKIPPED
                        message = _message(child)
                elif tag in _FLAKY_CHILD:
                    flaky = retried = saw_failure = True
                    message = message or _message(child)
                elif tag in _RERUN_CHILD:
                    retried = True
        if status is TestStatus.PASSED and ("status" in attributes or "result" in attributes):
            if (get("status") or "").lower() in _SKIPPED_STATUS_ATTR or (
                get("result") or ""
            ).lower() in _SKIPPED_RESULT_ATTR:
                status = TestStatus.SKIPPED
        time = get("time")
        try:
            duration = max(float(time), 0.0) if time else 0.0
        except ValueError:
            duration = _float_attr(time)
        parent = element.getparent()
        suite = self.suite_name if parent is self.suite_element else self._suite_of(element)
        raw_classname = get("classname") or ""
        if raw_classname != self.last_classname[0]:
            # Cases of one class come together: its normalised, shared text is reused.
            self.last_classname = (raw_classname, self._shared(_normalise(raw_classname)))
        classname = self.last_classname[1]
        name = get("name") or ""
        if " " in name or "\n" in name or "\t" in name or "\r" in name:
            name = " ".join(name.split())
        file = get("file")
        if len(name) > NAME_LIMIT or len(classname) > NAME_LIMIT or (file is not None and len(file) > NAME_LIMIT):
            longest = max(("name", name), ("classname", classname), ("file", file or ""), key=lambda item: len(item[1]))
            raise ReportError(
                self.name,
                _line_of(element),
                f"test case {longest[0]} of {len(longest[1])} characters, more than the limit of {NAME_LIMIT}",
            )
        if not name:
            # Nameless cases are distinct tests, told apart by their position.
            classname = classname or suite
            name = self.report.unnamed_test(classname)
        return CaseResult(
            classname,
            name,
            self._shared(file.strip().replace("\\", "/")) if file else None,
            suite,
            status,
            duration,
            message,
            flaky,
            retried,
            status is TestStatus.PASSED,
            saw_failure,
            cause,
        )


# A '<' and everything up to the next one, when that is longer than a start tag may be: a
# long text (fine) or a long tag (refused). The engine scans each byte once, in C.
_LONG_SPAN = re.compile(rb"<[^<]{%d,}" % TAG_LIMIT)
# A start or end tag, quotes respected: '>' may appear inside an attribute value, '<' may not.
_TAG = re.compile(rb"""<[^>"']*(?:(?:"[^"]*"|'[^']*')[^>"']*)*>""")


class _TagBound:
    """The report's bytes as the parser reads them, refusing a tag longer than TAG_LIMIT before
    the parser has had to hold it (a 200 MB attribute, a 200 MB name)."""

    def __init__(self, stream: ReportStream, name: str):
        self._stream = stream
        self._name = name
        self._lines = 0
        # The span since the last '<' read: its start (up to just past a tag's limit), whether it
        # is already known to be a tag followed by text, its length and the line it starts on.
        self._head = bytearray()
        self._settled = True
        self._length = 0
        self._line = 1

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        first = data.find(b"<")
        if first == -1:
            self._continue(data)
        else:
            self._continue(data[:first])
            last = data.rfind(b"<")
            for match in _LONG_SPAN.finditer(data, first, last):
                self._judge(bytes(match.group()[: TAG_LIMIT + 1]), self._lines + data.count(b"\n", 0, match.start()))
            self._line = self._lines + data.count(b"\n", 0, last) + 1
            self._head = bytearray(data[last : last + TAG_LIMIT + 1])
            self._length = len(data) - last
            self._settled = False
            self._continue(b"")
        self._lines += data.count(b"\n")
        return data

    def _continue(self, data: bytes) -> None:
        self._length += len(data)
        if self._settled or self._length <= TAG_LIMIT:
            if not self._settled:
                self._head += data[: TAG_LIMIT + 1 - len(self._head)]
            return
        self._head += data[: TAG_LIMIT + 1 - len(self._head)]
        self._judge(bytes(self._head), self._line - 1)
        self._settled = True

    def _judge(self, span: bytes, lines_before: int) -> None:
        if span.startswith((b"<!", b"<?")):  # comments, CDATA and instructions carry text
            return
        tag = _TAG.match(span)
        if tag is None or tag.end() > TAG_LIMIT:
            raise ReportError(
                self._name,
                lines_before + 1,
                f"a start tag longer than {TAG_LIMIT // (1024 * 1024)} MB (an attribute or name too long)",
            )


def _line_of(element: etree._Element) -> int | None:
    line = element.sourceline
    return line if isinstance(line, int) else None


def _enclosing_suite(element: etree._Element) -> etree._Element | None:
    parent = element.getparent()
    while parent is not None and parent.tag not in _SUITE_TAGS:
        parent = parent.getparent()
    return parent


def _normalise(text: str) -> str:
    """Identity text: runners differ in surrounding and repeated white space only."""
    if " " in text or "\n" in text or "\t" in text or "\r" in text:
        return " ".join(text.split())
    return text


def _message(element: etree._Element) -> str | None:
    text = element.get("message") or element.text or ""
    text = text.strip()
    if not text:
        return None
    if len(text) > MESSAGE_LIMIT:
        return text[: MESSAGE_LIMIT - 1] + "…"
    return text


def _int_attr(element: etree._Element, name: str) -> int:
    value = element.get(name)
    if not value:
        return 0
    try:
        return max(int(float(value)), 0)
    except ValueError:
        return 0


def _float_attr(value: str | None) -> float:
    if not value:
        return 0.0
    try:
        # Some runners write thousands separators ("1,234.5").
        return max(float(value.replace(",", "")), 0.0)
    except ValueError:
        return 0.0


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _syntax_reason(exc: etree.XMLSyntaxError) -> str:
    message = exc.msg or str(exc)
    # libxml2 appends ", line N, column M"; the caller already says where.
    return message.split(", line ")[0].strip()
