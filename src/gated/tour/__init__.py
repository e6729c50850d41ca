"""``gated tour``: the illustrated guide, drawn from networks trained on the spot.

``run_tour(out)`` trains (or reuses) the small models of ``models.py`` into
``out/models``, computes each section of ``sections.py`` from them, and writes
``out/index.html`` with its figures in ``out/figures`` (PNG, with SVG beside).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..viz import page
from ..viz.lang import labels
from .models import FULL, Scale, jobs, train_all
from .prose import prose
from .sections import SECTIONS, Tour


def run_tour(out: Path, lang: str = "en", retrain: bool = False, workers: int = 2, quiet: bool = False,
             scale: Scale = FULL, data: dict[str, Path] | None = None, seed: int = 0) -> Path:
    """Train what is missing, then write ``out/index.html``; returns its path."""
    log: Callable[[str], None] = (lambda message: None) if quiet else (lambda message: print(message, flush=True))
    started = time.perf_counter()
    out = Path(out)
    t, p = labels(lang), prose(lang)  # refuse an unknown language before training anything
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder for the report and its models")
    (out / "models").mkdir(parents=True, exist_ok=True)
    runs = train_all(out / "models", jobs(scale, data), workers, retrain, log)
    trained = time.perf_counter() - started
    tour = Tour(runs, out, t, p, scale.adding_lengths, lang, seed)
    sections = []
    for build in SECTIONS:
        sections.append(build(tour))
        log(f"  drew {sections[-1].id}")
    html = page.render(p["title"], p["lead"], sections, lang=lang, contents_label=p["contents"], footer=p["footer"])
    path = page.write(out / "index.html", html)
    log(f"wrote {path} in {time.perf_counter() - started:.0f} s ({trained:.0f} s of it training)")
    return path
