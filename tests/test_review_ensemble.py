"""benchmarks/review_ensemble.py: averaging trained review classifiers, on tiny real runs."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import benchmark_scripts
import pytest

from gated.cli import main

GOOD = ["lovely crunchy and fresh", "the best tea ever", "delicious will buy again", "great taste great price"]
BAD = ["stale and bland", "arrived broken and late", "tastes like cardboard", "awful smell never again"]


ensemble = benchmark_scripts.load("review_ensemble")


def _csv(path: Path, seed: int) -> Path:
    rows = [(t, "pos") for t in GOOD] * 10 + [(t, "neg") for t in BAD] * 10
    random.Random(seed).shuffle(rows)
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows), encoding="utf-8")
    return path


def _train(data: Path, out: Path, seed: int) -> Path:
    argv = ["train", "sentiment", "--data", str(data), "--out", str(out), "--epochs", "2", "--hidden", "8",
            "--embedding", "8", "--batch-size", "8", "--seed", str(seed), "--quiet"]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ensemble")
    data = _csv(folder / "reviews.csv", 0)
    return [_train(data, folder / f"s{seed}", seed) for seed in (0, 1)]


def test_one_member_scores_what_the_run_itself_reported(runs):
    for run in runs:
        reported = json.loads((run / "metrics.json").read_text())["value"]
        assert ensemble.accuracy([ensemble.probabilities(run)], "test") == pytest.approx(reported)


def test_a_model_averaged_with_itself_is_itself(runs):
    alone = ensemble.probabilities(runs[0])
    assert ensemble.accuracy([alone, alone], "test") == ensemble.accuracy([alone], "test")


def test_the_table_lists_every_subset_with_the_mean_per_size(runs, capsys):
    twin = runs[0].parent / "twin"
    shutil.copytree(runs[0], twin)
    ensemble.main([str(runs[0]), str(runs[1]), str(twin)])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    sizes = [row.split("|")[1].strip() for row in rows]
    assert sizes == ["1"] * 4 + ["2"] * 4 + ["3"]  # 3 singles + mean, 3 pairs + mean, the triple
    assert "s0, twin" in rows[5]


def test_runs_scored_on_other_texts_are_refused(runs, tmp_path):
    other = _train(_csv(tmp_path / "other.csv", 5), tmp_path / "other", 0)
    with pytest.raises(SystemExit, match="other texts"):
        ensemble.main([str(runs[0]), str(other)])
