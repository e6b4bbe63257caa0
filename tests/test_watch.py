"""The live index: `rag serve` re-indexes `seeds/` while it keeps answering."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from watchfiles import Change

from rag.app import build_ui, launch, status_line
from rag.engine import Engine
from rag.watch import IndexWatcher, _is_article_path

ENERGY = ("date 2024-03-15 Die Strompreise für Haushalte sind im Februar deutlich gesunken.\n\n"
          "Nach Angaben des Vergleichsportals zahlen Neukunden im Schnitt 27 Cent pro Kilowattstunde.\n")
TRAIN = ("date 2024-04-02 Die Bahn eröffnet eine neue Nachtzugverbindung von Wien nach Amsterdam.\n\n"
         "Der Nachtzug fährt ab Juni dreimal pro Woche und braucht für die Strecke 14 Stunden.\n")
HALLSTATT = ("date 2024-05-06 Die Gemeinde Hallstatt führt eine Abgabe für Tagesgäste ein.\n\n"
             "Tagesgäste zahlen ab Juli sieben Euro pro Person, Kinder sind befreit.\n")


def _until(condition, timeout: float = 30.0, every: float = 0.2):
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"not within {timeout:.0f} s")


@pytest.fixture
def live(settings, embedder):
    """An engine over two articles with a running watcher."""
    (settings.seeds_dir / "energie.txt").write_text(ENERGY, encoding="utf-8")
    (settings.seeds_dir / "bahn.txt").write_text(TRAIN, encoding="utf-8")
    engine = Engine(settings, embedder)
    engine.build()
    watcher = IndexWatcher(engine, settle_ms=200, retry_seconds=1.0)
    watcher.start()
    yield engine, watcher
    watcher.stop()


def test_watcher_indexes_added_changed_and_removed_files(live):
    engine, watcher = live
    seeds = engine.settings.seeds_dir
    (seeds / "hallstatt.txt").write_text(HALLSTATT, encoding="utf-8")
    _until(lambda: watcher.builds == 1)
    assert "1 neu, 0 geändert, 0 entfernt" in watcher.describe()
    assert engine.status().articles == 3
    assert "sieben Euro" in engine.ask("Wie viel zahlen Tagesgäste in Hallstatt?").sentences[0].text
    line = status_line(engine, watcher)
    assert line.startswith("Index aktualisiert um ") and "\n3 Artikel · " in line  # what changed, then the counts

    (seeds / "hallstatt.txt").write_text(HALLSTATT.replace("sieben", "zehn"), encoding="utf-8")
    _until(lambda: watcher.builds == 2)
    assert "0 neu, 1 geändert, 0 entfernt" in watcher.describe()
    assert "zehn Euro" in engine.ask("Wie viel zahlen Tagesgäste in Hallstatt?").sentences[0].text

    (seeds / "bahn.txt").unlink()
    _until(lambda: watcher.builds == 3)
    assert "0 neu, 0 geändert, 1 entfernt" in watcher.describe()
    assert engine.status().articles == 2


def test_only_article_files_and_folders_wake_the_watcher():
    assert _is_article_path(Change.added, "/s/neu.txt") and _is_article_path(Change.modified, "/s/ALT.TXT")
    assert _is_article_path(Change.deleted, "/s/ressort")  # a removed folder takes its articles along
    for other in ("/s/notiz.md", "/s/.versteckt.txt", "/s/neu.txt.swp", "/s/.git", "/s/bild.jpg"):
        assert not _is_article_path(Change.added, other), other


def test_answers_do_not_wait_for_a_build(live, monkeypatch):
    engine, watcher = live
    building, release = threading.Event(), threading.Event()
    build = engine.build

    def slow_build(**kwargs):
        building.set()
        release.wait(30)  # a long embedding run
        return build(**kwargs)

    monkeypatch.setattr(engine, "build", slow_build)
    (engine.settings.seeds_dir / "hallstatt.txt").write_text(HALLSTATT, encoding="utf-8")
    assert building.wait(30)
    assert watcher.phase == "building"
    assert status_line(engine, watcher).startswith("Index wird aktualisiert (1 geänderte Datei) …")
    started = time.monotonic()
    answer = engine.ask("Wie viel zahlen Neukunden für Strom?")  # from the index as it was
    assert time.monotonic() - started < 10 and "27 Cent" in answer.sentences[0].text
    release.set()
    _until(lambda: watcher.phase == "done")
    assert "sieben Euro" in engine.ask("Wie viel zahlen Tagesgäste in Hallstatt?").sentences[0].text


def test_a_build_elsewhere_is_waited_for_not_lost(live):
    from rag import store

    engine, watcher = live
    with store.build_lock(engine.settings.index_dir):  # `rag build` in another terminal
        (engine.settings.seeds_dir / "hallstatt.txt").write_text(HALLSTATT, encoding="utf-8")
        _until(lambda: watcher.phase == "waiting")
        assert "Ein anderer Build läuft" in watcher.describe()
    _until(lambda: watcher.builds == 1)  # retried every second
    assert engine.status().articles == 3


def test_a_build_that_would_empty_the_index_is_refused_and_said(live):
    engine, watcher = live
    for path in engine.settings.seeds_dir.iterdir():  # an unmounted or emptied folder
        path.unlink()
    _until(lambda: watcher.phase == "failed")
    assert "mehr als die Hälfte der Artikel entfernen" in watcher.describe()
    assert "Falls gewollt: `rag build --allow-removal --seeds " in watcher.describe()
    assert engine.status().articles == 2  # still answering from the index as it was
    assert status_line(engine, watcher).startswith("Index nicht aktualisiert: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_running_app_answers_about_a_file_added_to_seeds_within_30_seconds(settings, embedder):
    from gradio_client import Client

    (settings.seeds_dir / "energie.txt").write_text(ENERGY, encoding="utf-8")
    engine = Engine(settings, embedder)
    engine.build()
    watcher = IndexWatcher(engine)
    port = _free_port()
    demo = launch(build_ui(engine, watcher), port=port, block=False, watcher=watcher)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        question = "Wie viel zahlen Tagesgäste in Hallstatt ab Juli?"
        assert "sieben Euro" not in client.predict(question, 0, "", "", api_name="/chat")[0]
        added = time.monotonic()
        Path(settings.seeds_dir / "hallstatt.txt").write_text(HALLSTATT, encoding="utf-8")
        markdown = _until(lambda: (m := client.predict(question, 0, "", "", api_name="/chat")[0]) and
                          "sieben Euro" in m and m, timeout=30, every=0.5)
        print(f"answered {time.monotonic() - added:.1f} s after the file was added")
        assert markdown.startswith("Tagesgäste zahlen ab Juli sieben Euro pro Person")
    finally:
        demo.close()
    _until(lambda: not watcher.running, timeout=10)  # closing the app stops the watcher
