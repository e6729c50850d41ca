"""Which levers move the review classifier toward the bag of words? (issue 12, section 2)

Trains the sentiment task with one change at a time against the default, a few seeds each,
in parallel one-thread processes (the machinery of ``results.py``), and prints per lever the
mean validation accuracy (what a choice may be made on), the mean test accuracy, and the
TF-IDF + logistic regression baseline of the same runs. The test split is printed for the
record only: pick levers by the validation column.

    python benchmarks/review_levers.py --out runs/levers --jobs 12 --time-limit 400 --seeds 0,1
    python benchmarks/review_levers.py --out runs/levers --read
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from results import Row, run, with_time_limit  # noqa: E402  (a sibling script, not a package)

# (name, what changes) — each against the task's defaults (a bidirectional LSTM, last-step readout,
# the embedding started from PPMI word vectors of the training texts: pretrain.py).
LEVERS = (
    ("default", []),
    ("max-readout", ["--readout", "max"]),
    ("gru-max", ["--model", "gru", "--readout", "max"]),
    ("ln-lstm-max", ["--model", "ln-lstm", "--readout", "max"]),
    ("max-recurrent-dropout", ["--readout", "max", "--recurrent-dropout", "0.25"]),
    ("max-zoneout", ["--readout", "max", "--zoneout", "0.1,0.05"]),
    ("max-wide", ["--readout", "max", "--hidden", "256"]),
    ("no-pretrain", ["--pretrain", "none"]),  # a random embedding: the default before issue 12
    ("max-no-pretrain", ["--readout", "max", "--pretrain", "none"]),
)


def rows(seeds: list[int]) -> list[Row]:
    return [Row(f"levers-{name}-{seed}", ["sentiment", *flags, "--seed", str(seed)], task="sentiment",
                model=name, seed=seed) for seed in seeds for name, flags in LEVERS]


def lever_table(rows: list[Row], results: list[dict | None]) -> str:
    lines = ["| lever | flags | validation acc. | test acc. | TF-IDF + LR (test) | seeds |", "|---|---|---|---|---|---|"]
    for name, flags in LEVERS:
        done = [r for row, r in zip(rows, results) if row.model == name and r is not None]
        if not done:
            lines.append(f"| {name} | `{' '.join(flags)}` | — | — | — | 0 |")
            continue
        val = statistics.fmean(r["splits"]["validation"]["accuracy"] for r in done)
        test = statistics.fmean(r["value"] for r in done)
        base = statistics.fmean(r["baseline"]["value"] for r in done)
        lines.append(f"| {name} | `{' '.join(flags)}` | {val:.4f} | {test:.4f} | {base:.4f} | {len(done)} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/levers"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    parser.add_argument("--time-limit", type=float, metavar="S", help="seconds of training per run")
    parser.add_argument("--read", action="store_true", help="train nothing: the table of runs already done")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [with_time_limit(r, args.time_limit) for r in rows([int(s) for s in args.seeds.split(",")])]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda row: run(row, args.out, args.read), chosen))
    print(lever_table(chosen, results))


if __name__ == "__main__":
    main()
