"""N concurrent `gradio_client` users against a running `rag serve` (N = 1, 4, 16), and the server's memory.

    python -m bench.load [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil

from bench.data import ROOT
from bench.questions import benchmark_questions
from bench.query import ensure_index
from bench.report import save, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="duration per level")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    settings = ensure_index().settings
    questions = benchmark_questions(200)
    with served(settings.index_dir) as (url, rss):
        rows = [_level(url, n, args.seconds, questions) for n in args.levels]
    print(table(rows, ["clients", "requests", "req/s", "p50 ms", "p95 ms", "errors"]))
    print(f"server peak RSS: {rss.peak_mb:.0f} MB")
    save("load", {"levels": rows, "server_peak_rss_mb": rss.peak_mb, "seconds_per_level": args.seconds})


@contextmanager
def served(index_dir: Path, *extra: str) -> Iterator[tuple[str, "_RssSampler"]]:
    """A `rag serve --no-build` process on a free port, ready to answer, and its memory sampled until it stops."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--no-build", *extra, "--index",
                               str(index_dir), "--port", str(port)], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    rss = _RssSampler(server.pid)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_for(url, server)
        yield url, rss
    finally:
        server.terminate()
        server.wait(30)
        rss.stop()


def _level(url: str, n: int, seconds: float, questions: list[str]) -> dict:
    from gradio_client import Client

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    clients = [Client(url, verbose=False) for _ in range(n)]
    deadline = time.perf_counter() + seconds

    def user(i: int) -> None:
        j = i
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            try:
                markdown, _ = clients[i].predict(questions[j % len(questions)], 0, "", "", api_name="/chat")
                ok = bool(markdown)
            except Exception:  # any failure counts; the target is zero
                ok = False
            with lock:
                if ok:
                    latencies.append((time.perf_counter() - t) * 1000)
                else:
                    errors[0] += 1
            j += n

    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"clients": n, "requests": len(latencies), "req/s": len(latencies) / elapsed,
            "p50 ms": float(np.percentile(latencies, 50)) if latencies else None,
            "p95 ms": float(np.percentile(latencies, 95)) if latencies else None, "errors": errors[0]}


def _wait_for(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError("rag serve exited before it was ready")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class _RssSampler:
    """Peak resident memory of a process tree, sampled in the background."""

    def __init__(self, pid: int) -> None:
        self.peak_mb = 0.0
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                procs = [self._proc, *self._proc.children(recursive=True)]
                self.peak_mb = max(self.peak_mb, sum(p.memory_info().rss for p in procs) / 2**20)
            except psutil.Error:
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


if __name__ == "__main__":
    main()
