"""The evaluation harness on a tiny SQuAD-format file."""

from __future__ import annotations

import json

import pytest

from rag import evaluation
from rag.settings import Settings

SQUAD = {"version": "1.1", "data": [
    {"title": "Wien", "paragraphs": [
        {"context": "Wien ist die Hauptstadt Österreichs. Die Stadt hat rund zwei Millionen Einwohner. "
                    "Der Stephansdom steht im ersten Bezirk.",
         "qas": [{"id": "1", "question": "Wie viele Einwohner hat Wien?",
                  "answers": [{"text": "rund zwei Millionen", "answer_start": 52}]},
                 {"id": "2", "question": "Wo steht der Stephansdom?",
                  "answers": [{"text": "im ersten Bezirk", "answer_start": 105}]}]},
    ]},
    {"title": "Rhein", "paragraphs": [
        {"context": "Der Rhein entspringt in den Schweizer Alpen. Er mündet bei Rotterdam in die Nordsee.",
         "qas": [{"id": "3", "question": "Wo mündet der Rhein?", "answers": [{"text": "in die Nordsee", "answer_start": 70}]}]},
        {"context": "Die Loreley ist ein Schieferfelsen am Mittelrhein bei Sankt Goarshausen.",
         "qas": [{"id": "4", "question": "Woraus besteht die Loreley?", "answers": [{"text": "Schieferfelsen", "answer_start": 18}]}]},
    ]},
]}


@pytest.fixture
def squad_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_squad(squad_file):
    paragraphs, questions = evaluation.load_squad(squad_file)
    assert len(paragraphs) == 3 and len(questions) == 4
    assert questions[2].article == "001/000.txt" and questions[2].answers == ("in die Nordsee",)


def test_rejects_files_that_are_not_squad(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="SQuAD"):
        evaluation.load_squad(path)


def test_run_reports_every_figure_in_the_documented_shape(squad_file, embedder, tmp_path):
    results = evaluation.run(squad_file, Settings(), ["hybrid", "bm25"], embedder=embedder, work_dir=tmp_path)
    assert set(results) == {"hybrid", "bm25"}
    r = results["hybrid"]
    assert r["questions"] == 4
    assert set(r["passage"]) == {"R@1", "R@5", "MRR@10", "nDCG@10"}
    assert set(r["answer"]) == {"first_sentence_hit", "answer_hit", "declined"}
    assert set(r["latency_ms"]) == {"p50", "p95"}
    for group in ("passage", "answer"):
        assert all(0.0 <= v <= 1.0 for v in r[group].values())
    assert r["passage"]["R@1"] == 1.0  # four distinct, easy paragraphs
    assert r["answer"]["answer_hit"] >= r["answer"]["first_sentence_hit"] >= 0.75
    assert "R@1" in evaluation.table(results) and "bm25" in evaluation.table(results)


def test_passage_metrics():
    rankings = [["a", "b"], ["b", "b", "a"], ["c"], []]
    m = evaluation.passage_metrics(rankings, ["a", "a", "a", "a"])
    assert m["R@1"] == 0.25 and m["R@5"] == 0.5
    assert m["MRR@10"] == pytest.approx((1 + 0.5) / 4)  # duplicates do not push the gold article down


def test_decline_threshold_never_declines_more_than_promised():
    confidences = [0.1, 0.61256] + [0.7 + i / 100 for i in range(48)]  # 2 % of 50: one may be declined
    threshold = evaluation.decline_threshold(confidences, 0.02)
    assert threshold == 0.6125  # rounding to nearest (0.6126) would decline two
    assert sum(c < threshold for c in confidences) == 1
    assert evaluation.decline_threshold([], 0.02) == 0.0
