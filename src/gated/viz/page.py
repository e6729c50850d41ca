"""Self-contained HTML pages: the tour's report and ``gated explain --html``.

Every piece of text, the reader's own text above all, goes through
``html.escape``: a review containing ``<script>`` is shown, never run. Pieces
that are already HTML are ``Html`` strings, made only by the builders below.
The page needs no server and no network: styles are inline and images are
files beside it or ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..checkpoint import atomic_write_bytes


class Html(str):
    """A string that is already safe HTML (made by this module's builders)."""


def escape(text) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class Image:
    src: str  # a file name beside the page, or a data: URI
    alt: str
    svg: str | None = None  # the same figure as SVG, linked under the image

    @classmethod
    def inline(cls, png: bytes, alt: str) -> Image:
        return cls("data:image/png;base64," + base64.b64encode(png).decode("ascii"), alt)


@dataclass
class Section:
    id: str
    title: str
    paragraphs: Sequence[str] = ()
    images: Sequence[Image] = ()
    blocks: Sequence[Html] = ()  # tables, code, coloured text: after the paragraphs, before the images
    notes: Sequence[str] = field(default_factory=list)  # small print under the figures


def preformatted(text: str, label: str | None = None) -> Html:
    caption = f'<div class="label">{escape(label)}</div>' if label else ""
    return Html(f"{caption}<pre>{escape(text)}</pre>")


def quote(text: str, label: str | None = None) -> Html:
    """Someone else's text (a review), line breaks kept."""
    caption = f'<div class="label">{escape(label)}</div>' if label else ""
    return Html(f"{caption}<blockquote>{escape(text)}</blockquote>")


def table(header: Sequence[str], rows: Sequence[Sequence], numeric_from: int = 1) -> Html:
    """A table; columns from ``numeric_from`` on are right-aligned numbers."""
    def cells(row, tag):
        return "".join(f'<{tag}{" class=num" if i >= numeric_from else ""}>{escape(v)}</{tag}>'
                       for i, v in enumerate(row))
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    return Html(f"<table><thead><tr>{cells(header, 'th')}</tr></thead><tbody>{body}</tbody></table>")


def side_by_side(left: Html, right: Html) -> Html:
    return Html(f'<div class="pair"><div>{left}</div><div>{right}</div></div>')


def shaded_words(words: Sequence[str], values: Sequence[float], bound: float | None = None,
                 titles: Sequence[str] | None = None) -> Html:
    """The text with each word's background shaded by a signed value: blue below zero, red above."""
    values = np.asarray(values, dtype=float)
    bound = bound or max(float(np.abs(values).max()), 1e-9)
    spans = []
    for k, (word, value) in enumerate(zip(words, values)):
        strength = min(abs(value) / bound, 1.0)
        rgb = "178,24,43" if value > 0 else "33,102,172"  # the ends of the figures' RdBu map
        title = f' title="{escape(titles[k])}"' if titles else ""
        spans.append(f'<span style="background: rgba({rgb},{strength * 0.75:.2f})"{title}>{escape(word)}</span>')
    return Html(f'<p class="words">{" ".join(spans)}</p>')


STYLE = """
body { font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0; background: #fafafa; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.5rem 4rem; background: white; }
h1 { font-size: 1.8rem; margin-bottom: 0.2rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; }
nav ul { columns: 2; list-style: none; padding-left: 0; } img { max-width: 100%; height: auto; display: block; margin: 1rem 0 0.3rem; }
pre { background: #f4f4f4; padding: 0.7rem 1rem; overflow-x: auto; font-size: 0.85rem; line-height: 1.4; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #e4e4e4; text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; } th { white-space: nowrap; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
blockquote { margin: 0.5rem 0; padding: 0.5rem 1rem; border-left: 4px solid #0072B2; background: #f4f8fb;
  white-space: pre-line; } .pair pre { margin: 0; white-space: pre-wrap; }
.label { font-size: 0.8rem; color: #666; margin-top: 0.8rem; } .note, figcaption { font-size: 0.85rem; color: #555; }
.words span { padding: 0.05rem 0.15rem; border-radius: 3px; } .lead { font-size: 1.05rem; color: #444; }
"""


def render(title: str, lead: Sequence[str], sections: Sequence[Section], lang: str = "en",
           contents_label: str = "Contents", footer: str = "") -> str:
    nav = "".join(f'<li><a href="#{escape(s.id)}">{escape(s.title)}</a></li>' for s in sections)
    parts = [
        f'<!DOCTYPE html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{escape(title)}</h1>\n",
        *(f'<p class="lead">{escape(p)}</p>\n' for p in lead),
    ]
    if len(sections) > 1:
        parts.append(f"<nav><h2>{escape(contents_label)}</h2><ul>{nav}</ul></nav>\n")
    parts.extend(_section(s) for s in sections)
    if footer:
        parts.append(f'<footer><p class="note">{escape(footer)}</p></footer>\n')
    parts.append("</main>\n</body>\n</html>\n")
    return "".join(parts)


def _section(section: Section) -> str:
    body = [f'<section id="{escape(section.id)}">\n<h2>{escape(section.title)}</h2>\n']
    body += [f"<p>{escape(p)}</p>\n" for p in section.paragraphs]
    body += [f"{block}\n" for block in section.blocks]
    for image in section.images:
        link = f' <a href="{escape(image.svg)}">SVG</a>' if image.svg else ""
        body.append(f'<figure><img src="{escape(image.src)}" alt="{escape(image.alt)}">'
                    f"<figcaption>{escape(image.alt)}{link}</figcaption></figure>\n")
    body += [f'<p class="note">{escape(n)}</p>\n' for n in section.notes]
    body.append("</section>\n")
    return "".join(body)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
