"""Why tests failed, as a signature that failures with one cause share.

A signature is the exception type and the failure message with what varies from run to run
replaced by placeholders: UUIDs, hex ids, timestamps, quoted values, paths, line numbers and
numbers. When the message says nothing of its own (empty, or the type alone), the first stack
line outside test frameworks and standard libraries breaks the tie, so that forty bare
`AssertionError`s from forty places are not one cause.
"""

from __future__ import annotations

import re
from typing import NamedTuple

SIGNATURE_LIMIT = 300
FRAME_LIMIT = 300
_TEXT_SCANNED = 20_000
_FRAMES_SCANNED = 40

# One pass, alternatives tried in this order at each place: a timestamp holds numbers, a path
# holds a line number.
_VARYING = re.compile(
    r"(?P<uuid>\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)"
    r"|(?P<time>\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
    r"|\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b)"
    r"|(?P<hex>\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b)"
    r"|(?P<value>'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`|\[[^\]\n]*\])"
    r"|(?P<path>(?<![\w.@~+-])(?:[A-Za-z]:)?[\w.@~+-]*(?:[\\/][\w.@~+-]+){2,}[\\/]?)(?P<at>:\d+(?::\d+)?\b)?"
    r"|(?P<line>(?:(?<=\.[A-Za-z]{2})|(?<=\.[A-Za-z]{3})|(?<=\.[A-Za-z]{4})):\d+(?::\d+)?\b|\b[Ll]ine \d+)"
    r"|(?P<n>(?:(?<![\w.])[-+])?\b\d+(?:\.\d+)?\b)"
)


def _placeholder(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "at":
        return "<path>:<line>"
    if kind == "line":
        return "line <line>" if match.group(0)[:1] in "Ll" else ":<line>"
    return f"<{kind}>"


_SPACES = re.compile(r"\s+")
_DIGITS = str.maketrans("123456789", "000000000")
_SHAPES: dict[str, str] = {}
_SHAPES_KEPT = 10_000
# "java.lang.IllegalStateException: text", "ConnectionError: text", "E   KeyError: 'x'"
_TYPED_LINE = re.compile(
    r"^(?:E\s+)?(?P<type>[A-Za-z_$][\w$.]*(?:Error|Exception|Failure|Fault|Exit|Interrupt|Warning))(?::\s*(?P<message>.*))?$"
)
_PYTEST_LAST_LINE = re.compile(r"^\S+:\d+: (?P<type>[A-Za-z_][\w.]*)$")
_FRAME_LINE = re.compile(r"^\s*(?:at\s+|File\s+\"|>?\s*)(?P<frame>.+)$")
# Code that runs tests or ships with a language: never where a failure's cause lies.
_FRAMEWORK = (
    "node_modules", "site-packages", "dist-packages", "/lib/python", "\\lib\\python", "<frozen ", "<anonymous>",
    "internal/", "internal\\", "org.junit", "junit.framework", "org.testng", "org.hamcrest", "org.assertj",
    "org.opentest4j", "org.apache.maven.surefire", "org.gradle", "sun.reflect", "java.base", "java.lang.reflect",
    "jdk.internal", "kotlin.test", "_pytest", "pluggy", "unittest/", "unittest.", "PHPUnit", "XCTest",
    "testing.tRunner", "processTicksAndRejections", "at java.", "at kotlin.", "at new Promise", "at Promise",
)  # fmt: skip
_LINE_NUMBERS = re.compile(r":\d+(?::\d+)?|\(\d+\)|, line \d+|\"")
_STACK_LINE = re.compile(r"^\s*(?:at\s|File\s\"|\S+\.(?:py|java|kt|js|ts|php|rb|go|cs|swift):\d+|#\d+\s)")


class Cause(NamedTuple):
    signature: str
    frame: str | None = None


def normalise(text: str) -> str:
    """The message with what varies replaced by placeholders, on one line.

    Messages alike but for their digits are one message: reports of thousands of failures
    repeat a few messages with other numbers, so each shape is worked out once.
    """
    shape = text.translate(_DIGITS)
    known = _SHAPES.get(shape)
    if known is None:
        if len(_SHAPES) >= _SHAPES_KEPT:
            _SHAPES.clear()
        known = _SHAPES[shape] = _SPACES.sub(" ", _VARYING.sub(_placeholder, text)).strip()
    return known


def cause_of(kind: str | None, message: str | None, text: str | None) -> Cause:
    """The cause of one failure, from the report's `type` and `message` attributes and the
    element's text (often a stack trace, sometimes all there is)."""
    kind = (kind or "").strip()
    message = (message or "").strip()
    if "\n" in message:  # a whole traceback in the attribute: read it as the text
        text = f"{message}\n{text or ''}"
        message = ""
    lines = [line for line in (text or "")[:_TEXT_SCANNED].splitlines() if line.strip()]
    if not kind or not message:
        typed = _typed(lines if not message else [message, *lines])
        if typed is not None:
            kind = kind or typed[0]
            if not message or message == typed[0] or message.startswith(typed[0] + ":"):
                message = typed[1]
    if not message:
        message = next((line.strip() for line in lines if not _STACK_LINE.match(line)), "")
    if kind and message.startswith(kind + ":"):
        message = message[len(kind) + 1 :]
    normal = normalise(message.splitlines()[0] if message else "")
    frame = _first_own_frame(lines)
    signature = f"{kind}: {normal}" if kind and normal else kind or normal
    if not normal or normal == kind:
        signature = f"{signature or 'failure'} at {frame}" if frame else signature or "failure without a message"
    return Cause(signature[:SIGNATURE_LIMIT], frame)


def _typed(lines: list[str]) -> tuple[str, str] | None:
    for line in lines[:50]:
        match = _TYPED_LINE.match(line.strip())
        if match:
            return match.group("type"), (match.group("message") or "").strip()
    # pytest ends with "tests/test_lib.py:25: AssertionError"
    for line in reversed(lines[-5:]):
        match = _PYTEST_LAST_LINE.match(line.strip())
        if match:
            return match.group("type"), ""
    return None


def _first_own_frame(lines: list[str]) -> str | None:
    for line in lines[:_FRAMES_SCANNED]:
        if not _STACK_LINE.match(line) or any(marker in line for marker in _FRAMEWORK):
            continue
        match = _FRAME_LINE.match(line)
        if match:
            frame = _LINE_NUMBERS.sub("", match.group("frame").strip())
            return frame.rstrip(":")[:FRAME_LIMIT]
    return None
