import json
import os
from pathlib import Path

import pytest

from bench.data import SEED
from rag import corpus
from rag.corpus import ArticleError, SourceFile


def parse_text(text: str | bytes, name: str = "a.txt"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return corpus.parse(SourceFile(name, Path(name), data))


def test_seed_article_structure():
    article = parse_text(SEED.read_bytes(), SEED.name)
    assert article.id == SEED.name and article.date == "2023-12"
    assert article.title.startswith("Sein Ziel war es, die Ukraine und andere Nachbarn zu dominieren")
    kinds = [p.kind for p in article.paragraphs]
    assert kinds[0] == "lead"
    heading = next(p for p in article.paragraphs if p.kind == "heading")
    assert article.text[heading.start : heading.end] == "Russland zahlt hohen Preis"
    caption = next(p for p in article.paragraphs if p.kind == "caption")
    assert article.text[caption.start : caption.end].startswith("Im Video:")
    nato = article.text.index("Stoltenberg sei sich absolut sicher")
    para = article.paragraph_at(nato)
    assert para.kind == "text" and para.number == 3
    after = article.paragraph_at(article.text.index("300.000 Soldaten"))
    assert after.heading == "Russland zahlt hohen Preis"
    assert not article.notes


def test_offsets_point_into_the_original_text():
    article = parse_text(SEED.read_bytes())
    for p in article.paragraphs:
        block = article.text[p.start : p.end]
        assert block == block.strip() and block


@pytest.mark.parametrize("first_line, date", [
    ("date 2024-03-17 Ein Lead.", "2024-03-17"),
    (" date 2023-12 Ein Lead.", "2023-12"),
    ("\ufeffdate 2023-01 Ein Lead.", "2023-01"),
])
def test_date_line_variants(first_line, date):
    article = parse_text(first_line + "\n\nZweiter Absatz.")
    assert article.date == date
    assert article.text[article.paragraphs[0].start : article.paragraphs[0].end] == "Ein Lead."


def test_missing_date_line_loads_with_a_note():
    article = parse_text("Ein Artikel ohne Datum.\n\nMit zwei Absätzen.")
    assert article.date is None
    assert any("no date line" in n for n in article.notes)
    assert [p.number for p in article.paragraphs] == [1, 2]


def test_cp1252_fallback_is_noted():
    article = parse_text("date 2023-12 Grüße aus Österreich.".encode("cp1252"))
    assert "Grüße" in article.text
    assert any("cp1252" in n for n in article.notes)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"  \n\n ", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (bytes(range(1, 32)) * 20, "binary"),
    (b"date 2023-12   \n\n", "no text"),
])
def test_bad_files_raise_a_clear_error(data, reason):
    with pytest.raises(ArticleError, match=reason):
        parse_text(data)


def test_load_skips_bad_files_and_keeps_the_rest(tmp_path):
    (tmp_path / "good.txt").write_text("date 2023-12 Gut.\n\nText.", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "image.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / ".hidden.txt").write_text("date 2023-12 Versteckt.", encoding="utf-8")
    (tmp_path / "notes.md").write_text("kein Artikel", encoding="utf-8")
    articles, skipped = corpus.load(tmp_path)
    assert [a.id for a in articles] == ["good.txt"]
    assert dict(skipped) == {"empty.txt": "file is empty", "image.txt": "file is binary (contains NUL bytes), not text"}


# The seeds folder is shared with whoever drops files into it: nothing in it may reach beyond it or stop a build.

def test_symlink_outside_seeds_is_not_indexed(tmp_path):
    seeds, secret = tmp_path / "seeds", tmp_path / "secret.txt"
    seeds.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    (seeds / "passwd_link.txt").symlink_to(secret)
    (seeds / "linked_dir").symlink_to(tmp_path, target_is_directory=True)
    found = corpus.scan(seeds)
    assert found.files == []
    assert found.skipped == [("passwd_link.txt", "symbolic link to a file outside the seeds folder; not followed")]


def test_symlink_inside_seeds_is_followed(tmp_path):
    (tmp_path / "archiv").mkdir()
    (tmp_path / "archiv" / "a.txt").write_text("date 2024-01 Ein Artikel.\n", encoding="utf-8")
    (tmp_path / "aktuell.txt").symlink_to(tmp_path / "archiv" / "a.txt")
    found = corpus.scan(tmp_path)
    assert [f.id for f in found.files] == ["aktuell.txt", "archiv/a.txt"] and not found.skipped


def test_non_utf8_file_name_is_indexed_under_its_cp1252_reading(tmp_path):
    with open(os.fsencode(tmp_path) + b"/caf\xe9_latin1name.txt", "wb") as f:
        f.write("date 2024-01 Ein Artikel über ein Café.\n".encode("utf-8"))
    [found] = corpus.scan(tmp_path).files
    assert found.id == "café_latin1name.txt"
    article = corpus.parse(found)
    assert article.id == "café_latin1name.txt" and any("not valid UTF-8" in n for n in article.notes)
    json.dumps(article.id).encode("utf-8")  # the manifest can hold it


def test_special_and_oversized_files_are_skipped_with_a_reason(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")
    (tmp_path / "riesig.txt").write_bytes(b"date 2024-01 " + b"Wort " * 300_000)
    (tmp_path / "klein.txt").write_text("date 2024-01 Kurz.\n", encoding="utf-8")
    found = corpus.scan(tmp_path, max_bytes=1_000_000)
    assert [f.id for f in found.files] == ["klein.txt"]
    reasons = dict(found.skipped)
    assert reasons["pipe.txt"] == "not a regular file (a pipe, socket or device)"
    assert reasons["riesig.txt"].startswith("1.5 MB is over the 1 MB limit for one article")


def test_files_that_are_not_articles_are_reported_by_kind(tmp_path):
    for name in ("notiz.md", "seite.html", "daten.json", "README", "GROSS.TXT", ".versteckt.txt"):
        (tmp_path / name).write_text("date 2024-01 Text.\n", encoding="utf-8")
    found = corpus.scan(tmp_path)
    assert [f.id for f in found.files] == ["GROSS.TXT"]
    assert found.ignored == {"*.md": ["notiz.md"], "*.html": ["seite.html"], "*.json": ["daten.json"],
                             "no extension": ["README"]}


def test_utf16_file_is_read_not_called_binary():
    article = parse_text("date 2024-01 Ein Artikel in UTF-16 über Graz.\n".encode("utf-16"))
    assert article.date == "2024-01" and "Graz" in article.title
    assert any("UTF-16" in n for n in article.notes)


@pytest.mark.parametrize("value", ["2024-13-45", "2024-02-30", "2023-13"])
def test_impossible_date_line_leaves_the_date_unknown_with_a_note(value):
    article = parse_text(f"date {value} Ein Artikel.\n\nZweiter Absatz.")
    assert article.date is None and article.title == "Ein Artikel."
    assert any(value in n and "not a valid date" in n for n in article.notes)

