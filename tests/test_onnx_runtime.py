"""The default runtime: the bundled model and reader on ONNX Runtime must match sentence-transformers, and the
default path must never load torch (marked `model`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag import newsqa
from rag.embedding import Embedder
from rag.engine import Engine, IndexUnavailable
from rag.onnx_runtime import staged
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "seeds" / "000_51d543a782ed1e65.txt"
GERMAN = [
    "Was sagte Stoltenberg zum NATO-Beitritt?",
    "Bereits 300.000 Soldaten seien getötet oder verwundet worden. Das sagte der Generalsekretär am Sonntag.",
    "Die Österreichische Nationalbank erhöht den Leitzins um 0,5 Prozentpunkte – überraschend früh.",
    "„Wir schaffen das“, sagte die Bundeskanzlerin am 31. August 2015 in Berlin.",
    "Straßenbahn, Fußgängerzone und Bürgersteig: Was ändert sich ab 1. März?",
]
SPANS = [[(0, len(t) // 2), (len(t) // 2 + 1, len(t))] for t in GERMAN]


@pytest.fixture(scope="module")
def fp32() -> Embedder:
    return Embedder.for_settings(Settings(runtime="onnx-fp32"))


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


def _all_vectors(embedder: Embedder) -> dict[str, np.ndarray]:
    search, reader = embedder.encode_questions(GERMAN)
    passages, sentences = embedder.encode_passages(GERMAN, SPANS)
    return {"search": search, "reader": reader, "passage": passages, "sentence": np.concatenate(sentences)}


def test_float32_onnx_matches_sentence_transformers(fp32, torch_embedder):
    ours, reference = _all_vectors(fp32), _all_vectors(torch_embedder)
    for kind in ours:
        assert _cosines(ours[kind], reference[kind]).min() >= 0.9999, kind
    assert fp32.fingerprint == torch_embedder.fingerprint  # one index serves both


def test_int8_vectors_stay_close_and_are_never_mixed_with_float32(embedder, fp32):
    assert embedder.runtime == "onnx-int8" and embedder.fingerprint != fp32.fingerprint
    ours, reference = _all_vectors(embedder), _all_vectors(fp32)
    for kind in ours:  # measured 0.995-0.999; the retrieval and answer gate is bench/gate.py
        assert _cosines(ours[kind], reference[kind]).min() >= 0.99, kind


def _ranker_scores(embedder: Embedder) -> np.ndarray:
    """The ranker's scores for each question against the sentences of a few German passages."""
    spans = [(i, s, e) for i, sp in enumerate(SPANS) for s, e in sp]
    return np.concatenate([embedder.rank_sentences(q, GERMAN, spans) for q in GERMAN[:2]])


def test_the_ranker_on_onnx_scores_like_torch(fp32, embedder, torch_embedder):
    assert fp32.has_ranker and embedder.has_ranker and torch_embedder.has_ranker
    reference = _ranker_scores(torch_embedder)
    assert np.abs(_ranker_scores(fp32) - reference).max() < 1e-3
    int8 = _ranker_scores(embedder)  # float32 ranker on the int8 encoder's states: measured up to 0.030 apart
    assert np.abs(int8 - reference).max() < 0.05
    for q in range(2):  # each question's best sentence stays the best
        assert np.argmax(int8[q * 10 : q * 10 + 10]) == np.argmax(reference[q * 10 : q * 10 + 10])


def test_the_encoder_outputs_the_states_the_ranker_reads_and_no_others(fp32, torch_embedder):
    split = torch_embedder.backend.ranker().split
    assert fp32.backend.tap == split  # the lowest layer the reader or the ranker continues from
    (ours, offsets), = fp32.states(GERMAN[:1], "query")
    (theirs, their_offsets), = torch_embedder.states(GERMAN[:1], "query")
    assert np.array_equal(offsets, their_offsets) and _cosines(ours, theirs).min() > 0.9999
    with pytest.raises(ValueError, match=f"entering layer {split}, not {split + 1}"):
        fp32.states(GERMAN[:1], "query", split + 1)


def test_int8_answers_the_seed_questions_like_float32(settings, embedder, fp32):
    """The gate on a small fixed set: the 30 seed questions of the news QA dev split, asked of an index of the
    seed article built in each precision."""
    shutil.copy(SEED, settings.seeds_dir)
    records = [r for r in newsqa.load(ROOT / "data" / "news-qa" / "dev.json") if r.row == newsqa.SEED_ROW]
    hits = {}
    for name, emb in (("int8", embedder), ("fp32", fp32)):
        engine = Engine(replace(settings, index_dir=settings.index_dir / name), emb)
        engine.build()
        answers = [engine.ask(r.question) for r in records]
        hits[name] = [bool(a.sentences) and r.answer in a.sentences[0].text for a, r in zip(answers, records)]
    assert len(records) == 30
    assert abs(sum(hits["int8"]) - sum(hits["fp32"])) <= 1  # one question in 30 is this set's resolution


def test_an_index_in_the_other_precision_is_rebuilt_and_says_why(settings, embedder, fp32):
    shutil.copy(SEED, settings.seeds_dir)
    Engine(settings, embedder).build()
    report = Engine(settings, fp32).build()
    assert report.rebuild_reason and "float32" in report.rebuild_reason and "int8" in report.rebuild_reason


def test_asking_an_index_of_the_other_precision_names_the_build_for_this_one(settings, embedder, fp32):
    shutil.copy(SEED, settings.seeds_dir)
    Engine(settings, embedder).build()
    with pytest.raises(IndexUnavailable) as err:
        Engine(replace(settings, runtime="onnx-fp32"), fp32).ask("Was sagte Stoltenberg?")
    assert "+int8" in err.value.reason and "--runtime onnx-fp32" in err.value.command


def test_the_default_path_never_imports_torch(settings, embedder):
    embedder.dim  # exported and cached by now, so the child process only loads it
    shutil.copy(SEED, settings.seeds_dir)
    script = (
        "import json, sys\n"
        "from rag.cli import main\n"
        f"args = ['--seeds', {str(settings.seeds_dir)!r}, '--index', {str(settings.index_dir)!r}]\n"
        "assert main(['build', *args]) == 0\n"
        "assert main(['ask', *args, 'Was sagte Stoltenberg zum NATO-Beitritt?']) == 0\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert out.returncode == 0, out.stderr
    *answer, loaded = out.stdout.strip().splitlines()
    assert "Stoltenberg" in "\n".join(answer)
    assert json.loads(loaded) == []


def test_an_interrupted_export_leaves_no_file_behind(tmp_path):
    target = tmp_path / "encoder-int8.onnx"
    with pytest.raises(RuntimeError), staged(target) as tmp:
        tmp.write_bytes(b"half a model")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with staged(target) as tmp:
        tmp.write_bytes(b"a model")
    assert [p.name for p in tmp_path.iterdir()] == [target.name] and target.read_bytes() == b"a model"


def test_a_damaged_export_is_named_with_its_fix(embedder, tmp_path):
    from rag.onnx_runtime import OnnxBackend, OnnxFiles

    folder = embedder.backend.tokenizer.folder
    broken = tmp_path / "encoder-tap8-int8.onnx"
    broken.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot be loaded.*delete"):
        OnnxBackend(OnnxFiles(folder, broken, None))


def test_a_first_run_says_it_is_preparing_the_model_before_the_wait(embedder, tmp_path, monkeypatch, capsys):
    from rag import cli

    assert not embedder.needs_export()  # exported by now
    empty = tmp_path / "models"  # as on a machine that has not exported yet
    assert Embedder.for_settings(Settings(model_cache=empty)).needs_export()
    assert not Embedder.for_settings(Settings(model_cache=empty, runtime="torch")).needs_export()
    monkeypatch.setenv("RAG_MODEL_CACHE", str(empty))
    cli.main(["ask", "--index", str(tmp_path / "kein-index"), "Was sagte Stoltenberg?"])  # fails before loading
    assert "first run only" in capsys.readouterr().err
