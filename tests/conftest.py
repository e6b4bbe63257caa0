"""Shared fixtures. The embedding model is loaded once per session (materialised into the user cache)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from bench.data import GNAD, SEED, gnad_articles, write_gnad_seeds
from rag.embedding import Embedder
from rag.engine import Engine
from rag.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "seeds").mkdir()
    return Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    s = Settings()
    return Embedder(s.model, s.model_cache, s.batch_size)


@pytest.fixture(scope="session")
def gnad_rows() -> list[tuple[str, str]]:
    if not GNAD.exists():
        pytest.skip(f"10kGNAD not found at {GNAD} (set RAG_SHARED_DIR)")
    return gnad_articles(12)


def small_corpus(folder: Path, gnad_rows: list[tuple[str, str]], n: int = 4) -> None:
    """The seed article plus `n` real 10kGNAD articles."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, folder / SEED.name)
    write_gnad_seeds(folder, gnad_rows[:n])


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, gnad_rows) -> Engine:
    """A built index over the seed and four 10kGNAD articles, shared by read-only tests."""
    root = tmp_path_factory.mktemp("corpus")
    small_corpus(root / "seeds", gnad_rows)
    e = Engine(replace(Settings(), seeds_dir=root / "seeds", index_dir=root / "index"), embedder)
    e.build()
    return e
