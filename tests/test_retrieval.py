"""The retriever: filters, fusion, and each retrieval mode finding the right passage."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rag.corpus import Article
from rag.engine import Engine
from rag.retrieval import Filters, _rrf, _top


def _article(article_id: str, date: str | None) -> Article:
    return Article(id=article_id, text="", date=date, title="", paragraphs=(), content_hash="")


@pytest.mark.parametrize("filters, date, allowed", [
    (Filters("2023"), "2023-12", True),
    (Filters("2024"), "2023-12", False),
    (Filters(None, "2023-12-05"), "2023-12", True),  # a month overlapping the range is kept
    (Filters("2023-12-05"), "2023-12", True),
    (Filters(None, "2023-11"), "2023-12-01", False),
    (Filters("2023-01-01", "2023-12-31"), "2023-06-30", True),
    (Filters("2023"), None, False),  # undated articles never pass a date filter
    (Filters(), None, True),
])
def test_date_filter(filters, date, allowed):
    assert filters.allows(_article("a.txt", date)) is allowed


def test_source_filter_matches_names_and_globs():
    f = Filters(sources=("dpa/*.txt", "000_seed.txt"))
    assert f.allows(_article("dpa/eins.txt", None))
    assert f.allows(_article("000_seed.txt", None))
    assert not f.allows(_article("afp/eins.txt", None))


@pytest.mark.parametrize("value", ["12/2023", "Dezember", "2023-1", "2023-12-5x", "2023-13", "2024-02-30", "0000"])
def test_malformed_and_impossible_dates_are_rejected(value):
    with pytest.raises(ValueError, match="real date"):
        Filters(date_from=value)


def test_a_range_that_ends_before_it_starts_is_rejected():
    with pytest.raises(ValueError, match="2025 is after 2020"):
        Filters("2025", "2020")
    assert Filters("2024-02", "2024-02-29").active  # the same month is a valid range


def test_rrf_rewards_agreement():
    assert _rrf([[1, 2, 3], [3, 1, 4]], k=60)[:2] == [1, 3]
    assert _rrf([[], [7]], k=60) == [7]


def test_top_skips_zero_scores_and_orders_best_first():
    assert _top(np.array([0.0, 2.0, 0.5, 3.0, 0.0]), 10) == [3, 1, 2]
    assert _top(np.array([0.0, 2.0, 0.5, 3.0]), 2) == [3, 1]


@pytest.mark.parametrize("mode", ["hybrid", "rrf", "dense", "bm25"])
def test_each_mode_ranks_the_answering_passage_first(engine, mode):
    e = Engine(replace(engine.settings, retrieval=mode), engine.embedder)
    passages = e.search("Wie viele russische Soldaten wurden getötet oder verwundet?", k=3)
    assert "300.000 Soldaten" in passages[0].chunk.text
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_passages_carry_scores_for_every_sentence(engine):
    [p] = engine.search("Was sagte Stoltenberg zum NATO-Beitritt?", k=1)
    assert len(p.sentence_scores) == len(p.chunk.sentences)
    assert -1.0 <= p.dense <= 1.0 and 0.0 <= p.lexical <= 1.0
    assert p.article.text[p.chunk.start : p.chunk.end] == p.chunk.text


def test_filters_restrict_both_searches(engine):
    passages = engine.search("Stoltenberg NATO", k=5, filters=Filters(sources=("100_strompreise.txt",)))
    assert passages and {p.article.id for p in passages} == {"100_strompreise.txt"}


def test_context_is_the_rest_of_the_best_articles(engine):
    retriever, _ = engine.components()
    query = retriever.query("Wie viele russische Soldaten wurden getötet oder verwundet?")
    [best] = retriever.retrieve(query, k=1)
    context = retriever.context(query, [best], articles=1)
    chunks = [c for c in retriever.store.chunks if c.article_id == best.article.id]
    assert len(context) == len(chunks) - 1 > 0
    assert {p.article.id for p in context} == {best.article.id}
    assert best.chunk.start not in {p.chunk.start for p in context}
    assert all(p.score == best.score and len(p.sentence_scores) == len(p.chunk.sentences) for p in context)
    assert retriever.context(query, [best], articles=0) == []
