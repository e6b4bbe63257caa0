"""Incremental index builds: embed only what changed, then swap the new version in atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from . import corpus, store
from .chunking import Chunk, Chunker
from .corpus import Article
from .embedding import Embedder, progress_bar
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
    chunks_resumed: int = 0  # taken from the staging area a killed or failed build left behind
    seconds: float = 0.0
    rebuild_reason: str | None = None  # set when every article was re-embedded
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) not indexed
    ignored: dict[str, list[str]] = field(default_factory=dict)  # files that are not articles, by kind
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, note) indexed with a remark
    written: bool = False

    def summary(self) -> str:
        resumed = f" ({self.chunks_resumed} more resumed from an interrupted build)" if self.chunks_resumed else ""
        return (
            f"{self.articles} article{'s' if self.articles != 1 else ''}: {len(self.added)} added, "
            f"{len(self.changed)} changed, {len(self.removed)} removed, {self.unchanged} unchanged"
            f" · {self.chunks_embedded} chunks embedded{resumed} · {self.seconds:.1f} s"
        )


class BuildRefused(Exception):
    """The build would remove most of the index (an empty or unmounted seeds folder?); nothing was changed."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(f"{message} Run `{command}` if that is intended.")
        self.reason = message
        self.command = command


def build(settings: Settings, embedder: Embedder, rebuild: bool = False, progress: bool = False,
          allow_removal: bool = False) -> BuildReport:
    """Bring the index in `settings.index_dir` in line with `settings.seeds_dir`.

    Unchanged articles keep their vectors; added and changed ones are parsed,
    chunked and embedded; removed ones are dropped. A different model, model
    weights or chunking settings, `rebuild=True`, or an unreadable old index
    re-embed everything, and `rebuild_reason` says why. A build that would remove more
    than half of the indexed articles raises `BuildRefused` unless `allow_removal`.
    """
    started = time.perf_counter()
    report = BuildReport()
    with store.build_lock(settings.index_dir):
        found = corpus.scan(settings.seeds_dir, settings.max_article_bytes)
        sources, report.skipped, report.ignored = found.files, found.skipped, found.ignored
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
        if len(report.removed) > len(indexed) / 2 and not allow_removal:
            raise BuildRefused(
                f"{settings.seeds_dir}/ holds {len(indexed) - len(report.removed)} of the {len(indexed)} indexed "
                f"articles, so this build would remove {len(report.removed)} of them (is the folder empty, mistyped "
                "or not mounted?). Nothing was changed.", settings.command("build", "--allow-removal"))

        staging = Staging(settings.index_dir / STAGING, embedder.fingerprint, settings.chunking())
        if rebuild:
            staging.clear()
        rows, report.chunks_resumed = _embed(settings, embedder, parsed, staging, progress)
        report.chunks_embedded = sum(len(r) for r in rows.values()) - report.chunks_resumed
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
        staging.clear()
        report.written = True
        report.articles = len(articles)
        report.unchanged = len(unchanged)
        report.chunks = len(new_store.chunks)
    report.seconds = time.perf_counter() - started
    return report


Row = tuple[Chunk, np.ndarray, np.ndarray]  # chunk, its vector, its sentence vectors
STAGING = ".staging"
STAGE_CHUNKS = 512  # embed in groups of about this many chunks and stage each group's vectors


class Staging:
    """Vectors of articles embedded by a build that has not finished yet, kept inside the index folder.

    A build killed at 60 % keeps 60 % of its work: the next build takes those vectors
    from here (keyed by article content, model fingerprint and chunking settings) and
    embeds only what is missing. A successful build clears the folder.
    """

    def __init__(self, folder: Path, fingerprint: str, chunking: dict) -> None:
        self.folder = folder
        self._salt = json.dumps([fingerprint, chunking], sort_keys=True)

    def _path(self, article: Article) -> Path:
        return self.folder / (hashlib.sha256((self._salt + article.content_hash).encode()).hexdigest()[:32] + ".npz")

    def get(self, article: Article, chunks: list[Chunk]) -> list[Row] | None:
        try:
            with np.load(self._path(article), allow_pickle=False) as data:
                vectors, sentences, counts = data["vectors"], data["sentences"], data["counts"]
        except (OSError, ValueError, KeyError):
            return None  # not staged, or a half-written file from the kill itself
        if counts.tolist() != [len(c.sentences) for c in chunks] or len(vectors) != len(chunks):
            return None
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [(c, vectors[i], sentences[bounds[i] : bounds[i + 1]]) for i, c in enumerate(chunks)]

    def put(self, article: Article, rows: list[Row]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._path(article)
        tmp = target.with_name(f".{target.stem}.tmp.npz")
        np.savez(tmp, vectors=np.stack([r[1] for r in rows]),
                 sentences=np.concatenate([r[2] for r in rows]).astype(np.float32),
                 counts=np.array([len(r[2]) for r in rows], dtype=np.int64))
        os.replace(tmp, target)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _embed(settings: Settings, embedder: Embedder, articles: list[Article], staging: Staging,
           progress: bool) -> tuple[dict[str, list[Row]], int]:
    """Chunk new or changed articles and embed those not staged yet, group by group; returns rows and the
    number of chunks taken from staging. Sentence spans are passed relative to the embedded text."""
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, settings.title_prefix)
    rows: dict[str, list[Row]] = {}
    todo: list[tuple[Article, list[Chunk]]] = []
    for article in articles:
        chunks = chunker.split(article)
        staged = staging.get(article, chunks) if chunks else None
        if staged is not None:
            rows[article.id] = staged
        else:
            todo.append((article, chunks))
    resumed = sum(len(r) for r in rows.values())
    bar = progress_bar(sum(len(c) for _, c in todo), progress)
    for group in _groups(todo, STAGE_CHUNKS):
        chunks = [c for _, cs in group for c in cs]
        vectors, sentence_vectors = embedder.encode_passages(
            [c.embed_text for c in chunks],
            [[(s - c.start + len(c.prefix), e - c.start + len(c.prefix)) for s, e in c.sentences] for c in chunks],
        )
        done = iter(zip(chunks, vectors, sentence_vectors))
        for article, cs in group:
            rows[article.id] = [next(done) for _ in cs]
            if cs:
                staging.put(article, rows[article.id])
        bar.update(len(chunks))
    bar.close()
    return rows, resumed


def _groups(items: list[tuple[Article, list[Chunk]]], size: int) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    """Consecutive articles with about `size` chunks together (an article is never split)."""
    group: list[tuple[Article, list[Chunk]]] = []
    for item in items:
        group.append(item)
        if sum(len(c) for _, c in group) >= size:
            yield group
            group = []
    if group:
        yield group


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
