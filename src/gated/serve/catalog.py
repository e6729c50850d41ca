"""The runs a server serves: found on disk, loaded read-only, named, and looked up by name only.

A request names a run by the name this module gave it (the run folder's name),
never by a path: a name is a key of a dict, so ``../`` or ``/etc`` can only
miss. Only text models are served (sentiment and charlm runs): the page reads
text.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FOLDER = Path("tour") / "models"
TEXT_TASKS = ("sentiment", "charlm")
HOW_TO_GET_RUNS = ("no runs to serve: 'make demo' trains the tour's models into tour/models, or train one with "
                   "'gated train sentiment --out runs/reviews' and serve it with 'gated serve runs/reviews'")


@dataclass
class Served:
    """One run, loaded: its name on the page and in the API, its task, model and summary."""

    name: str
    path: Path
    task: object  # gated.tasks.Task, with its vocabulary
    model: object  # gated.models.SequenceModel, in eval mode
    config: dict
    metric: str | None = None
    value: float | None = None
    extra: dict = field(default_factory=dict)  # built at start: the match index, the units to stream

    @property
    def task_name(self) -> str:
        return self.config["task"]

    @property
    def cell(self) -> str:
        return self.config["model"]["cell"]

    @property
    def words(self) -> bool:
        """True for a model that reads words (sentiment), False for one that reads characters (charlm)."""
        return self.task.vocab.kind == "words"

    def describe(self) -> dict:
        return {"name": self.name, "task": self.task_name, "model": self.cell, "metric": self.metric,
                "value": self.value, "hidden_size": self.model.config.hidden_size,
                "layers": self.model.config.num_layers, "bidirectional": self.model.config.bidirectional,
                "reads": "words" if self.words else "characters"}


def find_runs(paths: list[Path]) -> list[Path]:
    """The run folders to serve: those given (a folder of runs counts as its runs), else the tour's."""
    if not paths:
        if not DEFAULT_FOLDER.is_dir():
            raise ValueError(HOW_TO_GET_RUNS)
        paths = [DEFAULT_FOLDER]
    found = []
    for path in map(Path, paths):
        if (path / "config.json").is_file():
            found.append(path)
        elif path.is_dir():
            inside = sorted(p for p in path.iterdir() if (p / "config.json").is_file())
            if not inside and path != DEFAULT_FOLDER:
                raise ValueError(f"{path} is neither a run of 'gated train' nor a folder of runs")
            found += inside
        else:
            raise ValueError(f"{path} does not exist: give the folder of a run of 'gated train'")
    return found


def load_all(paths: list[Path], log=print) -> dict[str, Served]:
    """Load every text run among ``paths``: name -> Served, in the order given (sentiment first)."""
    from ..runs import RunError, load_run

    served: dict[str, Served] = {}
    skipped: dict[str, int] = {}
    for path in find_runs(paths):
        try:
            task, model, config = load_run(path)
        except (RunError, OSError, ValueError) as error:
            raise ValueError(f"cannot serve {path}: {error}") from None
        if config["task"] not in TEXT_TASKS:
            skipped[config["task"]] = skipped.get(config["task"], 0) + 1
            continue
        name = _unique(path.resolve().name, served)
        metric, value = _summary(path)
        served[name] = Served(name, path, task, model, config, metric, value)
    if skipped:
        tasks = ", ".join(f"{n} {task}" for task, n in skipped.items())
        log(f"skipping runs that read no text ({tasks}); gated serve shows {' and '.join(TEXT_TASKS)} runs")
    if not served:
        raise ValueError(HOW_TO_GET_RUNS)
    order = {"sentiment": 0, "charlm": 1}
    cells = {"rnn": 0, "lstm": 1, "gru": 2}
    ranked = sorted(served.values(), key=lambda s: (order[s.task_name], cells.get(s.cell, 3), s.name))
    return {s.name: s for s in ranked}


def _unique(name: str, taken: dict) -> str:
    """The folder's name, or name-2, name-3... when two served runs share it."""
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def _summary(path: Path) -> tuple[str | None, float | None]:
    """The run's test metric and value from metrics.json; (None, None) for a run still training."""
    try:
        summary = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        return str(summary["metric"]), float(summary["value"])
    except (OSError, ValueError, KeyError, TypeError):
        print(f"note: {path} has no metrics.json yet (its training has not finished)", file=sys.stderr)
        return None, None
