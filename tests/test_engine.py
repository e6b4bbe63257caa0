"""`ask()` end to end on the seed corpus: cited answers, declines, filters and bad input."""

from __future__ import annotations

import pytest

from rag.answer import DECLINE_MESSAGE
from rag.engine import Engine, IndexUnavailable, QuestionError

SEED_ID = "000_51d543a782ed1e65.txt"


def _assert_verbatim(engine: Engine, answer) -> None:
    by_id = {s.id: s for s in answer.sources}
    for sentence in answer.sentences:
        source = by_id[sentence.source]
        assert source.cited
        assert engine.article(source.article).text[sentence.start : sentence.end] == sentence.text
        assert source.start <= sentence.start and sentence.end <= source.end
        assert (sentence.start, sentence.end) in source.highlights


def test_stoltenberg_nato_question_cites_the_nato_sentence(engine):
    answer = engine.ask("Was sagte Stoltenberg zum NATO-Beitritt?")
    assert not answer.declined
    first = answer.sentences[0]
    assert first.text.startswith("Stoltenberg sei sich absolut sicher") and "NATO-Beitritts" in first.text
    source = answer.sources[first.source - 1]
    assert (source.id, source.article, source.date, source.paragraph) == (1, SEED_ID, "2023-12", 3)
    _assert_verbatim(engine, answer)


def test_casualty_question_cites_the_300000_sentence(engine):
    answer = engine.ask("Wie viele russische Soldaten wurden getötet oder verwundet?")
    assert not answer.declined
    assert "300.000 Soldaten seien getötet oder verwundet worden" in answer.sentences[0].text
    _assert_verbatim(engine, answer)


def test_question_the_articles_cannot_answer_is_declined(engine):
    answer = engine.ask("Was sagte Olaf Scholz zur Schuldenbremse?")
    assert answer.declined and answer.message == DECLINE_MESSAGE
    assert answer.sentences == () and answer.sources  # the closest passages are still shown
    reader = engine.settings.reader and engine.embedder.reader_fingerprint
    assert answer.confidence < (engine.settings.reader_min_confidence if reader else engine.settings.min_confidence)
    assert "nichts Belastbares" in answer.to_text()


@pytest.mark.parametrize("question", [
    "Was sagte Stoltenberg zum NATO-Beitritt?",
    "Wie hoch ist der Strompreis für Neukunden?",
    "Welche Einträge konnten Angreifer speichern?",
    "Wie hat Russland international an Ansehen verloren?",
])
def test_every_answer_sentence_is_verbatim_at_its_span(engine, question):
    answer = engine.ask(question)
    assert answer.sentences or answer.declined
    _assert_verbatim(engine, answer)


def test_sources_carry_full_citation_data(engine):
    answer = engine.ask("Wie hoch ist der Strompreis für Neukunden?")
    top = answer.sources[0]
    assert (top.article, top.date, top.cited) == ("100_strompreise.txt", "2024-03-15", True)
    assert engine.article(top.article).text[top.start : top.end] == top.text
    assert "27 Cent" in " ".join(s.text for s in answer.sentences)


def test_date_filter(engine):
    only_2023 = engine.ask("Wie hoch ist der Strompreis?", date_to="2023-12-31")
    assert {s.article for s in only_2023.sources} == {SEED_ID}
    from_2024 = engine.ask("Wie hoch ist der Strompreis?", date_from="2024", date_to="2024-03")
    assert {s.article for s in from_2024.sources} == {"100_strompreise.txt"}
    none = engine.ask("Wie hoch ist der Strompreis?", date_from="2030")
    assert none.declined and none.sources == ()
    assert "Kein Artikel passt zu den gewählten Filtern." in none.notices


def test_source_filter_with_glob(engine):
    answer = engine.ask("Was sagte Stoltenberg?", sources=["10*_*.txt"])
    assert answer.sources and {s.article for s in answer.sources} <= {"100_strompreise.txt", "101_sicherheitsluecke.txt"}


def test_malformed_date_filter_is_rejected(engine):
    with pytest.raises(ValueError, match="2023-12"):
        engine.ask("Was sagte Stoltenberg?", date_from="Dezember")


@pytest.mark.parametrize("k", [0, -1, 11, 10_000])
def test_number_of_sources_is_validated_like_the_ui(engine, k):
    with pytest.raises(ValueError, match="between 1 and 10"):
        engine.ask("Was sagte Stoltenberg?", k=k)


def test_an_empty_index_says_so_instead_of_declining(settings, embedder):
    Engine(settings, embedder).build()  # the seeds folder is empty
    with pytest.raises(IndexUnavailable, match="holds no articles") as err:
        Engine(settings, embedder).ask("Was sagte Stoltenberg?")
    assert err.value.command.startswith("rag build")


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_empty_question(engine, question):
    with pytest.raises(QuestionError, match="Bitte stellen Sie eine Frage"):
        engine.ask(question)


def test_very_long_question_is_truncated_with_a_notice(engine):
    question = "Was sagte Stoltenberg zum NATO-Beitritt? " + "sehr " * 2000
    assert len(question) > 10_000
    answer = engine.ask(question)
    assert len(answer.question) == engine.settings.max_question_chars
    assert answer.notices and "verwendet wurden die ersten 1.000" in answer.notices[0]
    assert answer.sentences or answer.declined


def test_missing_index_names_the_build_command(settings, embedder):
    with pytest.raises(IndexUnavailable) as err:
        Engine(settings, embedder).ask("Was sagte Stoltenberg?")
    assert err.value.command.startswith("rag build") and str(settings.index_dir) in err.value.command
    assert "rag build" in str(err.value)


def test_json_shape(engine):
    data = engine.ask("Was sagte Stoltenberg zum NATO-Beitritt?").to_dict()
    assert isinstance(data["declined"], bool)
    ids = {s["id"] for s in data["sources"]}
    for a in data["answer"]:
        assert set(a) >= {"text", "source", "start", "end"} and a["source"] in ids
    for s in data["sources"]:
        assert set(s) >= {"id", "article", "title", "date", "paragraph", "start", "end", "text", "score"}


def test_timings_are_reported(engine):
    timings = engine.ask("Was sagte Stoltenberg?").timings_ms
    assert set(timings) == {"load", "embed", "retrieve", "compose", "total"}
    assert timings["total"] >= timings["embed"] >= 0
