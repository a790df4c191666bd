"""The words every renderer shares: one spelling of counts, days, percentages and cuts."""

from core.wording import clip, clip_bytes, days_left, first_line, listed, one_line, percent, plural, short_sha


def test_counts_take_a_plural_and_thousands_separators() -> None:
    assert plural(1, "test") == "1 test"
    assert plural(0, "test") == "0 tests"
    assert plural(1200, "defect") == "1,200 defects"
    assert plural(2, "person", "people") == "2 people"


def test_percentages_drop_a_zero_decimal_and_say_when_unknown() -> None:
    assert percent(0.95) == "95%"
    assert percent(2 / 3) == "66.7%"
    assert percent(1.0) == "100%"
    assert percent(None) == "n/a"


def test_days_left_says_ahead_today_or_behind() -> None:
    assert days_left(7) == "7 days left"
    assert days_left(1) == "1 day left"
    assert days_left(0) == "due today"
    assert days_left(-3) == "3 days ago"


def test_clip_keeps_the_limit_with_its_ellipsis() -> None:
    assert clip("short", 10) == "short"
    assert clip("a" * 20, 10) == "a" * 9 + "…"
    assert len(clip("a" * 20, 10)) == 10


def test_lists_show_the_first_names_then_count_the_rest() -> None:
    assert listed(["a", "b"], 3) == "a, b"
    assert listed([str(n) for n in range(1005)], 2) == "0, 1 and 1,003 more"


def test_lines_and_commits() -> None:
    assert one_line("a\n  b\tc ") == "a b c"
    assert first_line("\n  boom\nat line 3") == "boom"
    assert first_line(None) == ""
    assert short_sha("0123456789abcdef") == "0123456"


def test_clip_bytes_cuts_between_characters_within_the_byte_limit() -> None:
    assert clip_bytes("abc", 3) == "abc"
    assert clip_bytes("ééé", 6) == "ééé"
    clipped = clip_bytes("ééé", 5)  # the ellipsis takes 3 bytes: one é fits, no half of another
    assert clipped == "é…" and len(clipped.encode()) == 5
    assert clip_bytes("€" * 100, 64) == "€" * 20 + "…"
