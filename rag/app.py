"""The Gradio chat: a thin shell over `Engine.ask()` whose citations lead to the passages they cite.

Every piece of article text and every question is HTML-escaped before it is
shown; highlights come from the exact character spans `ask()` returns. Each
answer carries its own sources (a collapsible block under it, which is what a
phone shows); on a wide screen the side panel shows the selected answer's.
"""

from __future__ import annotations

import hmac
import html
import json
import os
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import gradio as gr

from .answer import Answer, Source
from .corpus import Article
from .embedding import Embedder
from .engine import Engine, IndexUnavailable, QuestionError
from .indexing import BuildRefused
from .store import StoreError
from .settings import Settings
from .watch import IndexWatcher

EXAMPLES = [
    "Was sagte Stoltenberg zum NATO-Beitritt?",
    "Wie viele russische Soldaten wurden getötet oder verwundet?",
    "Welche Ziele hatte Putin in der Ukraine?",
]
EMPTY_PANEL = '<p class="rag-empty">Hier erscheinen die Belege zur ausgewählten Antwort.</p>'
MONTHS = ("Januar Februar März April Mai Juni Juli August September Oktober November Dezember").split()
HEADLINE_CHARS = 90
LONG_QUESTION_CHARS = 280
WIDE = "(min-width: 900px)"  # side panel beside the chat; narrower screens show sources under each answer

# Gradio's bundled SemiBold Source Sans Pro is a 5 KB subset without capitals like A and B, so bold text came
# out in mixed fonts; its Bold file (served locally too) stands in for weight 600. In <head>: Gradio drops
# @font-face rules from `css`.
HEAD = """<style>@font-face { font-family: 'Source Sans Pro'; font-weight: 600; font-style: normal;
  src: url('static/fonts/SourceSansPro/SourceSansPro-Bold.woff2') format('woff2'); }</style>"""
# Colours are chosen for WCAG AA (4.5:1) on Gradio's light and dark backgrounds.
CSS = f"""
#rag-title h1 {{ margin: 0 0 4px; font-size: 1.6rem; }}
#rag-status, #rag-hint {{ font-size: 0.9rem; }}
#rag-hint p {{ margin: 4px 0 0; color: #7c2d12; }}
.dark #rag-hint p {{ color: #fdba74; }}
#rag-chat .message {{ overflow-wrap: anywhere; }}
#rag-chat .message-row, #rag-chat .rag-card {{ scroll-margin-top: 44px; }}
.rag-question {{ white-space: pre-wrap; }}
.rag-question details summary {{ cursor: pointer; }}
.rag-more {{ font-style: italic; }}
a.rag-marker {{ position: relative; font-weight: 700; color: #1e3a8a; text-decoration: underline;
  text-underline-offset: 2px; padding: 0 1px; border-radius: 3px; white-space: nowrap; }}
.dark a.rag-marker {{ color: #bfdbfe; }}
a.rag-marker:focus-visible {{ outline: 2px solid currentColor; outline-offset: 1px; }}
a.rag-marker:hover::after, a.rag-marker:focus-visible::after {{ content: attr(data-tip); position: absolute;
  left: 0; top: 1.5em; transform: translateX(var(--tip-shift, 0px)); z-index: 50; width: max-content;
  max-width: min(22rem, 70vw); padding: 4px 8px; border-radius: 4px; background: #111827; color: #ffffff;
  font-weight: 400; font-size: 0.85rem; line-height: 1.35; white-space: normal; text-decoration: none;
  pointer-events: none; }}
button.rag-unfiltered {{ margin-top: 4px; padding: 4px 10px; border: 1px solid #1e3a8a; border-radius: 6px;
  color: #1e3a8a; background: #ffffff; cursor: pointer; }}
.dark button.rag-unfiltered {{ color: #bfdbfe; border-color: #bfdbfe; background: transparent; }}
details.rag-inline {{ margin-top: 8px; }}
details.rag-inline > summary {{ cursor: pointer; font-weight: 600; color: #1e3a8a; }}
.dark details.rag-inline > summary {{ color: #bfdbfe; }}
details.rag-inline.rag-current > summary::after {{ content: " (im Bereich „Belege“)"; font-weight: 400; }}
.rag-card {{ border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  margin: 8px 0; background: var(--background-fill-primary); color: var(--body-text-color); }}
.rag-card:focus {{ outline: none; }}
.rag-card.rag-selected {{ border: 2px solid #1e3a8a; box-shadow: 0 0 0 3px #bfdbfe; }}
.dark .rag-card.rag-selected {{ border-color: #bfdbfe; box-shadow: 0 0 0 3px #1e3a8a; }}
.rag-card h3 {{ font-size: 1rem; margin: 0 0 2px; line-height: 1.35; }}
.rag-num {{ color: #1e3a8a; margin-right: 4px; }}
.dark .rag-num {{ color: #bfdbfe; }}
.rag-meta, .rag-where {{ font-size: 0.85rem; color: #374151; margin: 0 0 6px; }}
.dark .rag-meta, .dark .rag-where {{ color: #d1d5db; }}
.rag-where {{ margin: 8px 0 2px; font-weight: 600; }}
.rag-text, .rag-article {{ white-space: pre-wrap; line-height: 1.5; }}
.rag-passage.rag-uncited {{ border-left: 3px dashed #6b7280; padding-left: 8px; }}
.rag-article {{ max-height: 420px; overflow-y: auto; font-size: 0.92em; margin-top: 6px; }}
.rag-card mark {{ color: #111827; padding: 0 1px; border-radius: 2px; }}
mark.rag-hl {{ background: #fde68a; }}
mark.rag-hl.rag-active {{ background: #f59e0b; outline: 2px solid #92400e; }}
mark.rag-in-article {{ background: #dbeafe; }}
.rag-note {{ font-weight: 600; }}
.rag-further {{ font-size: 0.95rem; margin: 14px 0 0; }}
#rag-sources {{ max-height: 640px; overflow-y: auto; }}
#rag-sources h2 {{ font-size: 1.15rem; margin: 0 0 4px; }}
@media {WIDE} {{ details.rag-inline > .rag-inline-body {{ display: none; }} }}
@media not all and {WIDE} {{
  #rag-side {{ display: none; }}
  #rag-chat .message-row.bubble {{ margin-left: 6px; margin-right: 6px; max-width: calc(100% - 12px); }}
  details.rag-inline.rag-current > summary::after {{ content: none; }}
}}
"""

# Runs once in the page. Markers, "Belege" summaries and the retry button are handled by one delegated
# listener, so they work in every answer Gradio renders; new answers are noticed by a MutationObserver.
JS = f"""
() => {{
  const wide = () => window.matchMedia('{WIDE}').matches;
  const chat = () => document.querySelector('#rag-chat');
  const panel = () => document.querySelector('#rag-sources .rag-panel');
  const block = (key) => document.querySelector(`#rag-chat .rag-sources[data-answer="${{key}}"]`)?.closest('details');
  const keyOf = (details) => details.querySelector('.rag-sources')?.dataset.answer;
  const input = () => document.querySelector('#rag-question textarea');
  function select(key) {{
    const b = block(key), p = panel();
    if (!b || !p) return null;
    document.querySelectorAll('details.rag-inline.rag-current').forEach(d => d.classList.remove('rag-current'));
    b.classList.add('rag-current');
    if (p.dataset.answer !== key) {{
      const body = b.querySelector('.rag-inline-body').cloneNode(true);
      body.querySelectorAll('[id]').forEach(e => e.removeAttribute('id'));
      p.replaceChildren(...body.childNodes);
      p.dataset.answer = key;
      document.querySelector('#rag-sources').scrollTop = 0;
    }}
    return b;
  }}
  function show(marker) {{
    const b = select(marker.dataset.answer);
    if (!b) return;
    let scope = panel();
    if (!wide()) {{ b.open = true; scope = b; }}
    const card = scope.querySelector(`.rag-card[data-card="${{marker.dataset.card}}"]`);
    if (!card) return;
    document.querySelectorAll('.rag-selected').forEach(e => e.classList.remove('rag-selected'));
    document.querySelectorAll('mark.rag-active').forEach(e => e.classList.remove('rag-active'));
    card.classList.add('rag-selected');
    card.querySelectorAll(`.rag-text mark.rag-hl[data-start="${{marker.dataset.start}}"]`)
        .forEach(e => e.classList.add('rag-active'));
    card.scrollIntoView({{block: 'start', behavior: 'smooth'}});
    card.focus({{preventScroll: true}});
  }}
  function setValue(el, value) {{
    if (!el) return;
    el.value = value;
    el.dispatchEvent(new Event('input', {{bubbles: true}}));
  }}
  function place(marker) {{  // keep the marker's tooltip inside its bubble, which clips what overflows
    if (!marker) return;
    const r = marker.getBoundingClientRect(), b = (marker.closest('.message') || document.body).getBoundingClientRect();
    const width = Math.min(352, window.innerWidth * 0.7);
    marker.style.setProperty('--tip-shift', `${{Math.min(0, b.right - r.left - width - 8)}}px`);
  }}
  for (const type of ['pointerover', 'focusin']) {{
    document.addEventListener(type, e => place(e.target.closest?.('a.rag-marker')));
  }}
  document.addEventListener('click', (e) => {{
    const marker = e.target.closest('a.rag-marker');
    if (marker) {{ e.preventDefault(); e.stopPropagation(); show(marker); return; }}
    const summary = e.target.closest('details.rag-inline > summary');
    if (summary && wide()) {{
      e.preventDefault();
      select(keyOf(summary.parentElement));
      return;
    }}
    const retry = e.target.closest('button.rag-unfiltered');
    if (retry) {{
      document.querySelectorAll('#rag-date-from textarea, #rag-date-to textarea').forEach(el => setValue(el, ''));
      setValue(input(), retry.dataset.question);
      setTimeout(() => document.querySelector('#rag-question button.submit-button')?.click(), 50);
      return;
    }}
    const answer = e.target.closest('#rag-chat .message')?.querySelector('details.rag-inline');
    if (answer && wide()) select(keyOf(answer));
  }}, true);
  let bots = 0, pending = false;
  function settle() {{
    const c = chat();
    if (!c) return;
    const messages = c.querySelectorAll('.message.bot:not(.pending)');
    if (messages.length < bots && !c.querySelector('details.rag-inline')) {{  // the chat was cleared
      panel().innerHTML = {json.dumps(EMPTY_PANEL)};
      delete panel().dataset.answer;
    }}
    pending ||= messages.length > bots;
    bots = messages.length;
    const newest = messages[messages.length - 1];
    if (!pending || !newest || !newest.textContent.trim()) return;  // wait until the answer is rendered
    pending = false;
    const inline = newest.querySelector('details.rag-inline');
    if (inline) select(keyOf(inline));
    // the question (when short) and the answer's first sentence at the top of the chat, not its end
    const row = newest.closest('.message-row') || newest;
    const asked = row.previousElementSibling?.classList.contains('user-row') ? row.previousElementSibling : null;
    const top = asked && asked.offsetHeight < 160 ? asked : row;
    const log = c.querySelector('[role=log]');
    if (log) log.scrollTop += top.getBoundingClientRect().top - log.getBoundingClientRect().top - 44;
    if (!wide()) c.scrollIntoView({{block: 'start'}});
    input()?.focus({{preventScroll: true}});
  }}
  function german() {{  // Gradio's own accessible names that its German translation leaves in English
    for (const id of ['rag-status', 'rag-hint']) document.getElementById(id)?.setAttribute('role', 'status');
    document.querySelector('#rag-chat [role=log]')?.setAttribute('aria-label', 'Gespräch');
    // each bubble is labelled "bot's message: <its markup>"; its text is what should be read
    document.querySelectorAll('#rag-chat [data-testid=user][aria-label], #rag-chat [data-testid=bot][aria-label]')
        .forEach(e => e.removeAttribute('aria-label'));
    document.querySelectorAll('#rag-chat .message.pending [role=status]').forEach(e => {{
      e.setAttribute('aria-label', 'Antwort wird gesucht');
      e.querySelector('.sr-only')?.replaceChildren('Antwort wird gesucht …');
    }});
    document.querySelectorAll('input[aria-label^="number input for "], input[aria-label^="range slider for "]')
        .forEach(e => e.setAttribute('aria-label', e.getAttribute('aria-label').replace(/^.* for /, '')));
  }}
  new MutationObserver(() => requestAnimationFrame(() => {{ german(); settle(); }}))
      .observe(document.body, {{childList: true, subtree: true}});
}}
"""
FOCUS_JS = "() => { document.querySelector('#rag-question textarea')?.focus(); }"

# Follow-ups like "Und was sagte er über Russland?" lean on the previous question for their subject.
_FOLLOW_UP = re.compile(r"\b(er|sie|ihm|ihr|ihn|dazu|darüber|davon|dabei|dort|damals)\b", re.I)
_QUESTION_ATTR = re.compile(r'<div class="rag-question" data-question="([^"]*)"')
# Bare URLs, www. names and e-mail addresses that GitHub-flavoured markdown would turn into links.
_AUTOLINK = re.compile(r"(?<=[A-Za-z])(://)|(?<=\bwww)(\.)|(@)(?=\w)", re.I)


def respond(engine: Engine, message: str, history: list[dict[str, Any]], further: float | None = 0,
            date_from: str | None = None, date_to: str | None = None) -> tuple[str, str]:
    """One chat turn: the answer as chat markdown and its sources as HTML. Never raises.

    `further` is how many passages to show besides the cited ones. When no answer could be asked
    (empty question, bad filter, no index) the sources are `EMPTY_PANEL`, and the UI keeps its panel.
    """
    dates = ((date_from or "").strip() or None, (date_to or "").strip() or None)
    s = engine.settings
    extra = max(0, min(int(further or 0), s.max_sources))
    try:
        answer = engine.ask(with_context(message, history), k=min(s.max_sources, s.sources + extra),
                            date_from=dates[0], date_to=dates[1])
    except QuestionError as err:
        return str(err), EMPTY_PANEL
    except IndexUnavailable as err:
        return (f"Der Index ist nicht verfügbar ({_md(err.reason)}). Bitte im Terminal `{err.command}` ausführen "
                "und die Seite neu laden."), EMPTY_PANEL
    except ValueError:
        return ("Der Datumsfilter ist ungültig: bitte ein echtes Datum als JJJJ, JJJJ-MM oder JJJJ-MM-TT angeben, "
                "„von“ nicht nach „bis“."), EMPTY_PANEL
    key = f"rag-{uuid.uuid4().hex[:8]}"  # unique per answer, so every answer's cards can be addressed
    cards = source_cards(answer, engine, extra)
    return render_answer(answer, cards, key, message, dates), render_sources(answer, cards, key)


def with_context(message: str, history: list[dict[str, Any]]) -> str:
    """A short follow-up with a pronoun gets the previous question prepended, so "er" finds its referent."""
    previous = [question_of(m.get("content")) for m in history if m.get("role") == "user"]
    previous = [p for p in previous if p]
    text = " ".join((message or "").split())
    if previous and text and len(text.split()) <= 10 and _FOLLOW_UP.search(text):
        return f"{previous[-1]} {text}"
    return text


def question_of(content: Any) -> str:
    """The question a user message holds: plain text, Gradio's list of parts, or our `question_html`."""
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        return ""
    match = _QUESTION_ATTR.match(content)
    return html.unescape(match.group(1)) if match else content


def question_html(question: str) -> str:
    """The question exactly as typed: escaped text, never markup; a long one collapsed to its start."""
    shown = _esc(question)
    if len(question) > LONG_QUESTION_CHARS:
        preview = _esc(question[:LONG_QUESTION_CHARS].rsplit(" ", 1)[0])
        shown = (f'<details><summary>{preview} … <span class="rag-more">(ganze Frage, '
                 f'{_number(len(question))} Zeichen)</span></summary>{shown}</details>')
    return f'<div class="rag-question" data-question="{html.escape(question)}">{shown}</div>'


@dataclass
class Passage:
    """A stretch of one article shown in its card: overlapping sources merged, so nothing is shown twice."""

    start: int
    end: int
    cited: bool
    highlights: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Card:
    """One article among the sources, numbered as its [n] markers are, with its passages in article order."""

    number: int
    article: Article
    passages: list[Passage] = field(default_factory=list)

    @property
    def cited(self) -> bool:
        return any(p.cited for p in self.passages)

    def add(self, source: Source) -> None:
        self.passages.append(Passage(source.start, source.end, source.cited, list(source.highlights)))
        self.passages.sort(key=lambda p: p.start)
        merged = [self.passages[0]]
        for p in self.passages[1:]:
            last = merged[-1]
            if p.start < last.end:
                last.end, last.cited = max(last.end, p.end), last.cited or p.cited
                last.highlights = sorted(set(last.highlights + p.highlights))
            else:
                merged.append(p)
        self.passages = merged


def source_cards(answer: Answer, engine: Engine, further: int) -> list[Card]:
    """One card per article: first the cited ones in citation order, then up to `further` other passages
    (all of them for a decline, whose passages are only the nearest ones)."""
    shown = [s for s in answer.sources if s.cited]
    uncited = [s for s in answer.sources if not s.cited]
    shown += uncited if answer.declined else uncited[:further]
    cards: dict[str, Card] = {}
    for s in shown:
        if s.article not in cards:
            cards[s.article] = Card(len(cards) + 1, engine.article(s.article))
        cards[s.article].add(s)
    return list(cards.values())


def render_answer(answer: Answer, cards: list[Card], key: str, question: str = "",
                  dates: tuple[str | None, str | None] = (None, None)) -> str:
    """Chat markdown: verbatim answer sentences, each followed by a link to its source card."""
    blocks = [f"*{_md(n)}*" for n in answer.notices]
    if answer.declined:
        blocks.append(f"**{_md(answer.message or '')}**")
        if any(dates):
            blocks.append(_filter_note(question, dates))
        if answer.sources:
            blocks.append("Die nächstliegenden Stellen stehen unter „Belege“; sie beantworten die Frage nicht sicher.")
        return "\n\n".join(blocks)
    by_article = {c.article.id: c for c in cards}
    sources = {s.id: s for s in answer.sources}
    for sentence in answer.sentences:
        card = by_article[sources[sentence.source].article]
        blocks.append(f"{_md(sentence.text)} {_marker(card, sentence.start, key)}")
    return "\n\n".join(blocks)


def _marker(card: Card, start: int, key: str) -> str:
    """A link to the card, named for screen readers ("Quelle 2: Schlagzeile, Datum, Absatz 3")."""
    paragraph = card.article.paragraph_at(start)
    number = paragraph.number if paragraph else "?"
    where = f"{_headline(card.article).rstrip('.!?')}, {_date(card.article.date)}, Absatz {number}"
    return (f'<a class="rag-marker" href="#{key}-q{card.number}" data-answer="{key}" data-card="{card.number}" '
            f'data-start="{start}" aria-label="Quelle {card.number}: {html.escape(where)}" '
            f'data-tip="{html.escape(where)}">[{card.number}]</a>')


def _filter_note(question: str, dates: tuple[str | None, str | None]) -> str:
    """Which date filter was active, and a button to ask again without it."""
    span = " ".join(p for p in (f"von {dates[0]}" if dates[0] else "", f"bis {dates[1]}" if dates[1] else "") if p)
    return (f"Aktiv war der Datumsfilter *{_md(span)}*; Artikel ohne Datum fallen dabei heraus. "
            f'<button type="button" class="rag-unfiltered" data-question="{html.escape(question)}">'
            "Ohne Datumsfilter erneut fragen</button>")


def render_sources(answer: Answer, cards: list[Card], key: str) -> str:
    """The answer's sources, tagged with the answer's `key`: a card per article with its passages, answer
    sentences highlighted."""
    parts = [f'<div class="rag-sources" data-answer="{key}">']
    if not cards:
        return f'{parts[0]}<p class="rag-empty">Keine passenden Stellen gefunden.</p></div>'
    if answer.declined:
        parts.append(f'<p class="rag-note">{html.escape(answer.message or "")} Am nächsten kamen diese Stellen:</p>')
    heading = not answer.declined  # over the first card that is not cited
    for card in cards:
        if heading and not card.cited:
            parts.append('<h3 class="rag-further">Weitere Fundstellen (nicht zitiert)</h3>')
            heading = False
        parts.append(_card_html(card, key))
    return "".join(parts) + "</div>"


def _card_html(card: Card, key: str) -> str:
    """Headline, date and file, the passages with their paragraph numbers, and the article around them."""
    article = card.article
    passages = "".join(
        f'<div class="rag-passage{"" if p.cited else " rag-uncited"}">'
        f'<p class="rag-where">{_paragraphs(article, p.start, p.end)}{"" if p.cited else " · nicht zitiert"}</p>'
        f'<div class="rag-text">{_marked(article.text, p.start, p.end, p.highlights, "rag-hl")}</div></div>'
        for p in card.passages
    )
    windows = _merged([article_window(article, p.start, p.end) for p in card.passages])
    whole = windows == [article_window(article, 0, len(article.text))]
    spans = tuple((p.start, p.end) for p in card.passages)
    context = '<span class="rag-more"> […] </span>'.join(
        _marked(article.text, lo, hi, spans, "rag-in-article") for lo, hi in windows)
    shown = sum(hi - lo for lo, hi in windows)
    more = "" if whole else (f'<p class="rag-note">Ausschnitt von {_number(shown)} der {_number(len(article.text))} '
                             f'Zeichen; der ganze Artikel steht in {html.escape(article.id)}.</p>')
    return (
        f'<div class="rag-card{"" if card.cited else " rag-uncited"}" id="{key}-q{card.number}" '
        f'data-card="{card.number}" tabindex="-1">'
        f'<h3><span class="rag-num">[{card.number}]</span> {html.escape(_headline(article))}</h3>'
        f'<p class="rag-meta">{_date(article.date)} · Datei {html.escape(article.id)}</p>{passages}'
        f'<details><summary>{"Ganzen Artikel" if whole else "Umgebung im Artikel"} anzeigen</summary>'
        f'<div class="rag-article">{context}</div>{more}</details></div>'
    )


def inline_sources(markdown: str, panel: str) -> str:
    """The chat bubble: the answer, then its sources collapsed under it (opened on a phone; on a wide
    screen the summary shows them in the side panel). The block is one line: a blank line would end it."""
    return (f'{markdown}\n\n<details class="rag-inline"><summary>Belege zu dieser Antwort</summary>'
            f'<div class="rag-inline-body">{panel}</div></details>')


def article_window(article: Article, start: int, end: int, radius: int = 2000) -> tuple[int, int]:
    """The article around a passage, about `radius` characters each side, cut at spaces: context enough to
    check a citation without sending a 200 KB article in every source card. The date marker is left out."""
    body = article.paragraphs[0].start if article.paragraphs else 0
    text = article.text
    lo, hi = max(body, start - radius), min(len(text.rstrip()), end + radius)
    if lo > body:
        lo = text.find(" ", lo, start) + 1 or lo
    if hi < len(text.rstrip()):
        hi = max(text.rfind(" ", end, hi), end)
    return lo, hi


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, in order."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _headline(article: Article) -> str:
    """The lead's first sentence, shortened at a word boundary; the file name when there is no lead."""
    title = article.title.removesuffix(" …") or article.id
    if len(title) <= HEADLINE_CHARS:
        return title
    return title[: HEADLINE_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;:–-") + " …"


def _date(date: str | None) -> str:
    """"2023-12" → "Dezember 2023", "2024-03-15" → "15. März 2024"."""
    if not date:
        return "Datum unbekannt"
    parts = [int(p) for p in date.split("-")]
    if len(parts) == 1:
        return str(parts[0])
    month = f"{MONTHS[parts[1] - 1]} {parts[0]}"
    return f"{parts[2]}. {month}" if len(parts) == 3 else month


def _paragraphs(article: Article, start: int, end: int) -> str:
    """"Absatz 3" or "Absätze 1–3": the content paragraphs a passage covers."""
    numbers = [p.number for p in article.content if p.start < end and start < p.end]
    if not numbers:
        return "Absatz ?"
    return f"Absatz {numbers[0]}" if numbers[0] == numbers[-1] else f"Absätze {numbers[0]}–{numbers[-1]}"


def _marked(text: str, start: int, end: int, spans: tuple[tuple[int, int], ...] | list[tuple[int, int]],
            css: str) -> str:
    """`text[start:end]`, escaped, with `spans` (absolute offsets) wrapped in <mark data-start>."""
    out, pos = [], start
    for s, e in sorted(spans):
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        out += [_esc(text[pos:s]), f'<mark class="{css}" data-start="{s}">', _esc(text[s:e]), "</mark>"]
        pos = e
    out.append(_esc(text[pos:end]))
    return "".join(out)


def _esc(text: str) -> str:
    """Article text as HTML on one line: escaped, line breaks as references (shown by `pre-wrap`), so the
    block stays one markdown HTML block inside a chat bubble."""
    return html.escape(text).replace("\r", "").replace("\n", "&#10;")


def _md(text: str) -> str:
    """Article text as literal chat text: HTML-escaped, markdown syntax backslash-escaped, URLs not linked."""
    escaped = re.sub(r"([\\`*_\[\]#|~])", r"\\\1", html.escape(text, quote=False))
    escaped = _AUTOLINK.sub(lambda m: "".join(f"&#{ord(c)};" for c in m.group()), escaped)
    return re.sub(r"^([-+])", r"\\\1", escaped)  # a leading "-" or "+" would start a list


def _number(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def status_line(engine: Engine, watcher: IndexWatcher | None = None) -> str:
    """What is indexed; while the live index updates, what it is doing, then what changed."""
    note = watcher.describe() if watcher else None
    try:
        s = engine.status()
    except IndexUnavailable as err:
        line = f"Kein nutzbarer Index – im Terminal `{err.command}` ausführen."
    else:
        created = datetime.fromisoformat(s.created).astimezone().strftime("%Y-%m-%d %H:%M")
        line = (f"{_number(s.articles)} Artikel · {_number(s.chunks)} Abschnitte · Index vom {created} · "
                f"Modell: {html.escape(s.model)}")
    return f"{_md(note)}  \n{line}" if note else line


def build_ui(engine: Engine, watcher: IndexWatcher | None = None) -> gr.Blocks:
    """The page: chat and input on the left, the selected answer's sources on the right (under each answer
    on a phone). With a `watcher`, the status line follows the live index."""
    with gr.Blocks(title="Nachrichten-Recherche", fill_height=True) as demo:
        gr.Markdown("# Nachrichten-Recherche\nFragen zu den Artikeln stellen – jede Antwort besteht aus "
                    "wörtlichen Sätzen der Artikel, mit Beleg.", elem_id="rag-title")
        status = gr.Markdown(status_line(engine, watcher), elem_id="rag-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(
                    label="Gespräch", show_label=False, elem_id="rag-chat", height=560, autoscroll=False, buttons=[],
                    placeholder="Stellen Sie eine Frage zu den Artikeln.", sanitize_html=False,  # all text is escaped
                    latex_delimiters=[], feedback_options=None, group_consecutive_messages=False,
                    examples=[{"text": e} for e in EXAMPLES],
                )
                box = gr.Textbox(label="Ihre Frage", elem_id="rag-question", submit_btn="Fragen", autofocus=True,
                                 placeholder="Frage eingeben, z. B. „Was sagte Stoltenberg zum NATO-Beitritt?“")
                hint = gr.Markdown("", elem_id="rag-hint")
                with gr.Accordion("Einstellungen", open=False):
                    further = gr.Slider(0, engine.settings.max_sources, value=0, step=1, buttons=[],
                                        label="Weitere Fundstellen zeigen (zusätzlich zu den zitierten)",
                                        info="0 zeigt nur die Artikel, aus denen die Antwort stammt.")
                    date_from = gr.Textbox(label="Datum von", placeholder="z. B. 2023 oder 2023-12",
                                           elem_id="rag-date-from")
                    date_to = gr.Textbox(label="Datum bis", placeholder="z. B. 2024-06-30", elem_id="rag-date-to")
            with gr.Column(scale=2, min_width=300, elem_id="rag-side"):
                gr.HTML('<h2 id="rag-sources-title">Belege</h2><div class="rag-panel" role="region" aria-live="polite" '
                        f'aria-labelledby="rag-sources-title">{EMPTY_PANEL}</div>', elem_id="rag-sources")

        def ask(message: str, history: list[dict[str, Any]], extra: float, since: str,
                until: str) -> tuple[Any, str, str]:
            """The chat's turn: the question and its answer appended, with the answer's sources under it."""
            markdown, panel = respond(engine, message, history, extra, since, until)
            if not (message or "").strip():
                return gr.skip(), "", markdown  # no bubble; the friendly message shows under the input
            bubble = markdown if panel == EMPTY_PANEL else inline_sources(markdown, panel)
            turn = [{"role": "user", "content": question_html(message)}, {"role": "assistant", "content": bubble}]
            return [*history, *turn], "", ""

        def chat_api(question: str, further: float = 0, date_from: str = "", date_to: str = "") -> tuple[str, str]:
            """Answer one question (no history): the answer as chat markdown and its sources as HTML;
            `further` passages are shown besides the cited ones."""
            return respond(engine, question, [], further, date_from, date_to)

        def pick(example: gr.SelectData) -> str:
            return example.value["text"]

        # the page script focuses the input when an answer arrives; FOCUS_JS also after a click or a hint
        asking = dict(fn=ask, inputs=[box, chat, further, date_from, date_to], outputs=[chat, box, hint],
                      api_visibility="private", concurrency_limit=2, concurrency_id="ask", show_progress="minimal")
        box.submit(**asking).then(None, js=FOCUS_JS)
        chat.example_select(pick, None, box, api_visibility="private", queue=False) \
            .then(**asking).then(None, js=FOCUS_JS)
        chat.clear(lambda: "", None, hint, api_visibility="private", queue=False).then(None, js=FOCUS_JS)
        gr.api(chat_api, api_name="chat", concurrency_limit=2, concurrency_id="ask")
        refresh = dict(fn=lambda: status_line(engine, watcher), outputs=status, api_visibility="private",
                       show_progress="hidden")
        demo.load(**refresh)
        if watcher:
            gr.Timer(2.0).tick(**refresh, queue=False)
    return demo


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
          build: bool = True, allow_removal: bool = False, watch: bool = True, embedder: Embedder | None = None) -> None:
    """Update the index, load the model once, then serve until interrupted, re-indexing `seeds/` as it changes."""
    if auth:
        parse_credentials(auth)  # a malformed login fails now, not after the build
    engine = Engine(settings, embedder)
    if build:
        startup_build(engine, allow_removal)
    engine.embedder.encode_questions(["Aufwärmen"], reader=settings.reader)  # load models now, not on the first question
    watcher = IndexWatcher(engine, allow_removal=allow_removal) if watch else None
    print(f"Chat: http://{host}:{port}", file=sys.stderr)
    launch(build_ui(engine, watcher), host, port, auth, watcher=watcher)


def startup_build(engine: Engine, allow_removal: bool = False) -> bool:
    """Bring the index up to date before serving; if that cannot happen (another build holds the lock,
    the index folder is read-only, the build would remove most articles), say why and serve it as it is."""
    from .cli import print_report

    try:
        print_report(engine.build(progress=True, allow_removal=allow_removal))
        return True
    except (BuildRefused, StoreError, OSError) as err:
        reason = err.reason if isinstance(err, BuildRefused) else str(err)
        print(f"note: the index was not updated: {reason}\n  serving the index as it is "
              "(`rag serve --no-build` skips this step)", file=sys.stderr)
        return False


class LoginGuard:
    """Checks the one user:password pair; failed logins are slowed down and, past a burst, refused for a while.

    Gradio hands the check no client address, so the limit is global: guessing stays slow for everyone,
    which on a newsroom's single-user tool is the right trade.
    """

    def __init__(self, credentials: str, burst: int = 10, window: float = 60.0, delay: float = 1.0) -> None:
        self._user, self._password = parse_credentials(credentials)
        self._burst, self._window, self._delay = burst, window, delay
        self._failures: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        now = time.monotonic()
        with self._lock:
            self._failures = [t for t in self._failures if now - t < self._window]
            if len(self._failures) >= self._burst:
                return False
        ok = hmac.compare_digest(f"{user}:{password}".encode(), f"{self._user}:{self._password}".encode())
        if not ok:
            with self._lock:
                self._failures.append(now)
            time.sleep(self._delay)
        return ok


def parse_credentials(credentials: str) -> tuple[str, str]:
    user, colon, password = credentials.partition(":")
    if not (user and colon and password):
        raise ValueError("the login must look like user:password (--auth-file, RAG_AUTH or --auth)")
    return user, password


def read_credentials(auth: str | None = None, auth_file: str | None = None) -> str | None:
    """user:password from a file (first line), else --auth, else $RAG_AUTH; None serves without login.

    A file or the environment keep the password out of `ps`, where a command-line argument shows.
    """
    if auth_file:
        lines = Path(auth_file).read_text(encoding="utf-8").splitlines()
        return lines[0].strip() if lines else ""
    return auth or os.environ.get("RAG_AUTH") or None


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
           block: bool = True, watcher: IndexWatcher | None = None) -> gr.Blocks:
    """Serve `demo` locally and offline (no share link, no analytics); `block=False` returns at once (tests).

    A `watcher` starts with the server and stops when it closes (`demo.close()` or Ctrl-C)."""
    demo.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, share=False, show_error=False, quiet=True,
        auth=LoginGuard(auth) if auth else None, css=CSS, js=JS, head=HEAD,
        footer_links=[], ssr_mode=False, prevent_thread_lock=True,
    )
    if watcher:
        watcher.start(demo.app.stop_event)
    if block:
        try:
            demo.block_thread()
        finally:
            if watcher:
                watcher.stop()
    return demo
