"""The on-disk index without the model: round trip, atomic versions, damage detection, index type."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from bench.data import SEED
from rag import corpus, store
from rag.chunking import Chunker
from rag.lexical import Analyzer, LexicalIndex


@pytest.fixture
def small_store(tmp_path) -> store.Store:
    shutil.copy(SEED, tmp_path)
    [article] = [corpus.parse(s) for s in corpus.scan(tmp_path).files]
    chunks = Chunker().split(article)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(chunks), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sentences = rng.normal(size=(sum(len(c.sentences) for c in chunks), 8)).astype(np.float16)
    dense, kind = store.build_dense_index(vectors)
    manifest = store.Manifest("test-model", "abc", 8, {"chunk_size": 500}, {article.id: article.content_hash},
                              "2026-11-26T00:00:00+00:00", kind, {"articles": 1, "chunks": len(chunks)})
    lexical = LexicalIndex.build([Analyzer()(c.embed_text) for c in chunks])
    return store.Store(manifest, {article.id: article}, chunks, dense, sentences, lexical)


def test_round_trip(small_store, tmp_path):
    store.save(small_store, tmp_path / "index")
    loaded = store.load(tmp_path / "index")
    assert loaded.manifest == small_store.manifest
    assert loaded.chunks == small_store.chunks and loaded.articles == small_store.articles
    np.testing.assert_allclose(loaded.vectors(), small_store.vectors())
    np.testing.assert_array_equal(loaded.chunk_sentence_vectors(2), small_store.chunk_sentence_vectors(2))
    assert loaded.lexical.size == len(small_store.chunks)


def test_a_new_version_replaces_the_old_one_whole(small_store, tmp_path):
    first = store.save(small_store, tmp_path / "index")
    second = store.save(small_store, tmp_path / "index")
    assert store.current_version(tmp_path / "index") == second and not first.exists()
    assert not list((tmp_path / "index").glob(".tmp-*"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_files_are_detected(small_store, tmp_path, damage):
    version = store.save(small_store, tmp_path / "index")
    target = version / "chunks.jsonl"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[10] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:-5])
    else:
        target.unlink()
    with pytest.raises(store.IndexCorrupt, match="chunks.jsonl"):
        store.verify(tmp_path / "index")
    with pytest.raises(store.IndexCorrupt):
        store.load(tmp_path / "index")


def test_foreign_folder_and_missing_index(tmp_path):
    with pytest.raises(store.IndexMissing):
        store.load(tmp_path)
    (tmp_path / "v-1").mkdir()
    (tmp_path / "v-1" / "manifest.json").write_text('{"format": "something-else"}')
    (tmp_path / store.POINTER).write_text("v-1")
    with pytest.raises(store.IndexMismatch, match="not an index of this program"):
        store.load(tmp_path)


def test_index_type_follows_corpus_size(monkeypatch):
    vectors = np.eye(4, dtype=np.float32)
    assert store.build_dense_index(vectors)[1] == "Flat"
    monkeypatch.setattr(store, "HNSW_THRESHOLD", 3)
    index, kind = store.build_dense_index(vectors)
    assert kind.startswith("HNSW") and index.ntotal == 4
    _, ids = index.search(vectors[:1], 1)
    assert ids[0, 0] == 0
