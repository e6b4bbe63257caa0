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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that need the embedding model are slow: mark them so `-m "not model"` gives a quick run."""
    for item in items:
        if {"embedder", "torch_embedder", "engine"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "seeds").mkdir()
    return Settings(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder.for_settings(Settings())


@pytest.fixture(scope="session")
def torch_embedder() -> Embedder:
    """The bundled model on sentence-transformers: training, and the reference the ONNX runtime must match."""
    return Embedder.for_settings(Settings(runtime="torch"))


@pytest.fixture(scope="session")
def gnad_rows() -> list[tuple[str, str]]:
    """Twelve real 10kGNAD articles; without ../shared, twelve composed ones so the build tests still run."""
    return gnad_articles(12) if GNAD.exists() else _composed_articles(12)


def _composed_articles(n: int) -> list[tuple[str, str]]:
    """Deterministic German news-like articles of realistic length (about 2,500 characters each)."""
    cities = ["Wien", "Graz", "Linz", "Salzburg", "Innsbruck", "Klagenfurt"]
    topics = [("Wirtschaft", "die Inflation"), ("Sport", "die Meisterschaft"), ("Inland", "die Pensionsreform"),
              ("Kultur", "das Filmfestival"), ("Wissenschaft", "die Klimastudie"), ("Web", "der Datenschutz")]
    rows = []
    for i in range(n):
        label, topic = topics[i % len(topics)]
        paragraphs = [
            f"In {cities[(i + j) % len(cities)]} wurde am Dienstag über {topic} beraten. "
            f"Nach Angaben der Veranstalter nahmen {120 + 7 * i + j} Personen teil. "
            f"Ein Sprecher sagte, man sei mit dem Ergebnis der {j + 1}. Runde zufrieden, "
            f"doch viele Fragen seien weiter offen."
            for j in range(8)
        ]
        rows.append((label, "\n\n".join(paragraphs)))
    return rows


# Two dated articles written for the tests: one to filter by date and source, one quoting HTML that must
# be shown as text (a security story is exactly where such snippets appear in real news).
ENERGY = """date 2024-03-15 Die Strompreise für Haushalte sind im Februar deutlich gesunken.

Nach Angaben des Vergleichsportals zahlen Neukunden im Schnitt 27 Cent pro Kilowattstunde. Ein Jahr zuvor waren es noch 41 Cent.

Verbraucherschützer raten dazu, alte Verträge zu prüfen. "Wer wechselt, spart oft mehrere hundert Euro im Jahr", sagte die Sprecherin der Verbraucherzentrale.
"""
HTML_STORY = """date 2024-05 Eine Sicherheitslücke in einem Gästebuch-Plugin erlaubt das Einschleusen von Skripten.

Angreifer konnten Einträge wie <script>alert("gehackt")</script> speichern, die beim Lesen ausgeführt wurden. Auch der Eintrag <img src=x onerror=alert(1)> löste den Fehler aus.

Der Hersteller hat die Lücke nach eigenen Angaben inzwischen geschlossen.
"""


def small_corpus(folder: Path, gnad_rows: list[tuple[str, str]], n: int = 4) -> None:
    """The seed article plus `n` real 10kGNAD articles."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, folder / SEED.name)
    write_gnad_seeds(folder, gnad_rows[:n])


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Engine:
    """A built index over the seed and (when ../shared is there) four 10kGNAD articles, for read-only tests."""
    root = tmp_path_factory.mktemp("corpus")
    small_corpus(root / "seeds", gnad_articles(4) if GNAD.exists() else [])
    (root / "seeds" / "100_strompreise.txt").write_text(ENERGY, encoding="utf-8")
    (root / "seeds" / "101_sicherheitsluecke.txt").write_text(HTML_STORY, encoding="utf-8")
    e = Engine(replace(Settings(), seeds_dir=root / "seeds", index_dir=root / "index"), embedder)
    e.build()
    return e
