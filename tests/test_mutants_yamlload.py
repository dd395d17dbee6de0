"""Gaps a mutation run (mutmut 3.8.1) found in yamlload.py: syntax_error on an error that
has no position or no `problem` (libyaml's ReaderError for a control character has neither)."""

from __future__ import annotations

import pytest
import yaml

from lorakit import yamlload

HINT = "fix the YAML at that line (indentation, a missing ':' or an unclosed quote)"


def _error(text: str) -> yaml.YAMLError:
    with pytest.raises(yaml.YAMLError) as info:
        yamlload.parse(text)
    return info.value


def test_a_control_character_is_a_syntax_error_without_a_line():
    exc = _error("a: \x07b\n")
    assert not hasattr(exc, "problem_mark") and not hasattr(exc, "problem")
    err = yamlload.syntax_error("p.yaml", exc)
    assert err.message == f"p.yaml: YAML syntax error: {exc}"
    assert err.message.startswith("p.yaml: YAML syntax error: unacceptable character #x0007")
    assert err.hint == HINT


def test_a_bare_yaml_error_names_only_the_file():
    err = yamlload.syntax_error("p.yaml", yaml.YAMLError("boom"))
    assert (err.message, err.hint) == ("p.yaml: YAML syntax error: boom", HINT)


def test_a_marked_error_names_line_and_column():
    err = yamlload.syntax_error("p.yaml", _error("a: [1, 2\n"))
    assert err.message == "p.yaml:2:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"
    assert err.hint == HINT


@pytest.mark.parametrize("text, tag", [
    ("a: !foo bar\n", "!foo"),
    ("a: !!python/name:os.system x\n", "tag:yaml.org,2002:python/name:os.system"),
])
def test_an_unknown_tag_is_still_refused(text, tag):
    """The word constructor is registered for lorakit's own tag only, not as the fallback for
    every tag (which would turn `!!python/name:os.system x` into the text 'x')."""
    exc = _error(text)
    assert isinstance(exc, yaml.constructor.ConstructorError)
    assert exc.problem == f"could not determine a constructor for the tag {tag!r}"


def test_yes_no_on_off_are_words_and_true_false_booleans():
    data = yamlload.parse("a: no\nb: On\nc: true\nd: FALSE\ne: y\n")
    assert data == {"a": "no", "b": "On", "c": True, "d": False, "e": "y"}
    assert [type(data[k]) for k in "abcde"] == [yamlload.Word, yamlload.Word, bool, bool, str]


def test_words_in_a_list_inside_a_mapping_are_booleans_too():
    Word = yamlload.Word
    assert yamlload.settle({"a": [Word("no"), {"b": Word("on")}, [Word("yes")]]}) == {"a": [False, {"b": True}, [True]]}
    assert yamlload.settle([Word("no"), [Word("on")]]) == ["no", ["on"]]  # not in a mapping: still words
    assert [type(v) for v in yamlload.settle([Word("no"), [Word("on")]])[1]] == [Word]


def test_a_merge_key_is_not_a_key_and_does_not_stop_the_duplicate_check():
    assert yamlload.parse("<<: {b: 2}\na: 1\n") == {"b": 2, "a": 1}
    exc = _error("<<: {b: 2}\na: 1\na: 2\n")
    assert isinstance(exc, yamlload.DuplicateKey)
    assert exc.problem == ("key 'a' appears twice in one mapping (lines 2 and 3): YAML would keep the second "
                           "silently")


def test_an_unhashable_key_does_not_stop_the_duplicate_check():
    exc = _error("? [1, 2]\n: x\na: 1\na: 2\n")
    assert isinstance(exc, yamlload.DuplicateKey)
    assert exc.problem == ("key 'a' appears twice in one mapping (lines 3 and 4): YAML would keep the second "
                           "silently")


ALIAS_HINT = "write the value out where it is used, or share settings with 'extends:'"


def test_an_alias_is_refused_with_its_line_at_once():
    """The alias-bomb test in test_hardening hangs rather than fails if refuse_aliases stops
    looking; this one fails at once."""
    from lorakit.errors import LorakitError

    with pytest.raises(LorakitError) as info:
        yamlload.refuse_aliases("a: &x 1\nb: *x\n", "p.yaml")
    assert (info.value.message, info.value.hint) == (
        "p.yaml:2: YAML alias *x: presets do not use anchors and aliases", ALIAS_HINT)
    with pytest.raises(LorakitError) as info:
        yamlload.refuse_aliases("[&x 1, *x]", "--set 'a=[&x 1, *x]'", lines=False)
    assert info.value.message == "--set 'a=[&x 1, *x]': YAML alias *x: presets do not use anchors and aliases"
    assert yamlload.refuse_aliases("a: '*'\n", "p.yaml") is None
