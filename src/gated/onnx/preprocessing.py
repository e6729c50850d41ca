"""What a run's model needs around it outside Python: written as JSON beside the .onnx file.

The vocabulary (a token's id is its position), how text becomes tokens, the labels,
the feature scaling, and the inputs and outputs, so that another language can turn
a text into the ``tokens`` the model reads and its ``probabilities`` into an answer.
"""

from __future__ import annotations

from .. import __version__
from ..data.vocab import _WORD, Vocabulary


def describe(task, model, model_file: str) -> dict:
    """The JSON for a run of ``task`` whose model was written to ``model_file``."""
    info = {
        "gated": __version__,
        "task": task.name,
        "model": model_file,
        "cell": model.config.cell,
        "readout": model.config.readout,
        "inputs": _inputs(model),
        "outputs": _outputs(model),
    }
    if task.vocab is not None:
        info["text"] = _text(task)
        info["vocabulary"] = {"pad": Vocabulary.PAD_INDEX, "unk": Vocabulary.UNK_INDEX,
                              "tokens": list(task.vocab.tokens)}
    if task.options.get("labels"):
        info["labels"] = list(task.options["labels"])
    if "feature_mean" in task.options:  # speech: frames scaled channel by channel
        wav = task.options.get("data") is not None
        info["features"] = {
            "kind": (task.options.get("features") or "mfcc") if wav else "JapaneseVowels' cepstra",
            "scale": "subtract mean and divide by std, channel by channel, before the model reads a frame",
            "mean": task.options["feature_mean"],
            "std": task.options["feature_std"],
        }
    info["predict"] = RECIPES.get(task.name, "see 'inputs' and 'outputs'")
    return info


def _text(task) -> dict:
    if task.vocab.kind == "words":
        max_tokens = task.options["max_tokens"]
        return {
            "tokens": "words",
            "steps": [
                "lowercase the text (Unicode lowercase)",
                "find every match of 'pattern': runs of letters and digits (what Python's str.isalnum "
                "accepts, the underscore excepted) and apostrophes",
                "strip apostrophes from both ends of each match; drop matches left empty",
                "look each word up in vocabulary.tokens (its position is its id); one not there is 'unk'",
                f"keep the first {max_tokens} ids; a text without a word is refused",
            ],
            "pattern": _WORD.pattern,
            "lowercase": True,
            "strip": "'",
            "max_tokens": max_tokens,
        }
    return {
        "tokens": "characters",
        "steps": ["every character of the text is a token, white space included, case kept",
                  "look each one up in vocabulary.tokens (its position is its id); one not there is 'unk'"],
        "lowercase": False,
    }


STATE = "optional float32 (layers * directions, batch, hidden)"


def _inputs(model) -> dict:
    if model.embedding is not None:
        inputs = {"tokens": "int64 (batch, time): token ids, padded with 0"}
    else:
        inputs = {"features": "float32 (batch, time, features): scaled frames, padded with 0"}
    inputs["lengths"] = "optional int64 (batch,): real steps of each sequence; leave it out when all are full"
    inputs["h0"] = f"{STATE}: the hidden state to start from (zeros when left out)"
    if "cell" in model.rnn.kind.states:
        inputs["c0"] = f"{STATE}: the cell state to start from (zeros when left out)"
    return inputs


def _outputs(model) -> dict:
    every = model.config.readout == "every"
    shape = "(batch, time, classes)" if every else "(batch, classes)"
    outputs = {"logits": f"float32 {shape}"}
    if model.config.output_size > 1:
        outputs["probabilities"] = f"float32 {shape}: softmax of the logits"
    outputs["h_n"] = "float32: the final hidden state; feed it back as h0 to go on from here"
    if "cell" in model.rnn.kind.states:
        outputs["c_n"] = "float32: the final cell state; feed it back as c0"
    return outputs


RECIPES = {
    "sentiment": "tokenize each text as 'text' says, pad the id lists with 0 to one length into 'tokens', "
                 "give their real lengths as 'lengths'; the label is labels[argmax(probabilities)]",
    "charlm": "encode the characters read so far as 'tokens' (batch 1); probabilities[0, -1] is the "
              "distribution of the next character over vocabulary.tokens. To go on, feed only the new "
              "character, with h0 = h_n (and c0 = c_n) of the call before",
    "speech": "compute each recording's frames as 'features' says, scale them with mean and std, pad them "
              "into 'features' with their 'lengths'; the label is labels[argmax(probabilities)]",
}
