"""The news QA set (data/news-qa): every record is checked against its article, and the split is clean."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest

from bench.newsqa import validate
from rag import evaluation, newsqa
from rag.newsqa import SEED_ROW, Corpus, Record, check
from rag.settings import Settings

DATA = Path(__file__).resolve().parents[1] / "data" / "news-qa"
SHARED = newsqa.shared_dir() / "data" / "10kgnad" / "test.csv"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="10kGNAD is not in ../shared")


@pytest.fixture(scope="module")
def split() -> dict[str, list[Record]]:
    return {name: newsqa.load(DATA / f"{name}.json") for name in ("train", "dev")}


def test_counts_and_type_mix(split):
    records = split["train"] + split["dev"]
    answerable = [r for r in records if r.row is not None]
    assert len(answerable) >= 1500
    assert len({r.row for r in answerable if r.row != SEED_ROW}) >= 400
    assert sum(r.row == SEED_ROW for r in records) >= 25
    assert sum(r.row is None for r in records) >= 150
    shares = collections.Counter(r.type for r in answerable)
    for kind in ("wer", "was", "wann", "wo", "wie_viel", "warum", "welche"):
        assert shares[kind] / len(answerable) >= 0.08, kind
    assert shares["aussage"] / len(answerable) >= 0.20


def test_split_is_by_article_and_dev_is_large_enough(split):
    train_rows = {r.row for r in split["train"] if r.row is not None}
    dev_rows = {r.row for r in split["dev"] if r.row is not None}
    assert not train_rows & dev_rows
    assert sum(r.row is not None for r in split["dev"]) >= 400
    assert any(r.row is None for r in split["dev"]) and any(r.row is None for r in split["train"])


def test_no_duplicate_questions(split):
    questions = [" ".join(r.question.lower().split()) for part in split.values() for r in part]
    assert [q for q, n in collections.Counter(questions).items() if n > 1] == []


def test_no_two_questions_of_an_article_share_answer_text(split):
    """Later writing passes add facts; an overlapping answer span is the same fact asked twice."""
    spans = collections.defaultdict(list)
    for r in (r for part in split.values() for r in part if r.row is not None):
        spans[r.row].append((r.offset, r.offset + len(r.answer)))
    overlapping = [(row, a, b) for row, s in spans.items() for i, a in enumerate(s) for b in s[i + 1:]
                   if a[0] < b[1] and b[0] < a[1]]
    assert overlapping == []


@needs_shared
def test_every_record_is_valid_against_its_article(split):
    corpus = Corpus()
    problems = [f"{r.question}: {p}" for part in split.values() for r in part for p in check(r, corpus)]
    assert problems == []
    assert all(r.offset is not None for part in split.values() for r in part if r.row is not None)
    assert not {r.row for part in split.values() for r in part} & corpus.reserved


# check() itself, on a tiny 10kGNAD stand-in, so each rule is shown to bite.

@pytest.fixture
def tiny(tmp_path) -> Corpus:
    folder = tmp_path / "data" / "10kgnad"
    folder.mkdir(parents=True)
    rows = ["Inland;'Die Regierung in Wien plant eine Reform. Kanzler Huber sagte, die Pensionen seien sicher. "
            "Die Reform koste 300 Millionen Euro. Die Opposition kritisierte die Pläne scharf.'",
            "Sport;'Rapid gewann das Derby mit 2:0. Der Trainer lobte die Abwehr.'"]
    (folder / "test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "RESERVED_ROWS.txt").write_text("# reserved\n1\n", encoding="utf-8")
    return Corpus(shared=tmp_path)


def test_a_good_record_passes(tiny):
    assert check(Record("Wie teuer ist die Reform der Regierung?", "wie_viel", 0, "300 Millionen Euro"), tiny) == []


@pytest.mark.parametrize("record, problem", [
    (Record("Was kostet die Reform?", "wie_viel", 0, "Die"), "occurs 3 times"),
    (Record("Was plant die Regierung und was sagte Huber?", "aussage", 0, "Reform. Kanzler Huber"), "crosses a sentence"),
    (Record("Kanzler Huber sagte, die Pensionen seien was?", "aussage", 0, "sicher"), "copies 6 consecutive words"),
    (Record("Wer gewann das Derby?", "wer", 1, "Rapid"), "reserved"),
    (Record("Wer gewann?", "wer", 7, "Rapid"), "not a row"),
    (Record("Wie viele Millionen Euro kostet die Reform?", "wie_viel", 0, "Millionen Euro"), "contains its answer"),
    (Record("Wer ist Kanzler", "wer", 0, "Huber"), "does not end with '?'"),
    (Record("Was sagte Ministerin Gruber?", "aussage", None, keys=("Huber",)), "occurs in the corpus"),
    (Record("Was sagte Ministerin Gruber?", "kaputt", None, keys=("Gruber",)), "is not one of"),
])
def test_each_rule_bites(tiny, record, problem):
    assert any(problem in p for p in check(record, tiny)), check(record, tiny)


def test_the_authoring_check_reports_a_fact_asked_twice(tiny):
    drafts = [("a:1", Record("Wie teuer ist die Reform der Regierung?", "wie_viel", 0, "300 Millionen Euro"), ""),
              ("b:1", Record("Wie viel Geld kostet das Vorhaben der Wiener Regierung?", "wie_viel", 0, "300 Millionen"), ""),
              ("b:2", Record("Wer kritisierte die Pläne der Regierung?", "wer", 0, "Die Opposition"), "")]
    assert validate(drafts, tiny) == ["b:1: answer overlaps the answer of a:1 (the same fact asked twice)"]


def test_split_by_article_keeps_articles_whole():
    records = [Record(f"Frage {i}?", "was", i % 10, "x") for i in range(50)] + \
              [Record(f"Seed {i}?", "was", SEED_ROW, "x") for i in range(3)] + \
              [Record(f"Offen {i}?", "was", None, keys=("k",)) for i in range(10)]
    train, dev = newsqa.split_by_article(records, dev_share=0.3)
    assert {r.row for r in train} & {r.row for r in dev} == {None}
    assert sum(r.row == SEED_ROW for r in dev) == 3 and sum(r.row is None for r in dev) == 5
    assert len(train) + len(dev) == len(records)


@pytest.mark.model
def test_news_file_runs_through_the_harness_with_unanswerable_questions(tiny, tmp_path, monkeypatch, embedder):
    monkeypatch.setenv("RAG_SHARED_DIR", str(tmp_path))
    qa = tmp_path / "dev.json"
    qa.write_text(json.dumps({"questions": [
        Record("Wie teuer ist die Reform der Regierung in Wien?", "wie_viel", 0, "300 Millionen Euro", 90).to_dict(),
        Record("Wie viele Tore erzielte Sturm Graz gegen Kapfenberg?", "wie_viel", None,
               keys=("Kapfenberg",)).to_dict(),
    ]}), encoding="utf-8")
    articles, questions = evaluation.load(qa)
    assert set(articles) == {"gnad_0000_inland.txt"}  # the reserved row is no distractor
    assert questions[1].article is None
    result = evaluation.run(qa, Settings(), ["hybrid"], embedder=embedder, work_dir=tmp_path)["hybrid"]
    assert result["questions"] == 1 and result["passage"]["R@1"] == 1.0
    assert result["unanswerable"]["questions"] == 1 and 0.0 <= result["unanswerable"]["declined"] <= 1.0
    assert "unans.declined" in evaluation.table({"hybrid": result})
