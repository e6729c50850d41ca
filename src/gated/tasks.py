"""Tasks: data + model shape + loss + metric + baseline, one class each.

``gated train TASK`` looks the task up in ``TASKS``. A task knows how to cut
its data into batches (deterministically from a seed and an epoch number, so a
resumed run sees the same batches), how to score a model on a split, and what
a model that has learnt nothing would score: the baseline every result is
reported against. It also holds the defaults that suit it, on top of the
general ones of ``ModelConfig`` and ``TrainSettings``; and a text task knows
how a model reads one text, token by token (``gated explain``).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data import ADDING_BASELINE_MSE, adding_problem, copy_baseline_cross_entropy, copy_task
from .data.batching import Batch, bucketed_order, pad
from .limits import at_least
from .models import ModelConfig, SequenceModel

LN2 = math.log(2)


class Task:
    name: str
    metric: str
    higher_is_better: bool
    # What suits this task where it differs from the general defaults: TrainSettings and ModelConfig fields.
    train_defaults: dict = {}
    model_defaults: dict = {}
    options_defaults: dict = {}  # task options, saved in config.json to rebuild the task
    option_rules: dict = {}  # what each numeric option may be (limits.py), checked by runs.Plan
    default_cell = "lstm"  # the recurrent cell a run gets without --model
    vocab = None

    def __init__(self, options: dict) -> None:
        self.options = {**self.options_defaults, **{k: v for k, v in options.items() if v is not None}}
        if self.options.get("data") is not None:
            # config.json keeps the path resolved, so the run can be evaluated or resumed from any folder.
            self.options["data"] = os.path.abspath(self.options["data"])

    def model_config(self, cell: str, choices: Mapping[str, Any] | None = None) -> ModelConfig:
        """The model for this task: ModelConfig's defaults, then the task's, then ``choices``.

        What the data dictates (input and output sizes, and the readout where only one fits)
        cannot be chosen: a choice that contradicts it is refused rather than ignored.
        """
        choices = dict(choices or {})
        dictated = self.model_shape()
        for name, value in choices.items():
            if name in dictated and dictated[name] != value:
                raise ValueError(f"the {self.name} task needs {name} {dictated[name]!r}, not {value!r}")
        return ModelConfig(cell=cell, **{**self.model_defaults, **choices, **dictated})

    def model_shape(self) -> dict:
        """The ModelConfig fields this task's data fixes."""
        raise NotImplementedError

    def train_batches(self, epoch: int, batch_size: int, seed: int) -> list[Batch]:
        raise NotImplementedError

    def scores(self, model: SequenceModel, split: str, batch_size: int) -> dict:
        raise NotImplementedError

    def loss(self, output: Tensor, batch: Batch) -> Tensor:
        raise NotImplementedError

    def baseline(self) -> dict:
        raise NotImplementedError

    def use_data(self, path) -> str:
        raise ValueError(f"the {self.name} task makes its own data; --data does not apply to it")

    def check_training(self, batch_size: int) -> None:
        """Refuse data too small to make one batch of ``batch_size`` (a run on it would take no step)."""

    @classmethod
    def training_defaults(cls, options: Mapping[str, Any]) -> dict:
        """The training defaults for a run with these options: ``train_defaults``, unless the task's data
        changes what suits it (speech: a folder of recordings instead of JapaneseVowels)."""
        return dict(cls.train_defaults)

    def prepare(self, model) -> None:
        """Before a new run's first step: what the model should start from besides random weights."""

    def better(self, a: float, b: float | None) -> bool:
        return b is None or (a > b if self.higher_is_better else a < b)

    # -- reading one text, token by token (gated explain, the tour) ------------------------------

    def reading_tokens(self, text: str) -> list[str]:
        """The tokens a model of this task reads of ``text``; only text tasks read text."""
        text_tasks = ", ".join(name for name, task in TASKS.items() if issubclass(task, TextTask))
        raise ValueError(f"only text models can be explained ({text_tasks}); this is a {self.name} model")

    def running_prediction(self, model, ids: list[int]) -> tuple[np.ndarray, str, str | None, float | None]:
        """After each token: the probability of what the model predicts there; what that is (a class, the next
        character); and, for a whole-text verdict, the verdict and its probability."""
        raise NotImplementedError

    def unit_scores(self, model, hidden: np.ndarray, direction: int) -> np.ndarray:
        """How much each hidden unit matters, given its values ``hidden`` (T, units) over a text: by default,
        how much it changes over the text."""
        return hidden.std(0)


class TextTask(Task):
    """A task whose model reads text through a vocabulary, so that one can follow it reading."""

    reading_limit = 300  # tokens read by gated explain: a figure and a table stay readable (and quick to draw)

    def reading_tokens(self, text: str) -> list[str]:
        """The first ``reading_limit`` tokens of ``text``; ``read`` says how many more there were."""
        return self.vocab.tokenize(text)[: self.reading_limit]


# -- memory tasks --------------------------------------------------------------------------------


class AddingTask(Task):
    """Two marked numbers in a long sequence; predict their sum (MSE)."""

    name, metric, higher_is_better = "adding", "mse", False
    # lr 1e-2 with clipping: at 3e-3 an LSTM needs far more steps to find the markers.
    train_defaults = dict(epochs=40, batch_size=64, lr=1e-2)
    model_defaults = dict(hidden_size=64)
    options_defaults = dict(length=100, steps_per_epoch=100)
    option_rules = dict(length=at_least(2, "so that each half can hold one marker"), steps_per_epoch=at_least(1))

    def model_shape(self) -> dict:
        return dict(input_size=2, output_size=1, readout="last")

    def train_batches(self, epoch, batch_size, seed):
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        steps = self.options["steps_per_epoch"]
        return [Batch(*adding_problem(batch_size, self.options["length"], g)) for _ in range(steps)]

    def _split(self, split: str):
        sizes = {"validation": (1000, 1), "test": (2000, 2)}
        n, seed = sizes[split]
        return adding_problem(n, self.options["length"], 1_000_000 + seed)

    def loss(self, output, batch):
        return F.mse_loss(output.squeeze(-1), batch.targets)

    def scores(self, model, split, batch_size):
        x, y = self._split(split)
        with torch.no_grad():
            prediction = torch.cat([model(x[i : i + 500])[0].squeeze(-1) for i in range(0, len(x), 500)])
        return {"mse": F.mse_loss(prediction, y).item()}

    def baseline(self):
        _, y = self._split("test")
        # Always answering 1.0, the expected sum: about 1/6 (ADDING_BASELINE_MSE).
        value = F.mse_loss(torch.ones_like(y), y).item()
        return {"name": "always predict 1.0", "value": value, "expected": ADDING_BASELINE_MSE}


class CopyTask(Task):
    """Memorise a string of symbols, wait through blanks, then reproduce it."""

    name, metric, higher_is_better = "copy", "cross_entropy", False
    train_defaults = dict(epochs=20, batch_size=64, lr=3e-3)
    model_defaults = dict(hidden_size=64, embedding_size=16)
    options_defaults = dict(length=10, delay=20, alphabet=8, steps_per_epoch=100)
    option_rules = dict(length=at_least(1), delay=at_least(1, "so that there is room for the delimiter"),
                        alphabet=at_least(1), steps_per_epoch=at_least(1))

    def _make(self, n, seed):
        o = self.options
        return copy_task(n, o["length"], o["delay"], o["alphabet"], seed)

    def model_shape(self) -> dict:
        classes = self.options["alphabet"] + 2  # blank, symbols 1..alphabet, delimiter
        return dict(vocab_size=classes, output_size=classes, readout="every")

    def train_batches(self, epoch, batch_size, seed):
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        steps = self.options["steps_per_epoch"]
        return [Batch(*self._make(batch_size, g)) for _ in range(steps)]

    def loss(self, output, batch):
        return F.cross_entropy(output.flatten(0, 1), batch.targets.flatten())

    def scores(self, model, split, batch_size):
        tokens, targets = self._make(1000, 1_000_000 + (1 if split == "validation" else 2))
        with torch.no_grad():
            logits = model(tokens)[0]
        tail = slice(-self.options["length"], None)  # the steps where the symbols come back
        correct = (logits[:, tail].argmax(-1) == targets[:, tail]).float().mean().item()
        ce = F.cross_entropy(logits.flatten(0, 1), targets.flatten()).item()
        return {"cross_entropy": ce, "copy_accuracy": correct}

    def baseline(self):
        o = self.options
        return {"name": "memoryless", "value": copy_baseline_cross_entropy(o["length"], o["delay"], o["alphabet"])}


# -- text tasks -----------------------------------------------------------------------------------


def classification_scores(model, batches) -> dict[str, float]:
    """Accuracy and mean cross-entropy of a classifier over labelled batches (inputs, lengths, targets)."""
    correct = total = loss = 0.0
    with torch.no_grad():
        for batch in batches:
            logits = model(batch.inputs, batch.lengths)[0]
            loss += F.cross_entropy(logits, batch.targets, reduction="sum").item()
            correct += (logits.argmax(-1) == batch.targets).sum().item()
            total += len(batch)
    return {"accuracy": correct / total, "loss": loss / total}


class SentimentTask(TextTask):
    """Read a review word by word; say whether it liked the product (accuracy)."""

    name, metric, higher_is_better = "sentiment", "accuracy", True
    train_defaults = dict(epochs=6, patience=2)
    # readout: "last" reads the final state of each direction (what gated explain ranks units by); "max"
    # (max over time) is there to try. pretrain "ppmi" starts the embedding from word vectors counted over
    # the training texts (pretrain.py): 5 to 6 points of validation accuracy at the same steps (issue 12).
    model_defaults = dict(embedding_size=100, bidirectional=True, dropout=0.3, readout="last")
    options_defaults = dict(data=None, max_tokens=300, min_count=2, text_column="text", label_column="label",
                            pretrain="ppmi")
    option_rules = dict(max_tokens=at_least(1), min_count=at_least(1))
    pretrainings = ("none", "ppmi")

    def __init__(self, options: dict, vocab=None) -> None:
        super().__init__(options)
        from .data.vocab import Vocabulary

        self._encoded: dict[str, list[list[int]]] = {}
        if self.options["pretrain"] not in self.pretrainings:
            raise ValueError(f"unknown pretraining {self.options['pretrain']!r}: choose one of "
                             + ", ".join(self.pretrainings))
        if vocab is None:  # a new run: read the data now, to build the vocabulary and learn the labels
            self.vocab = Vocabulary.build(self.splits["train"].texts, "words", min_count=self.options["min_count"])
            self.options["labels"] = self.splits["train"].label_names
        else:  # a trained run: data is read only if a split is asked for
            self.vocab = vocab

    @property
    def label_names(self) -> list[str]:
        return self.options["labels"]

    def use_data(self, path) -> str:
        """Score on a file of the user's instead of the test split; returns the split name to score."""
        from .data.reviews import load_labelled_texts

        columns = dict(text_column=self.options["text_column"], label_column=self.options["label_column"])
        self.splits["external"] = load_labelled_texts(path, label_names=self.label_names, **columns)
        return "external"

    @functools.cached_property
    def splits(self) -> dict:
        from .data.reviews import load_food_reviews, load_labelled_texts, split_validation

        path = self.options["data"]
        if path is None:
            train, validation = split_validation(load_food_reviews("train"), 0.1, seed=0)
            return {"train": train, "validation": validation, "test": load_food_reviews("test")}
        columns = dict(text_column=self.options["text_column"], label_column=self.options["label_column"])
        path = Path(path)
        if (path / "train").is_dir() and (path / "test").is_dir():  # the aclImdb layout
            test = load_labelled_texts(path / "test", **columns)
            train_all = load_labelled_texts(path / "train", label_names=test.label_names, **columns)
        else:
            train_all, test = split_validation(load_labelled_texts(path, **columns), 0.1, seed=1)
        train, validation = split_validation(train_all, 0.1, seed=0)
        return {"train": train, "validation": validation, "test": test}

    def encode(self, text: str) -> list[int]:
        ids = self.vocab.encode(text)[: self.options["max_tokens"]]
        return ids or [self.vocab.index(self.vocab.UNK)]

    def _ids(self, split: str) -> list[list[int]]:
        if split not in self._encoded:
            self._encoded[split] = [self.encode(t) for t in self.splits[split].texts]
        return self._encoded[split]

    def _batches(self, split, batch_size, generator) -> list[Batch]:
        ids, labels = self._ids(split), self.splits[split].labels
        batches = []
        for rows in bucketed_order([len(s) for s in ids], batch_size, generator):
            tokens, lengths = pad([ids[r] for r in rows])
            batches.append(Batch(tokens, torch.tensor([labels[r] for r in rows]), lengths))
        return batches

    def model_shape(self) -> dict:
        return dict(vocab_size=len(self.vocab), output_size=len(self.label_names))

    def prepare(self, model) -> None:
        """Before a new run's first step: with pretrain "ppmi", start the embedding from word vectors
        counted over the training texts (no labels read), so that words met in few labelled
        reviews start near the words they are used like."""
        if self.options["pretrain"] == "none" or model.embedding is None:
            return
        from .pretrain import start_embedding, word_vectors

        documents = [self.vocab.encode(text) for text in self.splits["train"].texts]  # whole texts: more pairs
        start_embedding(model.embedding, word_vectors(documents, len(self.vocab), model.config.embedding_size))

    def train_batches(self, epoch, batch_size, seed):
        return self._batches("train", batch_size, torch.Generator().manual_seed(seed * 100_003 + epoch))

    def loss(self, output, batch):
        return F.cross_entropy(output, batch.targets)

    def scores(self, model, split, batch_size):
        return classification_scores(model, self._batches(split, 256, None))

    def predict(self, model, texts: list[str]) -> Tensor:
        """Class probabilities (N, labels) for raw texts; a text without a single word is refused, not guessed."""
        for text in texts:
            if not self.vocab.tokenize(text):
                raise ValueError(f"the text {text!r} has no words the model can read: give it some words")
        tokens, lengths = pad([self.encode(t) for t in texts])
        with torch.no_grad():
            return model(tokens, lengths)[0].softmax(-1)

    def baseline(self):
        from .baselines import majority_accuracy, tfidf_logistic_accuracy

        train, test = self.splits["train"], self.splits["test"]
        return {
            "name": "tfidf+logreg",
            "value": tfidf_logistic_accuracy(train.texts, train.labels, test.texts, test.labels),
            "majority": majority_accuracy(train.labels, test.labels),
        }

    @property
    def reading_limit(self) -> int:
        return self.options["max_tokens"]  # what the classifier itself reads of a review

    def running_prediction(self, model, ids):
        """p(class) had the text ended after each token: every prefix in one padded batch."""
        labels = self.label_names
        tokens, lengths = pad([ids[: n + 1] for n in range(len(ids))])
        with torch.no_grad():
            probabilities = model(tokens, lengths)[0].softmax(-1).numpy()
        final = probabilities[-1]
        # With two classes, follow the second (the positive one in the reviews) so that two
        # models on the same text are drawn on the same scale; otherwise follow the verdict.
        target = 1 if len(labels) == 2 else int(final.argmax())
        best = int(final.argmax())
        return probabilities[:, target], labels[target], labels[best], float(final[best])

    def unit_scores(self, model, hidden, direction):
        """With the last readout, the units that push the final state hardest towards one class."""
        if model.config.readout != "last":
            return super().unit_scores(model, hidden, direction)
        size = hidden.shape[1]
        # The head reads [forward h at the last token, backward h at the first]: this direction's columns.
        weight = model.head.weight.detach().numpy()[:, direction * size : (direction + 1) * size]
        spread = weight - weight.mean(0, keepdims=True)
        final = hidden[-1] if direction == 0 else hidden[0]
        return np.abs(spread * final).max(0)


class CharLMTask(TextTask):
    """Predict each next character of Shakespeare's plays (bits per character)."""

    name, metric, higher_is_better = "charlm", "bits_per_char", False
    # Bounded by time, not epochs: 9 minutes of training (the scoring and the n-grams take the tenth
    # minute), the learning rate decaying over them (train.py); the epochs only bound a machine fast
    # enough to get through 3 of them. Many small steps: on 1.2 M characters, 16 x 64 characters a
    # step reached 2.63 validation bits per character where 32 x 64 reached 2.79, at the same
    # characters per second on one thread.
    train_defaults = dict(epochs=3, batch_size=16, lr=4e-3, time_limit=540.0)
    model_defaults = dict(hidden_size=256, num_layers=2, embedding_size=32)
    # The layer-normalised LSTM learns this text fastest: 2.306 validation bits per character after
    # 1.2 M characters, against 2.414 for the GRU and 2.629 for the LSTM (issue 12).
    default_cell = "ln-lstm"
    # The baseline is the best Kneser-Ney up to the 8-gram, the order chosen on the validation split.
    options_defaults = dict(data=None, seq_len=64, ngram_order=8)
    option_rules = dict(seq_len=at_least(1), ngram_order=at_least(1))

    def __init__(self, options: dict, vocab=None) -> None:
        super().__init__(options)
        from .data.vocab import Vocabulary

        self._ids: dict[str, Tensor] = {}
        self.vocab = vocab or Vocabulary.build([self.texts["train"]], "chars")

    @functools.cached_property
    def texts(self) -> dict[str, str]:
        from .data.text import load_shakespeare, load_text_file

        text = load_shakespeare() if self.options["data"] is None else load_text_file(self.options["data"])
        return _charlm_splits(text)

    def check_training(self, batch_size: int) -> None:
        """A text too short for ``batch_size`` streams of seq_len characters is refused, saying how much is needed."""
        n, train = self.options["seq_len"], self.texts["train"]
        need = (batch_size + 1) * n  # the windows start up to seq_len - 1 characters in, a new phase each epoch
        if len(train) >= need and min(len(self.texts[s]) for s in ("validation", "test")) >= 2:
            return
        from .data.errors import DataError

        have = sum(len(text) for text in self.texts.values())
        reason = (f"too little text: --batch-size {batch_size} streams of --seq-len {n} characters need a file of "
                  f"at least {_charlm_file_size(need):,} characters (a tenth is held out to validate and test), "
                  f"this one has {have:,}; give more text, or lower --batch-size or --seq-len")
        raise DataError(self.options["data"] or "the text", reason)

    def use_data(self, path) -> str:
        from .data.text import load_text_file

        self.texts["external"] = load_text_file(path)
        return "external"

    def ids(self, split: str) -> Tensor:
        if split not in self._ids:
            self._ids[split] = torch.tensor(self.vocab.encode(self.texts[split]), dtype=torch.long)
        return self._ids[split]

    def model_shape(self) -> dict:
        v = len(self.vocab)
        return dict(vocab_size=v, output_size=v, readout="every")

    def train_batches(self, epoch, batch_size, seed):
        """The training text as ``batch_size`` parallel streams, cut into windows of seq_len.

        Row b of each batch continues row b of the one before (``carry``), so the model
        starts each window from the state the last one ended in and can learn to use
        context longer than a window (truncated backpropagation through time).
        """
        self.check_training(batch_size)
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        ids, n = self.ids("train"), self.options["seq_len"]
        start = int(torch.randint(n, (1,), generator=g))  # a new phase each epoch moves the window borders
        per_stream = (len(ids) - start - 1) // batch_size
        streams = ids[start : start + batch_size * per_stream + 1]
        inputs = streams[:-1].view(batch_size, per_stream)
        targets = streams[1:].view(batch_size, per_stream)
        return [Batch(inputs[:, t : t + n], targets[:, t : t + n], carry=True)
                for t in range(0, per_stream - n + 1, n)]

    def loss(self, output, batch):
        return F.cross_entropy(output.flatten(0, 1), batch.targets.flatten())

    def scores(self, model, split, batch_size):
        """Bits per character over the whole split, read as parallel streams with the state carried on."""
        ids, n = self.ids(split), self.options["seq_len"]
        if len(ids) < 2:
            raise ValueError(f"the {split} text has {len(ids)} character(s); scoring needs at least 2")
        streams = min(32, len(ids) - 1)  # a short text is read as fewer streams, each at least one character
        per_stream = (len(ids) - 1) // streams
        inputs = ids[: streams * per_stream].view(streams, per_stream)
        targets = ids[1 : streams * per_stream + 1].view(streams, per_stream)
        total, state = 0.0, None
        with torch.no_grad():
            for t in range(0, per_stream, n):
                logits, state = model(inputs[:, t : t + n], state=state)
                total += F.cross_entropy(logits.flatten(0, 1), targets[:, t : t + n].flatten(), reduction="sum").item()
        return {"bits_per_char": total / targets.numel() / LN2}

    def baseline(self):
        """The best Kneser-Ney n-gram up to --ngram-order, its order chosen on the validation split."""
        from .ngram import best_of_orders

        t = self.texts
        best = best_of_orders(t["train"], t["validation"], t["test"], self.options["ngram_order"])
        return {"name": f"{best['order']}-gram Kneser-Ney", **best}

    def generate(self, model, prime: str, length: int, temperature: float, generator=None) -> str:
        if not 0 < temperature < math.inf:  # NaN fails this too
            raise ValueError(f"temperature must be positive, got {temperature}")
        ids = self.vocab.encode(prime) or [self.vocab.index(self.vocab.UNK)]
        out = []
        with torch.no_grad():
            logits, state = model(torch.tensor([ids]))
            for _ in range(length):
                probs = (logits[0, -1] / temperature).softmax(-1)
                probs[: 2] = 0  # never sample padding or the unknown symbol
                nxt = int(torch.multinomial(probs, 1, generator=generator))
                out.append(nxt)
                logits, state = model(torch.tensor([[nxt]]), state=state)
        return prime + self.vocab.decode(out)

    def running_prediction(self, model, ids):
        """The probability the model gave each character before seeing it (the first has none: nan)."""
        with torch.no_grad():
            probabilities = model(torch.tensor([ids]))[0][0].softmax(-1).numpy()
        given = probabilities[np.arange(len(ids) - 1), ids[1:]]
        return np.concatenate([[np.nan], given]), "next character", None, None


# -- speech ---------------------------------------------------------------------------------------


class SpeechTask(Task):
    """Recognise who speaks (JapaneseVowels) or what is said (--data: a folder of WAV files)."""

    name, metric, higher_is_better = "speech", "accuracy", True
    # Chosen on JapaneseVowels (about 30 s a run on one thread): its 243 training utterances need many short
    # epochs and strong dropout; wider (128) or shorter (30 epochs) models test lower. FSDD's 2,430
    # recordings need fewer epochs in larger batches: recordings_defaults, used when --data is given.
    train_defaults = dict(epochs=60, batch_size=16, lr=3e-3)
    recordings_defaults = dict(epochs=15, batch_size=32)  # with --data: chosen on FSDD's standard split
    model_defaults = dict(hidden_size=64, bidirectional=True, dropout=0.3, readout="last")
    # features: None means mfcc for WAV data; JapaneseVowels comes as cepstra already.
    options_defaults = dict(data=None, test_speakers=None, features=None)
    # Gaussian noise on the scaled training features (a standard deviation of 0.2): on 243 training
    # utterances it keeps the model from learning the exact coefficients by heart. JapaneseVowels, seeds
    # 0-2: 98.1, 98.1, 98.4% with it; 97.8, 97.6, 98.4% without.
    input_noise = 0.2

    @classmethod
    def training_defaults(cls, options):
        return {**cls.train_defaults, **(cls.recordings_defaults if options.get("data") else {})}

    def __init__(self, options: dict) -> None:
        super().__init__(options)
        self._check_options()
        if "labels" not in self.options:  # a new run: read the data now, for its labels and feature scale
            train = self.splits["train"]
            stacked = np.concatenate(train.frames)
            self.options["labels"] = train.label_names
            self.options["feature_mean"] = stacked.mean(0).tolist()
            # A channel that never varies would divide by zero; it carries nothing, so any scale will do.
            self.options["feature_std"] = np.where(stacked.std(0) > 1e-8, stacked.std(0), 1.0).tolist()

    def _check_options(self) -> None:
        from .data.audio import FEATURES

        o = self.options
        if o["data"] is None and (o["features"] is not None or o["test_speakers"] is not None):
            given = "--features" if o["features"] is not None else "--test-speakers"
            raise ValueError(f"{given} applies to WAV recordings (--data DIR); JapaneseVowels comes as "
                             "12 cepstral coefficients per frame, split by its archive")
        if o["features"] is not None and o["features"] not in FEATURES:
            raise ValueError(f"unknown features {o['features']!r}: choose one of {', '.join(FEATURES)}")

    @property
    def label_names(self) -> list[str]:
        return self.options["labels"]

    def better(self, a: float, b: float | None) -> bool:
        """A tie counts as better: a validation split of a few dozen utterances ties at 100% for many epochs,
        and among equal scores the later model, trained longer at a lower learning rate, tests better."""
        return b is None or a >= b

    @property
    def feature_kind(self) -> str:
        return self.options["features"] or "mfcc"

    @functools.cached_property
    def splits(self) -> dict:
        from .data.speech import speech_splits

        speakers = self.options["test_speakers"]
        speakers = [s.strip() for s in speakers.split(",") if s.strip()] if speakers else None
        return speech_splits(self.options["data"], self.feature_kind, speakers)

    def use_data(self, path) -> str:
        """Score on a folder of WAV files labelled as the training data was; returns the split name."""
        from .data.speech import load_wav_folder

        self._refuse_without_audio("evaluate --data")
        self.splits["external"] = load_wav_folder(path, self.feature_kind, label_names=self.label_names)
        return "external"

    def _refuse_without_audio(self, what: str) -> None:
        if self.options["data"] is None:
            raise ValueError(f"{what} needs a model trained on WAV recordings (gated train speech --data DIR); "
                             "this one was trained on JapaneseVowels' cepstra, which no WAV file gives")

    def check_training(self, batch_size: int) -> None:
        """Refuse a training split smaller than one batch: a run on it would take no step."""
        if len(self.splits["train"]) < 1:
            from .data.errors import DataError

            raise DataError(self.options["data"] or "JapaneseVowels", "no training recordings")

    def _scaled(self, frames: np.ndarray) -> Tensor:
        """Each channel scaled by the training data's mean and standard deviation: one scale for every split."""
        mean = np.asarray(self.options["feature_mean"], dtype=np.float32)
        std = np.asarray(self.options["feature_std"], dtype=np.float32)
        return torch.from_numpy((frames - mean) / std)

    def _pad(self, frames: list[np.ndarray]) -> tuple[Tensor, Tensor]:
        """(B, T, channels) scaled frames padded with zeros, and (B,) lengths."""
        lengths = torch.tensor([len(f) for f in frames], dtype=torch.long)
        inputs = torch.zeros(len(frames), int(lengths.max()), frames[0].shape[1])
        for row, f in enumerate(frames):
            inputs[row, : len(f)] = self._scaled(f)
        return inputs, lengths

    def _batches(self, split, batch_size, generator, noise: float = 0.0) -> list[Batch]:
        data = self.splits[split]
        batches = []
        for rows in bucketed_order([len(f) for f in data.frames], batch_size, generator):
            inputs, lengths = self._pad([data.frames[r] for r in rows])
            if noise:  # drawn from the epoch's generator: a resumed run sees the same noisy batches
                inputs += noise * torch.randn(inputs.shape, generator=generator)
            batches.append(Batch(inputs, torch.tensor([data.labels[r] for r in rows]), lengths))
        return batches

    def model_shape(self) -> dict:
        return dict(input_size=len(self.options["feature_mean"]), output_size=len(self.label_names))

    def train_batches(self, epoch, batch_size, seed):
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        return self._batches("train", batch_size, generator, self.input_noise)

    def loss(self, output, batch):
        return F.cross_entropy(output, batch.targets)

    def scores(self, model, split, batch_size):
        return classification_scores(model, self._batches(split, 256, None))

    def predict(self, model, files: list[str]) -> Tensor:
        """Class probabilities (N, labels) for WAV files, their features computed as in training."""
        from .data import audio

        self._refuse_without_audio("predict")
        frames = [audio.features(audio.read_wav(path), audio.SAMPLE_RATE, self.feature_kind) for path in files]
        inputs, lengths = self._pad(frames)
        with torch.no_grad():
            return model(inputs, lengths)[0].softmax(-1)

    def baseline(self):
        from .baselines import majority_accuracy
        from .data.speech import mean_std_logistic_accuracy

        train, test = self.splits["train"], self.splits["test"]
        return {
            "name": "mean+std logreg",
            "value": mean_std_logistic_accuracy(train, test),
            "majority": majority_accuracy(train.labels, test.labels),
        }


def _charlm_splits(text: str) -> dict[str, str]:
    from .data.text import split_held_out

    rest, test = split_held_out(text, 0.05)
    train, validation = split_held_out(rest, 0.05)
    return {"train": train, "validation": validation, "test": test}


def _charlm_file_size(train_characters: int) -> int:
    """The shortest text whose training part has ``train_characters`` and whose held-out parts can be scored."""
    size = max(2, int(train_characters / 0.9025) - 20)  # the parts are rounded: start below, count up
    while True:
        parts = _charlm_splits("x" * size)
        if len(parts["train"]) >= train_characters and min(len(parts["validation"]), len(parts["test"])) >= 2:
            return size
        size += 1


TASKS = {t.name: t for t in (SentimentTask, CharLMTask, SpeechTask, AddingTask, CopyTask)}
