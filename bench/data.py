"""Real corpora from ../shared for benchmarks and tests, written out as seeds folders so ingestion runs for real."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rag.newsqa import article_file, article_text, gnad_rows, shared_dir
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_dir()
GNAD = SHARED / "data" / "10kgnad" / "test.csv"
XQUAD = SHARED / "data" / "xquad-de" / "xquad.de.dev.json"
SEED = ROOT / "seeds" / "000_51d543a782ed1e65.txt"
WORK = ROOT / "bench" / ".work"  # the benchmark index over 10kGNAD, shared by build, query and load


def gnad_settings() -> Settings:
    return replace(Settings(), seeds_dir=WORK / "seeds", index_dir=WORK / "index")


def gnad_articles(limit: int | None = None) -> list[tuple[str, str]]:
    """(label, text) rows of 10kGNAD's test split (`label;'text'`)."""
    return gnad_rows(SHARED)[:limit]


def write_gnad_seeds(folder: Path, rows: list[tuple[str, str]], start: int = 0) -> list[Path]:
    """One file per article. 10kGNAD has no dates, so the files have no date line (the loader notes that)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (label, text) in enumerate(rows, start=start):
        path = folder / article_file(i, label)
        path.write_text(article_text(text), encoding="utf-8")
        paths.append(path)
    return paths
