"""Full build over 10kGNAD's 1,028 articles vs the raw model runtime on the same chunks; incremental updates.

    python -m bench.build [--limit N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import shutil
import time
from pathlib import Path

from bench.data import ROOT, WORK, gnad_articles, gnad_settings, write_gnad_seeds
from bench.report import peak_rss_mb, save, table
from rag import store
from rag.embedding import Embedder
from rag.engine import Engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="articles (default: all 1,028)")
    args = parser.parse_args()
    rows = gnad_articles()
    extra, rows = rows[-1], rows[:-1][: args.limit] if args.limit else rows[:-1]  # one held back to "add"

    shutil.rmtree(WORK, ignore_errors=True)
    settings = gnad_settings()  # the index stays in bench/.work for the query and load benchmarks
    write_gnad_seeds(settings.seeds_dir, rows)
    embedder = Embedder.for_settings(settings)
    t = time.perf_counter()
    embedder.encode_queries(["Aufwärmen"])
    model_load = time.perf_counter() - t
    engine = Engine(settings, embedder)

    full = engine.build()
    build_rss = peak_rss_mb()
    texts = sorted((c.embed_text for c in store.load(settings.index_dir).chunks), key=len)  # the chunks just indexed
    t = time.perf_counter()
    for lo in range(0, len(texts), settings.batch_size):  # the runtime alone, batched by length as the build does
        embedder.backend.passages(texts[lo : lo + settings.batch_size])
    raw = time.perf_counter() - t

    steps = {"no-op rebuild": lambda: None,
             "add 1 article": lambda: write_gnad_seeds(settings.seeds_dir, [extra], start=len(rows)),
             "change 1 article": lambda: _append(settings.seeds_dir, "Nachtrag: Die Redaktion hat den Artikel ergänzt."),
             "delete 1 article": lambda: _delete_one(settings.seeds_dir)}
    incremental = []
    for name, change in steps.items():
        change()
        report = engine.build()
        incremental.append({"step": name, "seconds": report.seconds, "embedded": report.chunks_embedded,
                            "articles": report.articles})

    # what a user waits for: a fresh `rag build` process after dropping one article into seeds/
    (settings.seeds_dir / "neu.txt").write_text("date 2026-11 " + rows[0][1], encoding="utf-8")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "rag.cli", "build", "--seeds", str(settings.seeds_dir),
                          "--index", str(settings.index_dir)], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    cold_add = time.perf_counter() - t
    assert out.returncode == 0, out.stderr
    t = time.perf_counter()  # the part of that which is starting Python and loading the model
    subprocess.run([sys.executable, "-c", "from rag.embedding import Embedder; from rag.settings import Settings; "
                    "s = Settings(); Embedder(s.model, s.model_cache).encode_queries(['x'])"],
                   check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    startup = time.perf_counter() - t

    result = {
        "articles": full.articles, "chunks": full.chunks,
        "full_build_s": full.seconds, "chunks_per_s": full.chunks / full.seconds,
        "raw_encode_s": raw, "raw_chunks_per_s": len(texts) / raw,
        "build_vs_raw": (full.chunks / full.seconds) / (len(texts) / raw),
        "peak_rss_mb": build_rss, "model_load_s": model_load,
        "incremental": incremental,
        "add_1_article_new_process_s": cold_add, "process_start_and_model_load_s": startup, "add_1_article_new_process_output": out.stdout.strip(),
    }
    print(table([{"articles": result["articles"], "chunks": result["chunks"], "full build s": result["full_build_s"],
                  "chunks/s": result["chunks_per_s"], "raw encode chunks/s": result["raw_chunks_per_s"],
                  "build / raw": result["build_vs_raw"], "peak RSS MB": result["peak_rss_mb"]}],
                ["articles", "chunks", "full build s", "chunks/s", "raw encode chunks/s", "build / raw", "peak RSS MB"]))
    print()
    print(table(incremental + [{"step": "add 1 article, new `rag build` process (incl. model load)",
                                "seconds": cold_add}], ["step", "seconds", "embedded", "articles"]))
    print(f"of which process start + model load: {startup:.1f} s (model load in a running process: {model_load:.1f} s)")
    save("build", result)


def _append(folder: Path, line: str) -> None:
    path = next(folder.glob("gnad_0000_*.txt"))
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line + "\n", encoding="utf-8")


def _delete_one(folder: Path) -> None:
    next(folder.glob("gnad_0001_*.txt")).unlink()


if __name__ == "__main__":
    main()
