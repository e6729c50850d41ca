"""Token vocabularies: text to integer ids and back, saved as plain JSON.

Word vocabularies feed the review classifier, character vocabularies the
language model. Both reserve index 0 for padding and index 1 for tokens the
vocabulary has not seen, so a model's embedding table and a batch's padding
agree whatever the kind.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# A word is a run of letters, digits and apostrophes (Unicode letters too, so
# "café" stays one word). The underscore counts as a word character for \w but
# not for us, hence [^\W_].
_WORD = re.compile(r"(?:[^\W_]|')+")

KINDS = ("words", "chars")


def words(text: str) -> list[str]:
    """Lowercase word tokens of ``text``; punctuation and white space are dropped.

    Apostrophes inside a word stay (``"don't"``, ``"o'er"``); those around a
    word are quotation marks and go (``"'Ladies,'"`` gives ``"ladies"``).
    """
    tokens = (match.strip("'") for match in _WORD.findall(text.lower()))
    return [token for token in tokens if token]


def chars(text: str) -> list[str]:
    """The characters of ``text``, every one of them, white space included."""
    return list(text)


_TOKENIZERS = {"words": words, "chars": chars}


class Vocabulary:
    """An ordered list of tokens; a token's id is its position.

    ``tokens[0]`` is :attr:`PAD` and ``tokens[1]`` is :attr:`UNK`, for either
    kind. Build one from training texts with :meth:`build`; save it with
    :meth:`to_json` and load it with :meth:`from_json`.
    """

    PAD = "<pad>"
    UNK = "<unk>"
    PAD_INDEX = 0
    UNK_INDEX = 1

    def __init__(self, tokens: list[str], kind: str):
        _check_kind(kind)
        _check_tokens(tokens, kind)
        self.tokens = list(tokens)
        self.kind = kind
        self._ids = {token: position for position, token in enumerate(self.tokens)}
        self._tokenize = _TOKENIZERS[kind]

    @classmethod
    def build(
        cls, texts: Iterable[str], kind: str, min_count: int = 1, max_size: int | None = None
    ) -> Vocabulary:
        """The vocabulary of ``texts``: most frequent tokens first, ties in alphabetical order.

        Tokens seen fewer than ``min_count`` times are left out (they will encode
        as UNK). ``max_size`` caps the whole vocabulary, PAD and UNK included,
        keeping the most frequent tokens.
        """
        _check_kind(kind)
        if isinstance(texts, str):
            # Iterating a str yields its characters, which would build silently wrong.
            raise TypeError("texts must be an iterable of strings, not one string; wrap it in a list")
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        if max_size is not None and max_size < 2:
            room = f"room for {cls.PAD} and {cls.UNK}"
            raise ValueError(f"max_size must be at least 2 ({room}), got {max_size}")
        counts = Counter()
        tokenize = _TOKENIZERS[kind]
        for text in texts:
            counts.update(tokenize(text))
        for special in (cls.PAD, cls.UNK):
            counts.pop(special, None)
        ranked = sorted((token for token, count in counts.items() if count >= min_count),
                        key=lambda token: (-counts[token], token))
        if max_size is not None:
            ranked = ranked[: max_size - 2]
        return cls([cls.PAD, cls.UNK, *ranked], kind)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def __eq__(self, other) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self.kind == other.kind and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocabulary(kind={self.kind!r}, size={len(self)})"

    def index(self, token: str) -> int:
        """The id of ``token``; UNK's id (1) for a token the vocabulary lacks, as :meth:`encode` does."""
        return self._ids.get(token, self.UNK_INDEX)

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` as this vocabulary splits it (words or characters), before lookup."""
        return self._tokenize(text)

    def encode(self, text: str) -> list[int]:
        """The ids of the tokens of ``text``, split by this vocabulary's kind."""
        ids = self._ids
        return [ids.get(token, self.UNK_INDEX) for token in self._tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``: words joined by spaces, characters joined directly.

        PAD ids are skipped, since padding is no part of any text; UNK reads
        as ``<unk>``. Accepts any iterable of ints, a 1-d tensor included.
        """
        size = len(self.tokens)
        pieces = []
        for raw in ids:
            position = int(raw)
            if not 0 <= position < size:
                raise ValueError(f"id {position} is outside this vocabulary of {size} tokens")
            if position != self.PAD_INDEX:
                pieces.append(self.tokens[position])
        return (" " if self.kind == "words" else "").join(pieces)

    def to_json(self) -> dict:
        """A JSON-ready dict from which :meth:`from_json` rebuilds this vocabulary."""
        return {"kind": self.kind, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: dict) -> Vocabulary:
        """The vocabulary that :meth:`to_json` wrote; ValueError saying what is wrong otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"vocabulary JSON must be an object, got {type(data).__name__}")
        missing = [key for key in ("kind", "tokens") if key not in data]
        if missing:
            raise ValueError(f"vocabulary JSON lacks {', '.join(map(repr, missing))}; it has {sorted(data)}")
        return cls(data["tokens"], data["kind"])


def _check_kind(kind) -> None:
    if kind not in KINDS:
        raise ValueError(f"vocabulary kind must be 'words' or 'chars', got {kind!r}")


def _check_tokens(tokens, kind: str) -> None:
    if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
        raise ValueError("vocabulary tokens must be a list of strings")
    if tokens[:2] != [Vocabulary.PAD, Vocabulary.UNK]:
        specials = f"{Vocabulary.PAD!r}, {Vocabulary.UNK!r}"
        raise ValueError(f"vocabulary tokens must start with {specials}; got {tokens[:2]}")
    seen = set()
    for position, token in enumerate(tokens):
        if token in seen:
            raise ValueError(f"vocabulary token {token!r} appears twice (again at index {position})")
        seen.add(token)
        if position >= 2 and not token:
            raise ValueError(f"vocabulary token at index {position} is empty")
        if position >= 2 and kind == "chars" and len(token) != 1:
            raise ValueError(f"a character vocabulary holds single characters; index {position} is {token!r}")
