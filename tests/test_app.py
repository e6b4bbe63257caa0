"""The chat UI: escaping, friendly messages, the `/chat` API, concurrency and a real browser (marked)."""

from __future__ import annotations

import shutil
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag import store
from rag.app import (EMPTY_PANEL, EXAMPLES, LoginGuard, _md, build_ui, launch, read_credentials, respond,
                     startup_build, status_line, with_context)
from rag.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
STOLTENBERG = "Was sagte Stoltenberg zum NATO-Beitritt?"


def test_article_html_is_shown_as_text(engine):
    markdown, panel = respond(engine, "Welche Einträge konnten Angreifer speichern?", [])
    assert "<script" not in panel and "<img" not in panel
    assert "&lt;script&gt;alert(&quot;gehackt&quot;)&lt;/script&gt;" in panel
    assert "&lt;img src=x onerror=alert(1)&gt;" in panel
    assert "<script" not in markdown and "<img" not in markdown
    assert 'class="rag-hl"' in panel  # the answer sentence is still highlighted inside the escaped text


def test_article_text_is_literal_in_chat_markdown():
    assert _md("- Preis: 5 *Euro* [Link](x) <b>fett</b> NATO-Staaten") == (
        "\\- Preis: 5 \\*Euro\\* \\[Link\\](x) &lt;b&gt;fett&lt;/b&gt; NATO-Staaten")


def test_question_html_is_never_echoed_raw(engine):
    for question in ['<script>alert("x")</script> Was sagte Stoltenberg?', "<img src=x onerror=alert(1)> NATO"]:
        markdown, panel = respond(engine, question, [])
        assert "<script" not in markdown + panel and "<img" not in markdown + panel


def test_answer_markdown_cites_and_panel_highlights_exact_spans(engine):
    markdown, panel = respond(engine, STOLTENBERG, [])
    answer = engine.ask(STOLTENBERG)
    assert markdown.startswith("Stoltenberg sei sich absolut sicher") and "**[1]**" in markdown
    assert "000\\_51d543a782ed1e65.txt · 2023-12 · Absatz 3" in markdown
    first = answer.sentences[0]
    assert f'<mark class="rag-hl">{first.text}</mark>' in panel
    assert 'id="quelle-1"' in panel and "Ganzen Artikel anzeigen" in panel


def test_friendly_messages_instead_of_errors(engine, settings, embedder):
    assert respond(engine, "   ", []) == ("Bitte stellen Sie eine Frage.", EMPTY_PANEL)
    assert "Datumsfilter" in respond(engine, STOLTENBERG, [], 5, "letzte Woche")[0]
    declined, panel = respond(engine, "Was sagte Olaf Scholz zur Schuldenbremse?", [])
    assert "nichts Belastbares gefunden" in declined and "Am nächsten kamen" in panel
    missing, _ = respond(Engine(settings, embedder), STOLTENBERG, [])
    assert "Der Index ist nicht verfügbar" in missing and "rag build" in missing
    assert "rag build" in status_line(Engine(settings, embedder))


def test_follow_up_questions_borrow_the_previous_subject():
    history = [{"role": "user", "content": STOLTENBERG}, {"role": "assistant", "content": "…"}]
    assert with_context("Und was sagte er über Russland?", history) == f"{STOLTENBERG} Und was sagte er über Russland?"
    assert with_context("Wie hoch ist der Strompreis?", history) == "Wie hoch ist der Strompreis?"
    assert with_context("Und was sagte er?", []) == "Und was sagte er?"


def test_status_line(engine):
    line = status_line(engine)
    assert line.startswith(f"{engine.status().articles} Artikel · ") and " Abschnitte · Index vom " in line


# ----------------------------------------------------------------------------- against the running app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(engine):
    port = _free_port()
    demo = launch(build_ui(engine), port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_chat_endpoint(client):
    markdown, panel = client.predict(STOLTENBERG, 5, "", "", api_name="/chat")
    assert markdown.startswith("Stoltenberg sei sich absolut sicher") and "**[1]**" in markdown
    assert "rag-hl" in panel and "NATO-Beitritts" in panel


def test_concurrent_clients_get_their_own_answers(server, engine):
    from gradio_client import Client

    questions = {
        STOLTENBERG: "Stoltenberg sei sich absolut sicher",
        "Wie viele russische Soldaten wurden getötet oder verwundet?": "300.000 Soldaten",
        "Wie hoch ist der Strompreis für Neukunden?": "27 Cent",
        "Welche Einträge konnten Angreifer speichern?": "Angreifer konnten Einträge",
    }
    jobs = [q for q in questions for _ in range(2)]  # 8 clients, each its own connection

    def ask(question: str) -> tuple[str, str]:
        return question, Client(server, verbose=False).predict(question, 5, "", "", api_name="/chat")[0]

    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(ask, jobs))
    assert len(results) == 8
    for question, markdown in results:
        assert questions[question] in markdown, (question, markdown[:200])


@pytest.mark.browser
def test_browser_asks_and_shows_cited_highlighted_source(server):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed (`.ci/run` installs it with apt)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="de-DE")
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server, "data:", "blob:")) else None)
        page.goto(server, wait_until="load")
        expect(page.get_by_text(EXAMPLES[1])).to_be_visible(timeout=30_000)  # examples offered on an empty chat
        expect(page.locator("#rag-status")).to_contain_text("Artikel ·")

        box = page.locator("#rag-question textarea")
        box.fill(STOLTENBERG)
        box.press("Enter")
        answer = page.locator("#rag-chat .message.bot, #rag-chat [data-testid='bot']").last
        expect(answer).to_contain_text("Stoltenberg sei sich absolut sicher", timeout=60_000)
        expect(answer).to_contain_text("[1]")
        highlight = page.locator("#rag-sources #quelle-1 mark.rag-hl").first
        expect(highlight).to_contain_text("NATO-Beitritts")
        page.locator("#rag-sources #quelle-1 summary").click()
        expect(page.locator("#rag-sources #quelle-1 mark.rag-in-article")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "chat-stoltenberg.png"), full_page=True)

        box.fill('<img src=x onerror="document.title=\'gehackt\'"> Was sagte Stoltenberg?')
        box.press("Enter")
        expect(page.locator("#rag-chat").get_by_text("<img src=x", exact=False)).to_be_visible(timeout=60_000)
        assert page.title() != "gehackt"
        browser.close()
    assert outside == [], f"the page fetched from outside localhost: {outside[:5]}"


def test_basic_auth_guards_the_app(engine):
    from gradio_client import Client

    port = _free_port()
    demo = launch(build_ui(engine), port=port, auth="redaktion:geheim", block=False)
    try:
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(Exception):
            Client(url, verbose=False)
        markdown, _ = Client(url, auth=("redaktion", "geheim"), verbose=False).predict(
            STOLTENBERG, 5, "", "", api_name="/chat")
        assert "NATO-Beitritts" in markdown
    finally:
        demo.close()
    with pytest.raises(ValueError, match="user:password"):
        launch(build_ui(engine), port=_free_port(), auth="nur-ein-wort", block=False)


def test_failed_logins_are_slowed_and_then_refused_for_a_while():
    guard = LoginGuard("redaktion:geheim", burst=3, window=60, delay=0)
    assert guard("redaktion", "geheim")
    assert not any(guard("redaktion", f"rate{i}") for i in range(3))
    assert not guard("redaktion", "geheim")  # past the burst even the right password waits for the window


def test_login_comes_from_a_file_or_the_environment_not_only_the_command_line(tmp_path, monkeypatch):
    secret = tmp_path / "login"
    secret.write_text("redaktion:geheim\n", encoding="utf-8")
    monkeypatch.setenv("RAG_AUTH", "env:wort")
    assert read_credentials(auth_file=str(secret)) == "redaktion:geheim"
    assert read_credentials() == "env:wort"
    monkeypatch.delenv("RAG_AUTH")
    assert read_credentials() is None
    with pytest.raises(ValueError, match="user:password"):
        LoginGuard("redaktion:")


def test_serve_keeps_serving_when_its_startup_build_cannot_run(engine, capsys):
    with store.build_lock(engine.settings.index_dir):  # `rag serve` while `rag build` runs
        assert startup_build(engine) is False
    err = capsys.readouterr().err
    assert "the index was not updated: another build is running" in err and "--no-build" in err
    assert "NATO-Beitritts" in engine.ask(STOLTENBERG).sentences[0].text


def test_source_cards_carry_a_bounded_window_not_the_whole_article(settings, embedder):
    paragraphs = [f"Absatz {i}: In Wien wurde über das Budget des Jahres {1900 + i} beraten." for i in range(3000)]
    paragraphs[1500] = "Der Bürgermeister von Wien sagte, der neue Radweg am Ring koste 4,2 Millionen Euro."
    (settings.seeds_dir / "lang.txt").write_text("date 2024-01 " + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    engine = Engine(settings, embedder)
    engine.build()
    _, panel = respond(engine, "Wie viel kostet der neue Radweg am Ring?", [], k=10)
    assert "4,2 Millionen Euro" in panel
    assert len(panel) < 60_000  # the article is over 200,000 characters
    assert "Umgebung im Artikel anzeigen" in panel and "der ganze Artikel steht in lang.txt" in panel
