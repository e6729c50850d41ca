"""The German tour text (``prose_de.DE``) must keep step with the English (``prose.EN``).

Every paragraph is a format string filled with measured numbers, so a German
paragraph that drops, adds or misspells a ``{placeholder}`` breaks the report
(``KeyError``) or silently hides a number. These tests fail as soon as either
side changes shape without the other.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import string

import pytest

from gated.tour.prose import EN
from gated.tour.prose_de import DE


def leaves(tree, path=()):
    """Every string in a nested dict/list, as (path, string)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, (*path, key))
    elif isinstance(tree, list):
        for k, value in enumerate(tree):
            yield from leaves(value, (*path, k))
    else:
        yield path, tree


def at(tree, path):
    for step in path:
        tree = tree[step]
    return tree


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def shape(tree):
    """The nesting of dicts and lists, with their keys and lengths, and the type of every leaf."""
    if isinstance(tree, dict):
        return {key: shape(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [shape(value) for value in tree]
    return type(tree).__name__


EN_LEAVES = list(leaves(EN))
PATHS = [path for path, _ in EN_LEAVES]
IDS = ["/".join(map(str, path)) for path in PATHS]


def test_same_keys_recursively():
    def keys(tree, path=()):
        if isinstance(tree, dict):
            assert isinstance(at(DE, path), dict), path
            assert list(at(DE, path)) == list(tree), f"keys differ at {path or 'top level'}"
            for key, value in tree.items():
                keys(value, (*path, key))
        elif isinstance(tree, list):
            for k, value in enumerate(tree):
                keys(value, (*path, k))

    keys(EN)


def test_same_list_lengths():
    def lengths(tree, path=()):
        if isinstance(tree, list):
            other = at(DE, path)
            assert isinstance(other, list), path
            assert len(other) == len(tree), f"{path}: EN has {len(tree)} entries, DE {len(other)}"
        children = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else []
        for key, value in children:
            lengths(value, (*path, key))

    lengths(EN)


def test_same_shape_and_leaf_types():
    assert shape(DE) == shape(EN)


def test_every_leaf_is_a_non_empty_string():
    for path, text in [*EN_LEAVES, *leaves(DE)]:
        assert isinstance(text, str) and text.strip(), path


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_same_placeholders(path):
    assert fields(at(DE, path)) == fields(at(EN, path))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_formats_with_dummy_values(path):
    en, de = at(EN, path), at(DE, path)
    dummy = {name: f"<{name}>" for name in fields(en) | fields(de)}
    filled, english = de.format(**dummy), en.format(**dummy)
    for brace in "{}":
        assert filled.count(brace) == english.count(brace), f"a stray {brace!r} survived formatting"
    for name in fields(de):
        assert f"<{name}>" in filled


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_translated(path):
    assert at(DE, path) != at(EN, path)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_no_english_sentences_left(path):
    text = at(DE, path)
    for word in (" the ", " and "):
        assert word not in text.lower(), f"{word.strip()!r} in the German text: {text!r}"


@pytest.mark.parametrize("path", [p for p in PATHS if p[-1] == "title" and len(p) == 2],
                         ids=[i for p, i in zip(PATHS, IDS) if p[-1] == "title" and len(p) == 2])
def test_section_titles_keep_their_numbers(path):
    number = at(EN, path).split(" ", 1)[0]
    if number.rstrip(".").isdigit():
        assert at(DE, path).startswith(number + " ")


def _literal(module_name: str, name: str):
    """The dict literal assigned to ``name`` in ``module``'s source, keys repeated as written.

    Importing a dict keeps only the last of any repeated key, so an entry it
    hides would escape the tests above; the source keeps all of them.
    """
    # importlib, not ``from gated.tour import prose``: that name is the prose() function, not the module.
    module = importlib.import_module(module_name)
    tree = ast.parse(inspect.getsource(module))
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return node.value
    raise AssertionError(f"no {name} = ... in {module.__name__}")


def _source_shape(node):
    if isinstance(node, ast.Dict):
        return [(ast.literal_eval(k), _source_shape(v)) for k, v in zip(node.keys, node.values)]
    if isinstance(node, ast.List):
        return [_source_shape(v) for v in node.elts]
    return sorted(fields(ast.literal_eval(node)))


def test_literals_match_even_where_a_key_repeats():
    """Same keys in the same order, same list lengths and same placeholders, in the source as written."""
    assert _source_shape(_literal("gated.tour.prose_de", "DE")) == _source_shape(_literal("gated.tour.prose", "EN"))


def test_no_key_repeats_in_a_literal():
    """A repeated key in a dict literal silently drops the first entry."""
    def repeated(node):
        if isinstance(node, ast.Dict):
            keys = [ast.literal_eval(k) for k in node.keys]
            yield from (k for k in set(keys) if keys.count(k) > 1)
            for value in node.values:
                yield from repeated(value)

    for module, name in (("gated.tour.prose", "EN"), ("gated.tour.prose_de", "DE")):
        assert list(repeated(_literal(module, name))) == []
