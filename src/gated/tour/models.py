"""The tour's models: which runs it trains, and training them two at a time.

Each model is an ordinary run (``gated.runs``) in ``DIR/models/NAME``, so
``gated explain``, ``predict`` and ``generate`` work on it as on any other.
A run is reused when it finished from the same plan (``tour.json`` in the run
records it); otherwise it is trained anew. Runs go to a pool of worker
processes with one torch thread each: on two cores, two small models side by
side finish sooner than one after the other with two threads each.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from .. import checkpoint as ckpt
from .. import runs
from ..runs import Plan

STAMP = "tour.json"
CELLS = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Scale:
    """How big the tour's models are: ``FULL`` for the report, ``TINY`` for tests.

    One plan per kind of model, for the LSTM; the tour trains it with each cell,
    and the adding problem at each of ``adding_lengths``.
    """

    sentiment: Plan
    charlm: Plan
    adding: Plan
    adding_lengths: tuple[int, ...]
    speech: Plan


SPEECH_EPOCHS = 30  # JapaneseVowels' 243 utterances: about 15 s on one thread

FULL = Scale(
    sentiment=Plan("sentiment", model=dict(hidden_size=64, embedding_size=64, bidirectional=False, dropout=0.3),
                   training=dict(epochs=4)),
    # The 5-gram only: fitting orders 6-8 as well would cost the tour about 30 s more. One layer of 192
    # units at a learning rate of 1e-2 learns most in 140 s on one thread: 2.316 validation bits per
    # character (seeds 0, 1) against 2.359 for two layers of 128 at the task's 4e-3; its test score,
    # 2.27-2.29, still lost to the 5-gram's 2.257. With 170 s it reached 2.243 (issue 12).
    charlm=Plan("charlm", options=dict(ngram_order=5), model=dict(hidden_size=192, num_layers=1),
                training=dict(time_limit=170, lr=1e-2)),
    adding=Plan("adding", model=dict(hidden_size=32), training=dict(steps=1500)),
    adding_lengths=(10, 25, 50, 100),
    # One direction, so that the answer after each frame is one a live listener could give.
    speech=Plan("speech", model=dict(bidirectional=False), training=dict(epochs=SPEECH_EPOCHS)),
)

TINY = Scale(
    sentiment=Plan("sentiment", model=dict(hidden_size=8, embedding_size=8, bidirectional=False),
                   training=dict(epochs=1, steps=4, batch_size=8)),
    charlm=Plan("charlm", options=dict(seq_len=16, ngram_order=2), model=dict(hidden_size=8, num_layers=2),
                training=dict(steps=3, batch_size=4)),
    adding=Plan("adding", options=dict(steps_per_epoch=3), model=dict(hidden_size=4), training=dict(steps=3)),
    adding_lengths=(5, 10),
    speech=Plan("speech", model=dict(hidden_size=4, bidirectional=False), training=dict(steps=3, batch_size=8)),
)


@dataclass(frozen=True)
class Job:
    name: str
    plan: Plan
    cost: float  # rough seconds, to start the longest first


def jobs(scale: Scale, data: dict[str, Path] | None = None) -> list[Job]:
    """Every run of the tour at ``scale``; ``data`` gives a task other data than its own (tests cut it small)."""
    data = data or {}

    def plan(base: Plan, cell: str, **options) -> Plan:
        own = {"data": str(data[base.task])} if base.task in data else {}
        return replace(base, cell=cell, options={**base.options, **own, **options})

    # The charlm's own default cell: in 140 s (two layers of 128) it reached 2.31 bits per character
    # where the plain LSTM reached 2.64 (one thread each, beside each other on the 2-core machine).
    found = [Job("charlm-ln-lstm", plan(scale.charlm, "ln-lstm"), 180)]
    for cell in CELLS:
        found.append(Job(f"sentiment-{cell}", plan(scale.sentiment, cell), 30 if cell == "rnn" else 55))
    found.append(Job("speech-lstm", plan(scale.speech, "lstm"), 20))
    for cell in CELLS:
        for length in scale.adding_lengths:
            found.append(Job(f"adding-{cell}-{length}", plan(scale.adding, cell, length=length), 3 + length / 10))
    return sorted(found, key=lambda job: -job.cost)


def finished(run: Path, job: Job) -> bool:
    """True when ``run`` holds a finished run trained from exactly ``job``'s plan."""
    try:
        stamp = json.loads((run / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp.get("plan") == job.plan.to_json() and (run / ckpt.METRICS).is_file()


def train_all(folder: Path, todo: list[Job], workers: int, retrain: bool,
              log: Callable[[str], None] = print) -> dict[str, Path]:
    """Train (or reuse) every job's run under ``folder``; returns name -> run directory."""
    folders = {job.name: folder / job.name for job in todo}
    pending = [job for job in todo if retrain or not finished(folders[job.name], job)]
    if len(pending) < len(todo):
        log(f"reusing {len(todo) - len(pending)} trained model(s) in {folder}")
    for job in pending:
        shutil.rmtree(folders[job.name], ignore_errors=True)  # a half-written or outdated run of ours
    if not pending:
        return folders
    started = time.perf_counter()
    log(f"training {len(pending)} model(s), {min(workers, len(pending))} at a time...")
    # spawn, not fork: a forked child would inherit torch's thread pools mid-use.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, len(pending))) as pool:
        arguments = [(job, str(folders[job.name])) for job in pending]
        for name, seconds, error in pool.imap_unordered(_train_one, arguments):
            if error:
                raise RuntimeError(f"training the tour's {name} model failed: {error}")
            log(f"  {name:<18} {seconds:5.1f} s   (total {time.perf_counter() - started:5.1f} s)")
    return folders


def _train_one(item: tuple[Job, str]) -> tuple[str, float, str | None]:
    """One run, in a worker process; errors come back as text, so the tour can name the model."""
    job, out = item
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        outcome = runs.train(job.plan, Path(out), quiet=True)
    except Exception as error:  # noqa: BLE001 - reported with the model's name by the parent
        return job.name, 0.0, f"{type(error).__name__}: {error}"
    if outcome.reason == "interrupted":
        return job.name, 0.0, "stopped before it finished"
    ckpt.atomic_write_json(Path(out) / STAMP, {"plan": job.plan.to_json()})
    return job.name, time.perf_counter() - started, None
