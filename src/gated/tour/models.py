"""The tour's models: which runs it trains, and training them two at a time.

Each model is an ordinary ``gated train`` run in ``DIR/models/NAME``, so
``gated explain``, ``predict`` and ``generate`` work on it as on any other.
A run is reused when it finished with the same arguments (``tour.json`` in the
run records them); otherwise it is trained anew. Runs go to a pool of worker
processes with one torch thread each: on two cores, two small models side by
side finish sooner than one after the other with two threads each.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import checkpoint as ckpt

STAMP = "tour.json"
CELLS = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Scale:
    """How big the tour's models are: ``FULL`` for the report, ``TINY`` for tests."""

    sentiment: tuple[str, ...]
    sentiment_epochs: dict
    charlm: tuple[str, ...]
    adding: tuple[str, ...]
    adding_lengths: tuple[int, ...]


FULL = Scale(
    sentiment=("--hidden", "64", "--embedding", "64", "--no-bidirectional", "--dropout", "0.3"),
    sentiment_epochs={"rnn": 4, "lstm": 4, "gru": 4},
    charlm=("--hidden", "128", "--layers", "2", "--time-limit", "140"),
    adding=("--hidden", "32", "--steps", "1500"),
    adding_lengths=(10, 25, 50, 100),
)

TINY = Scale(
    sentiment=("--hidden", "8", "--embedding", "8", "--no-bidirectional", "--steps", "4", "--batch-size", "8"),
    sentiment_epochs={"rnn": 1, "lstm": 1, "gru": 1},
    charlm=("--hidden", "8", "--layers", "2", "--steps", "3", "--seq-len", "16", "--batch-size", "4",
            "--ngram-order", "2"),
    adding=("--hidden", "4", "--steps", "3", "--steps-per-epoch", "3"),
    adding_lengths=(5, 10),
)


@dataclass(frozen=True)
class Job:
    name: str
    args: tuple[str, ...]  # everything after 'gated train' but --out
    cost: float  # rough seconds, to start the longest first


def jobs(scale: Scale, data: dict[str, Path] | None = None) -> list[Job]:
    data = data or {}
    extra = {task: ("--data", str(path)) for task, path in data.items()}
    found = [Job("charlm-lstm", ("charlm", "--model", "lstm", *scale.charlm, *extra.get("charlm", ())), 150)]
    for cell in CELLS:
        epochs = ("--epochs", str(scale.sentiment_epochs[cell]))
        args = ("sentiment", "--model", cell, *scale.sentiment, *epochs, *extra.get("sentiment", ()))
        found.append(Job(f"sentiment-{cell}", args, 30 if cell == "rnn" else 55))
    for cell in CELLS:
        for length in scale.adding_lengths:
            args = ("adding", "--model", cell, "--length", str(length), *scale.adding)
            found.append(Job(f"adding-{cell}-{length}", args, 3 + length / 10))
    return sorted(found, key=lambda job: -job.cost)


def finished(run: Path, job: Job) -> bool:
    """True when ``run`` holds a finished run trained with exactly ``job``'s arguments."""
    try:
        stamp = json.loads((run / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("args") == list(job.args) and (run / ckpt.METRICS).is_file()


def train_all(folder: Path, todo: list[Job], workers: int, retrain: bool,
              log: Callable[[str], None] = print) -> dict[str, Path]:
    """Train (or reuse) every job's run under ``folder``; returns name -> run directory."""
    runs = {job.name: folder / job.name for job in todo}
    pending = [job for job in todo if retrain or not finished(runs[job.name], job)]
    if len(pending) < len(todo):
        log(f"reusing {len(todo) - len(pending)} trained model(s) in {folder}")
    for job in pending:
        shutil.rmtree(runs[job.name], ignore_errors=True)  # a half-written or outdated run of ours
    if not pending:
        return runs
    started = time.perf_counter()
    log(f"training {len(pending)} model(s), {min(workers, len(pending))} at a time...")
    # spawn, not fork: a forked child would inherit torch's thread pools mid-use.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(pending))) as pool:
        arguments = [(job, str(runs[job.name])) for job in pending]
        for name, seconds, error in pool.imap_unordered(_train_one, arguments):
            if error:
                raise RuntimeError(f"training the tour's {name} model failed: {error}")
            log(f"  {name:<18} {seconds:5.1f} s   (total {time.perf_counter() - started:5.1f} s)")
    return runs


def _train_one(item: tuple[Job, str]) -> tuple[str, float, str | None]:
    """One run, in a worker process; errors come back as text, so the tour can name the model."""
    import contextlib
    import io

    import torch

    from ..cli import main

    job, out = item
    torch.set_num_threads(1)
    started = time.perf_counter()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        try:
            code = main(["train", *job.args, "--out", out, "--quiet", "--threads", "1"])
        except Exception as error:  # noqa: BLE001 - reported with the model's name by the parent
            return job.name, 0.0, f"{type(error).__name__}: {error}"
    if code != 0:
        return job.name, 0.0, captured.getvalue().strip() or f"exit code {code}"
    ckpt.atomic_write_json(Path(out) / STAMP, {"args": list(job.args)})
    return job.name, time.perf_counter() - started, None
