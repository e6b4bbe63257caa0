"""German BM25: the analyzer and the persisted index."""

from __future__ import annotations

import numpy as np

from rag.lexical import Analyzer, LexicalIndex


def test_analyzer_stems_and_drops_stopwords_and_question_words():
    tokens = Analyzer()("Was sagte Stoltenberg zum NATO-Beitritt der Ukraine?")
    assert tokens == ["stoltenberg", "nato", "beitritt", "ukrain"]


def test_inflected_forms_share_a_stem():
    a = Analyzer()
    assert a("Soldaten")[0] == a("Soldat")[0]
    assert a("Beitritts")[0] == a("Beitritt")[0]


def test_numbers_survive_analysis():
    assert "300" in Analyzer()("300.000 Soldaten")


def test_bm25_ranks_matching_passage_first_and_round_trips(tmp_path):
    a = Analyzer()
    docs = ["Die Strompreise sind gesunken.", "Stoltenberg sprach über den NATO-Beitritt.", "Wetter: Regen in Wien."]
    index = LexicalIndex.build([a(d) for d in docs])
    scores = index.scores(a("NATO-Beitritt Stoltenberg"))
    assert int(np.argmax(scores)) == 1 and scores[0] == scores[2] == 0
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(docs))
    np.testing.assert_allclose(loaded.scores(a("NATO-Beitritt Stoltenberg")), scores)


def test_unknown_words_score_zero_and_rare_words_weigh_more():
    a = Analyzer()
    index = LexicalIndex.build([a("Regen in Wien"), a("Regen in Graz"), a("Sonne in Wien")])
    assert not index.scores(a("Schuldenbremse")).any()
    idf = index.idf(a("Graz Regen"))
    assert idf[0] > idf[1]


def test_passages_without_words_are_indexed():
    index = LexicalIndex.build([[], Analyzer()("Regen in Wien")])
    assert index.size == 2 and index.scores(["regen"])[0] == 0
