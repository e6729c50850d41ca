"""Train the result rows of the README and print them as a Markdown table.

Each row is one `gated train` command; its metrics.json gives the numbers.
Runs execute in parallel processes of one thread each (--jobs), so that the
machine's cores do not fight over one run's OpenMP threads.

    python benchmarks/results.py --out runs/results [--only adding] [--jobs 2]

A row already trained under --out is read, not trained again; a stopped one is resumed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROWS: list[tuple[str, list[str]]] = []
for length in (100, 200, 400):
    for model in ("rnn", "lstm", "gru"):
        ROWS.append((f"adding-{length}-{model}",
                     ["adding", "--model", model, "--length", str(length), "--time-limit", "300"]))
for model in ("lstm", "gru"):
    for seed in (0, 1, 2):
        ROWS.append((f"sentiment-{model}-{seed}", ["sentiment", "--model", model, "--seed", str(seed)]))
ROWS.append(("charlm-lstm", ["charlm", "--model", "lstm"]))


def run(name: str, args: list[str], out: Path) -> dict:
    run_dir = out / name
    if not (run_dir / "metrics.json").exists():
        command = ["gated", "train", *args, "--out", str(run_dir), "--quiet"]
        if (run_dir / "config.json").exists():  # a row that was stopped: carry on with it
            command = ["gated", "train", args[0], "--out", str(run_dir), "--resume", "--quiet"]
        with open(out / f"{name}.log", "w") as log:
            subprocess.run([sys.executable, "-m", "gated.cli", *command[1:], "--threads", "1"], stdout=log,
                           stderr=log, check=True)
    summary = json.loads((run_dir / "metrics.json").read_text())
    summary["command"] = "gated train " + shlex.join(args)
    return summary


def table(results: list[dict]) -> str:
    lines = ["| task | model | metric | value | baseline | steps | seconds | command |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        base = r["baseline"]
        lines.append(f"| {r['task']} | {r['model']} | {r['metric']} | {r['value']:.4f} | "
                     f"{base['name']} {base['value']:.4f} | {r['steps']} | {r['seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/results"))
    parser.add_argument("--only", help="run only rows whose name starts with this")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = [(n, a) for n, a in ROWS if not args.only or n.startswith(args.only)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda row: run(*row, args.out), rows))
    print(table(results))


if __name__ == "__main__":
    main()
