"""The common LangChain recipe, run in the baseline venv (no `rag` import): FAISS.from_documents over
HuggingFaceEmbeddings, then similarity_search. Reads a job JSON, writes timings and rankings as JSON.

    <baseline python> bench/langchain_recipe.py job.json result.json
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from langchain_community.vectorstores import FAISS  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_huggingface import HuggingFaceEmbeddings  # noqa: E402


def docs(chunks: list[dict]) -> list[Document]:
    return [Document(page_content=c["text"], metadata={"article": c["article"]}) for c in chunks]


def main(job_file: str, out_file: str) -> None:
    job = json.load(open(job_file, encoding="utf-8"))
    t = time.perf_counter()
    embeddings = HuggingFaceEmbeddings(model_name=job["model_path"], model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True, "batch_size": 32})
    embeddings.embed_query("Aufwärmen")
    model_load = time.perf_counter() - t

    t = time.perf_counter()
    db = FAISS.from_documents(docs(job["gnad"]["chunks"]), embeddings)
    build = time.perf_counter() - t
    # adding an article the usual way: rebuild the whole store from all documents
    t = time.perf_counter()
    db = FAISS.from_documents(docs(job["gnad"]["chunks"] + job["gnad"]["extra"]), embeddings)
    add_one = time.perf_counter() - t

    latencies = []
    for q in job["queries"]:
        t = time.perf_counter()
        db.similarity_search(q, k=5)
        latencies.append((time.perf_counter() - t) * 1000)

    xquad = FAISS.from_documents(docs(job["xquad"]["chunks"]), embeddings)
    rankings = [[d.metadata["article"] for d in xquad.similarity_search(q, k=20)] for q in job["xquad"]["questions"]]
    json.dump({"model_load_s": model_load, "full_build_s": build, "add_1_article_s": add_one,
               "chunks": len(job["gnad"]["chunks"]), "query_ms": latencies, "xquad_rankings": rankings,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
              open(out_file, "w", encoding="utf-8"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
