"""Train the answer reader (rag/reader.py) on the news QA train split: `rag train-reader`.

For every training question the product itself retrieves passages and lists
the candidate sentences the composer would choose from, with the sentence
vectors stored in the index; the sentence holding the gold answer is the
positive, every other candidate a hard negative. The loss is a listwise
softmax over each question's candidates, so the reader learns exactly the
decision it makes at question time. Fixed seed, CPU, minutes.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .bundled import BUNDLED_MODEL
from .embedding import READER_WEIGHTS, Embedder, model_fingerprint
from .engine import Engine
from .evaluation import Question, load, write_seeds
from .settings import Settings


@dataclass(frozen=True)
class Example:
    """One question with its candidate sentences (stored vectors) and which of them hold the answer."""

    question: str
    vectors: np.ndarray  # (candidates, dim), the index's late-chunked sentence vectors
    positive: np.ndarray  # (candidates,) bool
    texts: tuple[str, ...] = ()  # the candidate sentences


def candidate_examples(engine: Engine, questions: list[Question], k: int) -> list[Example]:
    """The composer's own candidate lists for answerable `questions`; questions whose answer is in no
    candidate are left out (retrieval missed it: nothing for a reader to learn there)."""
    retriever, composer = engine.components()
    examples = []
    for q in questions:
        if q.article is None:
            continue
        query = retriever.query(q.text)
        passages = retriever.retrieve(query, k=k)
        candidates = composer.candidates(query, passages)
        gold = [" ".join(a.split()) for a in q.answers]
        positive = np.array([c.passage.article.id == q.article and any(g in " ".join(c.text.split()) for g in gold)
                             for c in candidates], dtype=bool)
        if positive.any() and not positive.all():
            examples.append(Example(q.text, np.stack([c.vector for c in candidates]).astype(np.float32), positive,
                                    tuple(c.text for c in candidates)))
    return examples


def build_examples(file: Path, settings: Settings, embedder: Embedder, k: int,
                   work_dir: Path | None = None) -> list[Example]:
    """Index the file's own articles (no distractors: nothing outside the training split is read) with the
    product's build, and collect each question's candidates as the composer sees them."""
    articles, questions = load(file, distractors=0)
    with tempfile.TemporaryDirectory(prefix="rag-train-", dir=work_dir) as tmp:
        write_seeds(articles, Path(tmp) / "seeds")
        s = replace(settings, seeds_dir=Path(tmp) / "seeds", index_dir=Path(tmp) / "index", reader=False)
        engine = Engine(s, embedder)
        engine.build(progress=True)
        return candidate_examples(engine, questions, k)


def run(train_file: Path, settings: Settings, out: Path = READER_WEIGHTS, epochs: int = 5, seed: int = 13,
        limit: int | None = None, log=print) -> dict:
    """`rag train-reader`: examples from `train_file`, training, weights written to `out`; returns a summary."""
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.perf_counter()
    embedder = Embedder.for_settings(replace(settings, runtime="torch"))  # gradients need torch
    if settings.model != BUNDLED_MODEL:
        raise ValueError("the reader is trained for the bundled model only")
    examples = build_examples(train_file, settings, embedder, k=settings.sources)[:limit]
    log(f"{len(examples)} training questions with the answer among their candidates "
        f"({time.perf_counter() - started:.0f} s)")
    reader = train(examples, embedder, epochs=epochs, seed=seed, log=log)
    summary = {"train_file": str(train_file), "examples": len(examples), "epochs": epochs, "seed": seed,
               "candidates_per_question": round(float(np.mean([len(e.positive) for e in examples])), 1),
               "minutes": round((time.perf_counter() - started) / 60, 1)}
    reader.save(out, model_fingerprint(settings.model), summary)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) in {summary['minutes']} min")
    return summary


def train(examples: list[Example], embedder: Embedder, epochs: int = 5, batch_size: int = 16, lr_layers: float = 2e-5,
          lr_map: float = 1e-3, temperature: float = 0.05, seed: int = 13, split: int = 8, log=print):
    """Fit a `QuestionReader` on `examples`; deterministic for a seed on one machine."""
    import torch

    from .reader import QuestionReader

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    st = embedder.sentence_transformer()
    reader = QuestionReader(st[0].auto_model, split)
    optimiser = torch.optim.AdamW([{"params": reader.top.parameters(), "lr": lr_layers},
                                   {"params": reader.delta.parameters(), "lr": lr_map}], weight_decay=0.01)
    steps = epochs * ((len(examples) + batch_size - 1) // batch_size)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    prompt = embedder.query_prompt()
    order = list(range(len(examples)))
    reader.train()
    started = time.perf_counter()
    for epoch in range(epochs):
        random.Random(seed + epoch).shuffle(order)
        total = 0.0
        for lo in range(0, len(order), batch_size):
            batch = [examples[i] for i in order[lo : lo + batch_size]]
            tokens = st.tokenizer([prompt + e.question for e in batch], padding=True, truncation=True,
                                  max_length=128, return_tensors="pt")
            _, vectors = reader(tokens["input_ids"], tokens["attention_mask"], search=False)
            loss = torch.zeros(())
            for e, v in zip(batch, vectors):
                logits = torch.from_numpy(e.vectors) @ v / temperature
                positive = torch.from_numpy(e.positive)
                loss = loss + torch.logsumexp(logits, 0) - torch.logsumexp(logits[positive], 0)
            loss = loss / len(batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        log(f"epoch {epoch + 1}/{epochs}: loss {total / max(len(examples), 1):.4f} "
            f"({time.perf_counter() - started:.0f} s)")
    return reader.eval()


def top1(examples: list[Example], vectors: np.ndarray) -> float:
    """Share of examples whose best-scoring candidate holds the answer, for question vectors `vectors`."""
    hits = [e.positive[int(np.argmax(e.vectors @ v))] for e, v in zip(examples, vectors)]
    return float(np.mean(hits)) if hits else 0.0
