"""Measure retrieval and answers on a SQuAD-format file or our news QA set, through the real build and ask path.

SQuAD: each paragraph of the file becomes one article in a temporary seeds
folder. News QA (data/news-qa): the questions' 10kGNAD articles and the seed
article, plus distractor articles, are written from ../shared. A question's
passage is relevant when it comes from the article that holds its gold answer;
unanswerable questions (news QA) should be declined. Calibration asks every
SQuAD question against an index of the *other* half of the articles too, where
it has no answer, to set the confidence below which `ask()` declines.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import Embedder
from .engine import Engine
from .settings import Settings


@dataclass(frozen=True)
class Question:
    text: str
    answers: tuple[str, ...]
    article: str | None  # id of the seed file holding its answer; None when no article answers it


def load(path: Path, distractors: int = 300) -> tuple[dict[str, str], list[Question]]:
    """Article texts by seed file id, and the questions, from a SQuAD file or a news QA file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        return load_news(path, distractors)
    return load_squad(path)


def load_news(path: Path, distractors: int = 300, seed: int = 0) -> tuple[dict[str, str], list[Question]]:
    """A news QA file's articles (from ../shared) plus `distractors` other non-reserved 10kGNAD articles."""
    from . import newsqa

    records = newsqa.load(path)
    corpus = newsqa.Corpus()
    rows = list(dict.fromkeys(r.row for r in records if r.row is not None))
    asked = set(rows)
    others = [i for i in range(len(corpus.rows)) if i not in corpus.reserved and i not in asked]
    rows += sorted(random.Random(seed).sample(others, min(distractors, len(others))))
    articles = dict(corpus.file(row) for row in rows)
    questions = [Question(r.question, (r.answer,) if r.answer else (), corpus.file(r.row)[0] if r.row is not None else None)
                 for r in records]
    return articles, questions


def load_squad(path: Path) -> tuple[dict[str, str], list[Question]]:
    """Paragraph texts by article id, and the questions, from a SQuAD v1 file."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise ValueError(f"{path} is not a SQuAD-format file (no top-level 'data' list) nor a news QA file")
    paragraphs: dict[str, str] = {}
    questions: list[Question] = []
    try:
        for a, entry in enumerate(data["data"]):
            for p, para in enumerate(entry.get("paragraphs", [])):
                article_id = f"{a:03d}/{p:03d}.txt"
                paragraphs[article_id] = para["context"]
                for qa in para.get("qas", []):
                    answers = tuple(x["text"] for x in qa.get("answers", []) if x.get("text"))
                    if answers:
                        questions.append(Question(qa["question"], answers, article_id))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path} is not a SQuAD-format file: an entry lacks {err}") from None
    return paragraphs, questions


def write_seeds(articles: dict[str, str], folder: Path) -> None:
    for article_id, text in articles.items():
        path = folder / article_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def evaluate(engine: Engine, questions: list[Question]) -> dict[str, Any]:
    """Ask every question; return figures in the harness's JSON shape.

    Answer figures cover answerable questions; unanswerable ones (if any) only
    report how many were declined, as they should be.
    """
    rankings: list[list[str]] = []
    first_hit = any_hit = declined = 0.0
    latencies = []
    unanswerable = [q for q in questions if q.article is None]
    questions = [q for q in questions if q.article is not None]
    for q in questions:
        rankings.append([p.article.id for p in engine.search(q.text, k=max(engine.settings.rerank_depth, 10))])

        started = time.perf_counter()
        answer = engine.ask(q.text)
        latencies.append((time.perf_counter() - started) * 1000)
        declined += answer.declined
        texts = [" ".join(s.text.split()) for s in answer.sentences]
        gold = [" ".join(a.split()) for a in q.answers]
        first_hit += bool(texts) and any(g in texts[0] for g in gold)
        any_hit += any(g in t for g in gold for t in texts)
    total = max(len(questions), 1)
    result = {
        "reader": engine.embedder.reader_fingerprint if engine.settings.reader else None,
        "questions": len(questions),
        "passage": passage_metrics(rankings, [q.article for q in questions]),
        "answer": {"first_sentence_hit": first_hit / total, "answer_hit": any_hit / total, "declined": declined / total},
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
    }
    if unanswerable:
        result["unanswerable"] = {
            "questions": len(unanswerable),
            "declined": sum(engine.ask(q.text).declined for q in unanswerable) / len(unanswerable),
        }
    return result


def passage_metrics(rankings: list[list[str]], gold: list[str], depth: int = 10) -> dict[str, float]:
    """R@1, R@5, MRR@10 and nDCG@10 of article rankings (best first) against one relevant article each.

    Shared with the benchmarks, so the baseline is scored by exactly the same rules.
    """
    r1 = r5 = mrr = ndcg = 0.0
    for ranking, relevant in zip(rankings, gold):
        top = list(dict.fromkeys(ranking))[:depth]
        rank = top.index(relevant) + 1 if relevant in top else None
        r1 += rank == 1
        r5 += rank is not None and rank <= 5
        mrr += 1 / rank if rank else 0
        ndcg += 1 / math.log2(rank + 1) if rank else 0
    total = max(len(gold), 1)
    return {"R@1": r1 / total, "R@5": r5 / total, "MRR@10": mrr / total, "nDCG@10": ndcg / total}


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def run(
    file: Path,
    settings: Settings,
    modes: list[str],
    embedder: Embedder | None = None,
    work_dir: Path | None = None,
    progress: bool = False,
    readers: tuple[bool, ...] = (True,),
) -> dict[str, dict[str, Any]]:
    """Build a temporary index over the file's articles and evaluate each retrieval mode, with the trained
    reader and/or without it (results named "hybrid" and "hybrid, no reader")."""
    articles, questions = load(file)
    with tempfile.TemporaryDirectory(prefix="rag-eval-", dir=work_dir) as tmp:
        seeds = Path(tmp) / "seeds"
        write_seeds(articles, seeds)
        base = replace(settings, seeds_dir=seeds, index_dir=Path(tmp) / "index")
        embedder = embedder or Embedder.for_settings(base)
        Engine(base, embedder).build(progress=progress)
        return {mode if reader else f"{mode}, no reader":
                evaluate(Engine(replace(base, retrieval=mode, reader=reader), embedder), questions)
                for mode in modes for reader in readers}


def calibrate(
    file: Path,
    settings: Settings,
    embedder: Embedder | None = None,
    work_dir: Path | None = None,
    max_declined: float = 0.02,
) -> dict[str, Any]:
    """Choose the decline threshold (`min_confidence`, or `reader_min_confidence` when `settings.reader`):
    the highest that declines at most `max_declined` of answerable questions, with how many
    unanswerable ones it declines.

    A news QA file brings its own unanswerable questions; for a SQuAD file, each question is also
    asked of an index of the *other* half of the articles, where it has no answer.
    """
    articles, questions = load(file)
    if any(q.article is None for q in questions):
        splits = [(articles, lambda q: q.article is not None)]
    else:
        groups = sorted({a.split("/")[0] for a in articles})
        halves = [set(groups[0::2]), set(groups[1::2])]
        splits = [({a: t for a, t in articles.items() if a.split("/")[0] in half},
                   lambda q, half=half: q.article.split("/")[0] in half) for half in halves]
    positives: list[float] = []
    negatives: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rag-calibrate-", dir=work_dir) as tmp:
        for h, (part, answerable) in enumerate(splits):
            seeds = Path(tmp) / f"seeds{h}"
            write_seeds(part, seeds)
            s = replace(settings, seeds_dir=seeds, index_dir=Path(tmp) / f"index{h}", min_confidence=-math.inf,
                        reader_min_confidence=-math.inf)
            embedder = embedder or Embedder.for_settings(s)
            engine = Engine(s, embedder)
            engine.build()
            for q in questions:
                (positives if answerable(q) else negatives).append(engine.ask(q.text).confidence)
    pos, neg = np.array(positives), np.array(negatives)
    threshold = decline_threshold(positives, max_declined)
    return {
        "min_confidence": threshold,
        "answerable_declined": float((pos < threshold).mean()) if len(pos) else 0.0,
        "unanswerable_declined": float((neg < threshold).mean()) if len(neg) else 0.0,
        "answerable": len(pos),
        "unanswerable": len(neg),
    }


def decline_threshold(confidences: list[float], max_declined: float) -> float:
    """The highest threshold, in 4 decimals, below which at most `max_declined` of these (answerable)
    confidences fall. Rounded down: rounding to nearest could decline one more question than promised."""
    if not confidences:
        return 0.0
    k = int(math.floor(max_declined * len(confidences)))
    return math.floor(float(np.sort(confidences)[k]) * 1e4) / 1e4


def table(results: dict[str, dict[str, Any]]) -> str:
    """One row per retrieval mode; shares as fractions, as in the JSON."""
    header = (f"{'mode':<18} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'nDCG@10':>8} {'1st-sent':>9} {'answer':>7} "
              f"{'declined':>9} {'unans.declined':>15} {'p50 ms':>7} {'p95 ms':>7}")
    rows = [header, "-" * len(header)]
    for mode, r in results.items():
        p, a, t = r["passage"], r["answer"], r["latency_ms"]
        unanswerable = f"{r['unanswerable']['declined']:>15.3f}" if "unanswerable" in r else f"{'–':>15}"
        rows.append(
            f"{mode:<18} {p['R@1']:>6.3f} {p['R@5']:>6.3f} {p['MRR@10']:>7.3f} {p['nDCG@10']:>8.3f} "
            f"{a['first_sentence_hit']:>9.3f} {a['answer_hit']:>7.3f} {a['declined']:>9.3f} {unanswerable} "
            f"{t['p50']:>7.1f} {t['p95']:>7.1f}"
        )
    first = next(iter(results.values()))
    extra = f" + {first['unanswerable']['questions']} unanswerable" if "unanswerable" in first else ""
    return "\n".join(rows) + f"\n({first['questions']} answerable questions{extra})"
