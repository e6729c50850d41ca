"""Tasks, models and baselines on tiny real files: sentiment, charlm, copy; the n-gram baseline."""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict

import pytest
import torch

from gated.cli import main
from gated.data.batching import bucketed_order, pad
from gated.models import ModelConfig, SequenceModel
from gated.ngram import KneserNeyLM

GOOD = ["lovely crunchy and fresh", "the best tea ever", "delicious will buy again", "great taste great price"]
BAD = ["stale and bland", "arrived broken and late", "tastes like cardboard", "awful smell never again"]


@pytest.fixture
def reviews_csv(tmp_path):
    rng = random.Random(0)
    rows = [(t, "pos") for t in GOOD] * 10 + [(t, "neg") for t in BAD] * 10
    rng.shuffle(rows)
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows), encoding="utf-8")
    return path


def test_sentiment_trains_predicts_and_evaluates_on_a_csv(tmp_path, reviews_csv, capsys):
    run = tmp_path / "run"
    argv = ["train", "sentiment", "--data", str(reviews_csv), "--out", str(run), "--epochs", "8", "--hidden", "16",
            "--embedding", "8", "--batch-size", "8", "--lr", "0.01", "--quiet", "--patience", "100"]
    assert main(argv) == 0
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["metric"] == "accuracy" and summary["baseline"]["name"] == "tfidf+logreg"
    assert summary["value"] >= 0.75  # the two kinds of review share no words: easy to learn
    config = json.loads((run / "config.json").read_text())
    assert config["options"]["labels"] == ["neg", "pos"]
    capsys.readouterr()
    assert main(["predict", str(run), "delicious and fresh", "stale cardboard"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]
    assert all(0.5 <= float(line.split("\t")[1]) <= 1 for line in lines)
    assert main(["evaluate", str(run), "--data", str(reviews_csv)]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_sentiment_reports_bad_data_with_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"text,label\nfine food,pos\nawful \xff\xfe taste,neg\n")
    assert main(["train", "sentiment", "--data", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "bad.csv:3:" in err and "UTF-8" in err


def test_charlm_trains_and_generates(tmp_path, capsys):
    text = tmp_path / "poem.txt"
    text.write_text(("to be or not to be that is the question\n" * 300), encoding="utf-8")
    run = tmp_path / "run"
    argv = ["train", "charlm", "--data", str(text), "--out", str(run), "--epochs", "6", "--hidden", "32",
            "--layers", "1", "--seq-len", "32", "--batch-size", "16", "--lr", "0.01", "--quiet"]
    assert main(argv) == 0
    summary = json.loads((run / "metrics.json").read_text())
    # No --model: the charlm's own default cell, the layer-normalised LSTM.
    assert json.loads((run / "config.json").read_text())["model"]["cell"] == "ln-lstm"
    # A repeated line is nearly free to predict once learnt; the 5-gram baseline knows it too.
    assert summary["value"] < 1.5 and summary["baseline"]["value"] < 0.5
    capsys.readouterr()
    assert main(["generate", str(run), "--prime", "to be", "--length", "40", "--seed", "1"]) == 0
    sample = capsys.readouterr().out
    assert sample.startswith("to be") and len(sample.rstrip("\n")) == 45
    assert main(["generate", str(run), "--temperature", "0"]) == 1


def test_copy_task_runs_and_reports_the_memoryless_baseline(tmp_path):
    run = tmp_path / "run"
    argv = ["train", "copy", "--out", str(run), "--epochs", "1", "--steps-per-epoch", "5", "--length", "3",
            "--delay", "4", "--hidden", "8", "--quiet"]
    assert main(argv) == 0
    summary = json.loads((run / "metrics.json").read_text())
    t = 2 * 3 + 4
    assert summary["baseline"]["value"] == pytest.approx(3 * math.log(8) / t)
    assert set(summary["splits"]["test"]) == {"cross_entropy", "copy_accuracy"}


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", ["last", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_never_reads_padding(cell, readout, bidirectional):
    model = SequenceModel(ModelConfig(cell=cell, output_size=2, readout=readout, vocab_size=20, hidden_size=6,
                                      embedding_size=4, bidirectional=bidirectional)).eval()
    short, lengths = pad([[3, 4, 5], [6, 7, 8, 9, 10, 11]])
    alone = model(torch.tensor([[3, 4, 5]]), torch.tensor([3]))[0]
    with_padding = model(short, lengths)[0]
    torch.testing.assert_close(with_padding[0], alone[0])
    # Garbage in the padded positions changes nothing either.
    short[0, 3:] = 19
    torch.testing.assert_close(model(short, lengths)[0][0], alone[0])


def test_model_config_refuses_nonsense():
    with pytest.raises(ValueError, match="unknown model 'transformer'"):
        ModelConfig(cell="transformer", output_size=2, readout="last", vocab_size=5)
    with pytest.raises(ValueError, match="cannot read the future"):
        ModelConfig(cell="lstm", output_size=5, readout="every", vocab_size=5, bidirectional=True)
    with pytest.raises(ValueError, match="exactly one of vocab_size"):
        ModelConfig(cell="lstm", output_size=5, readout="last")


def test_bucketed_batches_cover_every_example_once():
    lengths = [random.Random(i).randint(1, 50) for i in range(103)]
    batches = bucketed_order(lengths, 8, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(103))
    padding = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)
    shuffled = [list(range(103))[i : i + 8] for i in range(0, 103, 8)]
    naive = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in shuffled)
    assert padding < naive / 2


# -- the n-gram baseline against a plain dictionary implementation -----------------------------------


def _discounts_by_hand(counts) -> dict[int, float]:
    """Chen and Goodman's D1, D2, D3+ from the counts of counts, or plain Kneser-Ney's one discount
    where they cannot be estimated (a count of counts is zero) or are not all positive."""
    n1, n2, n3, n4 = (sum(1 for v in counts if v == c) for c in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 else 0.5
    if n1 and n2 and n3 and n4:
        modified = {1: 1 - 2 * y * n2 / n1, 2: 2 - 3 * y * n3 / n2, 3: 3 - 4 * y * n4 / n3}
        if all(d > 0 for d in modified.values()):
            return modified
    return {1: y, 2: y, 3: y}


def _kneser_ney_by_hand(train: str, order: int, history: str, char: str) -> float:
    """Interpolated modified Kneser-Ney written out directly from Chen and Goodman, for small texts."""
    alphabet = sorted(set(train))
    base = len(alphabet) + 1

    def counts(k):
        grams = Counter(train[i : i + k] for i in range(len(train) - k + 1))
        if k == order:
            return grams
        longer = {train[i : i + k + 1] for i in range(len(train) - k)}
        return Counter(g[1:] for g in longer)

    def prob(k, hist, w):
        if k == 0:
            return 1 / base
        c = counts(k)
        d = _discounts_by_hand(c.values())
        ctx = hist[len(hist) - (k - 1) :] if k > 1 else ""
        total = sum(v for g, v in c.items() if g[:-1] == ctx)
        lower = prob(k - 1, hist, w)
        if total == 0:
            return lower
        handed_down = sum(d[min(v, 3)] for g, v in c.items() if g[:-1] == ctx)
        seen = c.get(ctx + w, 0)
        return (seen - (d[min(seen, 3)] if seen else 0) + handed_down * lower) / total

    return prob(order, history, char)


# Skewed random letters: counts of every size at the higher orders (three discounts), and a unigram
# level where every letter follows every other (its counts of counts are zero: the one discount).
SKEWED = "".join(random.Random(0).choices("abcdefgh ", weights=[9, 5, 3, 2, 2, 1, 1, 1, 6], k=3000))


@pytest.mark.parametrize("train", ["abracadabra alakazam abba cabbage", SKEWED])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_kneser_ney_matches_the_textbook_formula(order, train):
    lm = KneserNeyLM(order).fit(train)
    for history, char in [("ab", "r"), ("ca", "b"), ("zz", "a"), ("ba", "q"), ("a ", "a"), ("hh", "g"), (" a", "b")]:
        text = (history + char)[-order:] if order > 0 else char
        got = lm.probabilities(text)[-1]
        assert got == pytest.approx(_kneser_ney_by_hand(train, order, history, char), rel=1e-12)


def test_the_skewed_text_exercises_both_kinds_of_discount():
    levels = KneserNeyLM(3).fit(SKEWED).levels[1:]
    three = [len(set(level.discounts[1:])) == 3 for level in levels]
    assert any(three) and not all(three)


def test_kneser_ney_is_a_distribution_and_higher_orders_help():
    text = "".join(random.Random(1).choice(["the cat sat ", "a dog ran ", "the dog sat "]) for _ in range(2000))
    lm = KneserNeyLM(4).fit(text[:15000])
    total = sum(lm.probabilities("the" + c)[-1] for c in lm.alphabet + ["#"])
    assert total == pytest.approx(1.0, abs=1e-12)
    held_out = text[15000:]
    bits = [KneserNeyLM(n).fit(text[:15000]).bits_per_char(held_out) for n in (1, 2, 4)]
    assert bits[0] > bits[1] > bits[2]


# -- how much text a character model needs (issue 10, item 4) ------------------------------------


def test_charlm_needs_room_for_one_batch_and_says_how_much(tmp_path):
    from gated.data import DataError
    from gated.tasks import CharLMTask, _charlm_file_size

    size = _charlm_file_size((2 + 1) * 8)  # --batch-size 2 streams of --seq-len 8
    enough, short = tmp_path / "enough.txt", tmp_path / "short.txt"
    enough.write_text(("to be or not " * 10)[:size], encoding="utf-8")
    short.write_text(("to be or not " * 10)[: size - 1], encoding="utf-8")
    task = CharLMTask({"data": enough, "seq_len": 8})
    assert all(len(task.train_batches(epoch, 2, 0)) >= 1 for epoch in range(20))  # every phase of the windows
    with pytest.raises(DataError, match=f"need a file of at least {size} characters.*this one has {size - 1}"):
        CharLMTask({"data": short, "seq_len": 8}).train_batches(0, 2, 0)


def test_predict_refuses_a_text_without_words_instead_of_guessing(tmp_path, reviews_csv):
    from gated.models import SequenceModel
    from gated.tasks import SentimentTask

    task = SentimentTask({"data": reviews_csv})
    model = SequenceModel(task.model_config("gru", {"hidden_size": 4, "embedding_size": 4}))
    assert task.predict(model, ["fresh tea"]).shape == (1, 2)
    with pytest.raises(ValueError, match="no words the model can read"):
        task.predict(model, ["fresh tea", " \U0001F600 "])
