"""The chat UI: escaping, friendly messages, the `/chat` API, concurrency and a real browser (marked)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.data import GNAD
from rag import store
from rag.app import (EMPTY_PANEL, EXAMPLES, LoginGuard, _md, build_ui, launch, question_html, question_of,
                     read_credentials, respond, source_cards, startup_build, status_line, with_context)
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
    # markdown would turn addresses into links; the references render the same characters as plain text
    assert _md("https://t.co/QH1bJFIB6F, www.parlament.gv.at, games@derStandard.at") == (
        "https&#58;&#47;&#47;t.co/QH1bJFIB6F, www&#46;parlament.gv.at, games&#64;derStandard.at")


def test_question_html_is_never_echoed_raw(engine):
    for question in ['<script>alert("x")</script> Was sagte Stoltenberg?', "<img src=x onerror=alert(1)> NATO"]:
        markdown, panel = respond(engine, question, [])
        assert "<script" not in markdown + panel and "<img" not in markdown + panel


def test_answer_markdown_cites_and_panel_highlights_exact_spans(engine):
    markdown, panel = respond(engine, STOLTENBERG, [])
    answer = engine.ask(STOLTENBERG)
    assert markdown.startswith("Stoltenberg sei sich absolut sicher")
    # each [n] is a link to its card, named like the article: headline, date, paragraph of the sentence
    headline = "Sein Ziel war es, die Ukraine und andere Nachbarn zu dominieren, doch das rücke für den …"
    assert f'aria-label="Quelle 1: {headline}, Dezember 2023, Absatz 3"' in markdown and ">[1]</a>" in markdown
    first = answer.sentences[0]
    assert f'<mark class="rag-hl" data-start="{first.start}">{first.text}</mark>' in panel
    assert f"<h3><span class=\"rag-num\">[1]</span> {headline}</h3>" in panel
    assert "Dezember 2023 · Datei 000_51d543a782ed1e65.txt" in panel
    assert 'data-card="1"' in panel and "Ganzen Artikel anzeigen" in panel


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


def test_one_card_per_article_with_its_passages_merged_in_article_order(engine):
    answer = engine.ask(STOLTENBERG, k=10)
    cards = source_cards(answer, engine, further=10)
    assert len(cards) == len({s.article for s in answer.sources})
    assert [c.number for c in cards] == list(range(1, len(cards) + 1))
    for card in cards:
        starts = [p.start for p in card.passages]
        assert starts == sorted(starts)
        assert all(a.end <= b.start for a, b in zip(card.passages, card.passages[1:]))  # nothing shown twice
    _, panel = respond(engine, STOLTENBERG, [], 10)
    assert panel.count('class="rag-card') == len(cards)


def test_paragraph_numbers_of_a_three_paragraph_article(settings, embedder):
    # one chunk holds all three paragraphs: its own number (1) must not be every sentence's
    (settings.seeds_dir / "drei.txt").write_text(
        "date 2024-02-05 Die Gemeinde Hallstatt führt eine Abgabe für Tagesgäste ein.\n\n"
        "Der Gemeinderat beschloss die Abgabe am Montag mit großer Mehrheit.\n\n"
        "Tagesgäste zahlen ab Mai sieben Euro pro Person, Kinder sind befreit.\n", encoding="utf-8")
    engine = Engine(settings, embedder)
    engine.build()
    markdown, panel = respond(engine, "Wie viel zahlen Tagesgäste in Hallstatt ab Mai?", [])
    assert markdown.startswith("Tagesgäste zahlen ab Mai sieben Euro pro Person")
    assert 'aria-label="Quelle 1: Die Gemeinde Hallstatt führt eine Abgabe für Tagesgäste ein, 5. Februar 2024, ' \
           'Absatz 3"' in markdown
    assert '<p class="rag-where">Absätze 1–3</p>' in panel
    markdown, _ = respond(engine, "Wann beschloss der Gemeinderat die Abgabe?", [])
    assert markdown.startswith("Der Gemeinderat beschloss") and "Absatz 2" in markdown.split("</a>")[0]


def test_further_passages_are_a_setting_of_their_own(engine):
    _, cited_only = respond(engine, STOLTENBERG, [], 0)
    assert "nicht zitiert" not in cited_only
    _, more = respond(engine, STOLTENBERG, [], 3)
    assert 0 < more.count("· nicht zitiert</p>") <= 3  # in a cited article's card or under "Weitere Fundstellen"


def test_a_decline_under_a_date_filter_names_it_and_offers_to_ask_without(engine):
    question = 'Wie hoch ist der <b>Strompreis</b> für Neukunden?'
    markdown, panel = respond(engine, question, [], 0, "2030", "")
    assert "nichts Belastbares gefunden" in markdown and "Datumsfilter *von 2030*" in markdown
    assert ('<button type="button" class="rag-unfiltered" data-question="Wie hoch ist der '
            '&lt;b&gt;Strompreis&lt;/b&gt; für Neukunden?">Ohne Datumsfilter erneut fragen</button>') in markdown
    assert "<b>" not in markdown + panel
    unfiltered, _ = respond(engine, "Wie hoch ist der Strompreis für Neukunden?", [])
    assert "Datumsfilter" not in unfiltered and "27 Cent" in unfiltered


def test_questions_are_shown_as_typed_and_read_back_for_follow_ups():
    typed = '<b>fett</b><script>alert("x")</script> & *kursiv*'
    shown = question_html(typed)
    assert "<b>" not in shown and "<script" not in shown and "&lt;b&gt;fett&lt;/b&gt;" in shown
    assert question_of(shown) == typed
    long = "Was " + "sagte er dazu " * 400
    collapsed = question_html(long)
    assert "<details><summary>" in collapsed and "(ganze Frage, 5.604 Zeichen)" in collapsed
    # Gradio hands the history back as lists of parts; the follow-up still finds its subject
    history = [{"role": "user", "content": [{"type": "text", "text": question_html(STOLTENBERG)}]},
               {"role": "assistant", "content": [{"type": "text", "text": "…"}]}]
    follow_up = "Und was sagte er über Russland?"
    assert with_context(follow_up, history) == f"{STOLTENBERG} {follow_up}"


def test_addresses_in_passages_stay_plain_text(engine):
    if not GNAD.exists():
        pytest.skip("the 10kGNAD article with a web address is in ../shared")
    markdown, panel = respond(engine, "Welches Online-Werkzeug hat die Gewerkschaft lanciert?", [])
    assert "www&#46;allinrechner.at" in markdown and "www.allinrechner.at" not in markdown
    assert "www.allinrechner.at" in panel and "<a " not in panel


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
    assert markdown.startswith("Stoltenberg sei sich absolut sicher") and ">[1]</a>" in markdown
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


def _install_chromium() -> str:
    """The README's one test command must pass on a fresh machine: bring Debian's chromium (Playwright's own
    browser download cannot work offline) the way `.ci/run` used to, with apt, as root."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("the browser tests need Debian's chromium: run `apt-get install chromium` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, capture_output=True)
    done = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, text=True)
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail(f"installing Debian's chromium failed: {done.stderr[-500:]}")
    return chromium


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or _install_chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser, server):
    """A fresh page on the app; every request it makes must stay on localhost."""
    pages, outside = [], []

    def open_(width: int = 1400, height: int = 1000, **options):
        from playwright.sync_api import expect

        page = browser.new_page(viewport={"width": width, "height": height}, locale="de-DE", **options)
        page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url))
        page.goto(server, wait_until="load")
        expect(page.locator("#rag-question textarea")).to_be_visible(timeout=30_000)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    assert outside == [], f"the page fetched from outside localhost: {outside[:5]}"


def _ask(page, question: str, answers: int) -> None:
    """Type `question`, press Enter and wait for the chat to hold `answers` answers."""
    from playwright.sync_api import expect

    box = page.locator("#rag-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#rag-chat .message.bot:not(.pending)")).to_have_count(answers, timeout=60_000)
    page.wait_for_timeout(300)  # the page script selects the new answer's sources on the next frame


def _in_view(page, selector: str, container: str, last: bool = False) -> bool:
    """Whether the top edge of the first (or `last`) match is visible, in the window and in `container`."""
    return page.evaluate("""([sel, box, last]) => {
        const all = document.querySelectorAll(sel), r = all[last ? all.length - 1 : 0].getBoundingClientRect();
        const c = document.querySelector(box).getBoundingClientRect();
        return r.top >= Math.max(0, c.top) - 1 && r.top < Math.min(innerHeight, c.bottom);
    }""", [selector, container, last])


@pytest.mark.browser
def test_browser_asks_and_shows_cited_highlighted_source(open_page):
    from playwright.sync_api import expect

    page = open_page()
    expect(page.get_by_text(EXAMPLES[1])).to_be_visible(timeout=30_000)  # examples offered on an empty chat
    expect(page.locator("#rag-status")).to_contain_text("Artikel ·")
    assert EXAMPLES[0] == STOLTENBERG
    page.get_by_text(STOLTENBERG).click()  # an example asks at once
    expect(page.locator("#rag-chat .message.bot:not(.pending)")).to_have_count(1, timeout=60_000)
    answer = page.locator("#rag-chat .message.bot").last
    expect(answer).to_contain_text("Stoltenberg sei sich absolut sicher")
    expect(answer.locator("a.rag-marker").first).to_have_text("[1]")
    card = page.locator("#rag-sources .rag-card[data-card='1']")
    expect(card.locator("mark.rag-hl").first).to_be_visible()
    expect(card.locator("mark.rag-hl", has_text="NATO-Beitritts")).to_have_count(1)
    card.locator("summary").click()
    expect(card.locator("mark.rag-in-article").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "chat-stoltenberg.png"), full_page=True)

    typed = '<b>fett</b><img src=x onerror="document.title=\'gehackt\'"><script>document.title="gehackt"</script>'
    _ask(page, typed + " Was sagte Stoltenberg?", 2)
    question = page.locator("#rag-chat .message.user").last
    expect(question).to_have_text(typed + " Was sagte Stoltenberg?")  # exactly as typed, not as markup
    assert question.locator("b, img, script").count() == 0
    assert page.title() != "gehackt"


@pytest.mark.browser
def test_browser_citations_lead_to_their_cards_and_each_answer_keeps_its_sources(open_page):
    from playwright.sync_api import expect

    page = open_page()
    box = page.locator("#rag-question textarea")
    box.press("Enter")  # nothing typed: a friendly hint, no bubble
    expect(page.locator("#rag-hint")).to_have_text("Bitte stellen Sie eine Frage.")
    assert page.locator("#rag-chat .message").count() == 0

    _ask(page, STOLTENBERG, 1)
    expect(box).to_be_focused()  # the next question can be typed at once
    expect(box).to_have_attribute("placeholder", re.compile("Frage eingeben"))
    expect(page.locator("#rag-hint")).to_have_text("")
    panel = page.locator("#rag-sources .rag-panel")
    expect(panel.locator(".rag-card h3").first).to_contain_text("Sein Ziel war es, die Ukraine")
    files = panel.locator(".rag-card .rag-meta").all_inner_texts()
    assert len(files) == len(set(files))  # one card per article

    _ask(page, "Wie hoch ist der Strompreis für Neukunden?", 2)
    expect(box).to_be_focused()
    expect(panel.locator(".rag-card h3").first).to_contain_text("Die Strompreise für Haushalte")
    assert _in_view(page, "#rag-chat .message-row.bot-row", "#rag-chat [role=log]", last=True)

    # a marker of the first answer brings its sources back, scrolls to its card and marks it
    marker = page.locator("#rag-chat .message.bot").first.locator("a.rag-marker").last
    expect(marker).to_have_attribute("aria-label",
                                     re.compile(r"^Quelle 1: Sein Ziel war es, .*, Dezember 2023, Absatz \d+$"))
    marker.hover()
    marker.click()
    selected = panel.locator(".rag-card.rag-selected")
    expect(selected).to_have_count(1)
    expect(selected.locator("h3")).to_contain_text("Sein Ziel war es, die Ukraine")
    expect(selected.locator("mark.rag-active")).to_have_count(1)
    page.wait_for_timeout(600)  # smooth scrolling
    assert _in_view(page, "#rag-sources .rag-card.rag-selected", "#rag-sources")
    page.screenshot(path=str(ARTIFACTS / "desktop-marker-selected.png"))

    # the second answer's "Belege" bring its own sources back
    page.locator("#rag-chat .message.bot").last.locator("details.rag-inline > summary").click()
    expect(panel.locator(".rag-card h3").first).to_contain_text("Die Strompreise für Haushalte")

    page.locator("#rag-chat button[aria-label='Chat leeren']").click()
    expect(page.locator("#rag-chat .message")).to_have_count(0)
    expect(panel).to_have_text("Hier erscheinen die Belege zur ausgewählten Antwort.")


@pytest.mark.browser
def test_browser_long_questions_collapse_and_filtered_declines_offer_a_retry(open_page):
    from playwright.sync_api import expect

    page = open_page()
    _ask(page, "Was sagte Stoltenberg " + "über die NATO und die Ukraine " * 60 + "?", 1)
    question = page.locator("#rag-chat .message.user").last
    expect(question.locator("summary")).to_contain_text("(ganze Frage, 1.823 Zeichen)")
    assert question.bounding_box()["height"] < 200

    page.get_by_text("Einstellungen").click()
    page.locator("#rag-date-from textarea, #rag-date-from input").first.fill("2030")
    _ask(page, "Wie hoch ist der Strompreis für Neukunden?", 2)
    declined = page.locator("#rag-chat .message.bot").last
    expect(declined).to_contain_text("Aktiv war der Datumsfilter von 2030")
    declined.get_by_role("button", name="Ohne Datumsfilter erneut fragen").click()
    expect(page.locator("#rag-chat .message.bot:not(.pending)")).to_have_count(3, timeout=60_000)
    expect(page.locator("#rag-chat .message.bot").last).to_contain_text("27 Cent")
    date_from = page.locator("#rag-date-from textarea, #rag-date-from input").first
    expect(date_from).to_have_value("")

    date_from.fill("letzte Woche")  # an error message keeps the sources of the answer before it
    _ask(page, "Wie hoch ist der Strompreis für Neukunden?", 4)
    expect(page.locator("#rag-chat .message.bot").last).to_contain_text("Der Datumsfilter ist ungültig")
    expect(page.locator("#rag-sources .rag-card h3").first).to_contain_text("Die Strompreise für Haushalte")


@pytest.mark.browser
def test_browser_shows_web_addresses_as_plain_text(open_page):
    if not GNAD.exists():
        pytest.skip("the 10kGNAD article with a web address is in ../shared")
    page = open_page()
    _ask(page, "Welches Online-Werkzeug hat die Gewerkschaft lanciert?", 1)
    page.locator("#rag-chat .message.bot a.rag-marker").first.click()
    for area in ("#rag-chat", "#rag-sources"):
        assert "www.allinrechner.at" in page.locator(area).inner_text()
        assert page.locator(f"{area} a:not(.rag-marker)").count() == 0, area


@pytest.mark.browser
def test_browser_phone_shows_sources_under_each_answer(open_page):
    from playwright.sync_api import expect

    page = open_page(390, 844, is_mobile=True, has_touch=True, device_scale_factor=2)
    _ask(page, STOLTENBERG, 1)
    assert not page.locator("#rag-side").is_visible()  # no panel far below the input
    answer = page.locator("#rag-chat .message.bot").last
    expect(answer.locator("p").first).to_contain_text("Stoltenberg sei sich absolut sicher")
    assert _in_view(page, "#rag-chat .message.bot p", "#rag-chat [role=log]")  # opens at its first sentence
    page.screenshot(path=str(ARTIFACTS / "phone-answer.png"))
    answer.locator("a.rag-marker").first.click()
    card = answer.locator("details.rag-inline .rag-card.rag-selected")
    expect(card).to_be_visible()
    page.wait_for_timeout(600)
    assert _in_view(page, "#rag-chat .rag-card.rag-selected", "#rag-chat [role=log]")
    page.screenshot(path=str(ARTIFACTS / "phone-marker-selected.png"))


@pytest.mark.browser
@pytest.mark.parametrize("width,height", [(1400, 1000), (390, 844)])
def test_browser_answered_page_is_accessible(open_page, width, height):
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import expect

    page = open_page(width, height)
    _ask(page, STOLTENBERG, 1)
    _ask(page, "Wie hoch ist der Strompreis für Neukunden?", 2)
    page.locator("#rag-chat .message.bot").first.locator("a.rag-marker").first.click()
    expect(page.locator("h1")).to_have_count(1)
    expect(page.get_by_role("textbox", name="Ihre Frage")).to_be_visible()
    assert page.locator("#rag-sources .rag-panel").get_attribute("aria-live") == "polite"
    results = Axe().run(page)
    serious = [(v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]]) for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []


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


def test_a_read_only_index_is_served_as_it_is(engine, capsys, monkeypatch):
    def read_only(index_dir):  # what opening .lock in a read-only folder raises (root ignores chmod here)
        raise PermissionError(13, "Permission denied", str(index_dir / store.LOCK))

    monkeypatch.setattr(store, "build_lock", read_only)
    assert startup_build(engine) is False
    err = capsys.readouterr().err
    assert "the index was not updated: [Errno 13] Permission denied" in err and "--no-build" in err
    assert "NATO-Beitritts" in engine.ask(STOLTENBERG).sentences[0].text


def test_source_cards_carry_a_bounded_window_not_the_whole_article(settings, embedder):
    paragraphs = [f"Absatz {i}: In Wien wurde über das Budget des Jahres {1900 + i} beraten." for i in range(3000)]
    paragraphs[1500] = "Der Bürgermeister von Wien sagte, der neue Radweg am Ring koste 4,2 Millionen Euro."
    (settings.seeds_dir / "lang.txt").write_text("date 2024-01 " + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    engine = Engine(settings, embedder)
    engine.build()
    _, panel = respond(engine, "Wie viel kostet der neue Radweg am Ring?", [], further=10)
    assert "4,2 Millionen Euro" in panel
    assert len(panel) < 60_000  # the article is over 200,000 characters
    assert "Umgebung im Artikel anzeigen" in panel and "der ganze Artikel steht in lang.txt" in panel
