"""The simulated tokenizers: the realistic ``"words"`` default and the exact ``"chars"``."""

from __future__ import annotations

import math

import pytest
from _sim_http import Http, chat_body
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstrix.context._probe import build_probe, filler
from lmstrix.testing import FakeLMStudio, SimModel, test_fleet
from lmstrix.testing._tokenizer import count_tokens

_PROSE = st.text(
    alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyzAEIOUST0123456789  \n.,;!?-'\"()é東")),
    max_size=400,
)
_CPT = st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.2, 7.5])


@settings(max_examples=200, deadline=None)
@given(text=st.one_of(_PROSE, st.text(max_size=300)), cut=st.integers(0, 400), cpt=_CPT)
def test_a_prefix_never_counts_more_than_the_whole(text: str, cut: int, cpt: float) -> None:
    for tokenizer in ("words", "chars"):
        whole = count_tokens(text, cpt, tokenizer)
        assert count_tokens(text[:cut], cpt, tokenizer) <= whole
        assert (whole == 0) == (text == "")


@settings(max_examples=200, deadline=None)
@given(left=_PROSE, right=_PROSE, cpt=_CPT)
def test_counts_add_up_to_a_token_or_three_at_the_seam(left: str, right: str, cpt: float) -> None:
    parts = count_tokens(left, cpt) + count_tokens(right, cpt)
    assert abs(count_tokens(left + right, cpt) - parts) <= 3


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), start=st.integers(2_000, 40_000), step=st.integers(1, 4_000))
def test_longer_prose_counts_more(seed: int, start: int, step: int) -> None:
    shorter, longer = filler(start, seed=seed), filler(start + step, seed=seed)
    assert count_tokens(shorter) <= count_tokens(longer)
    # and about in proportion: 4 characters per token, give or take some percent (a
    # 2,000-character text can come out at 4.3: seed 567 did)
    assert 3.6 < len(longer) / count_tokens(longer) < 4.4


@pytest.mark.parametrize("cpt", [2.0, 3.0, 4.0, 5.2])
def test_chars_per_token_keeps_its_meaning_on_prose(cpt: float) -> None:
    for seed in (11, 12, 13):
        text = filler(60_000, seed=seed)
        assert len(text) / count_tokens(text, cpt) == pytest.approx(cpt, rel=0.03)


def test_chars_per_token_out_of_reach_uses_the_nearest_end() -> None:
    text = filler(20_000, seed=31)
    assert len(text) / count_tokens(text, 0.5) == pytest.approx(1.0, rel=0.1)  # a letter each
    assert len(text) / count_tokens(text, 20.0) == pytest.approx(6.0, rel=0.1)  # a word each


def test_different_texts_of_the_same_length_count_differently() -> None:
    counts = [count_tokens(filler(100_000, seed=seed)) for seed in range(10)]
    assert len(set(counts)) >= 8
    spread = (max(counts) - min(counts)) / min(counts)
    assert 0.005 < spread < 0.05  # like a real BPE tokenizer: a percent or two apart
    probes = {count_tokens(build_probe("482913", 40_000, seed=seed)) for seed in range(5)}
    assert len(probes) == 5


def test_words_punctuation_digits_and_newlines() -> None:
    assert count_tokens("What is 2+3?") == 7  # What (and its costly W), " is", 2, +, 3, ?
    assert count_tokens("1234567") == 3  # 123, 456, 7
    assert count_tokens("a\n\n\nb") == 5  # every newline counts
    assert count_tokens("tea") == 1
    assert count_tokens("toy") == 2  # a costly letter ("y") adds a token
    long_word = "x" * 70
    assert count_tokens(long_word) > 5 * count_tokens("river")
    assert count_tokens("") == 0
    assert count_tokens(" ") == 1


def test_chars_tokenizer_is_exact_and_unknown_names_are_refused() -> None:
    model = SimModel("m/chars", 8192, tokenizer="chars", chars_per_token=3.0)
    assert model.tokens("x" * 10) == math.ceil(10 / 3)
    assert SimModel("m/words", 8192).tokenizer == "words"
    with pytest.raises(ValueError, match="tokenizer"):
        SimModel("m/bad", 8192, tokenizer="bpe")
    with pytest.raises(ValueError, match="tokenizer"):
        count_tokens("x", 4.0, "bpe")


@pytest.mark.parametrize("tokenizer", ["words", "chars"])
def test_usage_and_the_working_limit_use_the_models_count(tokenizer: str) -> None:
    model = SimModel("m/probe", 32768, 32768, 3_000, tokenizer=tokenizer)
    text = build_probe("482913", 11_000, seed=5)
    used = model.tokens(text) + model.template_overhead_tokens
    with FakeLMStudio([model]) as fake:
        web = Http(fake)
        fake.preload(model.key, 32768)
        reply = web.post("/v1/chat/completions", chat_body(model.key, text))[1]
        assert reply["usage"]["prompt_tokens"] == used
        assert (reply["choices"][0]["message"]["content"] == "482913") is (used <= 3_000)
        # just below the working limit: right
        short = build_probe("482913", int(len(text) * 2_900 / used), seed=5)
        assert model.tokens(short) + model.template_overhead_tokens <= 3_000
        reply = web.post("/v1/chat/completions", chat_body(model.key, short))[1]
        assert reply["choices"][0]["message"]["content"] == "482913"


def test_the_fleets_keep_their_character() -> None:
    text = filler(30_000, seed=21)
    for model in test_fleet():
        ratio = len(text) / model.tokens(text)
        assert ratio == pytest.approx(model.chars_per_token, rel=0.05), model.key
