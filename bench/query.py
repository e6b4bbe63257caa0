"""`ask()` latency on the full 10kGNAD index (200 questions), cold start, and memory.

    python -m bench.query      (builds bench/.work/index first if `python -m bench.build` has not)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from bench.data import ROOT, gnad_articles, gnad_settings, write_gnad_seeds
from bench.questions import benchmark_questions
from bench.report import peak_rss_mb, save, table
from rag import store
from rag.engine import Engine


def ensure_index() -> Engine:
    settings = gnad_settings()
    if store.current_version(settings.index_dir) is None:
        write_gnad_seeds(settings.seeds_dir, gnad_articles())
    engine = Engine(settings)
    engine.build()
    return engine


def main() -> None:
    """The default engine (trained reader and ranker on), the reader without the ranker, and no reader at all,
    side by side."""
    engine = ensure_index()
    engines = {"reader + ranker": engine,
               "reader, no ranker": Engine(replace(engine.settings, rank_depth=0), engine.embedder),
               "no reader": Engine(replace(engine.settings, reader=False), engine.embedder)}
    questions = benchmark_questions(200)
    cold = {name: _cold_ask(engine.settings.index_dir, questions[0], *extra)
            for name, extra in (("default", ()), ("no reader", ("--no-reader",)), ("default ", ()))}
    cold_default = min(cold["default"], cold["default "])  # twice, to even out a warming file cache

    for e in engines.values():
        e.ask("Aufwärmen")  # model, reader and index loaded, as in a running app
    runs = {name: _Run() for name in engines}
    for q in questions:  # interleaved, so drift on a noisy machine hits all alike
        for name, e in engines.items():
            runs[name].add(e.ask(q))
    status = engine.status()
    result = {
        "articles": status.articles, "chunks": status.chunks, "questions": len(questions),
        **runs["reader + ranker"].figures(), "cold_start_s": cold_default, "peak_rss_mb": peak_rss_mb(),
        "no_ranker": runs["reader, no ranker"].figures(),
        "no_reader": {**runs["no reader"].figures(), "cold_start_s": cold["no reader"]},
    }
    rows = [{"answer sentences": name, "p50 ms": r["p50_ms"], "p95 ms": r["p95_ms"], "p99 ms": r["p99_ms"],
             "cold start s": c}
            for name, r, c in (("reader + ranker", result, cold_default),
                               ("reader, no ranker", result["no_ranker"], "–"),
                               ("no reader", result["no_reader"], cold["no reader"]))]
    print(f"{status.chunks} chunks, {len(questions)} questions, peak RSS {result['peak_rss_mb']:.0f} MB")
    print(table(rows, ["answer sentences", "p50 ms", "p95 ms", "p99 ms", "cold start s"]))
    print(f"default / no reader: p50 {result['p50_ms'] / result['no_reader']['p50_ms']:.2f}x, "
          f"cold start +{cold_default - cold['no reader']:.1f} s")
    print("mean per stage, default (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in result["mean_ms"].items()))
    save("query", result)


def _cold_ask(index_dir, question: str, *extra: str) -> float:
    """Process start to printed answer, as a user typing `rag ask` sees it."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--index", str(index_dir), *extra, question],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    return time.perf_counter() - started


class _Run:
    """Latencies and declines of one engine over the question list."""

    def __init__(self) -> None:
        self.totals: list[float] = []
        self.parts: dict[str, list[float]] = {"embed": [], "retrieve": [], "compose": []}
        self.declined = 0

    def add(self, answer) -> None:
        self.totals.append(answer.timings_ms["total"])
        for k, v in self.parts.items():
            v.append(answer.timings_ms[k])
        self.declined += answer.declined

    def figures(self) -> dict:
        p50, p95, p99 = (float(np.percentile(self.totals, q)) for q in (50, 95, 99))
        return {"p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "declined": self.declined / len(self.totals),
                "mean_ms": {k: float(np.mean(v)) for k, v in self.parts.items()}}


if __name__ == "__main__":
    main()
