"""The one object the CLI, the UI and scripts use: build the index and `ask()` questions."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import indexing, store
from .answer import Answer, Composer
from .embedding import Embedder, describe
from .lexical import Analyzer
from .corpus import Article
from .retrieval import Filters, Passage, Retriever
from .settings import Settings


class QuestionError(ValueError):
    """The question cannot be asked (e.g. it is empty); the message says why, in German."""


class IndexUnavailable(Exception):
    """No usable index: `message` explains, `command` is what fixes it."""

    def __init__(self, message: str, command: str | None) -> None:
        super().__init__(f"{message} Run `{command}` to build it." if command else message)
        self.reason = message
        self.command = command


@dataclass(frozen=True)
class Status:
    """What is indexed, for the status line."""

    articles: int
    chunks: int
    created: str
    model: str


class Engine:
    """Owns the model and the loaded index; reloads the index when a build replaced it."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        self.settings = settings or Settings()
        self.embedder = embedder or Embedder.for_settings(self.settings)
        self.analyzer = Analyzer()
        self._loaded: tuple[Path, Retriever, Composer] | None = None
        self._lock = threading.Lock()  # the UI asks from several threads; load the index once

    def build(self, rebuild: bool = False, progress: bool = False, allow_removal: bool = False) -> indexing.BuildReport:
        report = indexing.build(self.settings, self.embedder, rebuild=rebuild, progress=progress,
                                allow_removal=allow_removal)
        if report.written:
            self._loaded = None
        return report

    def status(self) -> Status:
        retriever, _ = self.components()
        m = retriever.store.manifest
        reader = self.embedder.reader_fingerprint if self.settings.reader else None
        model = describe(m.model) + f" on {self.embedder.runtime}" + (f" + answer reader ({reader})" if reader else "")
        return Status(m.counts.get("articles", 0), m.counts.get("chunks", 0), m.created, model)

    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        date_from: str | None = None,
        date_to: str | None = None,
        sources: tuple[str, ...] | list[str] = (),
    ) -> Answer:
        """Answer `question` from the indexed articles, citing every sentence.

        Raises `QuestionError` for an empty question, `ValueError` for malformed
        filters or `k`, and `IndexUnavailable` when there is no usable index.
        """
        started = time.perf_counter()
        question = " ".join((question or "").split())
        if not question:
            raise QuestionError("Bitte stellen Sie eine Frage.")
        notices = []
        limit = self.settings.max_question_chars
        if len(question) > limit:
            notices.append(
                f"Die Frage war {len(question):,} Zeichen lang; verwendet wurden die ersten {limit:,}.".replace(",", ".")
            )
            question = question[:limit]
        if k is not None and not 1 <= k <= self.settings.max_sources:
            raise ValueError(f"the number of sources must be between 1 and {self.settings.max_sources}, not {k}")
        filters = Filters(date_from or None, date_to or None, tuple(sources))
        retriever, composer = self.components()
        loaded = time.perf_counter()
        query = retriever.query(question)
        embedded = time.perf_counter()
        passages = retriever.retrieve(query, k=k or self.settings.sources, filters=filters)
        retrieved = time.perf_counter()
        answer = composer.compose(query, passages, retriever.context(query, passages))
        if filters.active and not passages:
            notices.append("Kein Artikel passt zu den gewählten Filtern.")
        done = time.perf_counter()
        timings = {
            "load": (loaded - started) * 1000,
            "embed": (embedded - loaded) * 1000,
            "retrieve": (retrieved - embedded) * 1000,
            "compose": (done - retrieved) * 1000,
            "total": (done - started) * 1000,
        }
        return Answer(answer.question, answer.declined, answer.sentences, answer.sources, answer.confidence,
                      answer.message, tuple(notices), timings)

    def search(self, question: str, k: int | None = None, filters: Filters | None = None) -> list[Passage]:
        """The ranked passages alone, without composing an answer (for evaluation and scripts)."""
        retriever, _ = self.components()
        return retriever.retrieve(retriever.query(question), k=k, filters=filters)

    def article(self, article_id: str) -> Article:
        """A whole indexed article, so a reader can see a cited passage in its context."""
        retriever, _ = self.components()
        return retriever.store.articles[article_id]

    def components(self) -> tuple[Retriever, Composer]:
        """The retriever and composer for the live index, (re)loaded if a build swapped it."""
        with self._lock:
            return self._load_components()

    def _load_components(self) -> tuple[Retriever, Composer]:
        try:
            version = store.current_version(self.settings.index_dir)
            if self._loaded is None or self._loaded[0] != version:
                loaded = store.load(self.settings.index_dir)
                self._check_model(loaded.manifest)
                if not loaded.articles:
                    raise IndexUnavailable(f"The index in {self.settings.index_dir}/ holds no articles "
                                           f"({self.settings.seeds_dir}/ had none when it was built).",
                                           self.settings.command("build"))
                retriever = Retriever(loaded, self.embedder, self.settings, self.analyzer)
                ranker = self.embedder.rank_sentences if self.settings.reader and self.embedder.has_ranker else None
                composer = Composer(self.settings, self.analyzer, loaded.lexical, ranker)
                self._loaded = (version, retriever, composer)
        except store.IndexMissing as err:
            raise IndexUnavailable(str(err), self.settings.command("build")) from None
        except store.StoreError as err:
            raise IndexUnavailable(f"The index cannot be used: {err}", self.settings.command("build", "--rebuild")) \
                from None
        return self._loaded[1], self._loaded[2]

    def _check_model(self, manifest: store.Manifest) -> None:
        if manifest.model != self.settings.model or manifest.fingerprint != self.embedder.fingerprint:
            raise store.IndexMismatch(
                f"it was built with {describe(manifest.model)} ({manifest.fingerprint}), "
                f"but the configured model is {describe(self.settings.model)} ({self.embedder.fingerprint})."
            )
