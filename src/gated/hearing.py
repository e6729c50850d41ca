"""A trained speech model hearing one recording: its running answer frame by frame, its gates and states.

This is the numbers behind ``gated listen`` and ``gated explain RUN FILE.wav`` (drawing
them is ``gated.viz``'s job, printing them ``listen.py``'s). A :class:`Listener` takes
the audio in pieces, as a microphone delivers it, computes each frame's features as
soon as its samples are in (``audio.FrameFeatures``, the very computation training
used) and says after every frame what the model would answer if the audio ended
there:

- a unidirectional model runs through its recurrent layer's ``stream()``: one step
  per frame, the state carried on, so each frame costs the same however long the
  audio has been going;
- a bidirectional model cannot do that: its backward direction reads from the newest
  frame back to the first, and a new frame changes all of it. So it reads everything
  that has arrived again at each frame, and a frame costs more the longer the audio.

Either way the answer after the last frame is the answer for the whole file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .data import audio


def check_speech_run(task, run) -> None:
    """Refuse a run that cannot hear a WAV file: another task, or speech trained on JapaneseVowels' cepstra."""
    if task.name != "speech":
        raise ValueError(f"{run} holds a model of the {task.name} task; hearing a WAV file needs a run of "
                         "'gated train speech --data DIR' (a folder of WAV recordings)")
    if task.options.get("data") is None:
        raise ValueError(f"{run} was trained on JapaneseVowels, whose frames are cepstral coefficients no WAV file "
                         "gives; a run trained on WAV recordings can hear one: gated train speech --data DIR")


def feature_kind(task) -> str:
    return task.options.get("features") or "mfcc"


def scale(task, frames: np.ndarray) -> torch.Tensor:
    """Frames scaled by the training set's mean and standard deviation per channel, as training scaled them."""
    mean = np.asarray(task.options["feature_mean"], dtype=np.float32)
    std = np.asarray(task.options["feature_std"], dtype=np.float32)
    return torch.from_numpy((np.asarray(frames, dtype=np.float32) - mean) / std)


@dataclass
class Heard:
    """The answer after one frame."""

    frame: int
    seconds: float  # when the frame's last sample arrived, in seconds of audio
    probabilities: np.ndarray  # (labels,)


class Listener:
    """A speech run's model fed audio piece by piece; ``push`` returns what it would answer after each new frame."""

    def __init__(self, task, model) -> None:
        self.task, self.model = task, model.eval()
        self.streaming = not model.config.bidirectional
        self.features = audio.FrameFeatures(audio.SAMPLE_RATE, feature_kind(task))
        self.frames: list[torch.Tensor] = []  # scaled, as the model heard them
        self.raw: list[np.ndarray] = []  # the features as computed, for drawing
        self.compute_seconds = 0.0  # features and model, the real-time factor's numerator
        if self.streaming:
            self._stream = model.rnn.stream()
            self._pooled = None  # the running max of the top layer's outputs, for readout "max"

    def warm_up(self) -> None:
        """One step on silence and a reset: the first step of a stream loads its kernels, which is no part of
        listening (a live recogniser pays it once, before the microphone opens)."""
        with torch.no_grad():
            if self.streaming:
                self._stream.step(torch.zeros(self.model.rnn.input_size))
                self._stream.reset()
            else:
                self.model(torch.zeros(1, 1, self.model.rnn.input_size))

    def push(self, samples: np.ndarray) -> list[Heard]:
        started = time.perf_counter()
        heard = self._hear(self.features.push(samples))
        self.compute_seconds += time.perf_counter() - started
        return heard

    def finish(self) -> list[Heard]:
        started = time.perf_counter()
        heard = self._hear(self.features.finish())
        self.compute_seconds += time.perf_counter() - started
        return heard

    def _hear(self, new_frames: np.ndarray) -> list[Heard]:
        heard = []
        with torch.no_grad():
            for frame in new_frames:
                self.raw.append(frame)
                x = scale(self.task, frame)
                self.frames.append(x)
                logits = self._step(x) if self.streaming else self._reread()
                k = len(self.frames) - 1
                heard.append(Heard(k, self.features.frame_time(k), logits.softmax(-1).numpy()))
        return heard

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        """One frame through the stream; the head reads what forward's readout would read at this frame."""
        h = self._stream.step(x)
        if self.model.config.readout == "max":
            self._pooled = h if self._pooled is None else torch.maximum(self._pooled, h)
            h = self._pooled
        return self.model.head(h)

    def _reread(self) -> torch.Tensor:
        """A bidirectional model: the whole model on everything heard so far."""
        return self.model(torch.stack(self.frames)[None])[0][0]


def listen(task, model, samples: np.ndarray, chunk: int) -> tuple[list[Heard], Listener]:
    """Feed ``samples`` (at the task's rate) to a fresh listener ``chunk`` samples at a time."""
    listener = Listener(task, model)
    listener.warm_up()
    heard = []
    for start in range(0, len(samples), chunk):
        heard += listener.push(samples[start : start + chunk])
    heard += listener.finish()
    return heard, listener


def changes(heard: list[Heard]) -> list[Heard]:
    """The frames at which the top answer changed (the first frame included)."""
    found, previous = [], None
    for h in heard:
        best = int(h.probabilities.argmax())
        if best != previous:
            found.append(h)
            previous = best
    return found


# -- what explain draws ------------------------------------------------------------------------------


@dataclass
class Hearing:
    """A speech model over one recording: per frame its features, running answer, gates and states."""

    features: np.ndarray  # (T, channels), as computed (unscaled)
    scaled: np.ndarray  # (T, channels), as the model heard them
    feature_kind: str  # mfcc | logmel
    starts: np.ndarray  # (T,) seconds at which each frame's window starts
    frame_seconds: float  # the hop between frames
    window_seconds: float  # what one frame covers
    probabilities: np.ndarray  # (T, labels): the answer had the audio ended after each frame
    label_names: list[str]
    kind: object  # the cell kind: gates and states by name
    steps: dict[str, np.ndarray]  # name -> (T, hidden), top layer, forward direction
    units: list[int]
    backward: dict[str, np.ndarray] | None = None
    backward_units: list[int] | None = None
    seconds: float = 0.0  # how long the recording heard is
    unheard: float = 0.0  # seconds of audio past the reading limit, left out

    @property
    def answer(self) -> int:
        return int(self.probabilities[-1].argmax())

    @property
    def cell(self) -> str:
        return self.kind.family

    @property
    def centres(self) -> np.ndarray:
        """(T,) seconds at the middle of each frame's window: where the sound a frame stands for is."""
        return self.starts + self.window_seconds / 2


READING_LIMIT_SECONDS = 30.0  # explain draws at most this much: a figure stays readable, a re-read quick


def hear(task, model, samples: np.ndarray, units: int = 8) -> Hearing:
    """Trace ``model`` on a recording: gates and states of the top layer, and the running answer per frame.

    The running answer is the one ``gated listen`` prints (a :class:`Listener` computes it); the gates come
    from one trace of all frames, which the stream's steps equal.
    """
    limit = int(READING_LIMIT_SECONDS * audio.SAMPLE_RATE)
    hop = audio.frame_sizes(audio.SAMPLE_RATE)[1]
    heard, listener = listen(task, model, samples[:limit], hop)
    frames = np.stack(listener.raw)
    x = torch.stack(listener.frames)
    with torch.no_grad():
        trace = model.rnn.trace(x[None])
    directions = [{name: trace.of(name, layer=-1, direction=d)[:, 0].numpy() for name in trace.names}
                  for d in range(trace.num_directions)]
    chosen = [telling_units(model, steps["hidden"], units, d) for d, steps in enumerate(directions)]
    window, hop, n_fft = audio.frame_sizes(audio.SAMPLE_RATE)
    # torch.stft centres the window in each n_fft-sample frame: the window itself starts this much later.
    starts = (np.arange(len(frames)) * hop + (n_fft - window) // 2) / audio.SAMPLE_RATE
    backward = (directions[1], chosen[1]) if len(directions) == 2 else (None, None)
    return Hearing(frames, x.numpy(), feature_kind(task), starts, hop / audio.SAMPLE_RATE,
                   window / audio.SAMPLE_RATE, np.stack([h.probabilities for h in heard]), list(task.label_names),
                   model.rnn.kind, directions[0], chosen[0], *backward,
                   seconds=min(len(samples), limit) / audio.SAMPLE_RATE, unheard=max(0.0, (len(samples) - limit) / audio.SAMPLE_RATE))


def telling_units(model, hidden: np.ndarray, k: int, direction: int = 0) -> list[int]:
    """The ``k`` units that push the final answer hardest towards one class (readout "last"), or else those
    that change most over the recording."""
    if model.config.readout == "last":
        size = hidden.shape[1]
        # The head reads [forward h at the last frame, backward h at the first]: this direction's columns.
        weight = model.head.weight.detach().numpy()[:, direction * size : (direction + 1) * size]
        final = hidden[-1] if direction == 0 else hidden[0]
        score = np.abs((weight - weight.mean(0, keepdims=True)) * final).max(0)
    else:
        score = hidden.std(0)
    return [int(u) for u in np.argsort(-score, kind="stable")[:k]]
