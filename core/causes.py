"""Why tests failed, as a signature that failures with one cause share.

A signature is the exception type and the failure message with what varies from run to run
replaced by placeholders: UUIDs, hex ids, timestamps, quoted values, paths, line numbers and
numbers. When the message says nothing of its own (empty, or the type alone), the first stack
line outside test frameworks and standard libraries breaks the tie, so that forty bare
`AssertionError`s from forty places are not one cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIGNATURE_LIMIT = 300
FRAME_LIMIT = 300
_TEXT_SCANNED = 20_000

# Order matters: a timestamp holds numbers, a path holds a line number.
_PLACEHOLDERS = [
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), "<uuid>"),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"),
        "<time>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`|\[[^\]\n]*\]"), "<value>"),
    (re.compile(r"(?:[A-Za-z]:)?[\w.@~+-]*(?:[\\/][\w.@~+-]+){2,}[\\/]?"), "<path>"),
    (
        re.compile(r"(?:(?<=<path>)|(?<=\.[A-Za-z]{2})|(?<=\.[A-Za-z]{3})|(?<=\.[A-Za-z]{4})):\d+(?::\d+)?\b"),
        ":<line>",
    ),
    (re.compile(r"\bline \d+", re.IGNORECASE), "line <line>"),
    (re.compile(r"[-+]?\b\d+(?:\.\d+)?\b"), "<n>"),
]
_SPACES = re.compile(r"\s+")
# "java.lang.IllegalStateException: text", "ConnectionError: text", "E   KeyError: 'x'"
_TYPED_LINE = re.compile(
    r"^(?:E\s+)?(?P<type>[A-Za-z_$][\w$.]*(?:Error|Exception|Failure|Fault|Exit|Interrupt|Warning))(?::\s*(?P<message>.*))?$"
)
_PYTEST_LAST_LINE = re.compile(r"^\S+:\d+: (?P<type>[A-Za-z_][\w.]*)$")
_FRAME_LINE = re.compile(r"^\s*(?:at\s+|File\s+\"|>?\s*)(?P<frame>.+)$")
# Code that runs tests or ships with a language: never where a failure's cause lies.
_FRAMEWORK = re.compile(
    r"node_modules|site-packages|dist-packages|[\\/]lib[\\/]python\d|<frozen |<anonymous>|internal[\\/]"
    r"|^\s*at (?:new )?Promise\b|\b(?:org\.junit|junit\.framework|org\.testng|org\.hamcrest|org\.assertj"
    r"|org\.opentest4j|org\.apache\.maven\.surefire|org\.gradle|sun\.reflect|java\.base|java\.lang\.reflect"
    r"|jdk\.internal|kotlin\.test|_pytest|pluggy|unittest[\\/.]|PHPUnit|XCTest|testing\.tRunner)"
    r"|\bprocessTicksAndRejections\b|^\s*at java\.|^\s*at kotlin\.",
    re.IGNORECASE,
)
_STACK_LINE = re.compile(r"^\s*(?:at\s|File\s\"|\S+\.(?:py|java|kt|js|ts|php|rb|go|cs|swift):\d+|#\d+\s)")


@dataclass(frozen=True)
class Cause:
    signature: str
    frame: str | None = None


def normalise(text: str) -> str:
    """The message with what varies replaced by placeholders, on one line."""
    for pattern, placeholder in _PLACEHOLDERS:
        text = pattern.sub(placeholder, text)
    return _SPACES.sub(" ", text).strip()


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
    for line in lines:
        if not _STACK_LINE.match(line) or _FRAMEWORK.search(line):
            continue
        match = _FRAME_LINE.match(line)
        if match:
            frame = re.sub(r"(?<=:)\d+(?::\d+)?|\(\d+\)|, line \d+|\"", "", match.group("frame").strip())
            return frame.rstrip(":")[:FRAME_LIMIT]
    return None
