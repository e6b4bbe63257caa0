"""Incremental index builds: embed only what changed, then swap the new version in atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from . import corpus, store
from .chunking import Chunk, Chunker
from .corpus import Article
from .embedding import Embedder
from .lexical import Analyzer, LexicalIndex
from .settings import Settings


@dataclass
class BuildReport:
    """What a build did, for the one-line summary and for tests."""

    articles: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    rebuild_reason: str | None = None  # set when every article was re-embedded
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) not indexed
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, note) indexed with a remark
    written: bool = False

    def summary(self) -> str:
        return (
            f"{self.articles} article{'s' if self.articles != 1 else ''}: {len(self.added)} added, "
            f"{len(self.changed)} changed, {len(self.removed)} removed, {self.unchanged} unchanged"
            f" · {self.chunks_embedded} chunks embedded · {self.seconds:.1f} s"
        )


def build(settings: Settings, embedder: Embedder, rebuild: bool = False, progress: bool = False) -> BuildReport:
    """Bring the index in `settings.index_dir` in line with `settings.seeds_dir`.

    Unchanged articles keep their vectors; added and changed ones are parsed,
    chunked and embedded; removed ones are dropped. A different model, model
    weights or chunking settings, `rebuild=True`, or an unreadable old index
    re-embed everything, and `rebuild_reason` says why.
    """
    started = time.perf_counter()
    report = BuildReport()
    with store.build_lock(settings.index_dir):
        sources = corpus.scan(settings.seeds_dir)
        manifest, report.rebuild_reason = _reusable_manifest(settings, embedder, rebuild)
        indexed = manifest.articles if manifest else {}
        unchanged = {s.id for s in sources if indexed.get(s.id) == s.content_hash}
        report.removed = sorted(set(indexed) - {s.id for s in sources})
        if manifest and not report.removed and len(unchanged) == len(sources):
            report.articles = report.unchanged = len(unchanged)
            report.chunks = manifest.counts.get("chunks", 0)
            report.seconds = time.perf_counter() - started
            return report

        previous = None
        if unchanged:
            try:
                previous = store.load(settings.index_dir)
            except store.StoreError as err:
                report.rebuild_reason = f"the existing index is unusable ({err})"
                indexed, unchanged, report.removed = {}, set(), []

        parsed: list[Article] = []
        for source in sources:
            if source.id in unchanged:
                continue
            try:
                article = corpus.parse(source)
            except corpus.ArticleError as err:
                report.skipped.append((source.id, str(err)))
                if source.id in indexed:
                    report.removed.append(source.id)
                continue
            (report.changed if source.id in indexed else report.added).append(source.id)
            report.notes.extend((article.id, note) for note in article.notes)
            parsed.append(article)

        rows = _embed(settings, embedder, parsed, progress)
        report.chunks_embedded = sum(len(r) for r in rows.values())
        articles = {a.id: a for a in parsed}
        if previous is not None:
            for article_id in unchanged:
                articles[article_id] = previous.articles[article_id]
            old_vectors = previous.vectors()
            for i, chunk in enumerate(previous.chunks):
                if chunk.article_id in unchanged:
                    rows.setdefault(chunk.article_id, []).append(
                        (chunk, old_vectors[i], previous.chunk_sentence_vectors(i)))

        new_store = _assemble(settings, embedder, articles, rows)
        store.save(new_store, settings.index_dir)
        report.written = True
        report.articles = len(articles)
        report.unchanged = len(unchanged)
        report.chunks = len(new_store.chunks)
    report.seconds = time.perf_counter() - started
    return report


Row = tuple[Chunk, np.ndarray, np.ndarray]  # chunk, its vector, its sentence vectors


def _embed(settings: Settings, embedder: Embedder, articles: list[Article], progress: bool) -> dict[str, list[Row]]:
    """Chunk and embed new or changed articles; sentence spans are passed relative to the embedded text."""
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, settings.title_prefix)
    chunks = [c for a in articles for c in chunker.split(a)]
    vectors, sentence_vectors = embedder.encode_passages(
        [c.embed_text for c in chunks],
        [[(s - c.start + len(c.prefix), e - c.start + len(c.prefix)) for s, e in c.sentences] for c in chunks],
        progress=progress,
    )
    rows: dict[str, list[Row]] = {}
    for row in zip(chunks, vectors, sentence_vectors):
        rows.setdefault(row[0].article_id, []).append(row)
    return rows


def _reusable_manifest(settings: Settings, embedder: Embedder, rebuild: bool) -> tuple[store.Manifest | None, str | None]:
    """The live manifest if its vectors can be reused, else None and the reason for a full rebuild."""
    if rebuild:
        return None, "requested with --rebuild"
    try:
        manifest = store.load_manifest(settings.index_dir)
        if manifest is not None:
            store.verify(settings.index_dir)  # a damaged index must not survive a "nothing changed" build
    except store.StoreError as err:
        return None, f"the existing index is unusable ({err})"
    if manifest is None:
        return None, None
    reason = manifest.compatible(settings.model, embedder.fingerprint, settings.chunking())
    return (None, reason) if reason else (manifest, None)


def _assemble(
    settings: Settings,
    embedder: Embedder,
    articles: dict[str, Article],
    kept: dict[str, list[Row]],
) -> store.Store:
    """Order everything by article id and chunk position, then build both search indexes."""
    rows = [row for article_id in sorted(kept) for row in sorted(kept[article_id], key=lambda r: r[0].start)]
    chunks = [r[0] for r in rows]
    dim = embedder.dim
    vectors = np.stack([r[1] for r in rows]) if rows else np.zeros((0, dim), np.float32)
    sentences = np.concatenate([r[2] for r in rows]) if rows else np.zeros((0, dim), np.float32)
    dense, index_type = store.build_dense_index(vectors)
    analyzer = Analyzer()
    lexical = LexicalIndex.build([analyzer(c.embed_text) for c in chunks])
    ordered = {i: articles[i] for i in sorted(articles)}
    manifest = store.Manifest(
        model=settings.model,
        fingerprint=embedder.fingerprint,
        dim=dim,
        chunking=settings.chunking(),
        articles={i: a.content_hash for i, a in ordered.items()},
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        index_type=index_type,
        counts={"articles": len(ordered), "chunks": len(chunks), "sentences": int(len(sentences))},
    )
    return store.Store(manifest, ordered, chunks, dense, sentences.astype(np.float16), lexical)
