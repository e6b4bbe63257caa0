"""The composer on hand-made passages (no model): which sentences are chosen, in what order, cited how."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rag.answer import Composer
from rag.chunking import Chunk
from rag.corpus import Article
from rag.lexical import Analyzer, LexicalIndex
from rag.retrieval import Passage, Query
from rag.sentences import sentence_spans
from rag.settings import Settings

SENTENCES = [
    "Die Brücke wurde 1932 eröffnet.",
    "Sie ist 503 Meter lang.",
    "Er plante sie zehn Jahre lang.",
    "Der Architekt hieß Bradfield.",
    "Im Sommer finden dort Konzerte statt.",
]


def _passage(scores: list[float], article_id: str = "a.txt", text: str | None = None) -> Passage:
    text = text or " ".join(SENTENCES)
    spans = tuple(sentence_spans(text))
    assert len(spans) == len(scores)
    article = Article(article_id, text, "2024-01", "Die Brücke", (), "hash")
    chunk = Chunk(article_id, 0, len(text), text, 1, None, spans)
    vectors = np.eye(len(spans), 8, dtype=np.float32)  # orthogonal: no sentence repeats another
    return Passage(chunk, article, max(scores), max(scores), 1.0, np.array(scores, np.float32), vectors)


def _compose(passages: list[Passage], ranker=None, **settings):
    analyzer = Analyzer()
    lexical = LexicalIndex.build([analyzer(p.chunk.text) for p in passages])
    composer = Composer(replace(Settings(), min_confidence=-math.inf, reader_min_confidence=-math.inf, **settings),
                        analyzer, lexical, ranker)
    # the question's words occur in no sentence, so the scores above decide alone
    query = Query("Wozu dient xyzzy?", np.zeros(8, np.float32), analyzer("xyzzy"))
    if ranker:  # the reader is on: its question vector picks the last dimension, where the scores are put
        query = replace(query, reader_vector=np.eye(8, dtype=np.float32)[7])
        passages = [replace(p, sentence_vectors=p.sentence_vectors + p.sentence_scores[:, None] * np.eye(8)[7])
                    for p in passages]
    return composer.compose(query, passages)


def test_best_sentence_leads_and_weak_ones_are_left_out():
    answer = _compose([_passage([0.90, 0.86, 0.50, 0.88, 0.70])], answer_margin=0.08)
    assert [s.text for s in answer.sentences] == [SENTENCES[0], SENTENCES[3], SENTENCES[1]]


def test_answer_sentences_caps_the_length():
    answer = _compose([_passage([0.90, 0.89, 0.50, 0.88, 0.87])], answer_sentences=2, answer_margin=1.0)
    assert [s.text for s in answer.sentences] == [SENTENCES[0], SENTENCES[1]]


def test_sentence_leaning_on_its_predecessor_brings_it_along():
    answer = _compose([_passage([0.90, 0.50, 0.88, 0.50, 0.50])])
    assert [s.text for s in answer.sentences] == [SENTENCES[0], SENTENCES[1], SENTENCES[2]]


def test_verbatim_repeat_in_another_article_is_shown_once():
    first = _passage([0.90, 0.50, 0.50, 0.50, 0.50], "a.txt")
    copy = _passage([0.89, 0.50, 0.50, 0.50, 0.50], "b.txt")
    answer = _compose([first, copy])
    assert [s.text for s in answer.sentences] == [SENTENCES[0]]
    assert [s.article for s in answer.sources if s.cited] == ["a.txt"]


def test_answer_spans_point_into_the_cited_article():
    passage = _passage([0.90, 0.86, 0.50, 0.88, 0.70])
    answer = _compose([passage])
    assert answer.sentences and not answer.declined
    for s in answer.sentences:
        assert passage.article.text[s.start : s.end] == s.text
        assert answer.sources[s.source - 1].cited


def test_the_ranker_reorders_the_readers_best_candidates_and_the_answer_comes_from_them():
    asked = []

    def ranker(question, texts, spans):
        asked.append([texts[i][s:e] for i, s, e in spans])
        return np.array([1.0 if t == SENTENCES[1] else 0.0 for t in asked[-1]], np.float32)

    # reader order: 0, 3, 1, 4, 2; the ranker sees the best three and prefers sentence 1
    answer = _compose([_passage([0.90, 0.86, 0.50, 0.88, 0.70])], ranker, rank_depth=3, ranker_weight=0.5)
    assert asked == [[SENTENCES[0], SENTENCES[3], SENTENCES[1]]]  # verbatim sentences, reader order
    assert answer.sentences[0].text == SENTENCES[1]
    assert {s.text for s in answer.sentences} <= {SENTENCES[0], SENTENCES[1], SENTENCES[3]}


def test_without_the_reader_the_ranker_is_not_asked():
    def ranker(*_):
        raise AssertionError("the ranker runs only with the reader")

    analyzer = Analyzer()
    passages = [_passage([0.90, 0.86, 0.50, 0.88, 0.70])]
    composer = Composer(replace(Settings(), min_confidence=-math.inf), analyzer,
                        LexicalIndex.build([analyzer(p.chunk.text) for p in passages]), ranker)
    answer = composer.compose(Query("Wozu dient xyzzy?", np.zeros(8, np.float32), analyzer("xyzzy")), passages)
    assert answer.sentences[0].text == SENTENCES[0]


def test_a_context_chunk_is_cited_only_when_it_answers():
    retrieved = _passage([0.70, 0.50, 0.50, 0.50, 0.50], "a.txt")
    other = "Der Pfeiler steht im Fluss. Die Farbe ist grau."
    article = Article("b.txt", other, "2024-01", "Pfeiler", (), "hash")
    spans = tuple(sentence_spans(other))
    chunk = Chunk("b.txt", 0, len(other), other, 2, None, spans)

    def context(scores: list[float]) -> Passage:
        return Passage(chunk, article, 0.70, 0.70, 0.0, np.array(scores, np.float32), np.eye(2, 8, 5, dtype=np.float32))

    analyzer = Analyzer()
    composer = Composer(replace(Settings(), min_confidence=-math.inf), analyzer,
                        LexicalIndex.build([analyzer(retrieved.chunk.text)]))
    query = Query("Wozu dient xyzzy?", np.zeros(8, np.float32), analyzer("xyzzy"))

    answer = composer.compose(query, [retrieved], [context([0.95, 0.10])])
    assert answer.sentences[0].text == "Der Pfeiler steht im Fluss."
    cited = answer.sources[answer.sentences[0].source - 1]
    assert cited.article == "b.txt" and cited.cited and cited.paragraph == 2
    # confidence comes from the retrieved passages alone, so context never turns a decline into an answer
    assert answer.confidence == composer.compose(query, [retrieved]).confidence

    unused = composer.compose(query, [retrieved], [context([0.10, 0.10])])
    assert [s.article for s in unused.sources] == ["a.txt"]
