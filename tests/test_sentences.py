import pytest

from bench.data import GNAD, gnad_articles
from rag.sentences import is_boilerplate, sentence_spans, split_sentences


def test_abbreviations_dates_and_ordinals_do_not_end_sentences():
    text = ("Dr. Müller kam z. B. am 17. März 2024 nach Berlin. Das war im 19. Jahrhundert u. a. üblich. "
            "Die Sitzung dauerte bis 18.30 Uhr, sagte Prof. Dr. Schmidt.")
    assert split_sentences(text) == [
        "Dr. Müller kam z. B. am 17. März 2024 nach Berlin.",
        "Das war im 19. Jahrhundert u. a. üblich.",
        "Die Sitzung dauerte bis 18.30 Uhr, sagte Prof. Dr. Schmidt.",
    ]


def test_citations_and_titles_do_not_end_sentences():
    # both cut a gold answer of XQuAD-de dev in two before "al" and "rev" were abbreviations
    text = ("Gestützt wird das von Jones et al. 1998 und Briffa 2000. Präsident ist Rev. Paul T. Stallsworth. "
            "Danach kam er.")
    assert split_sentences(text) == [
        "Gestützt wird das von Jones et al. 1998 und Briffa 2000.",
        "Präsident ist Rev. Paul T. Stallsworth.",
        "Danach kam er.",
    ]


def test_quotes_stay_with_their_sentence():
    text = '"Das ist eine große Niederlage für Russland." Stoltenberg sei sicher. „Wir bleiben“, sagte er.'
    assert split_sentences(text) == [
        '"Das ist eine große Niederlage für Russland."',
        "Stoltenberg sei sicher.",
        "„Wir bleiben“, sagte er.",
    ]


def test_question_and_exclamation_marks_and_initials():
    text = "Wer zahlt? Niemand! Das sagte J. R. R. Tolkien nie. Es geht um 3,5 Mio. Euro."
    assert split_sentences(text) == ["Wer zahlt?", "Niemand!", "Das sagte J. R. R. Tolkien nie.", "Es geht um 3,5 Mio. Euro."]


def test_blank_line_and_heading_are_hard_breaks():
    text = "Russland zahlt hohen Preis\n\nZudem sank der Lebensstandard"
    assert split_sentences(text) == ["Russland zahlt hohen Preis", "Zudem sank der Lebensstandard"]


def test_spans_point_into_the_text():
    text = "  Erster Satz.  Zweiter Satz!\nDritter Satz?  "
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Erster Satz.", "Zweiter Satz!", "Dritter Satz?"]


def test_tweets_footers_and_bare_links_are_boilerplate():
    for line in [
        "Erstes Plasma: Fusionsanlage Wendelstein 7-X in Betrieb gegangen https://t.co/QH1bJFIB6F (js) #W7X "
        "pic.twitter.com/ZNXgs0HgKt",
        "pic.twitter.com/ZNXgs0HgKt",
        "— Jens Stoltenberg (@jensstoltenberg) 12. Jänner 2016",
        "— NATO (@NATO) January 12, 2016",
        "https://www.derstandard.at/story/2000123456/nato",
        "Mehr unter www.example.org/artikel",
        "Siehe https://twitter.com/jensstoltenberg/status/123456",
    ]:
        assert is_boilerplate(line), line
    for sentence in [
        "Viele Besucher hatte auch die Website des Parlaments (www.parlament.gv.at).",
        "Die Bilder wurden von Evan Bless veröffentlicht, der unter dem Pseudonym @eveleaks twittert.",
        "Schicken Sie ein E-Mail an games@derStandard.at.",
        "Unter den Hashtags #MeToo und #Aufschrei berichteten Frauen von Übergriffen.",
        "Er sagte der Agentur (@dpa) am 3. Mai 2016, er trete zurück.",
        "Stoltenberg sei sich absolut sicher, dass die Ukraine ihr Ziel irgendwann erreichen werde.",
    ]:
        assert not is_boilerplate(sentence), sentence


def test_boilerplate_in_real_10kgnad_articles():
    if not GNAD.exists():
        pytest.skip("10kGNAD is not in ../shared")
    sentences = [s for _, text in gnad_articles() for s in split_sentences(text)]

    def having(fragment: str) -> str:
        return next(s for s in sentences if fragment in s)

    assert is_boilerplate(having("https://t.co/QH1bJFIB6F (js) #W7X"))  # Wendelstein 7-X
    assert is_boilerplate(having("forced gender pic.twitter.com/oOo10gTVc2"))
    assert is_boilerplate(having("#G7Sum http://t.co/RqYuGKdmi2"))
    assert is_boilerplate(having("https://t.co/vDhbCqSz6L"))
    # reporting that names a web address or a Twitter account is kept
    assert not is_boilerplate(having("(www.parlament.gv.at)"))
    assert not is_boilerplate(having("unter www.rauchfrei.at"))
    assert not is_boilerplate(having("unter dem Pseudonym @eveleaks"))
    tweets = [s for s in sentences if "pic.twitter.com/" in s or "t.co/" in s]
    assert len(tweets) >= 20
    assert [s for s in sentences if is_boilerplate(s)] == tweets  # every tweet, and nothing else (of ~23,000)
