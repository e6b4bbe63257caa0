import pytest

from bench.data import SEED
from rag.chunking import Chunker
from tests.test_corpus import parse_text


@pytest.fixture
def seed():
    return parse_text(SEED.read_bytes(), SEED.name)


@pytest.mark.parametrize("size, overlap", [(500, 100), (300, 50), (1000, 200), (120, 0)])
def test_chunk_spans_reproduce_the_original_text(seed, size, overlap):
    chunks = Chunker(size, overlap).split(seed)
    assert chunks
    for c in chunks:
        assert seed.text[c.start : c.end] == c.text
        for s, e in c.sentences:
            assert c.start <= s < e <= c.end


def test_chunks_respect_size_and_sentence_boundaries(seed):
    chunks = Chunker(300, 50).split(seed)
    ends = {e for c in chunks for _, e in c.sentences}
    for c in chunks:
        assert len(c.text) <= 300 or len(c.sentences) == 1
        assert c.end in ends  # never ends inside a sentence


def test_chunks_never_cross_headings_or_include_captions(seed):
    chunks = Chunker(2000, 0, title_prefix=True).split(seed)
    assert not any("Im Video" in c.text for c in chunks)
    assert not any("Russland zahlt hohen Preis" in c.text for c in chunks)
    under = [c for c in chunks if "300.000" in c.text]
    assert under and all(c.heading == "Russland zahlt hohen Preis" for c in under)
    assert "Russland zahlt hohen Preis" in under[0].prefix


def test_title_prefix_is_added_only_to_the_embedded_text(seed):
    with_prefix = Chunker(500, 100, title_prefix=True).split(seed)
    plain = Chunker(500, 100, title_prefix=False).split(seed)
    assert [c.text for c in with_prefix] == [c.text for c in plain]
    later = with_prefix[-1]
    assert later.embed_text.startswith(seed.title) and later.embed_text.endswith(later.text)
    assert all(c.prefix == "" for c in plain)


def test_overlap_repeats_whole_sentences(seed):
    chunks = Chunker(300, 100).split(seed)
    pairs = [(a, b) for a, b in zip(chunks, chunks[1:]) if a.paragraph == b.paragraph]
    assert any(b.start < a.end for a, b in pairs)


def test_single_overlong_sentence_is_split_by_words():
    article = parse_text("date 2023-12 " + " ".join(["Wort"] * 400) + ".")
    chunks = Chunker(200, 20).split(article)
    assert len(chunks) > 1 and all(len(c.text) <= 200 for c in chunks)
    assert all(article.text[c.start : c.end] == c.text for c in chunks)
