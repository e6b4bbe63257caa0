"""All tunable settings in one typed place, with the defaults measured on XQuAD-de dev."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .bundled import BUNDLED_MODEL
from .chunking import SPLITTER_VERSION
from .embedding import Runtime

RetrievalMode = Literal["hybrid", "rrf", "dense", "bm25"]
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = ("hybrid", "rrf", "dense", "bm25")


def default_model_cache() -> Path:
    """Where the bundled model is materialised: $RAG_MODEL_CACHE, else the user's cache folder."""
    if os.environ.get("RAG_MODEL_CACHE"):
        return Path(os.environ["RAG_MODEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rag-news" / "models"


@dataclass(frozen=True)
class Settings:
    """One settings object drives the whole pipeline; override fields with `dataclasses.replace`."""

    seeds_dir: Path = Path("seeds")
    index_dir: Path = Path("vectorstore")

    # embedding: "bundled:multilingual-e5-small", a sentence-transformers hub name, or a local folder
    model: str = BUNDLED_MODEL
    model_cache: Path = field(default_factory=default_model_cache)
    # how the bundled model runs: ONNX Runtime int8 (default: quality gate in BENCHMARKS.md) or float32, or torch
    runtime: Runtime = "onnx-int8"
    batch_size: int = 32

    max_article_bytes: int = 1_000_000  # larger files are skipped with a message (a book, not an article)

    # chunking (part of the index manifest: changing it triggers a full rebuild)
    chunk_size: int = 500
    chunk_overlap: int = 100
    title_prefix: bool = False  # prefixing the lead's first sentence cost 1.2 points dense R@1 on XQuAD-de dev

    # retrieval
    retrieval: RetrievalMode = "hybrid"
    candidates: int = 50  # per retriever, before fusion
    rrf_k: int = 60
    rerank_depth: int = 20  # fused candidates re-scored with sentence similarity
    weight_passage: float = 0.5  # hybrid score = w_p * passage cos + w_s * best sentence cos + w_l * BM25/max
    weight_sentence: float = 0.5
    weight_lexical: float = 0.05
    sources: int = 5  # passages returned with an answer
    context_articles: int = 1  # answer sentences may come from anywhere in the best article(s) (news QA dev: 1 > 2 > 0)
    max_sources: int = 10  # the most a caller may ask for (CLI -k, UI slider, API)

    # answer composition
    reader: bool = True  # order answer sentences with the trained reader (rag/weights); False: plain e5 similarity
    rank_depth: int = 8  # with the reader: the best candidates the trained ranker re-scores (0: no ranker)
    ranker_weight: float = 0.5  # answer score = reader-based score + this * ranker cosine; chosen on news QA dev
    ranker_margin: float = 0.16  # answer_margin on that wider scale (news QA dev: 0.08 -> answer hit 0.843, 0.16 -> 0.887)
    answer_sentences: int = 4  # at most; see answer_margin
    answer_margin: float = 0.08  # a sentence joins the answer only if it scores within this of the best
    min_confidence: float = 0.89  # below: decline (no reader); `rag eval --calibrate` on XQuAD-de dev gave 0.894
    reader_min_confidence: float = 0.6226  # the same with the reader; `rag eval --calibrate` on news QA dev
    max_question_chars: int = 1000

    def chunking(self) -> dict[str, Any]:
        """The settings that shape chunks, recorded in the manifest."""
        return {
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "title_prefix": self.title_prefix,
            "splitter_version": SPLITTER_VERSION,
        }

    def command(self, name: str, *extra: str) -> str:
        """The CLI command that acts on these folders, for messages like "run `rag build --rebuild`"."""
        parts = ["rag", name, *extra]
        if Path(self.seeds_dir) != Path("seeds") and name in ("build", "serve"):
            parts += ["--seeds", str(self.seeds_dir)]
        if Path(self.index_dir) != Path("vectorstore"):
            parts += ["--index", str(self.index_dir)]
        if self.model != BUNDLED_MODEL:
            parts += ["--model", self.model]
        elif self.runtime != Settings.runtime:
            parts += ["--runtime", self.runtime]
        return " ".join(parts)
