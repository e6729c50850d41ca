"""gated serve's page in Debian's Chromium, driven by Playwright, on the tour's tiny models: reading as one
types, hovering, a unit, a span and its matches, comparing, what if, a streamed generation, hostile text,
the keyboard alone, German. One server and one browser for the module; a fresh page per test."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import browser
import pytest

import gated.serve
from gated.serve.app import create_app
from gated.serve.catalog import load_all

REVIEW = "I bought this for my kids and they did not like it, but the price was great and it came fast"
HOSTILE = "Tasty <script>alert(1)</script> and <img src=x onerror=alert(2)> crunchy"


@pytest.fixture(scope="module")
def server(report: Path):
    import uvicorn

    served = load_all([report.parent / "models"], log=lambda message: None)
    app = create_app(served, log=lambda message: None)
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = instance.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def chromium():
    browser.require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=str(browser.CHROMIUM), headless=True, args=browser.ARGS)
        yield instance
        instance.close()


class Visit:
    """One page, with what it logged, asked for and popped up."""

    def __init__(self, chromium, base: str) -> None:
        self.base = base
        self.page = chromium.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(browser.TIMEOUT_MS)
        self.errors, self.elsewhere, self.dialogs, self.reads = [], [], [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        self.page.on("request", self._request)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def _request(self, request) -> None:
        if not request.url.startswith(self.base + "/"):
            self.elsewhere.append(request.url)
        if request.url.endswith("/api/read"):
            self.reads.append(request.post_data_json)

    def open(self, query: str = "") -> None:
        self.page.goto(f"{self.base}/{query}")
        self.page.wait_for_selector("body[data-ready='1']")

    def read(self, run: str, text: str, typed: bool = False) -> None:
        """Choose ``run``, enter ``text`` and wait until the page shows the tokens the model reads of it."""
        self.page.select_option("#run", run)
        if typed:
            self.page.click("#text")
            self.page.keyboard.type(text, delay=15)
        else:
            self.page.fill("#text", text)
        shown = [{"\n": "\u21b5", " ": "\u2423"}.get(t, t) for t in self.api_tokens(run, text)]
        self.until(lambda: self.page.locator(".word").all_text_contents() == shown)

    def until(self, condition, seconds: float = 30) -> None:
        """Poll ``condition`` (a Python callable) until it holds. The page's CSP forbids eval, and with it
        Playwright's wait_for_function; evaluate() goes through the debugger and is allowed."""
        deadline = time.monotonic() + seconds
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the page never reached the expected state")
            self.page.wait_for_timeout(50)

    def api(self, path: str, body: dict) -> dict:
        response = self.page.request.post(self.base + path, data=body)
        assert response.ok, response.text()
        return response.json()

    def api_tokens(self, run: str, text: str) -> list[str]:
        return self.api("/api/read", {"run": run, "text": text})["tokens"]


@pytest.fixture
def visit(chromium, server):
    seen = Visit(chromium, server)
    yield seen
    seen.page.close()
    assert seen.errors == [], seen.errors
    assert seen.elsewhere == [], seen.elsewhere
    assert seen.dialogs == [], seen.dialogs


def test_typing_a_review_updates_the_prediction_and_the_heatmaps(visit):
    visit.open()
    visit.read("sentiment-lstm", REVIEW, typed=True)
    page = visit.page
    answer = visit.api("/api/read", {"run": "sentiment-lstm", "text": REVIEW})
    assert len(visit.reads) < len(REVIEW) / 5  # debounced: a few reads for the whole typing, not one a key
    assert page.text_content("#verdict") == f"Verdict: {answer['verdict']} (p = {answer['confidence']:.3f})"
    assert page.locator(".word").all_text_contents() == answer["tokens"]
    heatmaps = page.locator("#reading canvas[data-gate]")
    assert [heatmaps.nth(i).get_attribute("data-gate") for i in range(heatmaps.count())] == [
        "input", "forget", "output", "candidate", "cell", "hidden"]
    assert heatmaps.first.get_attribute("data-rows") == str(1 + len(answer["units"]))  # the mean, then units
    page.fill("#text", "awful")  # a new text: a new reading, drawn over the old one
    page.wait_for_selector("#reading[data-tokens='1']")
    awful = visit.api("/api/read", {"run": "sentiment-lstm", "text": "awful"})
    assert page.text_content("#verdict") == f"Verdict: {awful['verdict']} (p = {awful['confidence']:.3f})"
    assert page.locator(".word").all_text_contents() == ["awful"]


def test_hovering_a_word_and_clicking_a_unit(visit):
    visit.open()
    visit.read("sentiment-gru", REVIEW)
    page = visit.page
    answer = visit.api("/api/read", {"run": "sentiment-gru", "text": REVIEW})
    i = answer["tokens"].index("not")
    page.hover(f".word[data-i='{i}']")
    assert '\u201cnot\u201d, token' in page.text_content("#details-body")
    listed = page.locator("#details-units button")
    assert [int(listed.nth(k).get_attribute("data-unit")) for k in range(listed.count())] == answer["top"]["units"][i]
    unit = answer["top"]["units"][i][0]
    listed.first.click()
    page.wait_for_selector(f"#unit-body[data-unit='{unit}']")
    assert page.locator("#unit-body canvas").count() == len(answer["gates"])
    assert f"Unit {unit}" in page.text_content("#unit-body")


def test_selecting_a_span_lists_its_units_and_matches(visit):
    visit.open()
    visit.read("sentiment-lstm", REVIEW)
    page = visit.page
    page.fill("#threshold", "0")
    page.locator(".word[data-i='2']").scroll_into_view_if_needed()
    first, last = page.locator(".word[data-i='2']").bounding_box(), page.locator(".word[data-i='4']").bounding_box()
    page.mouse.move(first["x"] + 2, first["y"] + first["height"] - 4)  # drag over the tokens, as a reader would
    page.mouse.down()
    page.mouse.move(last["x"] + last["width"] - 2, last["y"] + 4, steps=5)
    page.mouse.up()
    page.wait_for_selector("#matches[data-units]")
    assert (page.input_value("#span-from"), page.input_value("#span-to")) == ("3", "5")
    found = visit.api("/api/match", {"run": "sentiment-lstm", "text": REVIEW, "start": 2, "end": 4, "threshold": 0})
    assert page.get_attribute("#matches", "data-units") == str(len(found["units"]))
    assert page.get_attribute("#matches", "data-matches") == str(len(found["matches"]))
    if found["matches"]:
        assert page.locator("#matches mark").first.text_content() == " ".join(found["matches"][0]["tokens"])


def test_compare_and_what_if(visit):
    visit.open()
    visit.read("sentiment-rnn", REVIEW)
    page = visit.page
    page.click("#compare-go")
    page.wait_for_selector("#compare-out[data-version='1']")
    assert page.locator("#compare-out [data-run]").evaluate_all("cards => cards.map(c => c.dataset.run)") == [
        "sentiment-rnn", "sentiment-lstm", "sentiment-gru"]
    tokens = visit.api_tokens("sentiment-rnn", REVIEW)
    i = tokens.index("not")
    page.click(f"#whatif-words button[data-i='{i}']")
    page.wait_for_selector("#whatif-gates[data-dropped='1']")
    without = visit.api("/api/read", {"run": "sentiment-rnn", "text": REVIEW, "drop": [i]})
    assert f"{without['verdict']} (p = {without['confidence']:.3f})" in page.text_content("#whatif-result")
    assert page.get_attribute(f"#whatif-words button[data-i='{i}']", "aria-pressed") == "true"


def test_a_generation_streams_onto_the_page(visit):
    visit.open()
    page = visit.page
    # Count the separate moments characters arrive: one blob at the end would be a single batch.
    page.evaluate("""() => {
        window.batches = 0;
        new MutationObserver(() => { window.batches += 1; })
            .observe(document.getElementById('generated'), {childList: true});
    }""")
    page.fill("#gen-length", "120")
    page.click("#gen-go")
    page.wait_for_selector("#generated[data-chars='120']")
    page.wait_for_selector("#gen-go:not([disabled])")
    assert page.evaluate("window.batches") > 5
    spans = page.locator("#generated span:not(.prime)")
    assert spans.count() == 120
    assert "p = " in spans.first.get_attribute("title")
    # input, forget, output, candidate, cell, its normalised value (a layer-norm LSTM), hidden
    assert page.locator("#gen-gates canvas[data-gate]").count() == 7
    assert "Wrote 120 characters" in page.text_content("#gen-status")


def test_markup_in_a_review_is_shown_as_text(visit):
    visit.open()
    visit.read("sentiment-lstm", HOSTILE, typed=True)
    visit.read("charlm-ln-lstm", HOSTILE)
    page = visit.page
    assert "".join(page.locator(".word").all_text_contents()).replace("\u2423", " ") == HOSTILE
    page.fill("#gen-prime", HOSTILE)
    page.fill("#gen-length", "5")
    page.click("#gen-go")
    page.wait_for_selector("#generated[data-chars='5']")
    assert page.text_content("#generated .prime") == HOSTILE
    shipped = (Path(gated.serve.__file__).parent / "static" / "index.html").read_text().count("<script")
    assert page.locator("script").count() == shipped == 4  # the page's own, nothing injected
    assert page.locator("img").count() == 0
    page.wait_for_timeout(200)  # a dialog would have fired by now


def test_the_keyboard_alone_reads_inspects_and_leaves_a_word_out(visit):
    visit.open()
    page = visit.page

    def tab_until(selector: str, limit: int = 200) -> None:
        for _ in range(limit):
            page.keyboard.press("Tab")
            if page.evaluate(f"document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_until("#text")
    page.keyboard.type("not fresh at all", delay=10)
    page.wait_for_selector("#reading[data-tokens='4']")
    tab_until(".word")
    assert '\u201cnot\u201d, token 1' in page.text_content("#details-body")
    tab_until("#whatif-words button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#whatif-gates[data-dropped='1']")
    tab_until("#gen-go")
    page.keyboard.press("Enter")
    page.wait_for_selector("#generated span:not(.prime)")


def test_the_german_page(visit):
    visit.open("?lang=de")
    page = visit.page
    assert page.get_attribute("html", "lang") == "de"
    assert page.text_content("#read-title") == "Lesen"
    visit.read("sentiment-lstm", "nicht schlecht, great taste")
    assert page.text_content("#verdict").startswith("Urteil:")
    assert "Vergessenstor" in page.text_content("#reading")
    assert page.text_content("#status").startswith(f"{page.locator('.word').count()} Token gelesen")
