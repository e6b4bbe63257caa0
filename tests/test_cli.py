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


def test_usage_mistakes_and_a_bad_port_are_one_line_with_the_fix(project):
    port = rag("serve", "--port", "99999", cwd=project)
    assert port.returncode == 2 and "Traceback" not in port.stderr
    assert port.stderr.splitlines() == ["error: argument --port: port must be a number from 1 to 65535, not '99999'",
                                        "  fix: rag serve --help"]
    for args in (["ask", "--from", "2023-13", "Frage?"], ["ask", "-k", "0", "Frage?"], ["ask", "-k", "10000", "Frage?"]):
        result = rag(*args, cwd=project)
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("error: ")


def test_a_second_build_while_one_runs_is_one_line(project):
    from rag import store

    with store.build_lock(project / "vectorstore"):
        result = rag("build", cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["error: another build is running on vectorstore/; wait for it to finish.",
                                          "  fix: wait for it, then run the command again"]


def test_eval_on_a_file_without_context_is_one_line(project):
    broken = project / "broken.json"
    broken.write_text(json.dumps({"data": [{"paragraphs": [{"qas": []}]}]}), encoding="utf-8")
    result = rag("eval", str(broken), cwd=project)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {broken} is not a SQuAD-format file: an entry lacks 'context'"


def test_seeds_folder_that_empties_or_links_out_never_wipes_or_leaks(project, tmp_path_factory):
    secret = tmp_path_factory.mktemp("etc") / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (project / "seeds" / "passwd_link.txt").symlink_to(secret)
    (project / "seeds" / "escape.txt").write_text(
        "date 2024-01 Die Firma Bildschirmlöscher AG meldet Rekordumsatz.\x1b[2J\x1b]0;pwned\x07\n", encoding="utf-8")
    build = rag("build", cwd=project)
    assert build.returncode == 0, build.stderr
    assert "skipped passwd_link.txt: symbolic link to a file outside the seeds folder; not followed" in build.stderr
    assert build.stdout.startswith("2 articles: 2 added")

    shell = rag("ask", "Welche Shell benutzt root?", cwd=project)
    assert "/bin/bash" not in shell.stdout
    escaped = rag("ask", "Was meldet die Bildschirmlöscher AG?", cwd=project)
    assert "\x1b" not in escaped.stdout and "\x07" not in escaped.stdout and "\\x1b[2J" in escaped.stdout

    piped = subprocess.run(f"{sys.executable} -m rag.cli ask 'Was sagte Stoltenberg zum NATO-Beitritt?' | true",
                           shell=True, cwd=project, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert piped.stderr == ""  # no "Broken pipe" traceback when the reader of the output has gone

    for path in (project / "seeds").iterdir():
        path.unlink()
    refused = rag("build", cwd=project)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[0].startswith("error: seeds/ holds 0 of the 2 indexed articles")
    assert refused.stderr.splitlines()[1] == "  fix: rag build --allow-removal"
    still = rag("ask", "Was sagte Stoltenberg zum NATO-Beitritt?", cwd=project)
    assert still.returncode == 0 and "NATO-Beitritts" in still.stdout  # nothing was lost
