"""The Gradio chat: a thin shell over `Engine.ask()` with a sources panel a reader can check.

Every piece of article text and every question is HTML-escaped before it is
shown; highlights come from the exact character spans `ask()` returns.
"""

from __future__ import annotations

import hmac
import html
import os
import re
import sys
import threading
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr

from .answer import Answer, Source
from .corpus import Article
from .engine import Engine, IndexUnavailable, QuestionError
from .indexing import BuildRefused
from .store import StoreError
from .settings import Settings

EXAMPLES = [
    "Was sagte Stoltenberg zum NATO-Beitritt?",
    "Wie viele russische Soldaten wurden getötet oder verwundet?",
    "Welche Ziele hatte Putin in der Ukraine?",
]
EMPTY_PANEL = '<p class="rag-empty">Hier erscheinen die Belegstellen zur Antwort.</p>'
CSS = """
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px; margin-bottom: 10px; }
.rag-source.rag-uncited { opacity: 0.8; }
.rag-meta { font-size: 0.85em; color: var(--body-text-color-subdued); margin-bottom: 4px; }
.rag-num { font-weight: 700; color: var(--color-accent); margin-right: 4px; }
.rag-title { font-weight: 600; margin-bottom: 6px; }
.rag-passage, .rag-article { white-space: pre-wrap; line-height: 1.5; }
.rag-article { max-height: 420px; overflow-y: auto; font-size: 0.92em; margin-top: 6px; }
mark.rag-hl { background: #ffe58a; color: inherit; padding: 0 1px; border-radius: 2px; }
mark.rag-in-article { background: #dbeafe; color: inherit; }
.rag-note { font-weight: 600; }
"""
# Follow-ups like "Und was sagte er über Russland?" lean on the previous question for their subject.
_FOLLOW_UP = re.compile(r"\b(er|sie|ihm|ihr|ihn|dazu|darüber|davon|dabei|dort|damals)\b", re.I)


def respond(engine: Engine, message: str, history: list[dict[str, Any]], k: float | None = None,
            date_from: str | None = None, date_to: str | None = None) -> tuple[str, str]:
    """One chat turn: the answer as chat markdown and the sources panel as HTML. Never raises."""
    try:
        answer = engine.ask(with_context(message, history), k=int(k) if k else None,
                            date_from=(date_from or "").strip() or None, date_to=(date_to or "").strip() or None)
    except QuestionError as err:
        return str(err), EMPTY_PANEL
    except IndexUnavailable as err:
        return (f"Der Index ist nicht verfügbar ({_md(err.reason)}). Bitte im Terminal `{err.command}` ausführen "
                "und die Seite neu laden."), EMPTY_PANEL
    except ValueError:
        return ("Der Datumsfilter ist ungültig: bitte ein echtes Datum als JJJJ, JJJJ-MM oder JJJJ-MM-TT angeben, "
                "„von“ nicht nach „bis“."), EMPTY_PANEL
    return render_answer(answer), render_sources(answer, engine)


def with_context(message: str, history: list[dict[str, Any]]) -> str:
    """A short follow-up with a pronoun gets the previous question prepended, so "er" finds its referent."""
    previous = [m["content"] for m in history if m.get("role") == "user" and isinstance(m.get("content"), str)]
    text = " ".join((message or "").split())
    if previous and text and len(text.split()) <= 10 and _FOLLOW_UP.search(text):
        return f"{previous[-1]} {text}"
    return text


def render_answer(answer: Answer) -> str:
    """Chat markdown: verbatim answer sentences with [n] markers, then the cited sources in brief."""
    blocks = [f"*{_md(n)}*" for n in answer.notices]
    if answer.declined:
        blocks.append(f"**{_md(answer.message or '')}**")
        if answer.sources:
            blocks.append("Die nächstliegenden Stellen stehen unter „Belege“; sie beantworten die Frage nicht sicher.")
        return "\n\n".join(blocks)
    blocks += [f"{_md(s.text)} **[{s.source}]**" for s in answer.sentences]
    blocks.append("  \n".join(f"*[{s.id}] {_md(_cite(s))}*" for s in answer.sources if s.cited))
    return "\n\n".join(blocks)


def render_sources(answer: Answer, engine: Engine) -> str:
    """The sources panel: each passage with its answer sentences highlighted, and the whole article on click."""
    if not answer.sources:
        return '<p class="rag-empty">Keine passenden Stellen gefunden.</p>'
    shown = answer.sources if answer.declined else [s for s in answer.sources if s.cited]
    parts = []
    if answer.declined:
        parts.append(f'<p class="rag-note">{html.escape(answer.message or "")} Am nächsten kamen diese Stellen:</p>')
    for s in shown:
        article = engine.article(s.article)
        title = f'<div class="rag-title">{html.escape(s.title)}</div>' if s.title else ""
        lo, hi = article_window(article, s.start, s.end)
        whole = (lo, hi) == article_window(article, 0, len(article.text))
        more = "" if whole else (f'<p class="rag-note">Ausschnitt von {hi - lo:,} der {len(article.text):,} Zeichen; '
                                 f'der ganze Artikel steht in {html.escape(s.article)}.</p>').replace(",", ".")
        parts.append(
            f'<div class="rag-source{"" if s.cited else " rag-uncited"}" id="quelle-{s.id}" data-source="{s.id}">'
            f'<div class="rag-meta"><span class="rag-num">[{s.id}]</span>{html.escape(_cite(s))}</div>{title}'
            f'<div class="rag-passage">{_marked(article.text, s.start, s.end, s.highlights, "rag-hl")}</div>'
            f'<details><summary>{"Ganzen Artikel" if whole else "Umgebung im Artikel"} anzeigen</summary>'
            f'<div class="rag-article">{_marked(article.text, lo, hi, ((s.start, s.end),), "rag-in-article")}'
            f'</div>{more}</details></div>'
        )
    return "\n".join(parts)


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


def _cite(s: Source) -> str:
    heading = f" · {s.heading}" if s.heading else ""
    return f"{s.article} · {s.date or 'Datum unbekannt'} · Absatz {s.paragraph}{heading}"


def _marked(text: str, start: int, end: int, spans: tuple[tuple[int, int], ...], css: str) -> str:
    """`text[start:end]`, escaped, with `spans` (absolute offsets) wrapped in <mark>."""
    out, pos = [], start
    for s, e in sorted(spans):
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        out += [html.escape(text[pos:s]), f'<mark class="{css}">', html.escape(text[s:e]), "</mark>"]
        pos = e
    out.append(html.escape(text[pos:end]))
    return "".join(out)


def _md(text: str) -> str:
    """Article text as literal chat text: HTML-escaped, markdown syntax backslash-escaped."""
    escaped = re.sub(r"([\\`*_\[\]#|~])", r"\\\1", html.escape(text, quote=False))
    return re.sub(r"^([-+])", r"\\\1", escaped)  # a leading "-" or "+" would start a list


def status_line(engine: Engine) -> str:
    try:
        s = engine.status()
    except IndexUnavailable as err:
        return f"Kein nutzbarer Index – im Terminal `{err.command}` ausführen."
    created = datetime.fromisoformat(s.created).astimezone().strftime("%Y-%m-%d %H:%M")
    return (f"{s.articles} Artikel · {s.chunks} Abschnitte · Index vom {created} · "
            f"Modell: {html.escape(s.model)}")


def build_ui(engine: Engine) -> gr.Blocks:
    with gr.Blocks(title="Nachrichten-Recherche", fill_height=True) as demo:
        gr.Markdown("## Nachrichten-Recherche\nFragen zu den Artikeln stellen – jede Antwort besteht aus "
                    "wörtlichen Sätzen der Artikel, mit Beleg.")
        status = gr.Markdown(status_line(engine), elem_id="rag-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                sources = gr.HTML(EMPTY_PANEL, elem_id="rag-sources", render=False)
                # ChatInterface renders these inside the accordion below the chat
                k = gr.Slider(1, 10, value=engine.settings.sources, step=1, label="Anzahl der Quellen", render=False)
                date_from = gr.Textbox(label="Datum von", placeholder="z. B. 2023 oder 2023-12", render=False)
                date_to = gr.Textbox(label="Datum bis", placeholder="z. B. 2024-06-30", render=False)
                gr.ChatInterface(
                    partial(respond, engine),
                    chatbot=gr.Chatbot(label="Antwort", elem_id="rag-chat", height=560,
                                       placeholder="Stellen Sie eine Frage zu den Artikeln."),
                    textbox=gr.Textbox(placeholder="Frage eingeben, z. B. „Was sagte Stoltenberg zum NATO-Beitritt?“",
                                       elem_id="rag-question", submit_btn="Fragen", stop_btn=False),
                    additional_inputs=[k, date_from, date_to],
                    additional_inputs_accordion=gr.Accordion("Einstellungen", open=False, render=False),
                    additional_outputs=[sources],
                    examples=[[e] for e in EXAMPLES],  # message only: shown as clickable bubbles in the empty chat
                    api_name="chat",
                    concurrency_limit=2,
                    fill_height=False,
                )
            with gr.Column(scale=2):
                gr.Markdown("### Belege")
                sources.render()
        demo.load(lambda: status_line(engine), outputs=status, api_visibility="private")
    return demo


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, auth: str | None = None,
          build: bool = True, allow_removal: bool = False) -> None:
    """Update the index, load the model once, then serve until interrupted."""
    if auth:
        parse_credentials(auth)  # a malformed login fails now, not after the build
    engine = Engine(settings)
    if build:
        startup_build(engine, allow_removal)
    engine.embedder.encode_queries(["Aufwärmen"])  # load the model now, not on the first question
    print(f"Chat: http://{host}:{port}", file=sys.stderr)
    launch(build_ui(engine), host, port, auth)


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
           block: bool = True) -> gr.Blocks:
    """Serve `demo` locally and offline (no share link, no analytics); `block=False` returns at once (tests)."""
    demo.queue(default_concurrency_limit=2).launch(
        server_name=host, server_port=port, share=False, show_error=False, quiet=True,
        auth=LoginGuard(auth) if auth else None, css=CSS,
        footer_links=[], ssr_mode=False, prevent_thread_lock=not block,
    )
    return demo
