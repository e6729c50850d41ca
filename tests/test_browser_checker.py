"""The headless-browser checker (tests/browser.py) sees what a reader would: each test
feeds it a small page with one known fault (or none) and checks it is reported."""

from pathlib import Path

import numpy as np
import pytest

import browser
from browser import open_page, require_chromium


def write(tmp_path: Path, body: str, title: str = "t") -> Path:
    page = tmp_path / "index.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                    f"<body>{body}</body></html>", encoding="utf-8")
    return page


def test_sections_image_title_and_screenshot(tmp_path):
    require_chromium()
    from matplotlib.image import imsave  # a real PNG, 7 pixels wide, so naturalWidth is checkable

    imsave(tmp_path / "fig.png", np.arange(21.0).reshape(3, 7))
    page = write(tmp_path, "<section id='a'><p>first</p></section>"
                           "<section id='b'><img src='fig.png' alt='fig'></section>", title="Report")
    shot = tmp_path / "shot.png"
    r = open_page(page, screenshot=shot)
    assert r.title == "Report"
    assert r.section_ids == ["a", "b"]
    assert r.images == [("fig.png", 7)]
    assert "first" in r.text
    assert r.console_errors == [] and r.failed_requests == [] and r.dialogs == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_image_fails_request_and_has_no_width(tmp_path):
    require_chromium()
    r = open_page(write(tmp_path, "<img src='missing.png' alt='gone'>"))
    assert r.images == [("missing.png", 0)]
    assert [url.rsplit("/", 1)[-1] for url, _ in r.failed_requests] == ["missing.png"]


def test_console_error_is_recorded(tmp_path):
    require_chromium()
    r = open_page(write(tmp_path, "<script>console.error('x')</script>"))
    assert r.console_errors == ["x"]


def test_uncaught_exception_is_recorded(tmp_path):
    require_chromium()
    r = open_page(write(tmp_path, "<script>throw new Error('boom')</script>"))
    assert any("boom" in e for e in r.console_errors), r.console_errors


def test_injected_script_dialog_is_caught(tmp_path):
    require_chromium()
    r = open_page(write(tmp_path, "<p>hi</p><script>alert('pwned')</script>"))
    assert r.dialogs == ["pwned"]
    assert r.script_count == 1


def test_escaped_markup_is_shown_as_text(tmp_path):
    require_chromium()
    r = open_page(write(tmp_path, "<pre>&lt;script&gt;alert(1)&lt;/script&gt;</pre>"))
    assert "<script>alert(1)</script>" in r.text
    assert r.dialogs == [] and r.script_count == 0


def test_require_chromium_fails_with_the_fix_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="no-chromium is missing; fix: apt-get install chromium"):
        require_chromium()


def test_require_chromium_passes_when_present(monkeypatch, tmp_path):
    present = tmp_path / "chromium"
    present.touch()
    monkeypatch.setattr(browser, "CHROMIUM", present)
    require_chromium()  # does not fail
