"""Deterministic JUnit reports of any size, written the way Surefire writes them."""

from __future__ import annotations

import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

STACK_TRACE = "".join(
    f"\tat com.acme.shop.checkout.Frame{depth}.call(Frame{depth}.java:{depth * 7})\n" for depth in range(12)
)


def write_report(
    path: Path,
    *,
    suites: int = 500,
    cases_per_suite: int = 100,
    failure_rate: float = 0.03,
    skip_rate: float = 0.02,
    seed: int = 1,
    output_lines: int = 0,
    failing: set[int] | None = None,
) -> Path:
    """Write a report; `failing` (case indexes) overrides the random failures."""
    rng = random.Random(seed)
    output = "".join(f"INFO step {line}: request handled in 12 ms\n" for line in range(output_lines))
    with open(path, "w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
        index = 0
        for suite in range(suites):
            classname = f"com.acme.shop.module{suite // 50}.Feature{suite}Test"
            out.write(f'  <testsuite name="{classname}" tests="{cases_per_suite}">\n')
            for case in range(cases_per_suite):
                roll = rng.random()
                fails = roll < failure_rate if failing is None else index in failing
                head = f'    <testcase classname="{classname}" name="test{case}" time="{rng.random():.3f}"'
                if fails:
                    message = quoteattr(f"expected <{case}> but was <{case + 1}>")
                    out.write(f'{head}>\n      <failure message={message} type="java.lang.AssertionError">')
                    out.write(f"java.lang.AssertionError\n{STACK_TRACE}</failure>\n")
                    out.write(
                        f"      <system-out>{output}</system-out>\n    </testcase>\n" if output else "    </testcase>\n"
                    )
                elif failing is None and roll < failure_rate + skip_rate:
                    out.write(f'{head}>\n      <skipped message="disabled on CI"/>\n    </testcase>\n')
                elif output:
                    out.write(f"{head}>\n      <system-out>{output}</system-out>\n    </testcase>\n")
                else:
                    out.write(f"{head}/>\n")
                index += 1
            out.write("  </testsuite>\n")
        out.write("</testsuites>\n")
    return path
