"""Property tests of lmstrix.text.split_text: chunks are exact slices, in order, covering
the text, each within the budget, overlapping as asked; plus the edge cases by hand."""

from __future__ import annotations

import re
from typing import Callable, List

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstrix.text import Chunk, split_text
from lmstrix.text._split import estimate_counter

SETTINGS = settings(max_examples=200, deadline=None)

words = st.sampled_from(
    ["a", "to", "the", "model", "context", "window", "tokens", "x" * 23, "ünïcødé", "3.14"]
)
sentence = st.lists(words, min_size=1, max_size=12).map(" ".join).map(lambda s: s + st_end(len(s)))


def st_end(n: int) -> str:
    return [".", "!", "?", ";"][n % 4]


separators = st.sampled_from([" ", "  ", "\n", "\n\n", " \n\n  ", "\t"])
texts = st.lists(st.tuples(sentence, separators), max_size=40).map(
    lambda parts: "".join(s + sep for s, sep in parts)
)
messy = st.text(alphabet=st.sampled_from(list("ab .\n!\t")), max_size=300)


def word_count(text: str) -> int:
    """A tokenizer-like counter: one token per word, one per punctuation run."""
    return len(re.findall(r"\w+|[^\w\s]+", text))


COUNTERS: List[Callable[[str], int]] = [estimate_counter(), estimate_counter(4.0), word_count]


def check(text: str, chunks: List[Chunk], budget: int, overlap: int, count: Callable) -> None:
    if not text:
        assert chunks == []
        return
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text)
    for i, chunk in enumerate(chunks):
        assert chunk.index == i
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.start < chunk.end
        assert count(chunk.text) <= budget
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.start < nxt.start <= prev.end < nxt.end  # in order, no gap, progress
        shared = text[nxt.start : prev.end]
        if overlap == 0:
            assert shared == ""
        else:
            assert count(shared) <= overlap


@SETTINGS
@given(
    text=st.one_of(texts, messy),
    budget=st.integers(min_value=2, max_value=80),
    overlap_share=st.sampled_from([0, 0, 0.1, 0.3, 0.6]),
    which=st.integers(min_value=0, max_value=len(COUNTERS) - 1),
)
def test_chunks_cover_the_text_in_order_within_budget(
    text: str, budget: int, overlap_share: float, which: int
) -> None:
    count = COUNTERS[which]
    overlap = int(budget * overlap_share)
    chunks = split_text(text, max_tokens=budget, overlap_tokens=overlap, count_tokens=count)
    check(text, chunks, budget, overlap, count)


@SETTINGS
@given(text=texts, budget=st.integers(min_value=6, max_value=60))
def test_overlap_is_the_most_whole_words_that_fit(text: str, budget: int) -> None:
    overlap = budget // 3
    count = word_count
    chunks = split_text(text, max_tokens=budget, overlap_tokens=overlap, count_tokens=count)
    check(text, chunks, budget, overlap, count)
    for prev, nxt in zip(chunks, chunks[1:]):
        # One more word back would break the overlap or the budget (or reach prev.start).
        starts = [
            m.end()
            for m in re.finditer(r"\s+", text[: nxt.start])
            if prev.start < m.end() < nxt.start
        ]
        if starts:
            wider = starts[-1]
            assert count(text[wider : prev.end]) > overlap or count(text[wider : nxt.end]) > budget


def test_overlap_repeats_the_end_of_the_previous_chunk() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    count = word_count
    chunks = split_text(text, max_tokens=20, overlap_tokens=5, count_tokens=count)
    check(text, chunks, 20, 5, count)
    for prev, nxt in zip(chunks, chunks[1:]):
        shared = text[nxt.start : prev.end]
        assert count(shared) == 5
        assert prev.text.endswith(shared)


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    paragraphs = [" ".join(f"p{n}w{i}" for i in range(10)) for n in range(6)]
    text = "\n\n".join(paragraphs)
    chunks = split_text(text, max_tokens=25, count_tokens=word_count)
    check(text, chunks, 25, 0, word_count)
    assert [c.text.strip() for c in chunks] == [
        "\n\n".join(paragraphs[i : i + 2]) for i in range(0, 6, 2)
    ]


def test_sentences_before_words() -> None:
    text = "One two three. Four five six. Seven eight nine."
    chunks = split_text(text, max_tokens=4, count_tokens=word_count)
    assert [c.text for c in chunks] == ["One two three. ", "Four five six. ", "Seven eight nine."]


def test_a_word_longer_than_the_budget_is_cut_into_characters() -> None:
    long_word = "x" * 100
    text = f"short {long_word} end"
    chunks = split_text(text, max_tokens=10)  # the estimate: about 3 characters a token
    count = estimate_counter()
    check(text, chunks, 10, 0, count)
    assert len(chunks) >= 4 and chunks[1].text == "x" * 27  # the longest run that fits
    assert "".join(c.text for c in chunks) == text


def test_budget_of_one_token_still_progresses() -> None:
    chunks = split_text("ab cd", max_tokens=1, count_tokens=len)
    assert [c.text for c in chunks] == ["a", "b", " ", "c", "d"]


def test_empty_and_blank_texts() -> None:
    assert split_text("", max_tokens=5) == []
    assert split_text("   \n\n  ", max_tokens=50) == [Chunk("   \n\n  ", 0, 7, 0)]


@pytest.mark.parametrize(
    ("max_tokens", "overlap"),
    [(0, 0), (-3, 0), (10, 10), (10, -1), (True, 0), (10, 1.5), (2.5, 0)],
)
def test_bad_budgets_are_refused(max_tokens: object, overlap: object) -> None:
    with pytest.raises(ValueError, match=r"max_tokens|overlap_tokens"):
        split_text("some text", max_tokens=max_tokens, overlap_tokens=overlap)  # type: ignore[arg-type]


def test_a_budget_no_character_fits_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot hold even one character"):
        split_text("abc", max_tokens=1, count_tokens=lambda s: 2 * len(s))


def test_a_counter_that_is_not_additive_is_still_kept() -> None:
    """A counter charging per chunk (like a template's overhead) never lets one pass."""

    def count(text: str) -> int:
        return word_count(text) + 3

    text = " ".join(f"w{i}." for i in range(200))
    chunks = split_text(text, max_tokens=12, count_tokens=count)
    check(text, chunks, 12, 0, count)


def test_a_counter_that_grows_faster_than_the_text_is_kept() -> None:
    """Pieces that fit by the sum of their counts but not together are backed off."""

    def count(text: str) -> int:
        return word_count(text) ** 2

    text = " ".join("abcdefghij" * 3)
    chunks = split_text(text, max_tokens=16, count_tokens=count)
    check(text, chunks, 16, 0, count)
    assert [len(c.text.split()) for c in chunks] == [4] * 7 + [2]
