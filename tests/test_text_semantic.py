"""lmstrix.text.semantic_split against the simulator's embedding model: a text of two
topics is cut at the topic change; the budget is still kept; the maths by hand."""

from __future__ import annotations

import random
from typing import List

import pytest

from lmstrix import Client
from lmstrix.testing import FakeLMStudio
from lmstrix.text import semantic_split
from lmstrix.text._semantic import BATCH, cosine_distance, percentile, sentences

EMBED = "lmstrix-demo/nomic-embed-text"
COOKING = [
    "pasta",
    "sauce",
    "tomato",
    "garlic",
    "basil",
    "oven",
    "simmer",
    "olive",
    "salt",
    "pepper",
    "dough",
    "flour",
]
STARS = [
    "telescope",
    "galaxy",
    "orbit",
    "planet",
    "comet",
    "nebula",
    "stars",
    "light",
    "years",
    "moon",
    "solar",
]


def topic_sentences(words: List[str], count: int, rng: random.Random) -> List[str]:
    return [" ".join(rng.choice(words) for _ in range(10)).capitalize() + "." for _ in range(count)]


def two_topics(seed: int, first: int = 12, second: int = 9) -> str:
    rng = random.Random(seed)
    return " ".join(topic_sentences(COOKING, first, rng) + topic_sentences(STARS, second, rng))


@pytest.fixture
def client(fake: FakeLMStudio) -> Client:
    return Client(fake.base_url)


@pytest.mark.parametrize("seed", range(20))
def test_a_two_topic_text_is_cut_at_the_topic_change(client: Client, seed: int) -> None:
    text = two_topics(seed)
    boundary = sentences(text)[12][0]  # where the first star sentence starts
    chunks = semantic_split(text, embed=lambda xs: client.embed(EMBED, xs), max_tokens=10_000)
    assert [c.end for c in chunks[:-1]] == [boundary]
    assert chunks[0].text + chunks[1].text == text
    assert not any(w in chunks[0].text.lower() for w in STARS)
    assert not any(w in chunks[1].text.lower() for w in COOKING)


def test_groups_over_the_budget_are_cut_further(client: Client) -> None:
    text = two_topics(1, first=20, second=20)
    boundary = sentences(text)[20][0]
    calls: List[int] = []

    def embed(xs: List[str]) -> List[List[float]]:
        calls.append(len(xs))
        return client.embed(EMBED, xs)

    chunks = semantic_split(text, embed=embed, max_tokens=60, count_tokens=lambda s: len(s.split()))
    assert boundary in [c.start for c in chunks]
    assert all(len(c.text.split()) <= 60 for c in chunks)
    assert "".join(c.text for c in chunks) == text
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.text == text[c.start : c.end] for c in chunks)
    assert calls == [40]  # one batch: 40 sentences


def test_embeddings_are_sent_in_batches() -> None:
    text = " ".join(f"Sentence number {i} here." for i in range(BATCH * 2 + 5))
    sizes: List[int] = []

    def embed(xs: List[str]) -> List[List[float]]:
        sizes.append(len(xs))
        return [[1.0, float(len(x) % 3)] for x in xs]

    chunks = semantic_split(text, embed=embed, max_tokens=100_000, threshold=2.0)
    assert sizes == [BATCH, BATCH, 5]
    assert [c.text for c in chunks] == [text]  # nothing passes a threshold of 2


def test_an_explicit_threshold_cuts_wherever_it_is_passed() -> None:
    text = "Alpha one. Beta two. Alpha three."
    vectors = {"Alpha one.": [1.0, 0.0], "Beta two.": [0.0, 1.0], "Alpha three.": [1.0, 0.1]}
    chunks = semantic_split(
        text, embed=lambda xs: [vectors[x] for x in xs], max_tokens=1000, threshold=0.5
    )
    assert [c.text for c in chunks] == ["Alpha one. ", "Beta two. ", "Alpha three."]


def test_one_sentence_or_none() -> None:
    def never(xs: List[str]) -> List[List[float]]:
        raise AssertionError("nothing to compare")

    assert semantic_split("", embed=never, max_tokens=10) == []
    assert [c.text for c in semantic_split("Just one.", embed=never, max_tokens=10)] == [
        "Just one."
    ]


def test_a_wrong_number_of_vectors_is_an_error() -> None:
    with pytest.raises(ValueError, match="returned 1 vectors for 2 texts"):
        semantic_split("One. Two.", embed=lambda xs: [[1.0]], max_tokens=10)


def test_cosine_distance_and_percentile() -> None:
    assert cosine_distance([1, 0], [1, 0]) == 0.0
    assert cosine_distance([1, 0], [0, 1]) == 1.0
    assert cosine_distance([1, 0], [-1, 0]) == 2.0
    assert cosine_distance([0, 0], [1, 0]) == 1.0
    with pytest.raises(ValueError, match="different lengths"):
        cosine_distance([1.0], [1.0, 2.0])
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert percentile([4.0], 95) == 4.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_the_simulator_embeds_by_words(client: Client) -> None:
    same, near, far = client.embed(
        EMBED, ["pasta with garlic", "garlic pasta sauce", "comets orbit far stars"]
    )
    assert client.embed(EMBED, "pasta with garlic") == [same]
    assert len(same) == 256
    assert cosine_distance(same, near) < cosine_distance(same, far)
    assert abs(sum(v * v for v in client.embed(EMBED, "...")[0]) - 1.0) < 1e-4
