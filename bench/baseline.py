"""Ours vs the common LangChain recipe, same machine, same model folder, same chunks, one run.

    python -m bench.baseline [--python PATH]   (default: creates bench/.venv-baseline from requirements-baseline.txt)

Our full build is timed here, right before LangChain's, because build throughput drifts by 10-20 % over
minutes on these machines; our add-one figure comes from bench/results/build.json, so run
`python -m bench.build` first (`python -m bench` runs everything in order).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.data import ROOT, XQUAD
from bench.query import ensure_index
from bench.questions import benchmark_questions
from bench.report import load_results, save, table
from rag import evaluation, store
from rag.bundled import materialize
from rag.engine import Engine
from rag.settings import Settings

VENV = ROOT / "bench" / ".venv-baseline"


def baseline_python() -> Path:
    """The baseline venv's interpreter, created on first use (pip, so torch comes from the local CPU build)."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(ROOT / "bench" / "requirements-baseline.txt")],
                       check=True)
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--python", help="interpreter with the baseline packages installed")
    args = parser.parse_args()
    python = Path(args.python) if args.python else baseline_python()

    engine = ensure_index()
    gnad = store.load(engine.settings.index_dir)
    held_back = gnad.chunks[-1].article_id  # the baseline "adds" this article by rebuilding
    questions = benchmark_questions(200)
    paragraphs, squad = evaluation.load_squad(XQUAD)

    with tempfile.TemporaryDirectory(prefix="rag-baseline-") as tmp:
        evaluation.write_seeds(paragraphs, Path(tmp) / "seeds")
        xsettings = replace(Settings(), seeds_dir=Path(tmp) / "seeds", index_dir=Path(tmp) / "index")
        xengine = Engine(xsettings, engine.embedder)
        xengine.build()
        ours_quality = evaluation.evaluate(xengine, squad)
        dense_quality = evaluation.evaluate(Engine(replace(xsettings, retrieval="dense"), engine.embedder), squad)
        xchunks = store.load(xsettings.index_dir).chunks

        job = {
            "model_path": str(materialize(Settings().model_cache)),
            "gnad": {"chunks": [{"text": c.embed_text, "article": c.article_id} for c in gnad.chunks if c.article_id != held_back],
                     "extra": [{"text": c.embed_text, "article": c.article_id} for c in gnad.chunks if c.article_id == held_back]},
            "queries": questions,
            "xquad": {"chunks": [{"text": c.embed_text, "article": c.article_id} for c in xchunks],
                      "questions": [q.text for q in squad]},
        }
        ours_build = Engine(replace(engine.settings, index_dir=Path(tmp) / "gnad-index"), engine.embedder).build()
        job_file, out_file = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job_file.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
        subprocess.run([str(python), str(ROOT / "bench" / "langchain_recipe.py"), str(job_file), str(out_file)],
                       check=True)
        lc = json.loads(out_file.read_text(encoding="utf-8"))

    search_ms = []
    for q in questions:
        t = time.perf_counter()
        engine.search(q, k=5)
        search_ms.append((time.perf_counter() - t) * 1000)
    lc_quality = evaluation.passage_metrics(lc["xquad_rankings"], [q.article for q in squad])
    build = load_results("build")
    add_one = next((r["seconds"] for r in build.get("incremental", []) if r["step"] == "add 1 article"), None)
    query = load_results("query")

    def row(metric: str, ours: float | None, base: float | None, better: str) -> dict:
        ratio = ours / base if ours is not None and base else None
        return {"metric": metric, "ours": ours, "LangChain": base, "ours / LangChain": ratio, "better": better}

    rows = [
        row("full build, chunks/s", ours_build.chunks_embedded / ours_build.seconds, lc["chunks"] / lc["full_build_s"],
            "higher"),
        row("add 1 article, s (LangChain rebuilds)", add_one, lc["add_1_article_s"], "lower"),
        row("search p50 ms (embed + retrieve)", float(np.percentile(search_ms, 50)),
            float(np.percentile(lc["query_ms"], 50)), "lower"),
        row("search p95 ms", float(np.percentile(search_ms, 95)), float(np.percentile(lc["query_ms"], 95)), "lower"),
        row("ask() p50 ms (incl. answer)", query.get("p50_ms"), None, "lower"),
        *(row(f"XQuAD-de {m}", ours_quality["passage"][m], lc_quality[m], "higher") for m in ("R@1", "R@5", "MRR@10")),
        *(row(f"XQuAD-de {m}, our dense only", dense_quality["passage"][m], lc_quality[m], "higher")
          for m in ("R@1", "MRR@10")),
    ]
    print(table(rows, ["metric", "ours", "LangChain", "ours / LangChain", "better"]))
    save("baseline", {"rows": rows, "langchain": {k: v for k, v in lc.items() if k not in ("xquad_rankings", "query_ms")},
                      "ours_xquad": ours_quality, "ours_dense_xquad": dense_quality, "langchain_xquad": lc_quality})


if __name__ == "__main__":
    main()
