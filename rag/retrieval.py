"""Find the passages that answer a question: dense + BM25, fused, then re-scored by sentences.

Dense search (e5) finds paraphrases, BM25 finds exact names and numbers;
reciprocal rank fusion merges the two lists without comparing their scales.
The fused top passages are then re-scored with their best single sentence,
because a passage that contains one sentence squarely answering the question
beats one that is vaguely about the topic throughout.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import faiss
import numpy as np

from .chunking import Chunk
from .corpus import Article, valid_date
from .embedding import Embedder
from .lexical import Analyzer
from .settings import RETRIEVAL_MODES, Settings
from .store import Store

@dataclass(frozen=True)
class Filters:
    """Restrict a search to a date range (inclusive; YYYY, YYYY-MM or YYYY-MM-DD) and/or to files."""

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()  # article ids relative to the seeds folder, glob patterns allowed

    def __post_init__(self) -> None:
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value is not None and not valid_date(value):
                raise ValueError(f"{name.replace('_', ' ')} must be a real date like 2023, 2023-12 or 2023-12-05, "
                                 f"not {value!r}")
        if self.date_from and self.date_to and _period(self.date_from)[0] > _period(self.date_to)[1]:
            raise ValueError(f"the date range is empty: {self.date_from} is after {self.date_to}")

    @property
    def active(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources)

    def allows(self, article: Article) -> bool:
        """Undated articles never match a date filter: we cannot vouch for their date."""
        if self.sources and not any(fnmatch.fnmatchcase(article.id, p) or article.id == p for p in self.sources):
            return False
        if self.date_from or self.date_to:
            if article.date is None:
                return False
            first, last = _period(article.date)
            if self.date_from and last < _period(self.date_from)[0]:
                return False
            if self.date_to and first > _period(self.date_to)[1]:
                return False
        return True


def _period(date: str) -> tuple[str, str]:
    """First and last day of a (partial) date, as comparable strings."""
    parts = date.split("-")
    first = "-".join(parts + ["01"] * (3 - len(parts)))
    last = "-".join(parts + ["12", "31"][len(parts) - 1 :]) if len(parts) < 3 else date
    return first, last


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with the scores that ranked it and its sentences' similarity to the question."""

    chunk: Chunk
    article: Article
    score: float  # the ranking score of the retrieval mode
    dense: float  # cosine of question and passage
    lexical: float  # BM25 score divided by the best BM25 score for this question
    sentence_scores: np.ndarray  # cosine of question and each of chunk.sentences
    sentence_vectors: np.ndarray  # one vector per chunk sentence, for the answer composer


@dataclass(frozen=True)
class Query:
    """A question prepared once for all stages: its vector and analyzed words."""

    text: str
    vector: np.ndarray  # for passage search
    tokens: list[str]
    reader_vector: np.ndarray | None = None  # for scoring answer sentences, when the trained reader is on


class Retriever:
    """Search one loaded `Store` with one embedder; see the module docstring for the method."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings, analyzer: Analyzer | None = None) -> None:
        if settings.retrieval not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval must be one of {', '.join(RETRIEVAL_MODES)}")
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.analyzer = analyzer or Analyzer()
        self._vectors = store.vectors()
        article_ids = list(store.articles)
        position = {a: i for i, a in enumerate(article_ids)}
        self._articles = [store.articles[a] for a in article_ids]
        self._chunk_article = np.array([position[c.article_id] for c in store.chunks], dtype=np.int64)
        self._article_chunks: dict[str, list[int]] = {}
        for i, c in enumerate(store.chunks):
            self._article_chunks.setdefault(c.article_id, []).append(i)

    def query(self, question: str) -> Query:
        vectors, reader_vectors = self.embedder.encode_questions([question], reader=self.settings.reader)
        return Query(question, vectors[0], self.analyzer(question),
                     reader_vectors[0] if reader_vectors is not None else None)

    def retrieve(self, query: Query, k: int | None = None, filters: Filters | None = None) -> list[Passage]:
        """The top `k` passages for `query`, best first, restricted by `filters`."""
        k = k or self.settings.sources
        n = len(self.store.chunks)
        mask = self._mask(filters)
        if n == 0 or (mask is not None and not mask.any()):
            return []
        depth = min(self.settings.candidates, n)
        lexical = self.store.lexical.scores(query.tokens)
        if mask is not None:
            lexical = np.where(mask, lexical, 0.0)
        best_lexical = float(lexical.max()) if len(lexical) else 0.0
        lexical_norm = lexical / best_lexical if best_lexical > 0 else lexical

        mode = self.settings.retrieval
        dense_ids = self._dense_search(query.vector, depth, mask) if mode != "bm25" else []
        bm25_ids = _top(lexical, depth) if mode != "dense" else []
        if mode == "dense":
            ranked = dense_ids
        elif mode == "bm25":
            ranked = bm25_ids
        else:
            ranked = _rrf([dense_ids, bm25_ids], self.settings.rrf_k)

        passages = []
        limit = self.settings.rerank_depth if mode == "hybrid" else k
        for rank, i in enumerate(ranked[: max(limit, k)]):
            dense = float(self._vectors[i] @ query.vector)
            sentence_vectors = self.store.chunk_sentence_vectors(i)
            sentences = sentence_vectors @ query.vector
            if mode == "hybrid":
                score = (self.settings.weight_passage * dense
                         + self.settings.weight_sentence * (float(sentences.max()) if len(sentences) else dense)
                         + self.settings.weight_lexical * float(lexical_norm[i]))
            elif mode == "dense":
                score = dense
            elif mode == "bm25":
                score = float(lexical[i])
            else:
                score = 1.0 / (rank + 1)
            passages.append(Passage(self.store.chunks[i], self._articles[self._chunk_article[i]], score, dense,
                                    float(lexical_norm[i]), sentences, sentence_vectors))
        passages.sort(key=lambda p: -p.score)
        return passages[:k]

    def context(self, query: Query, passages: list[Passage], articles: int | None = None) -> list[Passage]:
        """The other chunks of the first `articles` (`context_articles`) articles among `passages` (best first).

        The answer often sits a paragraph away from the passage that matched best (news QA dev: the
        gold article was retrieved but not the chunk holding the answer for 4.7 % of questions), so the
        composer may take sentences from anywhere in the best articles. Each chunk gets its
        article's best passage score: it is judged by its sentences, not by how well it matched alone.
        """
        n = self.settings.context_articles if articles is None else articles
        best: dict[str, float] = {}
        for p in passages:  # best first, so an article's first passage carries its best score
            if len(best) < n:
                best.setdefault(p.article.id, p.score)
        shown = {(p.article.id, p.chunk.start) for p in passages}
        out = []
        for article_id, score in best.items():
            for i in self._article_chunks.get(article_id, ()):
                chunk = self.store.chunks[i]
                if (article_id, chunk.start) in shown:
                    continue
                sentence_vectors = self.store.chunk_sentence_vectors(i)
                dense = float(self._vectors[i] @ query.vector)  # lexical 0: not matched by BM25, only brought along
                out.append(Passage(chunk, self.store.articles[article_id], score, dense, 0.0,
                                   sentence_vectors @ query.vector, sentence_vectors))
        return out

    def _mask(self, filters: Filters | None) -> np.ndarray | None:
        if filters is None or not filters.active:
            return None
        allowed = np.array([filters.allows(a) for a in self._articles], dtype=bool)
        return allowed[self._chunk_article]

    def _dense_search(self, vector: np.ndarray, depth: int, mask: np.ndarray | None) -> list[int]:
        params = None
        if mask is not None:
            depth = min(depth, int(mask.sum()))
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.flatnonzero(mask).astype(np.int64)))
        _, ids = self.store.dense.search(vector[None, :].astype(np.float32), depth, params=params)
        return [int(i) for i in ids[0] if i >= 0]


def _top(scores: np.ndarray, depth: int) -> list[int]:
    """Indices of the `depth` best positive scores, best first."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > depth:
        positive = positive[np.argpartition(-scores[positive], depth - 1)[:depth]]
    return [int(i) for i in positive[np.argsort(-scores[positive], kind="stable")]]


def _rrf(rankings: list[list[int]], k: int) -> list[int]:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the lists each item appears in."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused, key=lambda i: -fused[i])
