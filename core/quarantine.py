"""The flaky rule: when a test goes into quarantine on its own, and when it comes out.

Pure functions of a test's last runs as the milestone state keeps them (newest first):
`recent`, one outcome letter per run (P, F, E, S), and `flaky_recent`, Y for a run in which
it was flaky (passed and failed within the run or across its attempts, or flipped from the
run before) and N otherwise.
"""

from __future__ import annotations

from enum import StrEnum

from core.policy import FlakyConfig


class Move(StrEnum):
    QUARANTINE = "quarantine"
    RELEASE = "release"


def flaky_runs(flaky_recent: str) -> int:
    return flaky_recent.count("Y")


def auto_move(config: FlakyConfig, *, quarantined_by_rule: bool, recent: str, flaky_recent: str) -> Move | None:
    """What the rule does to one test now; None: nothing.

    Only a quarantine the rule made is released by it: one from the policy file or a person
    stays until they take it back.
    """
    if config.quarantine != "auto":
        return Move.RELEASE if quarantined_by_rule else None
    if quarantined_by_rule:
        runs = [letter for letter in recent if letter != "S"]
        passing = len(runs) >= config.release_after and all(letter == "P" for letter in runs[: config.release_after])
        return Move.RELEASE if passing else None
    if flaky_runs(flaky_recent) >= config.after:
        return Move.QUARANTINE
    return None


def why_quarantined(config: FlakyConfig, flaky_recent: str) -> str:
    return f"flaky in {flaky_runs(flaky_recent)} of its last {len(flaky_recent)} runs (rule: {config.after})"


def why_released(config: FlakyConfig) -> str:
    if config.quarantine != "auto":
        return "the flaky rule was turned off"
    return f"passed {config.release_after} runs in a row"
