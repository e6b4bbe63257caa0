"""The on-disk index: FAISS vectors, BM25, chunk and article metadata, and a manifest.

Layout of the index folder::

    CURRENT          name of the live version folder (replaced atomically)
    .lock            held while a build runs
    v-<stamp>/       one complete, immutable version
        manifest.json    format, model + fingerprint, chunking, per-article hashes, file checksums
        articles.jsonl   parsed articles with their full text (citations stay valid after edits)
        chunks.jsonl     chunk spans, paragraph, heading, sentence spans
        dense.faiss      chunk vectors (inner product on normalised vectors)
        sentences.npy    one float16 vector per chunk sentence, for answer composition
        bm25/            bm25s index over the analyzed chunk texts

A build writes a new version folder next to the live one and then replaces
CURRENT, so a reader sees either the old or the new index, never a mix, and a
build killed at any moment leaves the previous version untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import faiss
import numpy as np

from .bundled import INT8
from .chunking import Chunk
from .corpus import Article, Paragraph
from .lexical import LexicalIndex

FORMAT = "rag-news-index"
FORMAT_VERSION = 1
POINTER = "CURRENT"
LOCK = ".lock"
# Exact search scans every vector: ~1 ms per 10k chunks here. Past this size an HNSW graph
# keeps queries in milliseconds at a small recall cost (candidates are re-scored exactly).
HNSW_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_SEARCH = 128

_FILES = ("articles.jsonl", "chunks.jsonl", "dense.faiss", "sentences.npy")


class StoreError(Exception):
    """The index cannot be used; `rebuild` says whether rebuilding it is the remedy."""

    def __init__(self, message: str, rebuild: bool = True) -> None:
        super().__init__(message)
        self.rebuild = rebuild


class IndexMissing(StoreError):
    """No index has been built in this folder yet."""


class IndexCorrupt(StoreError):
    """Files are missing, truncated or not what the manifest promises."""


class IndexMismatch(StoreError):
    """The index is intact but was built with another model or format."""


@dataclass(frozen=True)
class Manifest:
    """What an index version was built from; compared before vectors are reused or searched."""

    model: str
    fingerprint: str
    dim: int
    chunking: dict[str, Any]
    articles: dict[str, str]  # article id -> content hash
    created: str
    index_type: str
    counts: dict[str, int]

    def compatible(self, model: str, fingerprint: str, chunking: dict[str, Any]) -> str | None:
        """None if vectors can be reused for these settings, else the reason they cannot."""
        if self.model != model:
            return f"the model changed ({self.model} → {model})"
        if self.fingerprint != fingerprint:
            if self.fingerprint.removesuffix(INT8) == fingerprint.removesuffix(INT8):
                return (f"the model now runs in {_precision(fingerprint)}, the index was built in "
                        f"{_precision(self.fingerprint)} (vectors of the two differ)")
            return "the model's weights changed"
        if self.chunking != chunking:
            return "the chunking settings changed"
        return None


def _precision(fingerprint: str) -> str:
    return "int8" if fingerprint.endswith(INT8) else "float32"


@dataclass
class Store:
    """One loaded index version, fully in memory."""

    manifest: Manifest
    articles: dict[str, Article]
    chunks: list[Chunk]
    dense: faiss.Index
    sentence_vectors: np.ndarray  # float16, rows grouped by chunk in chunk order
    lexical: LexicalIndex

    def __post_init__(self) -> None:
        counts = np.fromiter((len(c.sentences) for c in self.chunks), dtype=np.int64, count=len(self.chunks))
        self.sentence_offsets = np.concatenate([[0], np.cumsum(counts)])

    def vectors(self) -> np.ndarray:
        """All chunk vectors (float32), in chunk order."""
        return self.dense.reconstruct_n(0, self.dense.ntotal) if self.dense.ntotal else \
            np.zeros((0, self.manifest.dim), np.float32)

    def chunk_sentence_vectors(self, i: int) -> np.ndarray:
        lo, hi = self.sentence_offsets[i], self.sentence_offsets[i + 1]
        return np.asarray(self.sentence_vectors[lo:hi], dtype=np.float32)


def build_dense_index(vectors: np.ndarray) -> tuple[faiss.Index, str]:
    """Exact inner-product index for small corpora, HNSW for large ones."""
    dim = vectors.shape[1]
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = HNSW_EF_SEARCH
        kind = f"HNSW{HNSW_M}"
    else:
        index = faiss.IndexFlatIP(dim)
        kind = "Flat"
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index, kind


# ----------------------------------------------------------------------------- reading


def current_version(index_dir: Path) -> Path | None:
    """The live version folder named by CURRENT, or None if nothing was built yet."""
    pointer = Path(index_dir) / POINTER
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not name or "/" in name or name.startswith("."):
        raise IndexCorrupt(f"{pointer} is damaged (it names no version folder).")
    return Path(index_dir) / name


def _manifest_json(version: Path) -> dict[str, Any]:
    try:
        raw = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorrupt(f"{version} has no manifest.json.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise IndexCorrupt(f"{version}/manifest.json is not valid JSON.") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise IndexMismatch(f"{version} is not an index of this program.")
    if raw.get("format_version") != FORMAT_VERSION:
        raise IndexMismatch(
            f"the index has format version {raw.get('format_version')}, this program reads {FORMAT_VERSION}."
        )
    return raw


def read_manifest(version: Path) -> Manifest:
    raw = _manifest_json(version)
    try:
        return Manifest(**{k: raw[k] for k in Manifest.__dataclass_fields__})
    except KeyError as err:
        raise IndexCorrupt(f"{version}/manifest.json lacks the field {err}.") from None


def load_manifest(index_dir: Path) -> Manifest | None:
    """The live manifest, or None when no index exists (cheap: no vectors are read)."""
    version = current_version(index_dir)
    return read_manifest(version) if version else None


def load(index_dir: Path) -> Store:
    """Load and verify the live index version; raises a `StoreError` with a clear reason."""
    version = verify(index_dir)
    manifest = read_manifest(version)
    try:
        articles = {a.id: a for a in map(_article_from_json, _read_jsonl(version / "articles.jsonl"))}
        chunks = [_chunk_from_json(c, articles) for c in _read_jsonl(version / "chunks.jsonl")]
        dense = faiss.read_index(str(version / "dense.faiss"))
        sentence_vectors = np.load(version / "sentences.npy", allow_pickle=False)
        lexical = LexicalIndex.load(version / "bm25", len(chunks))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise IndexCorrupt(f"{version} cannot be read ({type(err).__name__}: {err}).") from None
    if dense.ntotal != len(chunks) or (len(chunks) and dense.d != manifest.dim):
        raise IndexCorrupt(f"{version}: {dense.ntotal} vectors for {len(chunks)} chunks.")
    store = Store(manifest, articles, chunks, dense, sentence_vectors, lexical)
    if len(sentence_vectors) != store.sentence_offsets[-1]:
        raise IndexCorrupt(f"{version}: sentence vectors do not match the chunks.")
    return store


def verify(index_dir: Path) -> Path:
    """Check the live version's files against their recorded checksums without loading them; return its folder."""
    index_dir = Path(index_dir)
    version = current_version(index_dir)
    if version is None:
        raise IndexMissing(f"No index found in {index_dir}/.")
    if not version.is_dir():
        raise IndexCorrupt(f"{version} (named in {index_dir}/{POINTER}) does not exist.")
    _verify_files(version, _manifest_json(version).get("files", {}))
    return version


def _verify_files(version: Path, files: dict[str, dict[str, Any]]) -> None:
    """Compare every data file with the size and SHA-256 recorded when it was written."""
    for name in _FILES:
        if name not in files:
            raise IndexCorrupt(f"{version}/manifest.json does not list {name}.")
    for name, expected in files.items():
        path = version / name
        if not path.is_file():
            raise IndexCorrupt(f"{path} is missing.")
        if path.stat().st_size != expected.get("bytes") or _sha256(path) != expected.get("sha256"):
            raise IndexCorrupt(f"{path} is damaged (size or checksum differs from the manifest).")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _article_from_json(d: dict[str, Any]) -> Article:
    paragraphs = tuple(Paragraph(**p) for p in d.pop("paragraphs"))
    return Article(paragraphs=paragraphs, notes=tuple(d.pop("notes", ())), **d)


def _chunk_from_json(d: dict[str, Any], articles: dict[str, Article]) -> Chunk:
    text = articles[d["article_id"]].text[d["start"] : d["end"]]
    sentences = tuple((int(s), int(e)) for s, e in d["sentences"])
    return Chunk(d["article_id"], d["start"], d["end"], text, d["paragraph"], d["heading"], sentences,
                 d["prefix"])


# ----------------------------------------------------------------------------- writing


def save(store: Store, index_dir: Path) -> Path:
    """Write `store` as a new version and make it live atomically; returns the version folder."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-v-{stamp}-", dir=index_dir))
    tmp.chmod(0o755)
    try:
        _write_jsonl(tmp / "articles.jsonl", (asdict(a) for a in store.articles.values()))
        _write_jsonl(tmp / "chunks.jsonl", (_chunk_to_json(c) for c in store.chunks))
        faiss.write_index(store.dense, str(tmp / "dense.faiss"))
        with (tmp / "sentences.npy").open("wb") as f:
            np.save(f, np.asarray(store.sentence_vectors, dtype=np.float16), allow_pickle=False)
        store.lexical.save(tmp / "bm25")
        files = {
            str(p.relative_to(tmp)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(store.manifest), "files": files}
        _write_text(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1))
        _fsync_tree(tmp)
        version = index_dir / tmp.name.removeprefix(".tmp-")
        os.rename(tmp, version)
        _write_text(index_dir / POINTER, version.name, atomic=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_stale_versions(index_dir, keep=version.name)
    return version


def _remove_stale_versions(index_dir: Path, keep: str) -> None:
    """Delete old versions and leftovers of killed builds (only ever called under the build lock)."""
    for path in index_dir.iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("v-") or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


def _write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_text(path: Path, text: str, atomic: bool = False) -> None:
    target = path
    if atomic:
        path = path.with_name(f".{path.name}.tmp")
    with path.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if atomic:
        os.replace(path, target)
        _fsync_dir(target.parent)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _chunk_to_json(c: Chunk) -> dict[str, Any]:
    return {"article_id": c.article_id, "start": c.start, "end": c.end, "paragraph": c.paragraph,
            "heading": c.heading, "sentences": [list(s) for s in c.sentences], "prefix": c.prefix}


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """Exclusive lock for one build at a time; the OS releases it if the process dies."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / LOCK).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"another build is running on {index_dir}/; wait for it to finish.",
                             rebuild=False) from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
