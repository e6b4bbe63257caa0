"""The live index: `rag serve` notices added, changed and removed files in `seeds/` and re-indexes them.

It runs the same incremental, crash-safe `Engine.build()` as `rag build`, in a background thread, once
changes have settled. Answering never waits for it: a build writes a new index version and swaps it in
atomically, and the engine switches to it on its next question. What the watcher is doing is a German
sentence for the UI's status line.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import watchfiles

from .engine import Engine
from .indexing import BuildRefused
from .store import StoreError


class Flag(Protocol):
    """A stop signal: a threading or asyncio Event (Gradio's server has the latter)."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class _State:
    phase: str  # "idle", "building", "waiting" (another build holds the lock), "done", "failed"
    text: str | None = None


class IndexWatcher:
    """Re-indexes `engine.settings.seeds_dir` in the background whenever its article files change."""

    def __init__(self, engine: Engine, allow_removal: bool = False, settle_ms: int = 500,
                 retry_seconds: float = 5.0) -> None:
        self.engine = engine
        self.allow_removal = allow_removal
        self.settle_ms = settle_ms  # a burst of changes (copying 100 files) is one build once it is this quiet
        self.retry_seconds = retry_seconds  # how often to retry while another build holds the lock
        self.builds = 0  # completed builds that changed the index, for tests and the log
        self._state = _State("idle")  # replaced whole, so the status line never reads half an update
        self._stop = threading.Event()
        self._server_stop: Flag | None = None
        self._thread: threading.Thread | None = None

    def start(self, stop_event: Flag | None = None) -> None:
        """Watch in a daemon thread until `stop()` or `stop_event` (the server's own, so closing it stops us)."""
        self._server_stop = stop_event
        self._thread = threading.Thread(target=self._run, name="rag-index-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop watching; a build in progress is finished first (it is atomic either way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def phase(self) -> str:
        return self._state.phase

    def describe(self) -> str | None:
        """What the live index is doing or last did, in German; None when there is nothing to say."""
        return self._state.text

    def is_set(self) -> bool:
        """The stop signal watchfiles polls: our own stop or the server's."""
        return self._stop.is_set() or bool(self._server_stop and self._server_stop.is_set())

    def _run(self) -> None:
        owed = False  # a build is due but another one held the lock
        try:
            for changes in watchfiles.watch(
                self.engine.settings.seeds_dir, watch_filter=_is_article_path, step=self.settle_ms,
                debounce=10 * self.settle_ms, stop_event=self, rust_timeout=int(self.retry_seconds * 1000),
                yield_on_timeout=True, raise_interrupt=False,
            ):
                if changes or owed:
                    owed = not self._update(len({path for _, path in changes}))
        except Exception as err:  # the folder vanished, too many watches, …: say so, keep serving
            self._set("failed", f"Der Ordner {self.engine.settings.seeds_dir}/ wird nicht mehr beobachtet ({err}); "
                                "neue Artikel erst nach `rag build` und einer neuen Frage.")

    def _update(self, files: int) -> bool:
        """One incremental build; False when another build held the lock and it must be tried again."""
        from .cli import print_report

        what = f"{files} geänderte Datei{'en' if files != 1 else ''}" if files else "ausstehende Änderungen"
        self._set("building", f"Index wird aktualisiert ({what}) … Antworten kommen solange aus dem bisherigen "
                              "Index.")
        try:
            report = self.engine.build(allow_removal=self.allow_removal)
        except StoreError as err:
            if type(err) is StoreError and not err.rebuild:  # store.build_lock: `rag build` runs elsewhere
                self._set("waiting", "Ein anderer Build läuft gerade; der Index wird danach aktualisiert.")
                return False
            self._failed(str(err), f"Der Index konnte nicht geschrieben werden ({err}).")
        except BuildRefused as err:
            self._failed(err.reason, "Die Aktualisierung würde mehr als die Hälfte der Artikel entfernen (ist der "
                                     f"Ordner leer oder nicht eingehängt?). Falls gewollt: `{err.command}`.")
        except OSError as err:
            self._failed(str(err), f"Der Index konnte nicht geschrieben werden ({err}).")
        else:
            print_report(report)
            if report.written:
                self.builds += 1
                seconds = f"{report.seconds:.1f}".replace(".", ",")
                self._set("done", f"Index aktualisiert um {time.strftime('%H:%M')}: {len(report.added)} neu, "
                                  f"{len(report.changed)} geändert, {len(report.removed)} entfernt ({seconds} s).")
            else:
                self._set("idle")
        return True

    def _failed(self, reason: str, german: str) -> None:
        """The terminal gets the build's own reason; the status line a German one."""
        print(f"note: the index was not updated: {reason}", file=sys.stderr)
        self._set("failed", f"Index nicht aktualisiert: {german} Die Antworten kommen aus dem bisherigen Index.")

    def _set(self, phase: str, text: str | None = None) -> None:
        self._state = _State(phase, text)


_DEFAULT_FILTER = watchfiles.DefaultFilter()


def _is_article_path(change: watchfiles.Change, path: str) -> bool:
    """Article files (`*.txt`, any case) and folders (a removed or renamed folder takes its files along);
    hidden names and editors' temporary files are left out."""
    name = Path(path).name
    if name.startswith(".") or not _DEFAULT_FILTER(change, path):
        return False
    return name.lower().endswith(".txt") or "." not in name
