"""The needle probe: format, sizes, prefix stability, parsing and answer checking."""

from __future__ import annotations

import random
import re

import pytest

from lmstrix.context import _probe
from lmstrix.context._probe import (
    QUESTION,
    answer_is_correct,
    build_probe,
    filler,
    header,
    make_secret,
    min_probe_chars,
    parse_probe,
)


def test_make_secret_is_six_digits_without_leading_zero() -> None:
    rng = random.Random(7)
    secrets = [make_secret(rng) for _ in range(500)]
    assert all(re.fullmatch(r"[1-9][0-9]{5}", s) for s in secrets)
    assert len(set(secrets)) > 400
    assert make_secret(random.Random(3)) == make_secret(random.Random(3))


def test_probe_layout() -> None:
    text = build_probe("482913", 5000, seed=1)
    lines = text.split("\n")
    assert lines[0] == "The secret number is 482913."
    assert lines[0] == header("482913")
    assert lines[-1] == QUESTION
    assert len(lines) == 3
    assert not re.search(r"[0-9]", lines[1])
    assert lines[1][0].isupper()


@pytest.mark.parametrize("target", [0, 10, 83, 84, 100, 120, 1000, 4096, 65536, 300_001])
def test_probe_size(target: int) -> None:
    text = build_probe("123456", target, seed=2)
    smallest = min_probe_chars()
    if target <= smallest:
        assert text == f"{header('123456')}\n{QUESTION}"
        assert len(text) == smallest
    else:
        assert target - 1 <= len(text) <= target  # exact, or one short of a trailing space


def test_every_size_in_a_range_is_close() -> None:
    for target in range(80, 400):
        text = build_probe("654321", target, seed=9)
        assert len(text) <= max(target, min_probe_chars())
        assert len(text) >= min(target - 1, min_probe_chars())


def test_prefix_stability() -> None:
    secret = "777123"
    sizes = [300, 1000, 1001, 5000, 40_000, 250_000]
    texts = [build_probe(secret, n, seed=5) for n in sizes]
    for short, long in zip(texts, texts[1:]):
        body = short[: -len(QUESTION) - 1]
        assert long.startswith(body)
    # growing the same stream later does not change what was already handed out
    again = build_probe(secret, 1000, seed=5)
    assert again == texts[1]


def test_seeds_give_different_deterministic_fillers() -> None:
    a = build_probe("111111", 3000, seed=1)
    b = build_probe("111111", 3000, seed=2)
    assert a != b
    assert a == build_probe("111111", 3000, seed=1)


def test_filler_properties() -> None:
    assert filler(0) == ""
    assert filler(-5) == ""
    assert len(filler(2, seed=4)) == 2  # the cut may fall inside the first word
    for n in (1, 50, 51, 52, 53, 999, 12_345):
        text = filler(n, seed=4)
        assert n - 1 <= len(text) <= n
        assert not text.endswith(" ")
        assert not re.search(r"[0-9]", text)
        assert filler(n + 500, seed=4).startswith(text)


def test_many_seeds_and_big_probes() -> None:
    # more seeds than the cache keeps: evicted streams are rebuilt identically
    first = build_probe("222222", 2000, seed=100)
    for seed in range(101, 101 + 20):
        build_probe("222222", 200_000, seed=seed)
    assert build_probe("222222", 2000, seed=100) == first
    big = build_probe("333333", 2_000_000, seed=100)
    assert len(big) > 1_999_980
    assert not re.search(r"[0-9]", big[len(header("333333")) : -len(QUESTION)])


def test_bad_secret_rejected() -> None:
    with pytest.raises(ValueError, match="six digits"):
        build_probe("12345", 1000)
    with pytest.raises(ValueError, match="six digits"):
        build_probe("abcdef", 1000)


def test_parse_probe() -> None:
    assert parse_probe(build_probe("482913", 2000, seed=3)) == "482913"
    assert parse_probe(f"{header('100000')}\n{QUESTION}") == "100000"
    assert parse_probe("The secret number is 482913.  \nmore") == "482913"
    assert parse_probe("What is 2+3?") is None
    assert parse_probe("The secret number is 12345.\nx") is None
    assert parse_probe("Preface\nThe secret number is 482913.") is None
    assert parse_probe("") is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("482913", True),
        ("The secret number is 482913.", True),
        (" 482913\n", True),
        ("482 913", True),
        ("482,913", True),
        ("4829130", False),
        ("123456", False),
        ("48291", False),
        ("", False),
        ("I don't know.", False),
    ],
)
def test_answer_is_correct(reply: str, expected: bool) -> None:
    assert answer_is_correct(reply, "482913") is expected


def test_module_exports() -> None:
    assert set(_probe.__all__) <= set(dir(_probe))


def test_a_short_count_is_a_cut_only_near_the_loaded_context() -> None:
    from lmstrix.context._probe import was_cut

    # A truncating server cuts to its context: the count lands near it.
    assert was_cut(20_000, 24_000, 20_000)
    # Far below the context, a short count is the calibration's error, not a cut.
    assert not was_cut(999, 1_060, 40_960)
    assert not was_cut(1_020, 1_060, 40_960)
    # Without a known context only a large shortfall counts.
    assert was_cut(800, 1_000, None)
    assert not was_cut(930, 1_000, None)
