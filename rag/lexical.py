"""German lexical matching: one analyzer for BM25 passage search and sentence overlap.

Dense vectors miss exact names and numbers ("Stoltenberg", "300.000") that
journalists ask about; BM25 over Snowball-stemmed words with German stopwords
catches them. The same analyzer feeds the answer composer, so "what matched"
means the same thing at both stages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_GERMAN

_WORD = re.compile(r"\w\w+|\d")
# Question words and verbs of saying carry no topic; they would reward any quote.
_QUESTION_WORDS = frozenset(
    "was wer wen wem wessen wie wo wann warum wieso weshalb welche welcher welches welchen welchem woher "
    "wohin wozu womit wodurch wofür worüber viele viel gibt gab sagte sagt sagten äußerte äußert "
    "meinte meint erklärte erklärt laut zum zur".split()
)


class Analyzer:
    """Lower-case, split into words, drop stopwords, Snowball-stem (cached per word)."""

    def __init__(self, extra_stopwords: Iterable[str] = _QUESTION_WORDS) -> None:
        self._stemmer = Stemmer.Stemmer("german")
        self._stopwords = frozenset(STOPWORDS_GERMAN) | frozenset(extra_stopwords)
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        out = []
        cache = self._cache
        for word in _WORD.findall(text.lower()):
            if word in self._stopwords:
                continue
            stem = cache.get(word)
            if stem is None:
                stem = cache[word] = self._stemmer.stemWord(word)
            out.append(stem)
        return out


class LexicalIndex:
    """BM25 (bm25s, Lucene variant) over analyzed passages, persisted next to the vectors."""

    def __init__(self, bm25: bm25s.BM25, size: int) -> None:
        self._bm25 = bm25
        self.size = size

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> "LexicalIndex":
        bm25 = bm25s.BM25()
        # an empty token keeps bm25s happy for passages with no words left after stopwords
        bm25.index([list(doc) or [""] for doc in documents] or [[""]], show_progress=False)
        return cls(bm25, len(documents))

    def scores(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every passage for the analyzed query `tokens`."""
        known = [t for t in tokens if t in self._bm25.vocab_dict and t]
        if not known or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)[: self.size]

    def idf(self, tokens: Sequence[str]) -> np.ndarray:
        """BM25 inverse document frequency per token; a token absent from the corpus gets the maximum."""
        indptr = self._bm25.scores["indptr"]
        vocab = self._bm25.vocab_dict
        df = np.array([indptr[vocab[t] + 1] - indptr[vocab[t]] if t in vocab else 0 for t in tokens], np.float64)
        return np.log1p((self.size - df + 0.5) / (df + 0.5)).astype(np.float32)

    def save(self, folder: Path) -> None:
        self._bm25.save(str(folder))

    @classmethod
    def load(cls, folder: Path, size: int) -> "LexicalIndex":
        return cls(bm25s.BM25.load(str(folder), mmap=False), size)
