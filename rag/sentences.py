"""German sentence segmentation that returns character spans.

Answers are built from whole sentences and cited by exact offsets, so the
splitter must never cut "z. B.", "Dr. Müller", "17. März 2024" or a closing
quote away from its sentence, and must report where each sentence sits in
the original text rather than returning cleaned-up strings.
"""

from __future__ import annotations

import re

# Words that end in a period without ending the sentence (compared without the period).
ABBREVIATIONS = frozenset(
    """
    abb abs abt adr akad al allg anh anm art aufl bd bde bearb beil bes betr bez bspw bzgl bzw ca chr dgl
    dipl dr dt ebd ehem eig engl entspr erg ev evtl exkl fa fam ff fig frl frz gebr gegr gem ggf ggü
    hbf hl hr hrn hrsg inkl insb int jh jhd jhdt jr kap kath kfm kl kr lfd lt mind min mio mod mr mrd
    mrs ms nachf nr od o.ä österr pkt pl prof rd rel resp rev röm sek sen sog spr st stellv str std stv sr
    tel tsd ua urspr vgl vs wg zb zit zt zzgl jan feb febr mär apr jun jul aug sep sept okt nov dez
    """.split()
)

# Nouns that follow an ordinal number ("am 17. März", "im 19. Jahrhundert", "der 2. Platz").
ORDINAL_NOUNS = frozenset(
    """
    januar jänner februar märz april mai juni juli august september oktober november dezember
    jahrhundert jahrhunderts jahrtausend jahrtausends jahrestag geburtstag lebensjahr mal platz
    rang runde spieltag etappe klasse liga stock etage kapitel auflage ausgabe bundesliga
    legislaturperiode quartal halbjahr woche tag minute
    """.split()
)

_CANDIDATE = re.compile(r"[.!?…]+[\"'“”»«’)\]]*(?=\s)")
_NEXT_START = re.compile(r"\s+([\"'„“»«(\[–—-]?)(\S)")
_WORD_BEFORE = re.compile(r"([\wÄÖÜäöüß.\-]+)$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_WORD = re.compile(r"\w+")
_LOOKBEHIND = 64


def _is_boundary(text: str, match: re.Match[str], end: int) -> bool:
    """Decide whether the punctuation in `match` ends a sentence (`end` bounds its paragraph)."""
    nxt = _NEXT_START.match(text, match.end(), end)
    if nxt is None:
        return False
    first = nxt.group(2)
    if not (first.isupper() or first.isdigit() or nxt.group(1)):
        return False  # "etc. und", "Dr. med." and other lower-case continuations
    punct = match.group()
    if not punct.startswith("."):
        return True  # ! ? … end sentences; a lower-case continuation was excluded above
    if punct != ".":
        return True  # a period followed by a closing quote or bracket
    # only the last few characters: searching for a `$`-anchored word from position 0 made splitting an
    # article quadratic (6 % of a build); a word run longer than the window is no abbreviation either way
    before = _WORD_BEFORE.search(text, max(0, match.start() - _LOOKBEHIND), match.start())
    if before is None:
        return True
    word = before.group(1)
    last = word.rsplit(".", 1)[-1].rsplit("-", 1)[-1]
    if len(last) == 1 and last.isalpha():
        return False  # initials and the parts of "z. B.", "d. h.", "u. a."
    if last.lower() in ABBREVIATIONS or word.lower().rstrip(".") in ABBREVIATIONS:
        return False
    if last.isdigit():
        following = _WORD.match(text, nxt.start(2))
        if following and following.group().lower() in ORDINAL_NOUNS:
            return False  # "17. März", "19. Jahrhundert"
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` spans of the sentences in `text`, whitespace trimmed.

    Paragraph breaks (blank lines) always end a sentence; inside a paragraph a
    sentence ends at . ! ? or … (plus closing quotes) followed by an upper-case
    letter, digit or opening quote, unless the period belongs to an
    abbreviation, an initial or an ordinal number.
    """
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text):
        start = block_start
        for match in _CANDIDATE.finditer(text, block_start, block_end):
            if _is_boundary(text, match, block_end):
                spans.append((start, match.end()))
                start = match.end()
        spans.append((start, block_end))
    return [trimmed for s, e in spans if (trimmed := _trim(text, s, e))]


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraph spans: text between blank lines."""
    blocks, start = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        blocks.append((start, m.start()))
        start = m.end()
    blocks.append((start, len(text)))
    return blocks


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def split_sentences(text: str) -> list[str]:
    """Convenience wrapper: the sentences of `text` as strings."""
    return [text[s:e] for s, e in sentence_spans(text)]


# Embedded tweets: their short links and picture links, and the "— Name (@handle) 12. Jänner 2016" footer.
_TWEET_LINK = re.compile(r"\b(?:https?://)?(?:t\.co/\w|pic\.twitter\.com/|(?:twitter|x)\.com/\w+/status/)", re.I)
_MONTH = (r"(?:jänner|januar|februar|märz|april|mai|juni|juli|august|september|oktober|november|dezember|"
          r"january|february|march|may|june|july|october|december|jän|jan|feb|mär|mar|apr|jun|jul|aug|sept?|"
          r"okt|oct|nov|dez|dec)")
_TWEET_FOOTER = re.compile(rf"\(@\w{{1,15}}\)\s*(?:\d{{1,2}}\.?\s*)?{_MONTH}\.?\s*(?:\d{{1,2}},?\s*)?\d{{4}}", re.I)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)


def is_boilerplate(sentence: str) -> bool:
    """Whether a "sentence" is page furniture rather than reporting: an embedded tweet (its t.co or
    pic.twitter.com link, or its "— Name (@handle) date" footer) or a bare link with hardly a word around it.

    Such lines stay in the article (and its view) but must never be offered as an answer: in 10kGNAD a
    tweet is glued to its neighbours ("… https://t.co/QH1bJFIB6F (js) #W7X pic.twitter.com/ZNXgs0HgKt Es war
    …"), so the whole span is unreliable. A sentence that merely mentions a web address
    ("… unter www.rauchfrei.at …") is reporting and is kept.
    """
    if _TWEET_LINK.search(sentence) or _TWEET_FOOTER.search(sentence):
        return True
    if not _URL.search(sentence):
        return False
    return len(_WORD.findall(_URL.sub(" ", sentence))) < 3
