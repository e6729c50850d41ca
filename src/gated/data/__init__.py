"""The data gated trains on: memory tasks, labelled reviews, plain text and speech.

``adding_problem`` asks a model to carry two numbers across a long sequence and
add them; ``copy_task`` asks it to hold a string of symbols through a long
stretch of blanks and then reproduce it. Each comes with the loss of a model
that has no memory at all, the bar a trained model has to clear.

``load_food_reviews`` and ``load_labelled_texts`` give texts with a class
label each; ``load_shakespeare`` and ``load_text_file`` give plain text for a
character-level model; ``Vocabulary`` turns either into ids. Bad data raises
``DataError`` with the file and line, and a missing optional package an
ImportError that says what to install.

Speech lives in ``speech.py`` (JapaneseVowels from aeon's files, folders of WAV
files, the splits) and ``audio.py`` (reading WAV, MFCC and log-mel features);
they are imported where used, so that importing the data package reads no audio code.
"""

from .errors import DataError, missing_package
from .memory import ADDING_BASELINE_MSE, adding_problem, copy_baseline_cross_entropy, copy_task
from .reviews import LabelledTexts, load_food_reviews, load_labelled_texts, split_validation
from .text import load_shakespeare, load_text_file, split_held_out, strip_markdown
from .vocab import Vocabulary, chars, words

__all__ = [
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "copy_task",
    "copy_baseline_cross_entropy",
    "DataError",
    "missing_package",
    "LabelledTexts",
    "load_food_reviews",
    "load_labelled_texts",
    "split_validation",
    "load_shakespeare",
    "load_text_file",
    "split_held_out",
    "strip_markdown",
    "Vocabulary",
    "chars",
    "words",
]
