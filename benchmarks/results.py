"""Train the result rows of the README and print them as Markdown tables.

Each row is one `gated train` command; its metrics.json gives the numbers.
Runs execute in parallel processes of one thread each (--jobs), so that the
machine's cores do not fight over one run's OpenMP threads.

    python benchmarks/results.py --out runs/results [--only adding] [--jobs 2]
    python benchmarks/results.py --only variants --order seed-first [--time-limit 600]
    python benchmarks/results.py --only variants --read      # tables of what is done, no training

Groups of rows (--only takes a group's name, or the start of rows' names):

- the README's first table: adding 100/200/400 (RNN, LSTM, GRU), sentiment (LSTM, GRU, 3 seeds), charlm;
- ``speech`` (issue 12): JapaneseVowels (LSTM, GRU) and the Free Spoken Digit Dataset, its standard
  split and three speakers held out (LSTM), seeds 0, 1, 2; ``--fsdd DIR`` says where FSDD's
  recordings are;
- ``variants`` (issue 11): LSTM, LayerNormLSTM, LSTM + zoneout, LSTM + recurrent dropout, GRU,
  MinGRU, MinLSTM on the adding problem at length 200 and 400 and on sentiment, seeds 0, 1, 2.
  Besides the table of every run, a summary: per task and model the mean and standard deviation
  over the seeds, how many seeds are done, and the task's baseline.

--order seed-first trains every task and model's seed 0 before any seed 1 (and so on), so a
run cut short still has every model once. A row already trained under --out is read, not
trained again; a stopped one is resumed; one that fails is reported and left out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple


class Row(NamedTuple):
    name: str  # its folder under --out
    args: list[str]  # after `gated train`
    groups: tuple[str, ...] = ()  # named groups it belongs to, for --only
    task: str = ""  # how the summary names the task ...
    model: str = ""  # ... and the model, over whose seeds it averages
    seed: int | None = None  # None: a row run once, on the task's default seed


ADDING_BUDGET = ["--time-limit", "300"]  # seconds of training per adding row, as the README's first table

ROWS: list[Row] = []


def _add(row: Row) -> None:
    """Add a row; a row of the same name (the same command) joins the groups instead of running twice."""
    for i, known in enumerate(ROWS):
        if known.name == row.name:
            assert known.args == row.args, f"two commands named {row.name}"
            ROWS[i] = known._replace(groups=tuple(dict.fromkeys(known.groups + row.groups)))
            return
    ROWS.append(row)


for length in (100, 200, 400):
    for model in ("rnn", "lstm", "gru"):
        _add(Row(f"adding-{length}-{model}", ["adding", "--model", model, "--length", str(length), *ADDING_BUDGET]))
for model in ("lstm", "gru"):
    for seed in (0, 1, 2):
        _add(Row(f"sentiment-{model}-{seed}", ["sentiment", "--model", model, "--seed", str(seed)],
                 task="sentiment", model=model.upper(), seed=seed))
_add(Row("charlm-lstm", ["charlm", "--model", "lstm"]))

# Issue 11: the new cells and regularisers against the LSTM and GRU. (name in row names, label, flags)
VARIANT_MODELS = (
    ("lstm", "LSTM", ["--model", "lstm"]),
    ("ln-lstm", "LayerNormLSTM", ["--model", "ln-lstm"]),
    ("lstm-zoneout", "LSTM + zoneout (0.1, 0.05)", ["--model", "lstm", "--zoneout", "0.1,0.05"]),
    ("lstm-recurrent-dropout", "LSTM + recurrent dropout 0.25", ["--model", "lstm", "--recurrent-dropout", "0.25"]),
    ("gru", "GRU", ["--model", "gru"]),
    ("min-gru", "MinGRU", ["--model", "min-gru"]),
    ("min-lstm", "MinLSTM", ["--model", "min-lstm"]),
)
VARIANT_TASKS = (  # (name in row names, label, arguments)
    ("adding-200", "adding 200", ["adding", "--length", "200", *ADDING_BUDGET]),
    ("adding-400", "adding 400", ["adding", "--length", "400", *ADDING_BUDGET]),
    ("sentiment", "sentiment", ["sentiment"]),
)
SEEDS = (0, 1, 2)
for task_name, task_label, task_args in VARIANT_TASKS:
    for model_name, model_label, model_args in VARIANT_MODELS:
        for seed in SEEDS:
            # The sentiment LSTM and GRU rows are the first table's own (same name, same command).
            args = [task_args[0], *model_args, *task_args[1:], "--seed", str(seed)]
            _add(Row(f"{task_name}-{model_name}-{seed}", args, groups=("variants",), task=task_label,
                     model=model_label, seed=seed))

# Issue 12: speech. JapaneseVowels comes inside aeon; the Free Spoken Digit Dataset is the user's own
# download, so its rows name it as the README does and --fsdd says where it is on this machine.
FSDD = "fsdd/recordings"
FSDD_TRAINING = ["--epochs", "15", "--batch-size", "32"]  # the README's command for FSDD's 2,430 recordings
UNSEEN_SPEAKERS = ("theo", "jackson", "nicolas")
for model in ("lstm", "gru"):
    for seed in SEEDS:
        _add(Row(f"speech-vowels-{model}-{seed}", ["speech", "--model", model, "--seed", str(seed)],
                 groups=("speech",), task="JapaneseVowels", model=model.upper(), seed=seed))
for seed in SEEDS:
    _add(Row(f"speech-fsdd-lstm-{seed}", ["speech", "--data", FSDD, *FSDD_TRAINING, "--seed", str(seed)],
             groups=("speech",), task="FSDD, standard split", model="LSTM", seed=seed))
for speaker in UNSEEN_SPEAKERS:
    for seed in SEEDS:
        args = ["speech", "--data", FSDD, "--test-speakers", speaker, *FSDD_TRAINING, "--seed", str(seed)]
        _add(Row(f"speech-fsdd-{speaker}-{seed}", args, groups=("speech",), task=f"FSDD, unseen speaker {speaker}",
                 model="LSTM", seed=seed))


# -- choosing and ordering -------------------------------------------------------------------


def select(rows: list[Row], only: str | None) -> list[Row]:
    """The rows of the group named ``only``, or those whose name starts with it; all for None."""
    return [r for r in rows if not only or only in r.groups or r.name.startswith(only)]


def order(rows: list[Row], how: str) -> list[Row]:
    """``listed``: as defined; ``seed-first``: every seed 0 before any seed 1, each seed in listed order."""
    if how == "seed-first":
        return sorted(rows, key=lambda r: r.seed or 0)  # stable: within a seed, the listed order
    return list(rows)


def with_time_limit(row: Row, seconds: float | None) -> Row:
    """The row with its budget replaced by ``seconds`` of training (None: as defined)."""
    if seconds is None:
        return row
    args = list(row.args)
    if "--time-limit" in args:
        at = args.index("--time-limit")
        del args[at:at + 2]
    return row._replace(args=[*args, "--time-limit", f"{seconds:g}"])


# -- running ---------------------------------------------------------------------------------


def with_fsdd(args: list[str], folder: str | None) -> list[str]:
    """The command with FSDD's recordings where ``folder`` says they are (None: as the README writes it)."""
    return [folder if folder is not None and a == FSDD else a for a in args]


def run(row: Row, out: Path, read_only: bool = False, fsdd: str | None = None) -> dict | None:
    """The row's metrics, trained first unless done; None if it failed or, with ``read_only``, is not done."""
    run_dir = out / row.name
    if not (run_dir / "metrics.json").exists():
        if read_only:
            return None
        command = ["train", *with_fsdd(row.args, fsdd), "--out", str(run_dir), "--quiet"]
        if (run_dir / "config.json").exists():  # a row that was stopped: carry on with it
            command = ["train", row.args[0], "--out", str(run_dir), "--resume", "--quiet"]
        with open(out / f"{row.name}.log", "w") as log:
            done = subprocess.run([sys.executable, "-m", "gated.cli", *command, "--threads", "1"], stdout=log,
                                  stderr=log, check=False)
        if done.returncode != 0:  # the other rows still count; the log says what went wrong
            print(f"results: {row.name} failed (exit {done.returncode}); see {out / row.name}.log", file=sys.stderr)
            return None
    summary = json.loads((run_dir / "metrics.json").read_text())
    summary["command"] = "gated train " + shlex.join(row.args)
    return summary


# -- tables ----------------------------------------------------------------------------------


def table(results: list[dict]) -> str:
    """Every run: one line each."""
    lines = ["| task | model | metric | value | baseline | steps | seconds | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        base = r["baseline"]
        lines.append(f"| {r['task']} | {r['model']} | {r['metric']} | {r['value']:.4f} | "
                     f"{base['name']} {base['value']:.4f} | {r['steps']} | {r['seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def summary(rows: list[Row], results: list[dict | None]) -> str:
    """Per task and model, over its seeds: mean and sample standard deviation of the metric, seeds done.

    ``results[i]`` is the metrics of ``rows[i]``, None where that seed is not done. Only rows
    with a seed take part; tasks and models in the order of ``VARIANT_TASKS`` and ``VARIANT_MODELS``
    (the first table's sentiment rows, defined earlier, sit among their task's models), others after.
    """
    seeds: dict[tuple[str, str], list[tuple[int, dict | None]]] = {}
    for row, result in zip(rows, results):
        if row.seed is not None:
            seeds.setdefault((row.task, row.model), []).append((row.seed, result))
    lines = ["| task | model | metric | mean | std | seeds done | baseline |", "|---|---|---|---|---|---|---|"]
    listed = list(dict.fromkeys(task for task, _ in seeds))  # tasks outside VARIANT_TASKS keep the rows' order
    for (task, model), runs in sorted(seeds.items(), key=lambda item: _summary_place(*item[0], listed)):
        done = sorted((seed, r) for seed, r in runs if r is not None)
        values = [r["value"] for _, r in done]
        first = done[0][1] if done else None
        lines.append(" | ".join([
            f"| {task}", model, first["metric"] if first else "",
            _number(statistics.fmean(values)) if values else "—",
            _number(statistics.stdev(values)) if len(values) > 1 else "—",
            f"{len(done)} of {len(runs)}" + (f" ({', '.join(str(s) for s, _ in done)})" if done else ""),
            f"{_baseline(first['baseline'])} |" if first else "|",
        ]))
    return "\n".join(lines)


def _baseline(base: dict) -> str:
    """The task's baseline, and the majority class where the task measured it (classifiers)."""
    text = f"{base['name']} {_number(base['value'])}"
    return text + (f"; majority {_number(base['majority'])}" if "majority" in base else "")


def _summary_place(task: str, model: str, listed: list[str]) -> tuple[int, int, int]:
    tasks = [label for _, label, _ in VARIANT_TASKS]
    models = [label for _, label, _ in VARIANT_MODELS]
    return (tasks.index(task) if task in tasks else len(tasks), listed.index(task),
            models.index(model) if model in models else len(models))


def _number(value: float) -> str:
    # An MSE of 0.0004 against 0.0001 is the story on the adding problem: keep its digits.
    return f"{value:.4f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2e}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/results"))
    parser.add_argument("--only", help="run only this group (variants) or the rows whose name starts with this")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--time-limit", type=float, metavar="S",
                        help="seconds of training for every row, in place of each row's own budget")
    parser.add_argument("--order", choices=("listed", "seed-first"), default="listed",
                        help="seed-first: every task and model's seed 0 before any seed 1 (default listed)")
    parser.add_argument("--read", action="store_true", help="train nothing: tables of the rows already done")
    parser.add_argument("--fsdd", metavar="DIR", help=f"the Free Spoken Digit Dataset's recordings/ folder, for "
                        f"the speech rows (default {FSDD}, as the commands show it)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [with_time_limit(r, args.time_limit) for r in order(select(ROWS, args.only), args.order)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda row: run(row, args.out, args.read, args.fsdd), rows))
    print(table([r for r in results if r is not None]))
    if any(row.seed is not None for row in rows):
        print()
        print(summary(rows, results))


if __name__ == "__main__":
    main()
