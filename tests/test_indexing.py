"""Incremental, crash-safe builds with the real model (marked `model`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.data import SEED, write_gnad_seeds
from rag import indexing, store
from rag.engine import Engine, IndexUnavailable
from rag.indexing import BuildRefused
from tests.conftest import small_corpus

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]


def test_incremental_add_change_delete(settings, embedder, gnad_rows):
    small_corpus(settings.seeds_dir, gnad_rows, n=2)
    engine = Engine(settings, embedder)
    first = engine.build()
    assert (len(first.added), first.articles, first.rebuild_reason) == (3, 3, None)
    assert first.chunks_embedded == first.chunks > 0

    noop = engine.build()
    assert (noop.chunks_embedded, noop.unchanged, noop.written) == (0, 3, False)
    assert noop.summary().startswith("3 articles: 0 added, 0 changed, 0 removed, 3 unchanged · 0 chunks embedded")

    [new] = write_gnad_seeds(settings.seeds_dir, gnad_rows[5:6], start=5)
    added = engine.build()
    new_chunks = len([c for c in store.load(settings.index_dir).chunks if c.article_id == new.name])
    assert added.added == [new.name] and added.unchanged == 3
    assert added.chunks_embedded == new_chunks and added.chunks == first.chunks + new_chunks

    seed = settings.seeds_dir / SEED.name
    seed.write_text(seed.read_text(encoding="utf-8") + "\n\nEin neuer Schlussabsatz über Stoltenberg.\n", encoding="utf-8")
    changed = engine.build()
    seed_chunks = [c for c in store.load(settings.index_dir).chunks if c.article_id == SEED.name]
    assert changed.changed == [SEED.name] and changed.chunks_embedded == len(seed_chunks)

    new.unlink()
    removed = engine.build()
    assert removed.removed == [new.name] and removed.chunks_embedded == 0
    loaded = store.load(settings.index_dir)
    assert new.name not in loaded.articles and all(c.article_id != new.name for c in loaded.chunks)
    assert loaded.lexical.size == len(loaded.chunks)
    # the incremental index answers exactly like a fresh one
    answer = engine.ask("Was sagte Stoltenberg zum NATO-Beitritt?")
    assert "NATO-Beitritts" in answer.sentences[0].text


def test_bad_files_are_skipped_with_a_message(settings, embedder):
    shutil.copy(SEED, settings.seeds_dir)
    (settings.seeds_dir / "leer.txt").write_bytes(b"")
    (settings.seeds_dir / "bild.txt").write_bytes(b"\x89PNG\x00\x00binary")
    (settings.seeds_dir / "ohne_datum.txt").write_text("Ein Artikel ohne Datumszeile.\n\nZweiter Absatz.", "utf-8")
    report = Engine(settings, embedder).build()
    assert sorted(report.added) == [SEED.name, "ohne_datum.txt"]
    assert dict(report.skipped) == {"leer.txt": "file is empty", "bild.txt": "file is binary (contains NUL bytes), not text"}
    assert any(f == "ohne_datum.txt" and "no date line" in n for f, n in report.notes)


def test_changed_settings_trigger_an_announced_full_rebuild(settings, embedder):
    shutil.copy(SEED, settings.seeds_dir)
    Engine(settings, embedder).build()
    report = Engine(replace(settings, chunk_size=300), embedder).build()
    assert report.rebuild_reason == "the chunking settings changed" and report.chunks_embedded == report.chunks
    forced = Engine(replace(settings, chunk_size=300), embedder).build(rebuild=True)
    assert forced.rebuild_reason == "requested with --rebuild" and forced.chunks_embedded == forced.chunks


def test_corrupt_index_gives_a_clear_message_and_rebuild_fixes_it(settings, embedder):
    shutil.copy(SEED, settings.seeds_dir)
    engine = Engine(settings, embedder)
    engine.build()
    version = store.current_version(settings.index_dir)
    with open(version / "dense.faiss", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(IndexUnavailable) as err:
        Engine(settings, embedder).ask("Was sagte Stoltenberg?")
    assert "dense.faiss" in err.value.reason and err.value.command.startswith("rag build --rebuild")
    report = Engine(settings, embedder).build()
    assert report.rebuild_reason and "unusable" in report.rebuild_reason
    assert Engine(settings, embedder).ask("Was sagte Stoltenberg zum NATO-Beitritt?").sentences


def test_garbage_manifest_and_missing_index(settings, embedder):
    with pytest.raises(IndexUnavailable) as missing:
        Engine(settings, embedder).ask("Frage?")
    assert missing.value.command.startswith("rag build") and "--rebuild" not in missing.value.command
    shutil.copy(SEED, settings.seeds_dir)
    Engine(settings, embedder).build()
    (store.current_version(settings.index_dir) / "manifest.json").write_text("{not json", "utf-8")
    with pytest.raises(IndexUnavailable, match="manifest"):
        Engine(settings, embedder).ask("Frage?")


def test_index_from_another_model_is_refused(settings, embedder):
    shutil.copy(SEED, settings.seeds_dir)
    Engine(settings, embedder).build()
    manifest = store.current_version(settings.index_dir) / "manifest.json"
    data = json.loads(manifest.read_text("utf-8"))
    data["model"], data["fingerprint"] = "sentence-transformers/all-MiniLM-L6-v2", "hub:sentence-transformers/all-MiniLM-L6-v2"
    manifest.write_text(json.dumps(data), "utf-8")
    with pytest.raises(IndexUnavailable) as err:
        Engine(settings, embedder).ask("Was sagte Stoltenberg?")
    assert "all-MiniLM-L6-v2" in err.value.reason and "multilingual-e5-small" in err.value.reason
    assert err.value.command.startswith("rag build --rebuild")


def test_killed_build_leaves_the_previous_index_usable(settings, embedder, gnad_rows):
    shutil.copy(SEED, settings.seeds_dir)
    engine = Engine(settings, embedder)
    engine.build()
    before = store.current_version(settings.index_dir)
    write_gnad_seeds(settings.seeds_dir, gnad_rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "build", "--progress", "--seeds", str(settings.seeds_dir),
         "--index", str(settings.index_dir)],
        cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = b""
    deadline = time.monotonic() + 300
    while b"Embedding" not in seen and time.monotonic() < deadline:  # the progress bar: embedding is under way
        chunk = proc.stderr.read1(256)
        if not chunk:
            break
        seen += chunk
    assert b"Embedding" in seen, seen.decode(errors="replace")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.current_version(settings.index_dir) == before
    answer = Engine(settings, embedder).ask("Was sagte Stoltenberg zum NATO-Beitritt?")
    assert "NATO-Beitritts" in answer.sentences[0].text
    report = Engine(settings, embedder).build()  # the lock died with the process
    assert len(report.added) == len(gnad_rows) and report.unchanged == 1
    seed_chunks = [c for c in store.load(settings.index_dir).chunks if c.article_id == SEED.name]
    assert report.chunks_embedded + report.chunks_resumed == report.chunks - len(seed_chunks)
    assert [p.name for p in settings.index_dir.iterdir() if p.name.startswith(("v-", ".tmp"))] == \
        [store.current_version(settings.index_dir).name]


def test_build_that_would_remove_most_articles_is_refused_and_loses_nothing(settings, embedder, gnad_rows):
    small_corpus(settings.seeds_dir, gnad_rows, n=3)
    engine = Engine(settings, embedder)
    engine.build()
    before = store.current_version(settings.index_dir)
    for path in settings.seeds_dir.iterdir():
        path.unlink()
    with pytest.raises(BuildRefused) as err:
        engine.build()
    assert "holds 0 of the 4 indexed articles, so this build would remove 4" in err.value.reason
    assert err.value.command.startswith("rag build --allow-removal")
    assert store.current_version(settings.index_dir) == before
    assert "NATO-Beitritts" in engine.ask("Was sagte Stoltenberg zum NATO-Beitritt?").sentences[0].text
    report = engine.build(allow_removal=True)
    assert len(report.removed) == 4 and report.articles == 0


def test_interrupted_build_resumes_from_staged_vectors(settings, embedder, gnad_rows, monkeypatch, tmp_path):
    write_gnad_seeds(settings.seeds_dir, gnad_rows[:6])
    monkeypatch.setattr(indexing, "STAGE_CHUNKS", 1)  # stage after every article
    real = embedder.encode_passages
    embedded: list[int] = []

    def dies_after_three_groups(texts, sentences, progress=False):
        if len(embedded) == 3:
            raise KeyboardInterrupt  # Ctrl-C, a kill or a crash in the middle of the build
        embedded.append(len(texts))
        return real(texts, sentences, progress)

    monkeypatch.setattr(embedder, "encode_passages", dies_after_three_groups)
    with pytest.raises(KeyboardInterrupt):
        Engine(settings, embedder).build()
    assert store.current_version(settings.index_dir) is None  # nothing half-built went live
    monkeypatch.setattr(embedder, "encode_passages", real)

    report = Engine(settings, embedder).build()
    assert report.chunks_resumed == sum(embedded) > 0
    assert report.chunks_embedded == report.chunks - sum(embedded) > 0
    assert "resumed from an interrupted build" in report.summary()
    assert not (settings.index_dir / indexing.STAGING).exists()

    fresh = replace(settings, index_dir=tmp_path / "fresh")
    Engine(fresh, embedder).build()
    resumed, straight = store.load(settings.index_dir), store.load(fresh.index_dir)
    assert [(c.article_id, c.start) for c in resumed.chunks] == [(c.article_id, c.start) for c in straight.chunks]
    assert abs(resumed.vectors() - straight.vectors()).max() < 1e-4
