"""benchmarks/results.py: the rows it would train, their order and budgets, and the summary over seeds.

Nothing is trained here (a row takes minutes): the row list is read, the order and the
--time-limit override are checked, and the tables are fed made-up metrics.

    .venv/bin/python -m pytest tests/test_results_table.py
"""

from __future__ import annotations

import json

import benchmark_scripts
import pytest

results = benchmark_scripts.load("results")
MODEL_FLAGS = {  # issue 11's models and the flags that make each
    "LSTM": ["--model", "lstm"],
    "LayerNormLSTM": ["--model", "ln-lstm"],
    "LSTM + zoneout (0.1, 0.05)": ["--model", "lstm", "--zoneout", "0.1,0.05"],
    "LSTM + recurrent dropout 0.25": ["--model", "lstm", "--recurrent-dropout", "0.25"],
    "GRU": ["--model", "gru"],
    "MinGRU": ["--model", "min-gru"],
    "MinLSTM": ["--model", "min-lstm"],
}
TASKS = {"adding 200": ["adding", "--length", "200"], "adding 400": ["adding", "--length", "400"],
         "sentiment": ["sentiment"]}


def _variants():
    return results.select(results.ROWS, "variants")


def _flags(args: list[str], *names: str) -> list[str]:
    """The given flags and their values, in order, from a command's arguments."""
    out = []
    for i, a in enumerate(args):
        if a in names:
            out += [a, args[i + 1]]
    return out


def test_variants_cover_every_task_model_and_seed_once():
    rows = _variants()
    assert len(rows) == len(TASKS) * len(MODEL_FLAGS) * 3
    assert len({r.name for r in rows}) == len(rows)
    assert {(r.task, r.model, r.seed) for r in rows} == {
        (t, m, s) for t in TASKS for m in MODEL_FLAGS for s in (0, 1, 2)}
    for r in rows:
        assert r.args[0] == TASKS[r.task][0]
        assert _flags(r.args, "--model", "--zoneout", "--recurrent-dropout") == MODEL_FLAGS[r.model]
        assert _flags(r.args, "--length") == TASKS[r.task][1:]
        assert _flags(r.args, "--seed") == ["--seed", str(r.seed)]
        # adding rows keep the first table's 300 s budget; sentiment runs its own epochs
        assert _flags(r.args, "--time-limit") == (["--time-limit", "300"] if r.args[0] == "adding" else [])


def test_the_first_tables_rows_stay_and_shared_commands_run_once():
    names = [r.name for r in results.ROWS]
    assert len(names) == len(set(names))
    assert names[:16] == [f"adding-{n}-{m}" for n in (100, 200, 400) for m in ("rnn", "lstm", "gru")] + [
        f"sentiment-{m}-{s}" for m in ("lstm", "gru") for s in (0, 1, 2)] + ["charlm-lstm"]
    shared = next(r for r in results.ROWS if r.name == "sentiment-lstm-1")
    assert shared.args == ["sentiment", "--model", "lstm", "--seed", "1"] and "variants" in shared.groups
    assert [r.name for r in results.select(results.ROWS, "adding-100")] == [
        "adding-100-rnn", "adding-100-lstm", "adding-100-gru"]


def test_seed_first_trains_every_seed_0_before_any_seed_1():
    rows = results.order(_variants(), "seed-first")
    seeds = [r.seed for r in rows]
    assert seeds == sorted(seeds)
    zeros = [r for r in rows if r.seed == 0]
    assert {(r.task, r.model) for r in zeros} == {(t, m) for t in TASKS for m in MODEL_FLAGS}
    assert zeros == [r for r in _variants() if r.seed == 0]  # within a seed, as listed
    assert results.order(_variants(), "listed") == _variants()


def test_time_limit_replaces_every_budget():
    for row in results.ROWS:
        args = results.with_time_limit(row, 42).args
        assert args.count("--time-limit") == 1 and args[args.index("--time-limit") + 1] == "42"
        assert results.with_time_limit(row, None) == row


def _metrics(task: str, metric: str, value: float, baseline: tuple[str, float]) -> dict:
    return dict(task=task, model="x", metric=metric, value=value, steps=10, seconds=1.0,
                baseline=dict(name=baseline[0], value=baseline[1]), command="gated train ...")


def test_summary_gives_mean_std_seeds_done_and_the_baseline():
    rows = [r for r in _variants() if r.task in ("adding 200", "sentiment") and r.model in ("LSTM", "MinGRU")]
    values = {("adding 200", "LSTM"): [0.001, 0.003, 0.002], ("adding 200", "MinGRU"): [0.1, None, 0.2],
              ("sentiment", "LSTM"): [0.75, 0.76, 0.77], ("sentiment", "MinGRU"): [None, None, None]}
    fake = []
    for r in rows:
        value = values[(r.task, r.model)][r.seed]
        metric, base = (("mse", ("always predict 1.0", 0.1685)) if r.task.startswith("adding")
                        else ("accuracy", ("tfidf+logreg", 0.808)))
        fake.append(None if value is None else _metrics(r.task, metric, value, base))
    lines = results.summary(rows, fake).splitlines()
    assert lines[0].startswith("| task | model | metric | mean | std | seeds done | baseline |")
    body = {tuple(c.strip() for c in line.strip("|").split("|"))[:2]: line for line in lines[2:]}
    assert len(body) == 4

    def cells(key):
        return [c.strip() for c in body[key].strip("|").split("|")]

    assert cells(("adding 200", "LSTM")) == ["adding 200", "LSTM", "mse", "2.00e-03", "1.00e-03", "3 of 3 (0, 1, 2)",
                                             "always predict 1.0 0.1685"]
    assert cells(("adding 200", "MinGRU"))[3:6] == ["0.1500", "0.0707", "2 of 3 (0, 2)"]
    assert cells(("sentiment", "LSTM"))[2:5] == ["accuracy", "0.7600", "0.0100"]
    assert cells(("sentiment", "MinGRU"))[3:6] == ["—", "—", "0 of 3"]
    # the table of every run keeps its form, for the runs that are done
    assert len(results.table([f for f in fake if f]).splitlines()) == 2 + 8


def test_read_only_prints_what_is_done_without_training(tmp_path, capsys):
    done = tmp_path / "sentiment-lstm-0"
    done.mkdir()
    (done / "metrics.json").write_text(json.dumps(_metrics("sentiment", "accuracy", 0.75, ("tfidf+logreg", 0.808))))
    results.main(["--out", str(tmp_path), "--only", "variants", "--read", "--jobs", "1"])
    out = capsys.readouterr().out
    assert "| sentiment | x | accuracy | 0.7500 |" in out
    assert "| sentiment | LSTM | accuracy | 0.7500 | — | 1 of 3 (0) | tfidf+logreg 0.8080 |" in out
    assert not list(tmp_path.glob("*.log"))  # nothing was started


@pytest.mark.parametrize("argv", [["--order", "random"], ["--time-limit", "soon"]])
def test_bad_options_are_refused(argv, tmp_path):
    with pytest.raises(SystemExit):
        results.main(["--out", str(tmp_path), *argv])


def test_speech_rows_cover_both_datasets_every_split_and_three_seeds():
    rows = results.select(results.ROWS, "speech")
    vowels = [r for r in rows if r.task == "JapaneseVowels"]
    assert {(r.model, r.seed) for r in vowels} == {(m, s) for m in ("LSTM", "GRU") for s in (0, 1, 2)}
    assert all("--data" not in r.args for r in vowels)  # JapaneseVowels is the task's own data
    fsdd = [r for r in rows if r.task.startswith("FSDD")]
    assert {r.task for r in fsdd} == {"FSDD, standard split"} | {
        f"FSDD, unseen speaker {s}" for s in results.UNSEEN_SPEAKERS}
    for r in fsdd:
        assert _flags(r.args, "--data", "--epochs", "--batch-size") == ["--data", results.FSDD, "--epochs", "15",
                                                                          "--batch-size", "32"]
        unseen = r.task.rsplit(" ", 1)[-1]
        assert _flags(r.args, "--test-speakers") == ([] if r.task.endswith("split") else ["--test-speakers", unseen])
    assert {r.seed for r in fsdd} == {0, 1, 2} and len(rows) == 6 + 3 * (1 + len(results.UNSEEN_SPEAKERS))
    # The command shown keeps the README's path; the one run uses the folder given.
    row = fsdd[0]
    assert results.with_fsdd(row.args, "/data/fsdd") == [
        "/data/fsdd" if a == results.FSDD else a for a in row.args] != row.args
    assert results.with_fsdd(row.args, None) == row.args


def test_the_summary_names_the_majority_class_where_a_task_measured_it():
    rows = [r for r in results.select(results.ROWS, "speech") if r.task == "JapaneseVowels" and r.model == "GRU"]
    fake = []
    for r, value in zip(rows, (0.98, 0.99, 0.97)):
        metrics = _metrics("speech", "accuracy", value, ("mean+std logreg", 0.9649))
        metrics["baseline"]["majority"] = 0.0838
        fake.append(metrics)
    line = results.summary(rows, fake).splitlines()[2]
    assert line.endswith("| 3 of 3 (0, 1, 2) | mean+std logreg 0.9649; majority 0.0838 |")
    assert "| JapaneseVowels | GRU | accuracy | 0.9800 | 0.0100 |" in line
