"""The bundled model on ONNX Runtime (int8, float32) against the torch path, side by side in one run: full build
throughput on 10kGNAD, a whole `rag build` process after adding one article to that index, a cold `rag ask` on
the seed index, and the memory of `rag serve` answering four concurrent users.

    python -m bench.runtime [--limit N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.data import ROOT, SEED, WORK, gnad_articles, write_gnad_seeds
from bench.load import _level, served
from bench.questions import benchmark_questions
from bench.report import save, table

RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="articles (default: all 1,028)")
    parser.add_argument("--seconds", type=float, default=15.0, help="load duration per runtime for serving RSS")
    parser.add_argument("--worker", nargs=3, metavar=("RUNTIME", "SEEDS", "INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _build_worker(*args.worker)
    rows = gnad_articles()
    extra, rows = rows[-1], rows[:-1][: args.limit] if args.limit else rows[:-1]
    base = WORK / "runtime"
    shutil.rmtree(base, ignore_errors=True)
    folders = {rt: base / rt for rt in RUNTIMES}
    results: dict[str, dict] = {rt: {} for rt in RUNTIMES}

    for rt, folder in folders.items():  # full build, each in its own process (model loaded first, not timed)
        write_gnad_seeds(folder / "seeds", rows)
        out = _run([sys.executable, "-m", "bench.runtime", "--worker", rt, str(folder / "seeds"), str(folder / "index")])
        results[rt].update(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{rt}: full build {results[rt]['chunks_per_s']:.1f} chunks/s", flush=True)

    for rt, folder in folders.items():  # what a user waits for after dropping one article into seeds/
        write_gnad_seeds(folder / "seeds", [extra], start=len(rows))
        results[rt]["add_1_article_process_s"] = _timed(["build", "--runtime", rt, "--seeds", str(folder / "seeds"),
                                                         "--index", str(folder / "index")])

    question = "Was sagte Stoltenberg zum NATO-Beitritt?"
    seed_dirs = {rt: base / f"seed-{rt}" for rt in RUNTIMES}
    for rt, folder in seed_dirs.items():
        (folder / "seeds").mkdir(parents=True)
        shutil.copy(SEED, folder / "seeds")
        _timed(["build", "--runtime", rt, "--seeds", str(folder / "seeds"), "--index", str(folder / "index")])
    cold: dict[str, list[float]] = {rt: [] for rt in RUNTIMES}
    for _ in range(3):  # interleaved, so drift on a noisy machine hits every runtime alike
        for rt, folder in seed_dirs.items():
            cold[rt].append(_timed(["ask", "--runtime", rt, "--index", str(folder / "index"), question]))
    for rt in RUNTIMES:
        results[rt]["cold_ask_s"] = float(np.median(cold[rt]))

    questions = benchmark_questions(200)
    for rt, folder in folders.items():
        results[rt].update(_serve(rt, folder / "index", questions, args.seconds))

    torch = results["torch"]
    rows_out = []
    for rt in RUNTIMES:
        r = results[rt]
        r["throughput_vs_torch"] = r["chunks_per_s"] / torch["chunks_per_s"]
        rows_out.append({"runtime": rt, "build chunks/s": r["chunks_per_s"], "× torch": r["throughput_vs_torch"],
                         "build peak RSS MB": r["peak_rss_mb"], "add 1 article s": r["add_1_article_process_s"],
                         "cold ask s": r["cold_ask_s"], "serve RSS MB": r["serve_peak_rss_mb"],
                         "serve p50 ms": r["serve_p50_ms"], "errors": r["serve_errors"]})
    print(table(rows_out, list(rows_out[0])))
    save("runtime", {"runtimes": results, "articles": len(rows) + 1, "serve_seconds": args.seconds,
                     "serve_clients": 4, "cold_ask_runs": cold})


def _build_worker(runtime: str, seeds: str, index: str) -> None:
    """Full build in this process with the model already loaded; prints its figures as JSON."""
    from dataclasses import replace

    from bench.report import peak_rss_mb
    from rag.engine import Engine
    from rag.settings import Settings

    engine = Engine(replace(Settings(), runtime=runtime, seeds_dir=Path(seeds), index_dir=Path(index)))
    engine.embedder.encode_queries(["Aufwärmen"])
    report = engine.build()
    print(json.dumps({"chunks": report.chunks, "build_s": report.seconds, "chunks_per_s": report.chunks / report.seconds,
                      "peak_rss_mb": peak_rss_mb()}))


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=ENV)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return out


def _timed(rag_args: list[str]) -> float:
    """Process start to exit of one `rag` command."""
    started = time.perf_counter()
    _run([sys.executable, "-m", "rag.cli", *rag_args])
    return time.perf_counter() - started


def _serve(runtime: str, index: Path, questions: list[str], seconds: float) -> dict:
    with served(index, "--runtime", runtime) as (url, rss):
        level = _level(url, 4, seconds, questions)
    return {"serve_peak_rss_mb": rss.peak_mb, "serve_p50_ms": level["p50 ms"], "serve_errors": level["errors"],
            "serve_requests": level["requests"]}


if __name__ == "__main__":
    main()
