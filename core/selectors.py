"""Which tests a milestone requires: `plan:NAME`, glob patterns, or exact test ids.

A test answers to several spellings, so that people can write what their runner
prints: `com.acme.CartTest.testAdd`, `tests.checkout.test_cart::test_add`,
`tests/checkout/test_cart.py::test_add` or the path form of the class name
(`tests/checkout/test_cart/test_add`), so `tests/checkout/**` selects pytest tests
whether or not the report carries file names. In globs `*` (and `**`) match
across dots and slashes alike.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import NamedTuple

PLAN_PREFIX = "plan:"
GLOB_CHARS = frozenset("*?[")


def test_spellings(classname: str, name: str, file: str | None) -> list[str]:
    spellings = [f"{classname}.{name}" if classname else name]
    if classname:
        path = classname.replace(".", "/")
        spellings += [f"{classname}::{name}", f"{path}/{name}", f"{path}::{name}"]
    if file:
        spellings += [f"{file}::{name}", f"{file}/{name}"]
    return spellings


class RequiredSelectors(NamedTuple):
    """A milestone's `required` list, split by kind and compiled once."""

    plans: tuple[str, ...]
    globs: tuple[str, ...]
    exact: tuple[str, ...]

    @classmethod
    def parse(cls, selectors: Iterable[str]) -> RequiredSelectors:
        plans, globs, exact = [], [], []
        for selector in selectors:
            selector = selector.strip()
            if selector.startswith(PLAN_PREFIX):
                plans.append(selector[len(PLAN_PREFIX) :].strip())
            elif GLOB_CHARS & set(selector):
                globs.append(selector)
            elif selector:
                exact.append(selector)
        return cls(tuple(plans), tuple(globs), tuple(exact))

    @property
    def by_name(self) -> tuple[str, ...]:
        return self.globs + self.exact

    def name_matcher(self) -> NameMatcher:
        return NameMatcher(self.globs, self.exact)


class NameMatcher:
    """Matches tests against the glob and exact selectors, remembering which matched."""

    def __init__(self, globs: Iterable[str], exact: Iterable[str]):
        self._globs = [(glob, re.compile(fnmatch.translate(glob))) for glob in globs]
        self._exact = set(exact)
        self.matched: set[str] = set()

    def __call__(self, classname: str, name: str, file: str | None) -> bool:
        spellings = test_spellings(classname, name, file)
        hit = False
        for spelling in spellings:
            if spelling in self._exact:
                self.matched.add(spelling)
                hit = True
        for glob, pattern in self._globs:
            if any(pattern.match(spelling) for spelling in spellings):
                self.matched.add(glob)
                hit = True
        return hit
