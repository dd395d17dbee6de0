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
