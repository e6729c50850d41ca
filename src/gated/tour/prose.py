"""The tour's words, English (``EN``) and German (``DE``).

Paragraphs are format strings: ``{name}`` is filled with a number measured on
the live models when the report is written, so the text never claims what the
figures do not show. Every sentence here is the project's own; the guide's
facts carry over, its wording does not.
"""

from __future__ import annotations

EN = {
    "title": "The illustrated guide to RNNs, LSTMs and GRUs, live",
    "lead": [
        "Every figure on this page was drawn just now from small recurrent networks that gated trained on real "
        "data: Amazon food reviews, Shakespeare's plays and the adding problem. Nothing is a sketch; every "
        "number comes from a model you can load, trace and question yourself.",
        "The sections follow the guide: squashing functions first, then a plain RNN reading a review, its short "
        "memory, the LSTM's gates and cell state, the code of one LSTM step, the GRU, and what trained networks "
        "look like from the inside.",
    ],
    "contents": "Contents",
    "footer": "Written by gated tour. The models sit in the models/ folder beside this page; "
              "try 'gated explain models/sentiment-lstm \"your own review\"'.",
    "labels": {
        "review": "the review all three networks read",
        "length": "length",
        "guide": "the guide's step",
        "unit": "unit",
        "temperature": "temperature",
        "model": "model",
        "metric": "metric",
        "value": "test score",
        "baseline": "baseline",
        "seconds": "training seconds",
        "none": "none",
        "metric.accuracy": "accuracy",
        "metric.bits_per_char": "bits per character",
        "metric.mse": "mean squared error",
        "baseline.tfidf+logreg": "TF-IDF + logistic regression",
        "baseline.always predict 1.0": "always predicting 1.0",
        "baseline.mean+std logreg": "mean and spread per recording + logistic regression",
        "ngram": "{order}-gram Kneser-Ney",
        "previous_cell": "the previous cell state",
        "baseline_model": "baseline model",
        "line break": "a line break",
        "space": "a space",
        "in_layer": "{count} in layer {layer}",
        "units_one_layer": "{hidden} units",
        "units_per_layer": "{layers} layers of {hidden} units",
        "and": "and",
        "speaker": "speaker",
        "beats": "It already beats the n-gram model.",
        "not_yet": "That is not yet as good as the n-gram model: a few minutes of training on a CPU are too "
                   "few, and the samples below are rough; the full 'gated train charlm' run (10 minutes, the "
                   "n-gram's fit included) gets past it.",
    },
    "guide_steps": [
        "Join the previous hidden state and the current input.",
        "The forget gate decides, per value, what of the old cell state stays.",
        "The input gate decides which new values are worth writing.",
        "The candidate proposes those new values, between -1 and 1.",
        "The new cell state: what was kept plus what was admitted.",
        "The output gate picks what of the cell state to reveal.",
        "The new hidden state: the squashed cell state through the output gate.",
    ],
    "squash": {
        "title": "1. Squashing: tanh and sigmoid",
        "body": [
            "Inside a recurrent network the same weights act on the state again and again. tanh keeps every "
            "value between -1 and 1; sigmoid keeps it between 0 and 1, which makes it a dial from 'shut' to "
            "'fully open'. Every gate in an LSTM or GRU is such a sigmoid.",
            "Without a squashing function, repeated multiplication runs away: four values multiplied by 3 six "
            "times grow until the largest is {largest} while the smallest has only reached {smallest}: the "
            "differences grow as fast as the values, and the largest drowns out the rest. Put a tanh after each multiplication and no value ever leaves (-1, 1); after "
            "six steps the largest is {kept}. tanh pays for this with saturation: after a few steps even 0.03 "
            "sits close to 1, where the curve is almost flat, an effect section 8 measures in a trained network.",
        ],
    },
    "rnn": {
        "title": "2. A plain RNN reads a review, word by word",
        "body": [
            "An RNN turns each word into a vector and reads them in order. At every word it combines that vector "
            "with the hidden state it carried from the word before, squashes the result with tanh and hands it "
            "on: the hidden state is the network's whole memory of what it has read.",
            "The reviews carry one of two labels, '{positive}' (the top rating) or '{negative}'; {share} of the "
            "test reviews are '{positive}'. Below, an RNN trained on them reads one review from the test set ({words} words, "
            "labelled '{truth}'). The top line shows what it would answer if the review stopped at that word; "
            "the heatmap shows the {units} hidden units that weigh most in its final answer. It ends at "
            "'{verdict}' with p = {p}.",
            "On the whole test set this RNN is right {rnn} of the time, against {lstm} for the LSTM and {gru} "
            "for the GRU trained the same way, {tfidf} for a bag-of-words TF-IDF classifier and {majority} for "
            "always answering the most common label.",
        ],
    },
    "memory": {
        "title": "3. Short-term memory, measured",
        "body": [
            "Training adjusts a weight by the gradient that flows back to it through time. In a plain RNN that "
            "gradient is multiplied by the same weights and tanh slopes at every step back, so it shrinks "
            "fast: the early inputs barely move the weights, and the network forgets them.",
            "The first figure measures it on networks trained on the adding problem (length {longest}): the "
            "gradient of the loss with respect to each input, divided by its size at the last input. From "
            "{distance} steps back, the RNN's gradient is {far_rnn} of that size. The LSTM's and GRU's hardly "
            "shrink: over all distances their median is {median_lstm} and {median_gru}.",
            "The adding problem makes the consequence visible. Each sequence hides two marked numbers; the "
            "answer is their sum, given only at the end. A network with no memory can do no better than "
            "answering 1.0 every time, an error of {baseline}. With the same training budget at each length, "
            "the error falls below {threshold} at these lengths: RNN {solved_rnn}; LSTM {solved_lstm}; GRU "
            "{solved_gru}. At length {longest} the errors are {mse_rnn} (RNN), {mse_lstm} (LSTM) and "
            "{mse_gru} (GRU).",
        ],
    },
    "lstm": {
        "title": "4. The LSTM: gates and the cell state",
        "body": [
            "An LSTM keeps a second state, the cell state, that runs through the whole sequence and is changed "
            "only by multiplication with the forget gate and addition of new values. Three sigmoid gates steer "
            "it: the forget gate decides what to keep, the input gate what to add, the output gate what to "
            "show as the hidden state.",
            "Here the LSTM reads the same review and answers '{verdict}' (p = {p}; the label is '{truth}'). "
            "Each gate panel shows the mean over all units and the {units} units that matter most for the "
            "verdict; the cell-state panel shows how those units build up over the words.",
            "Across these words the forget gate averages {forget_mean}: it is above 0.9 for {forget_open} of "
            "unit-steps and below 0.1 for {forget_closed}. The words that moved the answer most, like the key "
            "words a reader remembers from a review, are {keys} (the change in p({target}) each caused). "
            "Below, every word is shaded by that change: red pushed towards '{target}', blue away from it.",
        ],
    },
    "steps": {
        "title": "5. One LSTM step, in code and in numbers",
        "body": [
            "The guide describes an LSTM step in seven lines of pseudocode. gated's cell is written the same "
            "way: on the left are the lines of cells.py that perform each step, on the right the values they "
            "produced for three units when the LSTM read the word '{word}' (word {position} of the review), "
            "the word that moved its answer most. Step 1 joins h and x the way a matrix product does: "
            "W_ih x + W_hh h is one matrix applied to the joined vector [x, h].",
            "Take unit {unit}: its forget gate is {f}, so the old cell value {c0} is scaled down by that "
            "factor; its input gate is {i} and the candidate {g}, so it writes {i} × {g} = {ig} on top. The new cell "
            "value is {c1}. These numbers were computed by calling cells.lstm_cell with the model's weights, "
            "and agree with the traced run to within {drift}.",
        ],
    },
    "gru": {
        "title": "6. The GRU: reset and update gates",
        "body": [
            "A GRU has no separate cell state: its hidden state is the memory. The update gate does the work "
            "of the LSTM's forget and input gates at once, choosing per unit between keeping the old value "
            "and taking the new candidate. The reset gate decides how much of the past the candidate may see.",
            "On the same review the GRU answers '{verdict}' (p = {p}). Its update gate averages "
            "{update_mean} and keeps more of the old state than of the candidate (update gate above 0.5) in "
            "{update_keep} of unit-steps; the reset gate averages {reset_mean}. The words that moved it most: "
            "{keys}. A running prediction also moves on small words: such a change belongs to the context a "
            "word arrives in as much as to the word itself.",
        ],
    },
    "shakespeare": {
        "title": "7. Writing like Shakespeare, one character at a time",
        "body": [
            "An LSTM of {units}, its gates' inputs and its cell's output "
            "layer-normalised (Ba, Kiros and Hinton 2016), read Shakespeare's plays for {seconds} "
            "seconds, predicting each next character. On unseen text it needs {bpc} bits per character, "
            "against {ngram_bpc} for a {ngram} model fitted to the same text and {uniform} for guessing "
            "uniformly. {comparison}",
            "Sampling from it character by character writes new text. At temperature 0.5 it plays safe and "
            "repeats common words; at 1.0 it takes more risks, with more invented words. The grid below "
            "colours each character of a held-out passage by the probability the model gave it before "
            "reading it: bright where the text was easy to predict, dark where it surprised the model.",
        ],
    },
    "saturation": {
        "title": "8. Inside a trained LSTM: how gates settle",
        "body": [
            "Karpathy, Johnson and Fei-Fei (2015) asked how often a gate is nearly shut (< 0.1) or nearly open "
            "(> 0.9). Each dot is one unit of the Shakespeare LSTM ({units}), measured "
            "over {steps} characters of held-out text. A dot far right is a unit above 0.9 most of the time, a dot high up "
            "one below 0.1 most of the time.",
            "Forget gates that stay open carry memory over long spans. The units whose forget gate is above 0.9 "
            "for more than half the steps number {forget}; for the input gates they number {input}, for the "
            "output gates {output}.",
            "The last figure follows one cell (unit {unit}, the one that varies most) over a passage, coloured "
            "by tanh of its value. Over the whole held-out text it is highest right after {high} and lowest "
            "right after {low}: it has learnt to track something in the text without being told what.",
        ],
    },
    "speech": {
        "title": "9. Hearing who speaks",
        "body": [
            "Sound reaches a recurrent network as a sequence too, not of words but of short frames, each summed "
            "up in a few numbers. In JapaneseVowels, {speakers} men each say the Japanese vowels /ae/ many "
            "times; every frame holds 12 cepstral coefficients, which describe the shape of the sound's "
            "spectrum over 25.6 ms, and a new frame starts every 6.4 ms. The network has to tell who is talking.",
            "An LSTM that reads the frames in one direction only, trained here for {seconds} seconds, names the "
            "right man in {accuracy} of the {test} test recordings. A logistic regression that sees only each "
            "recording's mean and spread of every coefficient, and so knows nothing of their order, gets "
            "{baseline}; always naming the most frequent speaker gets {majority}.",
            "Below, it hears one test recording of speaker {speaker}: {frames} frames, {ms} ms of sound. The top "
            "line is the probability it gives him had the recording stopped at that frame; under it are the "
            "gates and cell state of the {units} units that count most for its answer, and at the bottom the "
            "coefficients it heard. It ends at p = {p}, and its first choice stays the same from frame {settled} "
            "on ({settled_ms} ms into the sound). Its forget gate averages {forget_mean} on this recording.",
            "Reading in one direction means it can answer while someone is still speaking, as 'gated listen' "
            "does with a microphone's frames: halfway through each test recording its answer is already right "
            "{half} of the time.",
        ],
    },
    "models": {
        "title": "10. The models behind this page",
        "body": [
            "The {count} runs below were trained by this tour with 'gated train'; each score is on the test "
            "split, next to the baseline measured in the same run.",
        ],
    },
}

from .prose_de import DE  # noqa: E402 - the German mirrors EN, key for key

PROSE = {"en": EN, "de": DE}


def prose(lang: str) -> dict:
    if lang not in PROSE:
        raise ValueError(f"unknown language {lang!r}: choose one of {', '.join(PROSE)}")
    return PROSE[lang]
