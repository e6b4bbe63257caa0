"""`ask()` latency on the full 10kGNAD index (200 questions), cold start, and memory.

    python -m bench.query      (builds bench/.work/index first if `python -m bench.build` has not)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    engine = ensure_index()
    questions = benchmark_questions(200)
    settings = engine.settings
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "--index", str(settings.index_dir), questions[0]],
                         capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    cold = time.perf_counter() - t
    assert out.returncode == 0, out.stderr

    engine.ask("Aufwärmen")  # model and index loaded, as in a running app
    totals, parts = [], {"embed": [], "retrieve": [], "compose": []}
    declined = 0
    for q in questions:
        answer = engine.ask(q)
        totals.append(answer.timings_ms["total"])
        for k in parts:
            parts[k].append(answer.timings_ms[k])
        declined += answer.declined
    p50, p95, p99 = (float(np.percentile(totals, q)) for q in (50, 95, 99))
    status = engine.status()
    result = {
        "articles": status.articles, "chunks": status.chunks, "questions": len(questions),
        "p50_ms": p50, "p95_ms": p95, "p99_ms": p99,
        "mean_ms": {k: float(np.mean(v)) for k, v in parts.items()},
        "declined": declined / len(questions),
        "cold_start_s": cold, "peak_rss_mb": peak_rss_mb(),
    }
    print(table([{"chunks": status.chunks, "questions": len(questions), "p50 ms": p50, "p95 ms": p95, "p99 ms": p99,
                  "cold start s": cold, "peak RSS MB": result["peak_rss_mb"]}],
                ["chunks", "questions", "p50 ms", "p95 ms", "p99 ms", "cold start s", "peak RSS MB"]))
    print("mean per stage (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in result["mean_ms"].items()))
    save("query", result)


if __name__ == "__main__":
    main()
