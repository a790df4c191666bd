"""Finding the milestone a person meant."""

from __future__ import annotations

import pytest

from core import services
from core.lookup import MilestoneRef, match, normalise, resolve_milestone

SHOP = [MilestoneRef("acme/shop", "v2.0"), MilestoneRef("acme/shop", "v2.1"), MilestoneRef("acme/shop", "Sprint 24")]


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("v2.0", "2"),
        ("V2.0", "2"),
        ("2.0", "2"),
        ("v2", "2"),
        ("v2.0.0", "2"),
        ("v2.10", "2.10"),
        ("Sprint-24", "sprint 24"),
        ("  Q1   GA ", "q1 ga"),
    ],
)
def test_normalise_ignores_case_separators_v_and_trailing_zeros(typed: str, normal: str) -> None:
    assert normalise(typed) == normal


@pytest.mark.parametrize("typed", ["v2.0", "v2", "V2.0", "2.0", "2", "V2"])
def test_forgiving_spellings_find_the_milestone(typed: str) -> None:
    assert match(typed, SHOP).found == MilestoneRef("acme/shop", "v2.0")


def test_exact_name_beats_a_normalised_one() -> None:
    refs = [MilestoneRef("acme/shop", "v2"), MilestoneRef("acme/shop", "v2.0")]
    assert match("v2.0", refs).found == refs[1]
    assert match("v2", refs).found == refs[0]
    # "2" reads as both and is neither exactly: ask.
    resolution = match("2", refs)
    assert resolution.found is None and resolution.ambiguous == []
    assert [ref.name for ref in resolution.suggestions] == ["v2", "v2.0"]


def test_a_unique_prefix_finds_the_milestone_and_a_shared_one_suggests() -> None:
    assert match("sprint", SHOP).found == MilestoneRef("acme/shop", "Sprint 24")
    refs = [*SHOP, MilestoneRef("acme/shop", "Sprint 25")]
    resolution = match("sprint", refs)
    assert resolution.found is None
    assert [ref.name for ref in resolution.suggestions] == ["Sprint 24", "Sprint 25"]


@pytest.mark.parametrize(
    ("typed", "names"), [("v1", ["v10"]), ("v2", ["v2.1", "v3.0"]), ("1", ["v1.5"]), ("2", ["2024.1"])]
)
def test_a_version_never_finds_another_version(typed: str, names: list[str]) -> None:
    assert match(typed, [MilestoneRef("acme/shop", name) for name in names]).found is None


def test_full_width_and_compatibility_characters_read_as_plain_ones() -> None:
    assert match("Ｖ２", SHOP).found == MilestoneRef("acme/shop", "v2.0")


def test_unknown_names_get_close_suggestions_open_first() -> None:
    refs = [*SHOP, MilestoneRef("acme/shop", "v3.0", open=False)]
    resolution = match("v2.3", refs)
    assert resolution.found is None
    assert [ref.name for ref in resolution.suggestions][:2] == ["v2.0", "v2.1"]
    assert match("completely different", refs).suggestions == []


def test_one_name_in_several_repositories_is_ambiguous_unless_only_one_is_open() -> None:
    refs = [MilestoneRef("acme/shop", "v2.0"), MilestoneRef("acme/api", "v2.0")]
    resolution = match("v2", refs)
    assert resolution.found is None
    assert [ref.repository for ref in resolution.ambiguous] == ["acme/api", "acme/shop"]
    refs[1] = MilestoneRef("acme/api", "v2.0", open=False)
    assert match("v2.0", refs).found == refs[0]


async def test_resolve_reads_milestones_of_the_given_repositories(db: str) -> None:
    await services.save_milestone("acme/shop", "v2.0")
    await services.save_milestone("acme/api", "v2.0")
    await services.save_milestone("acme/api", "Sprint 24")
    assert (await resolve_milestone("V2", ["acme/shop"])).found == MilestoneRef("acme/shop", "v2.0")
    assert len((await resolve_milestone("v2", None)).ambiguous) == 2
    assert (await resolve_milestone("sprint", ["acme/shop"])).found is None
    assert (await resolve_milestone("sprint", None)).found == MilestoneRef("acme/api", "Sprint 24")
