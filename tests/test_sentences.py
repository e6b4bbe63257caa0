from rag.sentences import sentence_spans, split_sentences


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
