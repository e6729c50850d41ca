"""Does averaging a few trained review classifiers beat each alone? (issue 12, section 2)

Reads runs of ``gated train sentiment`` trained on the same data (each may have its own
vocabulary: it encodes the texts itself), averages their class probabilities over every subset
of them, and prints each subset's validation and test accuracy. Runs scored on other texts are
refused.

    gated train sentiment --seed 0 --out runs/rev-s0      # and seeds 1, 2
    python benchmarks/review_ensemble.py runs/rev-s0 runs/rev-s1 runs/rev-s2
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

import torch

from gated.runs import load_run

SPLITS = ("validation", "test")
CHUNK = 200  # texts per forward pass: a whole split at 300 tokens would take a few GB


def probabilities(run: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """Per split: (N, classes) probabilities of the run's best weights, the true labels and the texts."""
    task, model, _ = load_run(run, "sentiment")
    found = {}
    for split in SPLITS:
        data = task.splits[split]
        parts = [task.predict(model, data.texts[i : i + CHUNK]) for i in range(0, len(data.texts), CHUNK)]
        found[split] = torch.cat(parts), torch.tensor(data.labels), list(data.texts)
    return found


def accuracy(members: list[dict], split: str) -> float:
    mean = sum(m[split][0] for m in members) / len(members)
    labels = members[0][split][1]
    return (mean.argmax(-1) == labels).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="folders of gated train sentiment runs")
    args = parser.parse_args(argv)
    found = {run: probabilities(run) for run in args.runs}
    for run in args.runs[1:]:
        if any(found[run][split][2] != found[args.runs[0]][split][2] for split in SPLITS):
            raise SystemExit(f"{run} was scored on other texts than {args.runs[0]}: train both on the same data")
    print("| models | members | validation acc. | test acc. |\n|---:|---|---:|---:|")
    for size in range(1, len(args.runs) + 1):
        rows = [(combo, *(accuracy([found[r] for r in combo], s) for s in SPLITS))
                for combo in itertools.combinations(args.runs, size)]
        for combo, validation, test in rows:
            print(f"| {size} | {', '.join(r.name for r in combo)} | {validation:.4f} | {test:.4f} |")
        if len(rows) > 1:
            print(f"| {size} | mean of the {len(rows)} above | {statistics.mean(r[1] for r in rows):.4f} "
                  f"| {statistics.mean(r[2] for r in rows):.4f} |")


if __name__ == "__main__":
    main()
