"""Train the answer reader and ranker (rag/reader.py) on the news QA train split: `rag train-reader`.

For every training question the product itself retrieves passages and lists
the candidate sentences the composer would choose from, with the sentence
vectors stored in the index; the sentence holding the gold answer is the
positive, every other candidate a hard negative. The loss is a listwise
softmax over each question's candidates, so each stage learns exactly the
decision it makes at question time: the reader over all candidates, the
ranker over the reader's best few (the gold sentence put in last place
where the reader missed it). Fixed seed, CPU, within the hour.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_MODEL
from .embedding import RANKER_WEIGHTS, READER_WEIGHTS, Embedder, model_fingerprint, pair_batch, token_indices
from .engine import Engine
from .evaluation import Question, load, write_seeds
from .reader import RANKER_SPLIT, READER_SPLIT
from .retrieval import Passage, Query
from .settings import Settings

# `rag train-reader`'s schedule (rag/cli.py repeats these as its defaults: it must not import torch to parse)
READER_EPOCHS = 3
RANKER_EPOCHS = 2
# The ranker trains on the reader's best 4, though it re-scores `Settings.rank_depth` (8) at question time: half
# the pairs per question, so the hour holds twice the question-passes (on 2/3 of the first pass, depth 4 beat
# depth 8 on half as many questions for the same pairs: see rag/weights/README.md).
RANKER_DEPTH = 4

Retrieved = list[tuple[Query, list[Passage]] | None]  # per question: its query and top passages (None: unanswerable)


@dataclass(frozen=True)
class Example:
    """One question with its candidate sentences (stored vectors) and which of them hold the answer."""

    question: str
    vectors: np.ndarray  # (candidates, dim), the index's late-chunked sentence vectors
    positive: np.ndarray  # (candidates,) bool
    texts: tuple[str, ...] = ()  # the candidate sentences


@dataclass(frozen=True)
class RankExample:
    """One question for the ranker: tapped states of the question and of each candidate sentence (in its passage)."""

    question: np.ndarray  # (tokens, dim) float16
    sentences: tuple[np.ndarray, ...]
    positive: np.ndarray  # (candidates,) bool


def retrievals(engine: Engine, questions: list[Question], k: int) -> Retrieved:
    """Each answerable question's query and top `k` passages (None for the unanswerable), retrieved once for
    both stages: retrieval does not depend on the reader vector, only the candidates' order does."""
    retriever, _ = engine.components()
    queries = [retriever.query(q.text) if q.article is not None else None for q in questions]
    return [None if query is None else (query, retriever.retrieve(query, k=k)) for query in queries]


def _candidate_lists(engine: Engine, questions: list[Question], retrieved: Retrieved,
                     reader_vectors: np.ndarray | None = None) -> Iterator[tuple[Question, list, np.ndarray]]:
    """(question, the composer's candidates, which hold the gold answer) for answerable `questions` whose answer
    is in some but not all candidates (else retrieval missed it: nothing to learn there); with `reader_vectors`,
    the candidates are ordered as with those reader question vectors."""
    _, composer = engine.components()
    for i, (q, hit) in enumerate(zip(questions, retrieved, strict=True)):
        if hit is None:
            continue
        query, passages = hit
        if reader_vectors is not None:
            query = replace(query, reader_vector=reader_vectors[i])
        candidates = composer.candidates(query, passages)
        gold = [" ".join(a.split()) for a in q.answers]
        positive = np.array([c.passage.article.id == q.article and any(g in " ".join(c.text.split()) for g in gold)
                             for c in candidates], dtype=bool)
        if positive.any() and not positive.all():
            yield q, candidates, positive


def candidate_examples(engine: Engine, questions: list[Question], retrieved: Retrieved) -> list[Example]:
    """The composer's own candidate lists (plain e5 order) as reader examples."""
    return [Example(q.text, np.stack([c.vector for c in candidates]).astype(np.float32), positive,
                    tuple(c.text for c in candidates))
            for q, candidates, positive in _candidate_lists(engine, questions, retrieved)]


def ranker_examples(engine: Engine, questions: list[Question], retrieved: Retrieved,
                    depth: int, reader_vectors: np.ndarray, split: int = RANKER_SPLIT) -> list[RankExample]:
    """The reader's best `depth` candidates per question (the first gold sentence in last place if the reader
    ranked none that high), with the tapped states the ranker reads."""
    embedder = engine.embedder
    lists = []
    for q, candidates, positive in _candidate_lists(engine, questions, retrieved, reader_vectors):
        top = list(range(min(depth, len(candidates))))
        if not positive[top].any():
            top[-1] = int(np.flatnonzero(positive)[0])
        lists.append((q.text, [candidates[i] for i in top], positive[top]))
    chunks = {id(c.passage.chunk): c.passage.chunk for _, cands, _ in lists for c in cands}
    order = sorted(chunks, key=lambda i: -len(chunks[i].embed_text))  # similar lengths batch well
    states = {}
    for lo in range(0, len(order), 16):
        batch = order[lo : lo + 16]
        for key, st in zip(batch, embedder.states([chunks[i].embed_text for i in batch], "passage", split)):
            states[key] = (st[0].astype(np.float16), st[1])
    questions_states = [s.astype(np.float16) for lo in range(0, len(lists), 32)
                        for s, _ in embedder.states([t for t, _, _ in lists[lo : lo + 32]], "query", split)]
    examples = []
    for (_, cands, positive), q_states in zip(lists, questions_states):
        sentences = []
        for c in cands:
            st, offsets = states[id(c.passage.chunk)]
            shift = len(c.passage.chunk.prefix) - c.passage.chunk.start
            sentences.append(st[token_indices(offsets, c.start + shift, c.end + shift)])
        examples.append(RankExample(q_states, tuple(sentences), positive))
    return examples


@contextmanager
def training_engine(file: Path, settings: Settings, embedder: Embedder,
                    work_dir: Path | None = None) -> Iterator[tuple[Engine, list[Question]]]:
    """The file's own articles indexed by the product's build (no distractors: nothing outside the training
    split is read), with its questions; the index is deleted afterwards."""
    articles, questions = load(file, distractors=0)
    with tempfile.TemporaryDirectory(prefix="rag-train-", dir=work_dir) as tmp:
        write_seeds(articles, Path(tmp) / "seeds")
        s = replace(settings, seeds_dir=Path(tmp) / "seeds", index_dir=Path(tmp) / "index", reader=False)
        engine = Engine(s, embedder)
        engine.build(progress=True)
        yield engine, questions


def run(train_file: Path, settings: Settings, out_dir: Path = READER_WEIGHTS.parent, epochs: int = READER_EPOCHS,
        ranker_epochs: float = RANKER_EPOCHS, ranker_depth: int = RANKER_DEPTH, stage: str = "both", seed: int = 13,
        limit: int | None = None, log=print) -> dict:
    """`rag train-reader`: the reader (unless `stage` is "ranker": then the one in `out_dir` is used) and the
    ranker (unless `stage` is "reader"), trained on `train_file` and written to `out_dir`; returns a summary."""
    import torch

    from .reader import QuestionReader

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.perf_counter()
    if settings.model != BUNDLED_MODEL:
        raise ValueError("the reader is trained for the bundled model only")
    embedder = Embedder.for_settings(replace(settings, runtime="torch"))  # gradients need torch
    base = model_fingerprint(settings.model)
    reader_path, ranker_path = out_dir / READER_WEIGHTS.name, out_dir / RANKER_WEIGHTS.name
    summary: dict = {"train_file": str(train_file), "seed": seed}
    with training_engine(train_file, settings, embedder) as (engine, questions):
        questions = [q for q in questions if q.article is not None][:limit]
        retrieved = retrievals(engine, questions, settings.sources)
        if stage in ("both", "reader"):
            examples = candidate_examples(engine, questions, retrieved)
            log(f"reader: {len(examples)} training questions with the answer among their candidates")
            reader = train(examples, embedder, epochs=epochs, seed=seed, log=log)
            summary["reader"] = {"examples": len(examples), "epochs": epochs,
                                 "candidates_per_question": round(float(np.mean([len(e.positive) for e in examples])), 1)}
            reader.save(reader_path, base, summary | summary["reader"])
        else:
            reader = QuestionReader.load(embedder.sentence_transformer()[0].auto_model, reader_path, base)
        if stage in ("both", "ranker"):
            vectors = question_vectors(reader, embedder, [q.text for q in questions])
            examples = ranker_examples(engine, questions, retrieved, ranker_depth, vectors)
            log(f"ranker: {len(examples)} training questions, the reader's best {ranker_depth} candidates each")
            ranker = train_ranker(examples, embedder, epochs=ranker_epochs, seed=seed, log=log)
            summary["ranker"] = {"examples": len(examples), "epochs": ranker_epochs, "depth": ranker_depth}
            ranker.save(ranker_path, base, summary | summary["ranker"])
    summary["minutes"] = round((time.perf_counter() - started) / 60, 1)
    for path in (reader_path, ranker_path):
        if path.exists():
            log(f"{path}: {path.stat().st_size / 1e6:.1f} MB")
    log(f"done in {summary['minutes']} min")
    return summary


def question_vectors(reader, embedder: Embedder, texts: list[str]) -> np.ndarray:
    """The reader's question vectors for `texts` (torch)."""
    import torch

    st = embedder.sentence_transformer()
    out = []
    with torch.inference_mode():
        for lo in range(0, len(texts), 64):
            tokens = st.tokenizer([embedder.query_prompt() + t for t in texts[lo : lo + 64]], padding=True,
                                  truncation=True, max_length=128, return_tensors="pt")
            out.append(reader(tokens["input_ids"], tokens["attention_mask"], search=False)[1].numpy())
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), np.float32)


def _fit(module, groups: list[dict], examples: list, loss, epochs: float, batch_size: int, seed: int, log) -> None:
    """AdamW with 10 % linear warm-up and linear decay over `epochs` (fractions allowed) of shuffled batches;
    `loss(batch)` is the mean listwise loss of a batch."""
    import torch

    optimiser = torch.optim.AdamW(groups, weight_decay=0.01)
    per_epoch = max(1, -(-len(examples) // batch_size))  # the last batch of an epoch may be smaller
    steps = max(1, round(epochs * per_epoch))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    module.train()
    started = time.perf_counter()
    step, total, seen = 0, 0.0, 0
    order = list(range(len(examples)))
    while step < steps:
        random.Random(seed + step // per_epoch).shuffle(order)
        for lo in range(0, len(order), batch_size):
            if step >= steps:
                break
            batch = [examples[i] for i in order[lo : lo + batch_size]]
            value = loss(batch)
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            schedule.step()
            step += 1
            total, seen = total + float(value.detach()) * len(batch), seen + len(batch)
            if step % per_epoch == 0 or step == steps:
                log(f"epoch {step / per_epoch:.2f}/{epochs}: loss {total / seen:.4f} "
                    f"({time.perf_counter() - started:.0f} s)")
                total, seen = 0.0, 0
    module.eval()


def _listwise(scores, positive: np.ndarray, temperature: float):
    """Softmax cross-entropy of the gold sentences among one question's candidates."""
    import torch

    logits = scores / temperature
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[torch.from_numpy(positive)], 0)


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def train(examples: list[Example], embedder: Embedder, epochs: float = READER_EPOCHS, batch_size: int = 16,
          lr_layers: float = 2e-5, lr_map: float = 1e-3, temperature: float = 0.05, seed: int = 13,
          split: int = READER_SPLIT, log=print):
    """Fit a `QuestionReader` on `examples`; deterministic for a seed on one machine."""
    import torch

    from .reader import QuestionReader

    _seed(seed)
    st = embedder.sentence_transformer()
    reader = QuestionReader(st[0].auto_model, split)
    prompt = embedder.query_prompt()

    def loss(batch: list[Example]):
        tokens = st.tokenizer([prompt + e.question for e in batch], padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
        _, vectors = reader(tokens["input_ids"], tokens["attention_mask"], search=False)
        return sum(_listwise(torch.from_numpy(e.vectors) @ v, e.positive, temperature)
                   for e, v in zip(batch, vectors)) / len(batch)

    _fit(reader, [{"params": reader.top.parameters(), "lr": lr_layers},
                  {"params": reader.delta.parameters(), "lr": lr_map}], examples, loss, epochs, batch_size, seed, log)
    return reader


def train_ranker(examples: list[RankExample], embedder: Embedder, epochs: float = RANKER_EPOCHS,
                 batch_size: int = 8, lr_layers: float = 6e-5, lr_map: float = 1e-3, temperature: float = 0.05,
                 seed: int = 13, split: int = RANKER_SPLIT, log=print):
    """Fit a `SentenceRanker` (initialised from e5's top layers) on `examples`; deterministic for a seed."""
    import torch

    from .reader import SentenceRanker

    _seed(seed)
    ranker = SentenceRanker(embedder.sentence_transformer()[0].auto_model, split)

    def loss(batch: list[RankExample]):
        scores = _pair_scores(ranker, [e.question for e in batch for _ in e.sentences],
                              [s for e in batch for s in e.sentences])
        total, i = 0, 0
        for e in batch:
            total = total + _listwise(scores[i : i + len(e.sentences)], e.positive, temperature)
            i += len(e.sentences)
        return total / len(batch)

    _fit(ranker, [{"params": ranker.top.parameters(), "lr": lr_layers},
                  {"params": ranker.delta.parameters(), "lr": lr_map}], examples, loss, epochs, batch_size, seed, log)
    return ranker


def _pair_scores(ranker, questions: list[np.ndarray], sentences: list[np.ndarray], chunk: int = 16):
    """The ranker's scores for (question, sentence) pairs, run in chunks of pairs of similar length: padding a
    whole batch to its longest pair doubled the tokens the ranker reads (x2.03; chunks of 16: x1.36)."""
    import torch

    order = sorted(range(len(sentences)), key=lambda i: len(questions[i]) + len(sentences[i]))
    scores = [None] * len(order)
    for lo in range(0, len(order), chunk):
        part = order[lo : lo + chunk]
        arrays = pair_batch([questions[i] for i in part], [sentences[i] for i in part])
        for i, score in zip(part, ranker(*(torch.from_numpy(a) for a in arrays))):
            scores[i] = score
    return torch.stack(scores)


def top1(examples: list[Example], vectors: np.ndarray) -> float:
    """Share of examples whose best-scoring candidate holds the answer, for question vectors `vectors`."""
    hits = [e.positive[int(np.argmax(e.vectors @ v))] for e, v in zip(examples, vectors)]
    return float(np.mean(hits)) if hits else 0.0
