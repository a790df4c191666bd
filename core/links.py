"""Which tests a defect breaks, from its issue body.

Two ways to say it: `Affects:` lines, each with one or more selectors in the syntax of the
policy's `required` (exact ids or globs, separated by commas or spaces), and any of the
policy's exact required test ids written anywhere in the body. Selectors in backticks are
read without them, as people paste ids as code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.selectors import GLOB_CHARS, PLAN_PREFIX, NameMatcher

# "Affects: x", "- **Affects:** x", "> affects: x"
_AFFECTS = re.compile(
    r"^[ \t>*\-]*affects[ \t]*(?:\*\*)?[ \t]*:[ \t]*(?:\*\*)?[ \t]*(?P<selectors>.+)$", re.IGNORECASE | re.MULTILINE
)
_SEPARATORS = re.compile(r"[,\s]+")
MAX_SELECTORS = 100
MAX_SELECTOR_LENGTH = 500


def affected_selectors(body: str | None, required_ids: Iterable[str] = ()) -> list[str]:
    """The selectors a defect's body names, in order, each once.

    `required_ids`: the exact test ids the repository's milestones require; those written
    verbatim in the body count as named.
    """
    if not body:
        return []
    found: list[str] = []
    for line in _AFFECTS.finditer(body):
        for selector in _SEPARATORS.split(line.group("selectors")):
            selector = selector.strip("`'\"")
            # A plan is not a test: a defect names the tests it breaks.
            if selector and not selector.startswith(PLAN_PREFIX) and len(selector) <= MAX_SELECTOR_LENGTH:
                found.append(selector)
    found += [test_id for test_id in required_ids if test_id in body]
    return list(dict.fromkeys(found))[:MAX_SELECTORS]


def link_matcher(selectors: Iterable[str]) -> NameMatcher:
    globs: list[str] = []
    exact: list[str] = []
    for selector in selectors:
        (globs if GLOB_CHARS & set(selector) else exact).append(selector)
    return NameMatcher(globs, exact)
