"""Open an HTML file in headless Chromium and report what a reader would meet.

A helper for tests, not a test file. It drives the system's Chromium (Debian's
/usr/bin/chromium) through Playwright's sync API; Playwright never downloads a browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")

# The machines have no network: without these Chromium tries to reach Google (updates,
# sync, QUIC probes), which at best is noise and at worst stalls start-up.
# --no-sandbox: tests run as root on CI, where Chromium's sandbox refuses to start.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 30_000  # any wait longer than this is a hang, not a slow page

INSTALL = "apt-get install chromium chromium-driver (or run `make test`, which installs it)"


@dataclass
class PageReport:
    title: str
    text: str  # document.body.innerText: what a reader sees, markup escaped or not
    section_ids: list[str]  # id of every <section>, in document order ("" when it has none)
    images: list[tuple[str, int]]  # (src attribute as written, naturalWidth); 0 = did not load
    script_count: int  # <script> elements in the DOM: injected markup shows up here
    console_errors: list[str] = field(default_factory=list)  # console.error + uncaught exceptions
    failed_requests: list[tuple[str, str]] = field(default_factory=list)  # (url, error text)
    dialogs: list[str] = field(default_factory=list)  # messages of alert/confirm/prompt that fired


def require_chromium() -> None:
    """Fail the calling test, saying how to fix it, when Chromium or Playwright is missing.

    It never skips: ``make test`` installs both, so a missing browser is a broken set-up,
    and a skipped check would let a report nobody looked at pass as tested.
    """
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is not installed (pip install -e '.[dev]')"
    if problem is None:
        return
    pytest.fail(f"browser check needs Chromium: {problem}; fix: {INSTALL}")


def open_page(path: Path, screenshot: Path | None = None) -> PageReport:
    """Load `path` (a local HTML file) headless, wait for it and its images, and report."""
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    failed: list[tuple[str, str]] = []
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.accept()  # an unanswered alert blocks the page's load event: the test would hang

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
            page.on("pageerror", lambda e: console_errors.append(f"uncaught: {e}"))
            page.on("requestfailed", lambda r: failed.append((r.url, r.failure or "")))
            page.on("dialog", on_dialog)
            page.goto(Path(path).resolve().as_uri(), wait_until="load", timeout=TIMEOUT_MS)
            # "load" already waits for images present at parse time; this also covers
            # images that scripts add afterwards.
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            facts = page.evaluate(
                """() => ({
                    title: document.title,
                    text: document.body ? document.body.innerText : "",
                    sections: Array.from(document.querySelectorAll("section"), s => s.id),
                    images: Array.from(document.images, i => [i.getAttribute("src") ?? "", i.naturalWidth]),
                    scripts: document.querySelectorAll("script").length,
                })"""
            )
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return PageReport(
        title=facts["title"],
        text=facts["text"],
        section_ids=facts["sections"],
        images=[(src, int(w)) for src, w in facts["images"]],
        script_count=facts["scripts"],
        console_errors=console_errors,
        failed_requests=failed,
        dialogs=dialogs,
    )
