"""The `rag` command as a user runs it: one process per command, clear errors, JSON output."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.data import SEED

pytestmark = pytest.mark.model


def rag(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "seeds").mkdir()
    shutil.copy(SEED, tmp_path / "seeds")
    return tmp_path


def test_ask_before_build_says_how_to_build(project):
    result = rag("ask", "Was sagte Stoltenberg?", cwd=project)
    assert result.returncode == 1
    assert "No index found" in result.stderr and "fix: rag build" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_then_ask_text_and_json(project):
    (project / "seeds" / "leer.txt").write_bytes(b"")
    build = rag("build", cwd=project)
    assert build.returncode == 0, build.stderr
    assert build.stdout.startswith("1 article: 1 added, 0 changed, 0 removed, 0 unchanged · ")
    assert "skipped leer.txt" in build.stderr

    text = rag("ask", "Was sagte Stoltenberg zum NATO-Beitritt?", cwd=project)
    assert text.returncode == 0, text.stderr
    first_line = text.stdout.splitlines()[0]
    assert first_line.startswith("Stoltenberg sei sich absolut sicher") and first_line.endswith("[1]")
    assert "[1] 000_51d543a782ed1e65.txt · 2023-12 · " in text.stdout and "Absatz 3" in text.stdout

    data = json.loads(rag("ask", "--json", "--from", "2023-12", "Was sagte Stoltenberg zum NATO-Beitritt?",
                          cwd=project).stdout)
    assert data["declined"] is False
    article = (project / "seeds" / data["sources"][0]["article"]).read_text(encoding="utf-8")
    for sentence in data["answer"]:
        assert article[sentence["start"] : sentence["end"]] == sentence["text"]


def test_empty_question_and_bad_filter_are_one_line_errors(project):
    empty = rag("ask", "  ", cwd=project)
    assert empty.returncode == 1 and empty.stderr.strip() == "error: Bitte stellen Sie eine Frage."
    bad = rag("ask", "--from", "gestern", "Was sagte Stoltenberg?", cwd=project)
    assert bad.returncode == 1 and bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
